//===- JinjaRender.cpp - a parsed template walked with its variables ------===//
//
// Jinja's scoping (a `for` body is a scope of its own; `if` is not), its
// filters, tests and the str, dict and list methods templates call, within
// JinjaDetail.h's bounds.
//
//===----------------------------------------------------------------------===//
#include "runtime/chat/JinjaDetail.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>

namespace kiln::jinja::detail {

namespace {

// Case mapping over code points: ASCII, Latin-1, Latin Extended-A, Greek
// and Cyrillic (what chat templates meet; other scripts stay as they are).
uint32_t decode(const std::string &c) {
  const unsigned char *b = reinterpret_cast<const unsigned char *>(c.data());
  switch (c.size()) {
  case 2: return (b[0] & 0x1Fu) << 6 | (b[1] & 0x3Fu);
  case 3: return (b[0] & 0x0Fu) << 12 | (b[1] & 0x3Fu) << 6 | (b[2] & 0x3Fu);
  case 4: return (b[0] & 0x07u) << 18 | (b[1] & 0x3Fu) << 12 | (b[2] & 0x3Fu) << 6 | (b[3] & 0x3Fu);
  default: return b[0];
  }
}
std::string encode(uint32_t c) {
  std::string o;
  if (c < 0x80) {
    o += static_cast<char>(c);
  } else if (c < 0x800) {
    o += static_cast<char>(0xC0 | c >> 6), o += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    o += static_cast<char>(0xE0 | c >> 12), o += static_cast<char>(0x80 | (c >> 6 & 0x3F));
    o += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    o += static_cast<char>(0xF0 | c >> 18), o += static_cast<char>(0x80 | (c >> 12 & 0x3F));
    o += static_cast<char>(0x80 | (c >> 6 & 0x3F)), o += static_cast<char>(0x80 | (c & 0x3F));
  }
  return o;
}
// The other case of c (up: its upper case), or c.
uint32_t otherCase(uint32_t c, bool up) {
  if (c < 0x80) {
    if (up && c >= 'a' && c <= 'z')
      return c - 32;
    if (!up && c >= 'A' && c <= 'Z')
      return c + 32;
    return c;
  }
  if (up) {
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7))
      return c - 32;
    if (c == 0xFF)
      return 0x178;
    if ((c >= 0x101 && c <= 0x137 && c % 2) || (c >= 0x14B && c <= 0x177 && c % 2))
      return c - 1;
    if ((c >= 0x13A && c <= 0x148 && c % 2 == 0) || (c >= 0x17A && c <= 0x17E && c % 2 == 0))
      return c - 1;
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2)
      return c - 32;
    if (c == 0x3C2)
      return 0x3A3;
    if (c >= 0x430 && c <= 0x44F)
      return c - 32;
    if (c >= 0x450 && c <= 0x45F)
      return c - 80;
  } else {
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
      return c + 32;
    if (c == 0x178)
      return 0xFF;
    if ((c >= 0x100 && c <= 0x136 && c % 2 == 0) || (c >= 0x14A && c <= 0x176 && c % 2 == 0))
      return c + 1;
    if ((c >= 0x139 && c <= 0x147 && c % 2) || (c >= 0x179 && c <= 0x17D && c % 2))
      return c + 1;
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
      return c + 32;
    if (c >= 0x410 && c <= 0x42F)
      return c + 32;
    if (c >= 0x400 && c <= 0x40F)
      return c + 80;
  }
  return c;
}
bool isCased(uint32_t c) { return otherCase(c, true) != c || otherCase(c, false) != c; }
// Each code point i up (dir(i) > 0), down (< 0) or as it is.
template <class Dir>
std::string mapCase(const std::string &s, Dir dir) {
  std::string out;
  std::vector<size_t> at = codePointStarts(s);
  out.reserve(s.size());
  for (size_t i = 0; i + 1 < at.size(); ++i) {
    std::string c = s.substr(at[i], at[i + 1] - at[i]);
    int d = dir(i);
    append(out, d == 0 ? c : encode(otherCase(decode(c), d > 0)));
  }
  return out;
}

// s.find(sub, from), charged as its scan: long needles by Boyer-Moore (a
// scan linear in s whatever the text), short ones by std::string::find at
// up to sub.size() comparisons a byte, charged so.
size_t findIn(const std::string &s, const std::string &sub, size_t from = 0) {
  if (from > s.size())
    return std::string::npos;
  if (sub.size() > 32) {
    charge(2 * (s.size() - from) + 8 * sub.size());
    auto it = std::search(s.begin() + static_cast<std::ptrdiff_t>(from), s.end(),
                          std::boyer_moore_searcher(sub.begin(), sub.end()));
    return it == s.end() ? std::string::npos : static_cast<size_t>(it - s.begin());
  }
  charge((s.size() - from) * ((sub.size() + 7) / 8 + 1));
  return s.find(sub, from);
}

// ---- rendering ----------------------------------------------------------------

class Renderer {
public:
  Renderer(const Dict &context, std::string &out) : out_(out) {
    scopes_.emplace_back();
    for (const auto &kv : context)
      scopes_.back()[kv.first] = kv.second;
  }
  // A namespace may come to hold itself (`{% set ns.me = ns %}`), or a chain
  // of namespaces as long as the template looped: each is emptied here, one
  // by one, so neither leaks nor unwinds recursively.
  ~Renderer() {
    scopes_.clear();
    for (const std::shared_ptr<Dict> &d : namespaces_) {
      Dict held;
      held.swap(*d);
    }
  }

  enum class Flow { Normal, Break, Continue };

