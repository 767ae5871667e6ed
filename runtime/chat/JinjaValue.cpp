//===- JinjaValue.cpp - template values as Python prints and compares them -===//
#include "runtime/chat/JinjaDetail.h"
#include "runtime/format/Json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace kiln::jinja {

namespace {
// The work of the render running on this thread (Meter), or not counted.
thread_local bool tMetered = false;
thread_local size_t tWork = 0;
uint32_t depthOf(const Value &v) { return v.ns ? 1 : v.depth; }
} // namespace

const std::string &Value::str() const {
  static const std::string empty;
  return kind == Kind::String && text ? *text : empty;
}

Value Value::of(std::string s) {
  detail::charge(sizeof(Value) + s.size());
  Value v = of(Kind::String);
  v.text = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::of(List l) {
  detail::charge(l.size() * sizeof(Value));
  Value v = of(Kind::List);
  for (const Value &x : l)
    v.depth = std::max(v.depth, depthOf(x));
  ++v.depth;
  v.list = std::make_shared<List>(std::move(l));
  return v;
}

Value Value::of(Dict d) {
  detail::charge(d.size() * sizeof(Dict::value_type));
  Value v = of(Kind::Dict);
  for (const auto &kv : d)
    v.depth = std::max(v.depth, depthOf(kv.second));
  ++v.depth;
  v.dict = std::make_shared<Dict>(std::move(d));
  return v;
}

const Value *Value::get(const std::string &key) const {
  if (kind != Kind::Dict)
    return nullptr;
  detail::charge(dict->size() * sizeof(void *));
  for (const auto &kv : *dict)
    if (kv.first == key)
      return &kv.second;
  return nullptr;
}

void Value::set(const std::string &key, Value v) {
  if (!ns)
    depth = std::max(depth, depthOf(v) + 1);
  detail::charge(dict->size() * sizeof(void *));
  for (auto &kv : *dict)
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  detail::charge(sizeof(Dict::value_type));
  dict->emplace_back(key, std::move(v));
}

Value Value::fromJson(const format::JsonValue &j) {
  switch (j.kind()) {
  case format::JsonValue::Kind::Null: return none();
  case format::JsonValue::Kind::Bool: return of(j.asBool());
  case format::JsonValue::Kind::Number: return j.isInteger() ? of(static_cast<int64_t>(j.asInt())) : of(j.asNumber());
  case format::JsonValue::Kind::String: return of(j.asString());
  case format::JsonValue::Kind::Array: {
    List l;
    l.reserve(j.asArray().size());
    for (const format::JsonValue &x : j.asArray())
      l.push_back(fromJson(x));
    return of(std::move(l));
  }
  case format::JsonValue::Kind::Object: {
    // Built at once (set() would look each key up: quadratic in a request's
    // object of many keys).
    Dict d;
    std::unordered_map<std::string, size_t> at;
    for (const auto &m : j.asObject()) {
      auto [it, fresh] = at.emplace(m.first, d.size());
      if (fresh)
        d.emplace_back(m.first, fromJson(m.second));
      else
        d[it->second].second = fromJson(m.second);
    }
    return of(std::move(d));
  }
  }
  return Value();
}

namespace detail {

Meter::Meter() {
  tMetered = true;
  tWork = 0;
}
Meter::~Meter() { tMetered = false; }

void charge(size_t bytes) {
  if (!tMetered)
    return;
  tWork += bytes;
  if (tWork > kMaxWork)
    throw Failure("the template worked through over " + std::to_string(kMaxWork >> 20) +
                  " MB of values (made, copied or scanned)");
}

void append(std::string &out, const std::string &s) {
  if (out.size() + s.size() > kMaxOutput)
    throw Failure("a string over the template's size limit (" + std::to_string(kMaxOutput >> 20) + " MB)");
  out += s;
}
void append(std::string &out, const char *s) {
  size_t n = std::strlen(s);
  if (out.size() + n > kMaxOutput)
    append(out, std::string(s)); // fails
  out.append(s, n);
}
void append(std::string &out, char c) {
  if (out.size() + 1 > kMaxOutput)
    append(out, std::string(1, c)); // fails
  out += c;
}

const char *kindName(Value::Kind k) {
  switch (k) {
  case Value::Kind::Undefined: return "undefined";
  case Value::Kind::None: return "none";
  case Value::Kind::Bool: return "bool";
  case Value::Kind::Int: return "int";
  case Value::Kind::Float: return "float";
  case Value::Kind::String: return "str";
  case Value::Kind::List: return "list";
  case Value::Kind::Dict: return "dict";
  }
  return "?";
}

bool truthy(const Value &v) {
  switch (v.kind) {
  case Value::Kind::Undefined:
  case Value::Kind::None: return false;
  case Value::Kind::Bool: return v.boolean;
  case Value::Kind::Int: return v.integer != 0;
  case Value::Kind::Float: return v.number != 0;
  case Value::Kind::String: return !v.str().empty();
  case Value::Kind::List: return !v.list->empty();
  case Value::Kind::Dict: return v.ns || !v.dict->empty();
  }
  return false;
}

Value tupleOf(List l) {
  Value v = Value::of(std::move(l));
  v.tuple = true;
  return v;
}

bool isNumber(const Value &v) { return v.kind == Value::Kind::Int || v.kind == Value::Kind::Float || v.kind == Value::Kind::Bool; }
double num(const Value &v) {
  return v.kind == Value::Kind::Float ? v.number : static_cast<double>(v.kind == Value::Kind::Bool ? v.boolean : v.integer);
}

// Python's repr of a float: the shortest digits that read back the same,
// in exponent form below 1e-4 and from 1e16.
std::string pyFloat(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  // buf: d.ddde[+-]XX
  std::string s = buf;
  size_t e = s.find('e');
  std::string mant = s.substr(0, e);
  int exp = std::atoi(s.c_str() + e + 1);
  bool neg = mant[0] == '-';
  if (neg)
    mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.')
      digits += c;
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else {
    size_t intLen = static_cast<size_t>(exp) + 1;
    if (digits.size() <= intLen)
      out = digits + std::string(intLen - digits.size(), '0') + ".0";
    else
      out = digits.substr(0, intLen) + "." + digits.substr(intLen);
  }
  return neg ? "-" + out : out;
}

namespace {

void writeRepr(const Value &v, std::string &out, uint32_t level);

// str(v) appended to out; level counts the lists and dicts it is inside.
void writeStr(const Value &v, std::string &out, uint32_t level) {
  if (level > static_cast<uint32_t>(kMaxDepth))
    throw Failure("a value nested over " + std::to_string(kMaxDepth) + " deep");
  switch (v.kind) {
  case Value::Kind::Undefined: return;
  case Value::Kind::None: append(out, "None"); return;
  case Value::Kind::Bool: append(out, v.boolean ? "True" : "False"); return;
  case Value::Kind::Int: append(out, std::to_string(v.integer)); return;
  case Value::Kind::Float: append(out, pyFloat(v.number)); return;
  case Value::Kind::String: append(out, v.str()); return;
  case Value::Kind::List: {
    append(out, v.tuple ? '(' : '[');
    for (size_t i = 0; i < v.list->size(); ++i) {
      if (i)
        append(out, ", ");
      writeRepr((*v.list)[i], out, level + 1);
    }
    if (v.tuple && v.list->size() == 1)
      append(out, ',');
    append(out, v.tuple ? ')' : ']');
    return;
  }
  case Value::Kind::Dict: {
    if (v.ns) {
      append(out, "<Namespace>");
      return;
    }
    append(out, '{');
    for (size_t i = 0; i < v.dict->size(); ++i) {
      if (i)
        append(out, ", ");
      writeRepr(Value::of((*v.dict)[i].first), out, level + 1);
      append(out, ": ");
      writeRepr((*v.dict)[i].second, out, level + 1);
    }
    append(out, '}');
    return;
  }
  }
}

void writeRepr(const Value &v, std::string &out, uint32_t level) {
  if (v.kind != Value::Kind::String) {
    writeStr(v, out, level);
    return;
  }
  const std::string &s = v.str();
  char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string r(1, q);
  for (unsigned char c : s) {
    if (c == '\\')
      r += "\\\\";
    else if (c == static_cast<unsigned char>(q))
      r += std::string("\\") + q;
    else if (c == '\n')
      r += "\\n";
    else if (c == '\r')
      r += "\\r";
    else if (c == '\t')
      r += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      r += b;
    } else
      r += static_cast<char>(c);
    if (r.size() > kMaxOutput)
      break; // append below fails
  }
  r += q;
  append(out, r);
}

} // namespace

std::string pyStr(const Value &v) {
  if (v.kind == Value::Kind::String)
    return v.str();
  std::string out;
  writeStr(v, out, 0);
  charge(out.size());
  return out;
}

std::string pyRepr(const Value &v) {
  std::string out;
  writeRepr(v, out, 0);
  charge(out.size());
  return out;
}

// Python's json.dumps(ensure_ascii=False, indent, separators, sort_keys).
void toJson(const Value &v, std::string &out, int indent, const std::string &item, const std::string &key,
            bool sortKeys, int level) {
  if (level > kMaxDepth)
    throw Failure("tojson: a value nested over " + std::to_string(kMaxDepth) + " deep");
  auto newline = [&](int lvl) {
    if (indent >= 0) {
      append(out, '\n');
      append(out, std::string(static_cast<size_t>(indent) * static_cast<size_t>(lvl), ' '));
    }
  };
  switch (v.kind) {
  case Value::Kind::Undefined: throw Failure("tojson: an undefined value");
  case Value::Kind::None: append(out, "null"); return;
  case Value::Kind::Bool: append(out, v.boolean ? "true" : "false"); return;
  case Value::Kind::Int: append(out, std::to_string(v.integer)); return;
  case Value::Kind::Float:
    append(out, std::isnan(v.number) ? "NaN"
                : std::isinf(v.number) ? (v.number < 0 ? "-Infinity" : "Infinity")
                                       : pyFloat(v.number));
    return;
  case Value::Kind::String: {
    std::string r = "\"";
    for (unsigned char c : v.str()) {
      switch (c) {
      case '"': r += "\\\""; break;
      case '\\': r += "\\\\"; break;
      case '\n': r += "\\n"; break;
      case '\r': r += "\\r"; break;
      case '\t': r += "\\t"; break;
      case '\b': r += "\\b"; break;
      case '\f': r += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          r += b;
        } else {
          r += static_cast<char>(c);
        }
      }
      if (r.size() > kMaxOutput)
        break; // append below fails
    }
    r += '"';
    append(out, r);
    return;
  }
  case Value::Kind::List:
    if (v.list->empty()) {
      append(out, "[]");
      return;
    }
    append(out, '[');
    for (size_t i = 0; i < v.list->size(); ++i) {
      if (i)
        append(out, item);
      newline(level + 1);
      toJson((*v.list)[i], out, indent, item, key, sortKeys, level + 1);
    }
    newline(level);
    append(out, ']');
    return;
  case Value::Kind::Dict: {
    if (v.ns)
      throw Failure("tojson: a namespace is not JSON serializable");
    if (v.dict->empty()) {
      append(out, "{}");
      return;
    }
    std::vector<const std::pair<std::string, Value> *> items;
    for (const auto &kv : *v.dict)
      items.push_back(&kv);
    if (sortKeys)
      std::stable_sort(items.begin(), items.end(), [](auto *a, auto *b) { return a->first < b->first; });
    append(out, '{');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i)
        append(out, item);
      newline(level + 1);
      toJson(Value::of(items[i]->first), out, indent, item, key, sortKeys, level + 1);
      append(out, key);
      toJson(items[i]->second, out, indent, item, key, sortKeys, level + 1);
    }
    newline(level);
    append(out, '}');
    return;
  }
  }
}

