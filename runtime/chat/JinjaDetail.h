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

// Bounds on what a template may do with one render: its output, and the
// expressions and loop iterations it evaluates (a template is a program
// from the model's files; the messages come from requests).
constexpr size_t kMaxOutput = 64u << 20; // bytes of output, and of any one string
constexpr size_t kMaxItems = 1u << 20;   // items of any one list
constexpr size_t kMaxSteps = 4'000'000;
constexpr int kMaxDepth = 200;

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
std::string pyStr(const Value &v);
std::string pyRepr(const Value &v);
/// json.dumps(ensure_ascii=False, indent, separators (item, key), sort_keys).
void toJson(const Value &v, std::string &out, int indent, const std::string &item, const std::string &key,
            bool sortKeys, int level);
bool equal(const Value &a, const Value &b);
/// The code points of UTF-8 text, as Python iterates a str.
std::vector<std::string> chars(const std::string &s);

// JinjaRender.cpp: `root` rendered with `context`'s variables into `out`.
void render(const Node &root, const Dict &context, std::string &out);

} // namespace detail
} // namespace kiln::jinja

#endif