  Flow run(const Node &n) {
    switch (n.kind) {
    case Node::Seq:
      for (const NodeP &c : n.children) {
        Flow f = run(*c);
        if (f != Flow::Normal)
          return f;
      }
      return Flow::Normal;
    case Node::Text: emit(n.text); return Flow::Normal;
    case Node::Out: emit(pyStr(eval(*n.exprs[0]))); return Flow::Normal;
    case Node::If:
      for (size_t i = 0; i < n.exprs.size(); ++i)
        if (truthy(eval(*n.exprs[i])))
          return run(*n.children[i]);
      if (n.hasElse)
        return run(*n.children.back());
      return Flow::Normal;
    case Node::For: return forLoop(n);
    case Node::Set: {
      Value v = eval(*n.exprs[0]);
      assign(n, std::move(v));
      return Flow::Normal;
    }
    case Node::SetBlock: {
      std::string saved;
      std::swap(saved, out_);
      run(*n.children[0]);
      std::swap(saved, out_);
      assign(n, Value::of(std::move(saved)));
      return Flow::Normal;
    }
    case Node::Break: return Flow::Break;
    case Node::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

private:
  void emit(const std::string &s) {
    if (out_.size() + s.size() > kMaxOutput)
      throw Failure("the rendered text is over " + std::to_string(kMaxOutput >> 20) + " MB");
    charge(s.size());
    out_ += s;
  }
  void step(int line) {
    if (++steps_ > kMaxSteps)
      failAt(line, "the template ran too long");
  }

  void assign(const Node &n, Value v) {
    if (n.names.size() == 2) {
      Value ns = lookup(n.names[0]);
      if (ns.kind != Value::Kind::Dict || !ns.ns)
        failAt(n.line, "'" + n.names[0] + "' is not a namespace: only namespace attributes can be set");
      ns.set(n.names[1], std::move(v));
      return;
    }
    scopes_.back()[n.names[0]] = std::move(v);
  }

  Value lookup(const std::string &name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end())
        return f->second;
    }
    return Value();
  }

  List iterate(const Value &v, int line) {
    switch (v.kind) {
    case Value::Kind::List: charge(v.list->size() * sizeof(Value)); return *v.list;
    case Value::Kind::Dict: {
      List keys;
      for (const auto &kv : *v.dict)
        keys.push_back(Value::of(kv.first));
      return keys;
    }
    case Value::Kind::String: {
      List cs;
      for (std::string &c : chars(v.str()))
        cs.push_back(Value::of(std::move(c)));
      return cs;
    }
    case Value::Kind::Undefined: return {}; // Jinja iterates an undefined as empty
    default: failAt(line, std::string("'") + kindName(v.kind) + "' is not iterable");
    }
  }

  void bindTargets(const Node &n, const Value &item, std::map<std::string, Value> &scope) {
    if (n.names.size() == 1) {
      scope[n.names[0]] = item;
      return;
    }
    if (item.kind != Value::Kind::List || item.list->size() != n.names.size())
      failAt(n.line, "cannot unpack " + pyRepr(item) + " into " + std::to_string(n.names.size()) + " names");
    for (size_t i = 0; i < n.names.size(); ++i)
      scope[n.names[i]] = (*item.list)[i];
  }

  Flow forLoop(const Node &n) {
    List items = iterate(eval(*n.exprs[0]), n.line);
    if (n.hasFilter) {
      List kept;
      for (const Value &it : items) {
        scopes_.emplace_back();
        bindTargets(n, it, scopes_.back());
        bool keep = truthy(eval(*n.exprs[1]));
        scopes_.pop_back();
        if (keep)
          kept.push_back(it);
      }
      items = std::move(kept);
    }
    const size_t len = items.size();
    for (size_t i = 0; i < len; ++i) {
      step(n.line);
      scopes_.emplace_back();
      auto &scope = scopes_.back();
      bindTargets(n, items[i], scope);
      Dict loop = {{"index", Value::of(static_cast<int64_t>(i + 1))},
                   {"index0", Value::of(static_cast<int64_t>(i))},
                   {"revindex", Value::of(static_cast<int64_t>(len - i))},
                   {"revindex0", Value::of(static_cast<int64_t>(len - i - 1))},
                   {"first", Value::of(i == 0)},
                   {"last", Value::of(i + 1 == len)},
                   {"length", Value::of(static_cast<int64_t>(len))},
                   {"previtem", i > 0 ? items[i - 1] : Value()},
                   {"nextitem", i + 1 < len ? items[i + 1] : Value()}};
      scope["loop"] = Value::of(std::move(loop));
      Flow f = run(*n.children[0]);
      scopes_.pop_back();
      if (f == Flow::Break)
        break;
    }
    if (len == 0 && n.hasElse)
      return run(*n.children.back());
    return Flow::Normal;
  }

  // Named and positional arguments of a call, by a signature.
  struct Args {
    std::vector<Value> v;
  };
  Args bind(const Expr &e, size_t skip, const std::vector<std::string> &names, std::vector<Value> defaults) {
    Args a;
    a.v = std::move(defaults);
    a.v.resize(names.size());
    if (e.args.size() - skip > names.size())
      failAt(e.line, "'" + e.name + "' takes at most " + std::to_string(names.size()) + " arguments");
    for (size_t i = skip; i < e.args.size(); ++i)
      a.v[i - skip] = eval(*e.args[i]);
    for (const auto &kw : e.kwargs) {
      auto it = std::find(names.begin(), names.end(), kw.first);
      if (it == names.end())
        failAt(e.line, "'" + e.name + "' has no argument '" + kw.first + "'");
      a.v[static_cast<size_t>(it - names.begin())] = eval(*kw.second);
    }
    return a;
  }

  static int64_t asInt(const Value &v, int line, const char *what) {
    if (v.kind == Value::Kind::Int)
      return v.integer;
    if (v.kind == Value::Kind::Bool)
      return v.boolean;
    failAt(line, std::string(what) + " must be an integer, not " + kindName(v.kind));
  }
  static const std::string &asStr(const Value &v, int line, const char *what) {
    if (v.kind != Value::Kind::String)
      failAt(line, std::string(what) + " must be a string, not " + kindName(v.kind));
    return v.str();
  }

  Value attr(const Value &obj, const std::string &name, int line) {
    if (obj.kind == Value::Kind::Dict) {
      const Value *v = obj.get(name);
      return v ? *v : Value();
    }
    if (obj.kind == Value::Kind::Undefined)
      failAt(line, "'" + name + "' of an undefined value");
    return Value(); // other attributes: undefined (methods are called, not read)
  }