bool equal(const Value &a, const Value &b) {
  charge(sizeof(Value));
  if (isNumber(a) && isNumber(b))
    return num(a) == num(b);
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
  case Value::Kind::Undefined:
  case Value::Kind::None: return true;
  case Value::Kind::String:
    if (a.text == b.text)
      return true;
    charge(std::min(a.str().size(), b.str().size()));
    return a.str() == b.str();
  case Value::Kind::List:
    if (a.list == b.list)
      return true;
    if (a.list->size() != b.list->size())
      return false;
    for (size_t i = 0; i < a.list->size(); ++i)
      if (!equal((*a.list)[i], (*b.list)[i]))
        return false;
    return true;
  case Value::Kind::Dict:
    if (a.dict == b.dict)
      return true;
    if (a.ns || b.ns || a.dict->size() != b.dict->size())
      return false;
    for (const auto &kv : *a.dict) {
      const Value *o = b.get(kv.first);
      if (!o || !equal(kv.second, *o))
        return false;
    }
    return true;
  default: return false;
  }
}

namespace {
size_t codePointLength(const std::string &s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return std::min(n, s.size() - i);
}
} // namespace

size_t codePoints(const std::string &s) {
  charge(s.size());
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += codePointLength(s, i))
    ++n;
  return n;
}

std::string codePointAt(const std::string &s, size_t index) {
  size_t i = 0;
  for (size_t k = 0; k < index && i < s.size(); ++k)
    i += codePointLength(s, i);
  charge(i);
  return i < s.size() ? s.substr(i, codePointLength(s, i)) : std::string();
}

std::vector<size_t> codePointStarts(const std::string &s) {
  charge(s.size() * sizeof(size_t));
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); i += codePointLength(s, i))
    at.push_back(i);
  at.push_back(s.size());
  return at;
}

// Code points of UTF-8 text, as Python iterates a str.
std::vector<std::string> chars(const std::string &s) {
  size_t n = codePoints(s);
  if (n > kMaxItems)
    throw Failure("a string of " + std::to_string(n) + " characters made into a list (the limit is " +
                  std::to_string(kMaxItems) + " items)");
  charge(n * sizeof(std::string));
  std::vector<std::string> out;
  out.reserve(n);
  for (size_t i = 0; i < s.size();) {
    size_t k = codePointLength(s, i);
    out.push_back(s.substr(i, k));
    i += k;
  }
  return out;
}

} // namespace detail
} // namespace kiln::jinja
