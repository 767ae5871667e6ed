//===- JinjaDetail.h - the Jinja renderer's trees and helpers ---*- C++ -*-===//
//
// Shared by the three files of runtime/chat's Jinja (not part of its API):
// Jinja.cpp parses (the source cut into text and tags, then recursive
// descent into these trees), JinjaValue.cpp prints and compares values as
// Python does, JinjaRender.cpp walks the trees. Errors inside are thrown as
// `Failure` and become a Status at Template::parse and Template::render.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CHAT_JINJADETAIL_H
#define KILN_RUNTIME_CHAT_JINJADETAIL_H

#include "runtime/chat/Jinja.h"

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln::jinja {

struct Expr {
  enum Op { Lit, Name, ListE, DictE, Attr, Index, Slice, Call, Method, Filter, Test, Not, Neg, Bin, Cond, And, Or };
  Op op = Lit;
  Value lit;
  std::string name; // variable, attribute, function, method, filter, test or binary operator
  std::vector<std::unique_ptr<Expr>> args;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  bool negate = false; // is not
  int line = 0;
};

struct Node {
  enum Kind { Seq, Text, Out, If, For, Set, SetBlock, Break, Continue };
  Kind kind = Seq;
  std::string text;
  std::vector<std::unique_ptr<Node>> children;       // Seq; If/For bodies (the last: else)
  std::vector<std::unique_ptr<Expr>> exprs;          // Out, If conditions, For iterable and filter, Set value
  std::vector<std::string> names;                    // For targets; Set: name or namespace and attribute
  bool hasElse = false, hasFilter = false;
  int line = 0;
};

namespace detail {

using ExprP = std::unique_ptr<Expr>;
using NodeP = std::unique_ptr<Node>;

struct Failure : std::runtime_error {
  explicit Failure(const std::string &m) : std::runtime_error(m) {}
};

[[noreturn]] inline void failAt(int line, const std::string &m) {
  throw Failure("line " + std::to_string(line) + ": " + m);
}

// Bounds on what a template may do with one render: its output, the
// expressions and loop iterations it evaluates, how deeply its values nest,
// and the work it does on values (a template is a program from the model's
// files; the messages come from requests).
constexpr size_t kMaxOutput = 64u << 20; // bytes of output, and of any one string
constexpr size_t kMaxItems = 1u << 20;   // items of any one list
constexpr size_t kMaxSteps = 4'000'000;
constexpr int kMaxDepth = 200;
/// Bytes of strings, lists and dicts a render makes, copies or scans, all
/// told: what bounds its memory and its time whatever it loops over.
constexpr size_t kMaxWork = 256u << 20;

/// While a Meter lives, work this thread does on values is counted, and
/// `charge` throws a Failure once kMaxWork is passed. Values made outside a
/// render (a request's messages) are not counted.
class Meter {
public:
  Meter();
  ~Meter();
  Meter(const Meter &) = delete;
  Meter &operator=(const Meter &) = delete;
};
void charge(size_t bytes);

/// out += s, failing once out would pass kMaxOutput.
void append(std::string &out, const std::string &s);
void append(std::string &out, const char *s);
void append(std::string &out, char c);

inline bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
/// Python's str.lstrip / rstrip (whitespace, or the characters of `chars`).
std::string lstrip(const std::string &s, const std::string &chars = "");
std::string rstrip(const std::string &s, const std::string &chars = "");

// Jinja.cpp: the parse, and the filters and tests the parser accepts.
NodeP parse(const std::string &source);
const std::vector<std::string> &filterNames();
const std::vector<std::string> &testNames();

// JinjaValue.cpp: values as Python sees them.
const char *kindName(Value::Kind k);
bool truthy(const Value &v);
Value tupleOf(List l);
bool isNumber(const Value &v);
double num(const Value &v);
std::string pyFloat(double d);
/// str(v) and repr(v), bounded by kMaxOutput (a list holding itself many
/// times over prints no more than that).
std::string pyStr(const Value &v);
std::string pyRepr(const Value &v);
/// json.dumps(ensure_ascii=False, indent, separators (item, key), sort_keys),
/// bounded by kMaxOutput. A namespace is refused, as Python's json does.
void toJson(const Value &v, std::string &out, int indent, const std::string &item, const std::string &key,
            bool sortKeys, int level);
/// Python's ==. Namespaces are equal only to themselves.
bool equal(const Value &a, const Value &b);
/// The code points of UTF-8 text, as Python iterates a str: at most
/// kMaxItems of them (more fails), charged as the strings they become.
std::vector<std::string> chars(const std::string &s);
/// How many code points, and the i-th ("" past the end), without making
/// the list.
size_t codePoints(const std::string &s);
std::string codePointAt(const std::string &s, size_t i);
/// Where each code point of s starts, then s.size().
std::vector<size_t> codePointStarts(const std::string &s);

// JinjaRender.cpp: `root` rendered with `context`'s variables into `out`.
void render(const Node &root, const Dict &context, std::string &out);

} // namespace detail
} // namespace kiln::jinja

#endif