  Value item(const Value &obj, const Value &key, int line) {
    switch (obj.kind) {
    case Value::Kind::Dict:
      if (key.kind == Value::Kind::String) {
        const Value *v = obj.get(key.str());
        return v ? *v : Value();
      }
      return Value();
    case Value::Kind::List:
    case Value::Kind::String: {
      if (key.kind != Value::Kind::Int)
        return Value();
      if (obj.kind == Value::Kind::String && key.integer >= 0) // walks only to the item
        return key.integer < static_cast<int64_t>(obj.str().size())
                   ? Value::of(codePointAt(obj.str(), static_cast<size_t>(key.integer)))
                   : Value();
      int64_t n = obj.kind == Value::Kind::List ? static_cast<int64_t>(obj.list->size())
                                                : static_cast<int64_t>(codePoints(obj.str()));
      int64_t i = key.integer < 0 ? key.integer + n : key.integer;
      if (i < 0 || i >= n)
        return Value();
      if (obj.kind == Value::Kind::List)
        return (*obj.list)[static_cast<size_t>(i)];
      return Value::of(codePointAt(obj.str(), static_cast<size_t>(i)));
    }
    case Value::Kind::Undefined: failAt(line, "an item of an undefined value");
    default: return Value();
    }
  }

  Value slice(const Value &obj, const Value &a, const Value &b, const Value &c, int line) {
    // A str is sliced by code points: where each starts (its bytes are not
    // copied one by one).
    bool str = obj.kind == Value::Kind::String;
    std::vector<size_t> at;
    if (str)
      at = codePointStarts(obj.str());
    else if (obj.kind != Value::Kind::List) {
      failAt(line, std::string("cannot slice a ") + kindName(obj.kind));
    }
    const int64_t n = str ? static_cast<int64_t>(at.size()) - 1 : static_cast<int64_t>(obj.list->size());
    int64_t st = c.defined() && c.kind != Value::Kind::None ? asInt(c, line, "a slice step") : 1;
    if (st == 0)
      failAt(line, "a slice step of zero");
    auto clampIdx = [&](const Value &v, int64_t dflt) {
      if (!v.defined() || v.kind == Value::Kind::None)
        return dflt;
      int64_t i = asInt(v, line, "a slice index");
      if (i < 0)
        i += n;
      return st > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
    };
    int64_t from = clampIdx(a, st > 0 ? 0 : n - 1), to = clampIdx(b, st > 0 ? n : -1);
    if (!str) {
      List out;
      for (int64_t i = from; st > 0 ? i < to : i > to; i += st)
        out.push_back((*obj.list)[static_cast<size_t>(i)]);
      return Value::of(std::move(out));
    }
    const std::string &t = obj.str();
    if (st == 1)
      return Value::of(from < to ? t.substr(at[static_cast<size_t>(from)], at[static_cast<size_t>(to)] - at[static_cast<size_t>(from)])
                                 : std::string());
    std::string s;
    for (int64_t i = from; st > 0 ? i < to : i > to; i += st)
      s.append(t, at[static_cast<size_t>(i)], at[static_cast<size_t>(i) + 1] - at[static_cast<size_t>(i)]);
    return Value::of(std::move(s));
  }

  Value binary(const std::string &op, const Value &l, const Value &r, int line) {
    using K = Value::Kind;
    if (op == "~") {
      std::string a = pyStr(l), b = pyStr(r);
      if (a.size() + b.size() > kMaxOutput)
        failAt(line, "a string over the template's size limit");
      return Value::of(a + b);
    }
    if (op == "==")
      return Value::of(equal(l, r));
    if (op == "!=")
      return Value::of(!equal(l, r));
    if (op == "in" || op == "not in") {
      bool in = false;
      if (r.kind == K::String) {
        in = findIn(r.str(), asStr(l, line, "the left of 'in' a string")) != std::string::npos;
      } else if (r.kind == K::List) {
        in = std::any_of(r.list->begin(), r.list->end(), [&](const Value &x) { return equal(l, x); });
      } else if (r.kind == K::Dict) {
        in = l.kind == K::String && r.get(l.str()) != nullptr;
      } else if (r.kind == K::Undefined) {
        failAt(line, "'in' an undefined value");
      } else {
        failAt(line, std::string("'in' a ") + kindName(r.kind));
      }
      return Value::of(op == "in" ? in : !in);
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int c;
      if (isNumber(l) && isNumber(r))
        c = num(l) < num(r) ? -1 : num(l) > num(r) ? 1 : 0;
      else if (l.kind == K::String && r.kind == K::String)
        charge(std::min(l.str().size(), r.str().size())), c = l.str().compare(r.str());
      else
        failAt(line, std::string("cannot compare ") + kindName(l.kind) + " and " + kindName(r.kind));
      return Value::of(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
    }
    if (op == "+") {
      if ((l.kind == K::String && r.kind == K::String && l.str().size() + r.str().size() > kMaxOutput) ||
          (l.kind == K::List && r.kind == K::List && l.list->size() + r.list->size() > kMaxItems))
        failAt(line, "a value over the template's size limit");
      if (l.kind == K::String && r.kind == K::String)
        return Value::of(l.str() + r.str());
      if (l.kind == K::List && r.kind == K::List) {
        List out = *l.list;
        out.insert(out.end(), r.list->begin(), r.list->end());
        return Value::of(std::move(out));
      }
    }
    if (op == "*" && (l.kind == K::String || r.kind == K::String) && (l.kind == K::Int || r.kind == K::Int)) {
      const Value &s = l.kind == K::String ? l : r;
      int64_t n = (l.kind == K::Int ? l : r).integer;
      if (n > 0 && s.str().size() * static_cast<size_t>(n) > kMaxOutput)
        failAt(line, "a repeated string over the output limit");
      std::string out;
      if (n > 0 && !s.str().empty()) { // by doubling
        const size_t total = s.str().size() * static_cast<size_t>(n);
        out.reserve(total);
        out = s.str();
        while (out.size() < total)
          out.append(out, 0, std::min(out.size(), total - out.size()));
      }
      return Value::of(std::move(out));
    }
    if (!isNumber(l) || !isNumber(r))
      failAt(line, std::string("unsupported operand types for ") + op + ": " + kindName(l.kind) + " and " +
                       kindName(r.kind));
    bool ints = l.kind != K::Float && r.kind != K::Float;
    if (ints && op != "/" && op != "**") {
      int64_t a = static_cast<int64_t>(num(l)), b = static_cast<int64_t>(num(r));
      if ((op == "//" || op == "%") && b == 0)
        failAt(line, "division by zero");
      if (op == "+")
        return Value::of(a + b);
      if (op == "-")
        return Value::of(a - b);
      if (op == "*")
        return Value::of(a * b);
      int64_t q = a / b, m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) // Python floors
        --q, m += b;
      return Value::of(op == "//" ? q : m);
    }
    double a = num(l), b = num(r);
    if ((op == "/" || op == "//" || op == "%") && b == 0)
      failAt(line, "division by zero");
    if (op == "+")
      return Value::of(a + b);
    if (op == "-")
      return Value::of(a - b);
    if (op == "*")
      return Value::of(a * b);
    if (op == "/")
      return Value::of(a / b);
    if (op == "//")
      return Value::of(std::floor(a / b));
    if (op == "%")
      return Value::of(a - b * std::floor(a / b));
    if (op == "**") {
      if (ints && b >= 0) {
        int64_t r2 = 1;
        for (int64_t i = 0; i < static_cast<int64_t>(b) && i < 64; ++i)
          r2 *= static_cast<int64_t>(a);
        return Value::of(r2);
      }
      return Value::of(std::pow(a, b));
    }
    failAt(line, "unsupported operator " + op);
  }

