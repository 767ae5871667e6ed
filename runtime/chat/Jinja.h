//===- Jinja.h - the Jinja subset Hugging Face chat templates use -*- C++ -*-===//
//
// A model's chat template (tokenizer_config.json's `chat_template`, or
// chat_template.jinja) is a Jinja2 program. This renders the part of Jinja
// that Hugging Face templates are written in, the way transformers'
// apply_chat_template sets Jinja up: `trim_blocks` and `lstrip_blocks` on,
// the loop controls (`break`, `continue`), `raise_exception(msg)`,
// `strftime_now(fmt)`, and a `tojson` that is Python's json.dumps with
// ensure_ascii off (not Jinja's HTML-escaping one).
//
// The subset: text, `{{ }}`, `{# #}` and whitespace control (`-`, `+`);
// `if`/`elif`/`else`, `for` (with `else`, an `if` filter, unpacking, the
// `loop` variable), `set` (names, `ns.attr`, and `{% set x %}...{% endset
// %}`), `generation` blocks; expressions with literals, lists, dicts,
// attribute and item access, slices, `~`, arithmetic, comparisons, `in`,
// `and`/`or`/`not`, conditional expressions, tests (`is defined`, ...),
// filters, `namespace(...)`, `range(...)`, and the str, dict and list
// methods templates call. Anything else -- macros, `include`, `import`, an
// unknown filter or method -- is refused with an error naming it, at
// parse time where the parser sees it.
//
// Checked against Python's jinja2 (test/chat/jinja_test.py).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CHAT_JINJA_H
#define KILN_RUNTIME_CHAT_JINJA_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace kiln::format {
class JsonValue;
}

namespace kiln::jinja {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>; // in insertion order

/// A template value: Python's None, bool, int, float, str, list and dict,
/// Jinja's undefined, and namespace objects (dicts whose attributes `set`
/// may assign). Strings, lists and dicts are shared, not copied, when a
/// value is copied: a template passing a long message around costs nothing.
struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict };
  Kind kind = Kind::Undefined;
  bool boolean = false;
  bool ns = false;    // a namespace()
  bool tuple = false; // a list Python would print as a tuple: (a, b)
  /// How deeply lists and dicts nest inside: 0 for a scalar, 1 + the
  /// deepest item for a list or dict. A namespace counts 1 whatever it
  /// holds (values are read through it, never walked into).
  uint32_t depth = 0;
  int64_t integer = 0;
  double number = 0;
  std::shared_ptr<const std::string> text; // String
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;

  /// A String's text ("" for any other kind).
  const std::string &str() const;

  static Value none() { return of(Kind::None); }
  static Value of(bool b) {
    Value v = of(Kind::Bool);
    v.boolean = b;
    return v;
  }
  static Value of(int64_t i) {
    Value v = of(Kind::Int);
    v.integer = i;
    return v;
  }
  static Value of(double d) {
    Value v = of(Kind::Float);
    v.number = d;
    return v;
  }
  static Value of(std::string s);
  static Value of(const char *s) { return of(std::string(s)); }
  static Value of(List l);
  static Value of(Dict d);
  static Value of(Kind k) {
    Value v;
    v.kind = k;
    return v;
  }
  /// A JSON value as the template sees it (objects are dicts, numbers
  /// without a fraction or exponent ints; a key given twice keeps its
  /// first place and its last value, as Python's json does).
  static Value fromJson(const format::JsonValue &j);

  bool defined() const { return kind != Kind::Undefined; }
  /// The dict entry `key`, or null.
  const Value *get(const std::string &key) const;
  /// Sets (or adds) a dict entry.
  void set(const std::string &key, Value v);
};

/// `v` as Python's json.dumps writes it (", " and ": " separators, ensure_ascii
/// off): what a template's `tojson` gives. Fails on an undefined value.
Status toJson(const Value &v, std::string &out);

struct Node;

/// A parsed template; render it as often as needed (it is not changed by
/// rendering, so one may be shared by threads).
class Template {
public:
  Template();
  ~Template();
  Template(Template &&) noexcept;
  Template &operator=(Template &&) noexcept;

  /// Parses `source`; errors name the line.
  static Status parse(const std::string &source, Template &out);
  /// Renders with `context`'s entries as the template's variables.
  /// `raise_exception` and every error in evaluation end it with an error.
  Status render(const Dict &context, std::string &out) const;
  bool empty() const { return root_ == nullptr; }

private:
  std::unique_ptr<Node> root_;
};

} // namespace kiln::jinja

#endif