  // Every value an expression makes is bounded (a template doubling a
  // string or a list in a loop stops with an error, not out of memory).
  Value eval(const Expr &e) {
    Value v = evalUnbounded(e);
    if ((v.kind == Value::Kind::String && v.str().size() > kMaxOutput) ||
        (v.kind == Value::Kind::List && v.list->size() > kMaxItems))
      failAt(e.line, "a value over the template's size limit");
    if (v.depth > static_cast<uint32_t>(kMaxDepth))
      failAt(e.line, "a value nested over " + std::to_string(kMaxDepth) + " deep");
    return v;
  }

  Value evalUnbounded(const Expr &e) {
    step(e.line);
    switch (e.op) {
    case Expr::Lit: return e.lit;
    case Expr::Name: return lookup(e.name);
    case Expr::ListE: {
      List l;
      for (const ExprP &a : e.args)
        l.push_back(eval(*a));
      return e.negate ? tupleOf(std::move(l)) : Value::of(std::move(l));
    }
    case Expr::DictE: {
      Value d = Value::of(Dict{});
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i]);
        d.set(asStr(k, e.line, "a dict key"), eval(*e.args[i + 1]));
      }
      return d;
    }
    case Expr::Attr: return attr(eval(*e.args[0]), e.name, e.line);
    case Expr::Index: return item(eval(*e.args[0]), eval(*e.args[1]), e.line);
    case Expr::Slice: {
      auto opt = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value(); };
      return slice(eval(*e.args[0]), opt(1), opt(2), opt(3), e.line);
    }
    case Expr::Not: return Value::of(!truthy(eval(*e.args[0])));
    case Expr::Neg: {
      Value v = eval(*e.args[0]);
      if (v.kind == Value::Kind::Int)
        return Value::of(-v.integer);
      if (v.kind == Value::Kind::Float)
        return Value::of(-v.number);
      failAt(e.line, std::string("cannot negate a ") + kindName(v.kind));
    }
    case Expr::And: {
      Value l = eval(*e.args[0]);
      return truthy(l) ? eval(*e.args[1]) : l;
    }
    case Expr::Or: {
      Value l = eval(*e.args[0]);
      return truthy(l) ? l : eval(*e.args[1]);
    }
    case Expr::Cond: return truthy(eval(*e.args[0])) ? eval(*e.args[1]) : eval(*e.args[2]);
    case Expr::Bin: return binary(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
    case Expr::Call: return call(e);
    case Expr::Method: return method(e);
    case Expr::Filter: return filter(e);
    case Expr::Test: {
      bool r = test(e);
      return Value::of(e.negate ? !r : r);
    }
    }
    return Value();
  }

  Value call(const Expr &e) {
    if (e.name == "raise_exception") {
      Args a = bind(e, 0, {"message"}, {});
      throw Failure("the template raised an exception: " + pyStr(a.v[0]));
    }
    if (e.name == "namespace") {
      Value ns = Value::of(Dict{});
      ns.ns = true;
      namespaces_.push_back(ns.dict);
      if (!e.args.empty())
        failAt(e.line, "namespace() takes keyword arguments");
      for (const auto &kw : e.kwargs)
        ns.set(kw.first, eval(*kw.second));
      return ns;
    }
    if (e.name == "range") {
      std::vector<int64_t> v;
      for (const ExprP &a : e.args)
        v.push_back(asInt(eval(*a), e.line, "range()'s arguments"));
      if (v.empty() || v.size() > 3 || !e.kwargs.empty())
        failAt(e.line, "range() takes one to three integers");
      int64_t from = v.size() > 1 ? v[0] : 0, to = v.size() > 1 ? v[1] : v[0], st = v.size() > 2 ? v[2] : 1;
      if (st == 0)
        failAt(e.line, "range() with a step of zero");
      List out;
      for (int64_t i = from; st > 0 ? i < to : i > to; i += st) {
        step(e.line);
        out.push_back(Value::of(i));
      }
      return Value::of(std::move(out));
    }
    if (e.name == "strftime_now") {
      Args a = bind(e, 0, {"format"}, {});
      std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      size_t n = std::strftime(buf, sizeof buf, asStr(a.v[0], e.line, "strftime_now's format").c_str(), &tm);
      return Value::of(std::string(buf, n));
    }
    if (e.name == "dict") {
      Value d = Value::of(Dict{});
      if (!e.args.empty())
        failAt(e.line, "dict() takes keyword arguments");
      for (const auto &kw : e.kwargs)
        d.set(kw.first, eval(*kw.second));
      return d;
    }
    Value f = lookup(e.name);
    failAt(e.line, f.defined() ? "'" + e.name + "' is not callable" : "unknown function '" + e.name + "'");
  }

  static std::string upper(const std::string &s) { return mapCase(s, [](size_t) { return 1; }); }
  static std::string lower(const std::string &s) { return mapCase(s, [](size_t) { return -1; }); }
  // Python's str.title(): a cased letter after an uncased character goes up,
  // the rest down.
  static std::string title(const std::string &s) {
    std::vector<size_t> at = codePointStarts(s);
    std::vector<int> dir(at.size() - 1);
    bool prevCased = false;
    for (size_t i = 0; i + 1 < at.size(); ++i) {
      bool cased = isCased(decode(s.substr(at[i], at[i + 1] - at[i])));
      dir[i] = cased ? (prevCased ? -1 : 1) : 0;
      prevCased = cased;
    }
    return mapCase(s, [&](size_t i) { return dir[i]; });
  }
  static std::string capitalize(const std::string &s) {
    return mapCase(s, [](size_t i) { return i == 0 ? 1 : -1; });
  }
  static std::string replace(const std::string &s, const std::string &a, const std::string &b, int64_t count) {
    charge(2 * s.size());
    size_t hits = 0;
    if (a.empty())
      hits = codePoints(s) + 1;
    else
      for (size_t p = findIn(s, a); p != std::string::npos; p = findIn(s, a, p + a.size()))
        ++hits;
    if (count >= 0)
      hits = std::min(hits, static_cast<size_t>(count));
    if (b.size() > a.size() && s.size() + hits * (b.size() - a.size()) > kMaxOutput)
      throw Failure("replace: a string over the template's size limit");
    if (a.empty()) { // Python inserts b between characters
      std::string out;
      int64_t n = 0;
      std::vector<size_t> at = codePointStarts(s);
      for (size_t i = 0; i < at.size(); ++i) {
        if (count < 0 || n < count)
          out += b, ++n;
        if (i + 1 < at.size())
          out.append(s, at[i], at[i + 1] - at[i]);
      }
      return out;
    }
    std::string out;
    size_t p = 0;
    int64_t n = 0;
    for (;;) {
      size_t f = findIn(s, a, p);
      if (f == std::string::npos || (count >= 0 && n >= count))
        break;
      out += s.substr(p, f - p) + b;
      p = f + a.size();
      ++n;
    }
    return out + s.substr(p);
  }
  static List split(const std::string &s, const Value &sep, int64_t maxsplit, int line) {
    charge(s.size());
    List out;
    if (!sep.defined() || sep.kind == Value::Kind::None) {
      size_t i = 0;
      int64_t n = 0;
      while (i < s.size()) {
        while (i < s.size() && isSpace(s[i]))
          ++i;
        if (i >= s.size())
          break;
        if (maxsplit >= 0 && n >= maxsplit) {
          out.push_back(Value::of(rstrip(s.substr(i))));
          return out;
        }
        size_t j = i;
        while (j < s.size() && !isSpace(s[j]))
          ++j;
        if (out.size() == kMaxItems)
          failAt(line, "split: over " + std::to_string(kMaxItems) + " pieces");
        out.push_back(Value::of(s.substr(i, j - i)));
        ++n;
        i = j;
      }
      return out;
    }
    const std::string &d = asStr(sep, line, "split's separator");
    if (d.empty())
      failAt(line, "split() with an empty separator");
    size_t p = 0;
    int64_t n = 0;
    for (;;) {
      size_t f = findIn(s, d, p);
      if (f == std::string::npos || (maxsplit >= 0 && n >= maxsplit))
        break;
      if (out.size() == kMaxItems)
        failAt(line, "split: over " + std::to_string(kMaxItems) + " pieces");
      out.push_back(Value::of(s.substr(p, f - p)));
      p = f + d.size();
      ++n;
    }
    out.push_back(Value::of(s.substr(p)));
    return out;
  }

  Value method(const Expr &e) {
    Value obj = eval(*e.args[0]);
    const std::string &m = e.name;
    using K = Value::Kind;
    if (obj.kind == K::String) {
      const std::string &s = obj.str();
      if (m == "strip" || m == "lstrip" || m == "rstrip") {
        Args a = bind(e, 1, {"chars"}, {});
        std::string chars = a.v[0].kind == K::String ? a.v[0].str() : "";
        std::string r = m == "lstrip" ? lstrip(s, chars) : m == "rstrip" ? rstrip(s, chars) : lstrip(rstrip(s, chars), chars);
        return Value::of(r);
      }
      if (m == "upper")
        return Value::of(upper(s));
      if (m == "lower")
        return Value::of(lower(s));
      if (m == "title")
        return Value::of(title(s));
      if (m == "capitalize")
        return Value::of(capitalize(s));
      if (m == "startswith" || m == "endswith") {
        Args a = bind(e, 1, {"prefix"}, {});
        List opts = a.v[0].kind == K::List ? *a.v[0].list : List{a.v[0]};
        for (const Value &o : opts) {
          const std::string &p = asStr(o, e.line, (m + "'s argument").c_str());
          charge(p.size());
          if (p.size() <= s.size() && (m == "startswith" ? s.compare(0, p.size(), p) == 0
                                                          : s.compare(s.size() - p.size(), p.size(), p) == 0))
            return Value::of(true);
        }
        return Value::of(false);
      }
      if (m == "split") {
        Args a = bind(e, 1, {"sep", "maxsplit"}, {Value(), Value::of(int64_t(-1))});
        return Value::of(split(s, a.v[0], asInt(a.v[1], e.line, "maxsplit"), e.line));
      }
      if (m == "replace") {
        Args a = bind(e, 1, {"old", "new", "count"}, {Value(), Value(), Value::of(int64_t(-1))});
        return Value::of(replace(s, asStr(a.v[0], e.line, "replace's old"), asStr(a.v[1], e.line, "replace's new"),
                                 asInt(a.v[2], e.line, "replace's count")));
      }
      if (m == "find" || m == "count") {
        Args a = bind(e, 1, {"sub"}, {});
        const std::string &sub = asStr(a.v[0], e.line, (m + "'s argument").c_str());
        if (m == "find") {
          size_t f = findIn(s, sub);
          return Value::of(f == std::string::npos ? int64_t(-1) : static_cast<int64_t>(codePoints(s.substr(0, f))));
        }
        if (sub.empty())
          return Value::of(static_cast<int64_t>(codePoints(s) + 1));
        int64_t n = 0;
        for (size_t p = findIn(s, sub); p != std::string::npos; p = findIn(s, sub, p + sub.size()))
          ++n;
        return Value::of(n);
      }
      if (m == "join") {
        Args a = bind(e, 1, {"items"}, {});
        std::string out;
        List items = iterate(a.v[0], e.line);
        for (size_t i = 0; i < items.size(); ++i)
          append(out, (i ? s : "") + pyStr(items[i]));
        return Value::of(out);
      }
      if (m == "isdigit" || m == "isspace" || m == "isalpha" || m == "isalnum") {
        bind(e, 1, {}, {});
        if (s.empty())
          return Value::of(false);
        auto ok = [&](unsigned char c) {
          return m == "isdigit" ? std::isdigit(c) : m == "isspace" ? isSpace(static_cast<char>(c)) : m == "isalpha" ? std::isalpha(c) : std::isalnum(c);
        };
        return Value::of(std::all_of(s.begin(), s.end(), [&](char c) { return ok(static_cast<unsigned char>(c)) != 0; }));
      }
    } else if (obj.kind == K::Dict && !obj.ns) {
      if (m == "items" || m == "keys" || m == "values") {
        bind(e, 1, {}, {});
        List out;
        for (const auto &kv : *obj.dict)
          out.push_back(m == "keys" ? Value::of(kv.first)
                        : m == "values" ? kv.second
                                        : tupleOf(List{Value::of(kv.first), kv.second}));
        return Value::of(std::move(out));
      }
      if (m == "get") {
        Args a = bind(e, 1, {"key", "default"}, {Value(), Value::none()});
        const Value *v = a.v[0].kind == K::String ? obj.get(a.v[0].str()) : nullptr;
        return v ? *v : a.v[1];
      }
    } else if (obj.kind == K::List) {
      if (m == "index" || m == "count") {
        Args a = bind(e, 1, {"value"}, {});
        int64_t n = 0;
        for (size_t i = 0; i < obj.list->size(); ++i)
          if (equal((*obj.list)[i], a.v[0])) {
            if (m == "index")
              return Value::of(static_cast<int64_t>(i));
            ++n;
          }
        if (m == "index")
          failAt(e.line, pyRepr(a.v[0]) + " is not in the list");
        return Value::of(n);
      }
    } else if (obj.kind == K::Undefined) {
      failAt(e.line, "'" + m + "' of an undefined value");
    }
    failAt(e.line, std::string("unsupported method '") + m + "' of a " + kindName(obj.kind));
  }

  // The named attribute of each item (selectattr, map, join, sort ...).
  Value attrPath(const Value &v, const Value &attribute, int line) {
    if (attribute.kind == Value::Kind::Int)
      return item(v, attribute, line);
    const std::string &path = asStr(attribute, line, "an attribute");
    Value cur = v;
    size_t p = 0;
    for (;;) {
      size_t d = path.find('.', p);
      std::string part = path.substr(p, d == std::string::npos ? std::string::npos : d - p);
      if (cur.kind != Value::Kind::Dict)
        return Value();
      cur = attr(cur, part, line);
      if (d == std::string::npos)
        return cur;
      p = d + 1;
    }
  }

  bool applyTest(const std::string &name, const Value &v, const std::vector<Value> &args, int line) {
    using K = Value::Kind;
    auto arg = [&](size_t i) -> const Value & {
      if (i >= args.size())
        failAt(line, "the test '" + name + "' needs an argument");
      return args[i];
    };
    if (name == "defined")
      return v.defined();
    if (name == "undefined")
      return !v.defined();
    if (name == "none")
      return v.kind == K::None;
    if (name == "boolean")
      return v.kind == K::Bool;
    if (name == "true")
      return v.kind == K::Bool && v.boolean;
    if (name == "false")
      return v.kind == K::Bool && !v.boolean;
    if (name == "integer")
      return v.kind == K::Int;
    if (name == "float")
      return v.kind == K::Float;
    if (name == "number")
      return isNumber(v);
    if (name == "string")
      return v.kind == K::String;
    if (name == "mapping")
      return v.kind == K::Dict;
    if (name == "iterable")
      return v.kind == K::List || v.kind == K::Dict || v.kind == K::String;
    if (name == "sequence")
      return v.kind == K::List || v.kind == K::Dict || v.kind == K::String;
    if (name == "callable")
      return false;
    if (name == "lower")
      return v.kind == K::String && lower(v.str()) == v.str();
    if (name == "upper")
      return v.kind == K::String && upper(v.str()) == v.str();
    if (name == "odd" || name == "even") {
      int64_t i = asInt(v, line, "odd/even's value");
      return (((i % 2) + 2) % 2 == 1) == (name == "odd");
    }
    if (name == "divisibleby") {
      int64_t d = asInt(arg(0), line, "divisibleby's argument");
      return d != 0 && asInt(v, line, "divisibleby's value") % d == 0;
    }
    if (name == "eq" || name == "equalto" || name == "sameas")
      return equal(v, arg(0));
    if (name == "ne")
      return !equal(v, arg(0));
    if (name == "lt" || name == "gt" || name == "le" || name == "ge") {
      const char *op = name == "lt" ? "<" : name == "gt" ? ">" : name == "le" ? "<=" : ">=";
      return truthy(binary(op, v, arg(0), line));
    }
    if (name == "in")
      return truthy(binary("in", v, arg(0), line));
    failAt(line, "unsupported test '" + name + "'");
  }

  bool test(const Expr &e) {
    Value v = eval(*e.args[0]);
    std::vector<Value> args;
    for (size_t i = 1; i < e.args.size(); ++i)
      args.push_back(eval(*e.args[i]));
    return applyTest(e.name, v, args, e.line);
  }

  Value filter(const Expr &e) {
    using K = Value::Kind;
    const std::string &f = e.name;
    Value v = eval(*e.args[0]);
    if (f == "safe")
      return v;
    if (f == "trim") {
      Args a = bind(e, 1, {"chars"}, {});
      std::string chars = a.v[0].kind == K::String ? a.v[0].str() : "";
      return Value::of(lstrip(rstrip(pyStr(v), chars), chars));
    }
    if (f == "tojson") {
      Args a = bind(e, 1, {"ensure_ascii", "indent", "separators", "sort_keys"},
                    {Value::of(false), Value::none(), Value::none(), Value::of(false)});
      if (truthy(a.v[0]))
        failAt(e.line, "tojson with ensure_ascii");
      int indent = -1;
      if (a.v[1].kind == K::Int)
        indent = static_cast<int>(std::clamp<int64_t>(a.v[1].integer, 0, 64));
      else if (a.v[1].kind == K::String)
        failAt(e.line, "tojson's indent must be an integer");
      std::string item = indent >= 0 ? "," : ", ", key = ": ";
      if (a.v[2].kind == K::List && a.v[2].list->size() == 2) {
        item = asStr((*a.v[2].list)[0], e.line, "a separator");
        key = asStr((*a.v[2].list)[1], e.line, "a separator");
      }
      std::string out;
      toJson(v, out, indent, item, key, truthy(a.v[3]), 0);
      return Value::of(out);
    }
    if (f == "length" || f == "count") {
      switch (v.kind) {
      case K::String: return Value::of(static_cast<int64_t>(codePoints(v.str())));
      case K::List: return Value::of(static_cast<int64_t>(v.list->size()));
      case K::Dict: return Value::of(static_cast<int64_t>(v.dict->size()));
      case K::Undefined: return Value::of(int64_t(0));
      default: failAt(e.line, std::string("length of a ") + kindName(v.kind));
      }
    }
    if (f == "upper")
      return Value::of(upper(pyStr(v)));
    if (f == "lower")
      return Value::of(lower(pyStr(v)));
    if (f == "title") {
      // Jinja's own: each piece after a run of '-', whitespace or an opening
      // bracket starts upper, the rest lower.
      std::string t = pyStr(v);
      std::vector<size_t> at = codePointStarts(t);
      bool start = true;
      std::string out;
      for (size_t i = 0; i + 1 < at.size(); ++i) {
        std::string c = t.substr(at[i], at[i + 1] - at[i]);
        bool delim = c.size() == 1 && (c[0] == '-' || isSpace(c[0]) || std::strchr("({[<", c[0]));
        append(out, delim ? c : encode(otherCase(decode(c), start)));
        start = delim;
      }
      return Value::of(out);
    }
    if (f == "capitalize")
      return Value::of(capitalize(pyStr(v)));
    if (f == "string")
      return Value::of(pyStr(v));
    if (f == "first" || f == "last") {
      List items = iterate(v, e.line);
      if (items.empty())
        return Value();
      return f == "first" ? items.front() : items.back();
    }
    if (f == "default" || f == "d") {
      Args a = bind(e, 1, {"default_value", "boolean"}, {Value::of(""), Value::of(false)});
      return !v.defined() || (truthy(a.v[1]) && !truthy(v)) ? a.v[0] : v;
    }
    if (f == "list")
      return Value::of(iterate(v, e.line));
    if (f == "items") {
      if (v.kind == K::Undefined)
        return Value::of(List{});
      if (v.kind != K::Dict)
        failAt(e.line, "items of a non-mapping");
      List out;
      for (const auto &kv : *v.dict)
        out.push_back(tupleOf(List{Value::of(kv.first), kv.second}));
      return Value::of(std::move(out));
    }
    if (f == "int") {
      Args a = bind(e, 1, {"default"}, {Value::of(int64_t(0))});
      if (v.kind == K::Int || v.kind == K::Bool)
        return Value::of(static_cast<int64_t>(num(v)));
      if (v.kind == K::Float)
        return Value::of(static_cast<int64_t>(v.number));
      if (v.kind == K::String) {
        char *end = nullptr;
        std::string t = lstrip(rstrip(v.str()));
        long long i = std::strtoll(t.c_str(), &end, 10);
        if (!t.empty() && *end == 0)
          return Value::of(static_cast<int64_t>(i));
      }
      return a.v[0];
    }
    if (f == "float") {
      Args a = bind(e, 1, {"default"}, {Value::of(0.0)});
      if (isNumber(v))
        return Value::of(num(v));
      if (v.kind == K::String) {
        char *end = nullptr;
        std::string t = lstrip(rstrip(v.str()));
        double d = std::strtod(t.c_str(), &end);
        if (!t.empty() && *end == 0)
          return Value::of(d);
      }
      return a.v[0];
    }
    if (f == "abs") {
      if (v.kind == K::Int)
        return Value::of(v.integer < 0 ? -v.integer : v.integer);
      return Value::of(std::fabs(num(v)));
    }
    if (f == "round") {
      Args a = bind(e, 1, {"precision", "method"}, {Value::of(int64_t(0)), Value::of("common")});
      double p = std::pow(10.0, static_cast<double>(asInt(a.v[0], e.line, "round's precision")));
      const std::string &method = asStr(a.v[1], e.line, "round's method");
      double x = num(v) * p;
      double r = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::nearbyint(x); // half to even
      return Value::of(r / p);
    }
    if (f == "replace") {
      Args a = bind(e, 1, {"old", "new", "count"}, {Value(), Value(), Value::none()});
      int64_t count = a.v[2].kind == K::Int ? a.v[2].integer : -1;
      return Value::of(replace(pyStr(v), asStr(a.v[0], e.line, "replace's old"), asStr(a.v[1], e.line, "replace's new"),
                               count));
    }
    if (f == "reverse") {
      if (v.kind == K::String) {
        const std::string &t = v.str();
        std::vector<size_t> at = codePointStarts(t);
        std::string out;
        out.reserve(t.size());
        for (size_t i = at.size() - 1; i > 0; --i)
          out.append(t, at[i - 1], at[i] - at[i - 1]);
        return Value::of(std::move(out));
      }
      List items = iterate(v, e.line);
      std::reverse(items.begin(), items.end());
      return Value::of(std::move(items));
    }
    if (f == "join") {
      Args a = bind(e, 1, {"d", "attribute"}, {Value::of(""), Value::none()});
      std::string sep = pyStr(a.v[0]), out;
      List items = iterate(v, e.line);
      for (size_t i = 0; i < items.size(); ++i)
        append(out, (i ? sep : "") + pyStr(a.v[1].kind == K::None ? items[i] : attrPath(items[i], a.v[1], e.line)));
      return Value::of(out);
    }
    if (f == "indent") {
      Args a = bind(e, 1, {"width", "first", "blank"}, {Value::of(int64_t(4)), Value::of(false), Value::of(false)});
      std::string pad = a.v[0].kind == K::String ? a.v[0].str()
                                                 : std::string(static_cast<size_t>(std::clamp<int64_t>(
                                                                   asInt(a.v[0], e.line, "indent's width"), 0, 256)),
                                                               ' ');
      std::string s = pyStr(v), out;
      bool first = truthy(a.v[1]), blank = truthy(a.v[2]);
      size_t p = 0;
      bool firstLine = true;
      charge(s.size());
      for (;;) {
        size_t nl = s.find('\n', p), end = nl == std::string::npos ? s.size() : nl;
        bool isBlank = std::all_of(s.begin() + static_cast<std::ptrdiff_t>(p), s.begin() + static_cast<std::ptrdiff_t>(end),
                                   [](char c) { return isSpace(c); });
        if ((firstLine ? first : true) && (blank || !isBlank))
          append(out, pad);
        if (out.size() + (end - p) + 1 > kMaxOutput)
          append(out, s.substr(p)); // fails
        out.append(s, p, end - p);
        if (nl == std::string::npos)
          break;
        out += '\n';
        p = nl + 1;
        firstLine = false;
      }
      return Value::of(std::move(out));
    }
    if (f == "map") {
      List items = iterate(v, e.line);
      List out;
      const Value *attribute = nullptr;
      Value attrV, dflt;
      for (const auto &kw : e.kwargs) {
        if (kw.first == "attribute")
          attrV = eval(*kw.second), attribute = &attrV;
        else if (kw.first == "default")
          dflt = eval(*kw.second);
        else
          failAt(e.line, "map has no argument '" + kw.first + "'");
      }
      if (attribute) {
        for (const Value &it : items) {
          Value x = attrPath(it, *attribute, e.line);
          out.push_back(x.defined() ? x : dflt);
        }
        return Value::of(std::move(out));
      }
      if (e.args.size() < 2)
        failAt(e.line, "map needs a filter name or attribute=");
      const std::string name = asStr(eval(*e.args[1]), e.line, "map's filter");
      for (const Value &it : items)
        out.push_back(simpleFilter(name, it, e.line));
      return Value::of(std::move(out));
    }
    if (f == "select" || f == "reject" || f == "selectattr" || f == "rejectattr") {
      bool byAttr = f == "selectattr" || f == "rejectattr", keep = f == "select" || f == "selectattr";
      size_t at = 1;
      Value attribute;
      if (byAttr) {
        if (e.args.size() < 2)
          failAt(e.line, f + " needs an attribute");
        attribute = eval(*e.args[at++]);
      }
      std::string tname;
      std::vector<Value> targs;
      if (at < e.args.size())
        tname = asStr(eval(*e.args[at++]), e.line, "a test name");
      for (; at < e.args.size(); ++at)
        targs.push_back(eval(*e.args[at]));
      if (!tname.empty() && tname != "==" && tname != "!=") {
        const auto &names = testNames();
        if (std::find(names.begin(), names.end(), tname) == names.end())
          failAt(e.line, "unsupported test '" + tname + "'");
      }
      List out;
      for (const Value &it : iterate(v, e.line)) {
        Value x = byAttr ? attrPath(it, attribute, e.line) : it;
        bool r = tname.empty() ? truthy(x)
                 : tname == "==" ? applyTest("eq", x, targs, e.line)
                 : tname == "!=" ? applyTest("ne", x, targs, e.line)
                                 : applyTest(tname, x, targs, e.line);
        if (r == keep)
          out.push_back(it);
      }
      return Value::of(std::move(out));
    }
    if (f == "unique" || f == "sort" || f == "min" || f == "max" || f == "sum" || f == "dictsort" || f == "wordcount") {
      if (f == "wordcount")
        return Value::of(static_cast<int64_t>(split(pyStr(v), Value(), -1, e.line).size()));
      if (f == "dictsort") {
        if (v.kind != K::Dict)
          failAt(e.line, "dictsort of a non-mapping");
        List out;
        for (const auto &kv : *v.dict)
          out.push_back(tupleOf(List{Value::of(kv.first), kv.second}));
        std::stable_sort(out.begin(), out.end(), [](const Value &a, const Value &b) {
          return lower((*a.list)[0].str()) < lower((*b.list)[0].str());
        });
        return Value::of(std::move(out));
      }
      Args a = bind(e, 1, {"attribute"}, {Value::none()});
      List items = iterate(v, e.line);
      auto key = [&](const Value &x) { return a.v[0].kind == K::None ? x : attrPath(x, a.v[0], e.line); };
      auto less = [&](const Value &x, const Value &y) {
        charge(sizeof(Value));
        return truthy(binary("<", key(x), key(y), e.line));
      };
      if (f == "sum") {
        Value s = Value::of(int64_t(0));
        for (const Value &x : items)
          s = binary("+", s, key(x), e.line);
        return s;
      }
      if (f == "sort") {
        std::stable_sort(items.begin(), items.end(), less);
        return Value::of(std::move(items));
      }
      if (f == "unique") {
        List out;
        for (const Value &x : items)
          if (std::none_of(out.begin(), out.end(), [&](const Value &y) { return equal(key(x), key(y)); }))
            out.push_back(x);
        return Value::of(std::move(out));
      }
      if (items.empty())
        return Value();
      auto it = f == "min" ? std::min_element(items.begin(), items.end(), less)
                           : std::max_element(items.begin(), items.end(), less);
      return *it;
    }
    failAt(e.line, "unsupported filter '" + f + "'");
  }

  Value simpleFilter(const std::string &name, const Value &v, int line) {
    if (name == "trim")
      return Value::of(lstrip(rstrip(pyStr(v))));
    if (name == "upper")
      return Value::of(upper(pyStr(v)));
    if (name == "lower")
      return Value::of(lower(pyStr(v)));
    if (name == "string")
      return Value::of(pyStr(v));
    if (name == "tojson") {
      std::string out;
      toJson(v, out, -1, ", ", ": ", false, 0);
      return Value::of(out);
    }
    failAt(line, "map with the filter '" + name + "' is not supported");
  }

  std::vector<std::map<std::string, Value>> scopes_;
  std::vector<std::shared_ptr<Dict>> namespaces_;
  Meter meter_;
  std::string &out_;
  size_t steps_ = 0;
};

} // namespace

void render(const Node &root, const Dict &context, std::string &out) { Renderer(context, out).run(root); }

} // namespace kiln::jinja::detail
