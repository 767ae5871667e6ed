//===- JinjaValue.cpp - template values as Python prints and compares them -===//
#include "runtime/chat/JinjaDetail.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kiln::jinja::detail {

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
  case Value::Kind::String: return !v.string.empty();
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

std::string pyRepr(const Value &v);

std::string pyStr(const Value &v) {
  switch (v.kind) {
  case Value::Kind::Undefined: return "";
  case Value::Kind::None: return "None";
  case Value::Kind::Bool: return v.boolean ? "True" : "False";
  case Value::Kind::Int: return std::to_string(v.integer);
  case Value::Kind::Float: return pyFloat(v.number);
  case Value::Kind::String: return v.string;
  case Value::Kind::List: {
    std::string s = v.tuple ? "(" : "[";
    for (size_t i = 0; i < v.list->size(); ++i)
      s += (i ? ", " : "") + pyRepr((*v.list)[i]);
    if (v.tuple && v.list->size() == 1)
      s += ",";
    return s + (v.tuple ? ")" : "]");
  }
  case Value::Kind::Dict: {
    if (v.ns)
      return "<Namespace>";
    std::string s = "{";
    for (size_t i = 0; i < v.dict->size(); ++i)
      s += (i ? ", " : "") + pyRepr(Value::of((*v.dict)[i].first)) + ": " + pyRepr((*v.dict)[i].second);
    return s + "}";
  }
  }
  return "";
}

std::string pyRepr(const Value &v) {
  if (v.kind != Value::Kind::String)
    return pyStr(v);
  const std::string &s = v.string;
  char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == static_cast<unsigned char>(q))
      out += std::string("\\") + q;
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else
      out += static_cast<char>(c);
  }
  return out + q;
}

// Python's json.dumps(ensure_ascii=False, indent, separators, sort_keys).
void toJson(const Value &v, std::string &out, int indent, const std::string &item, const std::string &key,
            bool sortKeys, int level) {
  auto newline = [&](int lvl) {
    if (indent >= 0)
      out += "\n" + std::string(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.kind) {
  case Value::Kind::Undefined: throw Failure("tojson: an undefined value");
  case Value::Kind::None: out += "null"; return;
  case Value::Kind::Bool: out += v.boolean ? "true" : "false"; return;
  case Value::Kind::Int: out += std::to_string(v.integer); return;
  case Value::Kind::Float:
    out += std::isnan(v.number) ? "NaN" : std::isinf(v.number) ? (v.number < 0 ? "-Infinity" : "Infinity")
                                                                  : pyFloat(v.number);
    return;
  case Value::Kind::String:
    out += '"';
    for (unsigned char c : v.string) {
      switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += static_cast<char>(c);
        }
      }
    }
    out += '"';
    return;
  case Value::Kind::List:
    if (v.list->empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < v.list->size(); ++i) {
      if (i)
        out += item;
      newline(level + 1);
      toJson((*v.list)[i], out, indent, item, key, sortKeys, level + 1);
    }
    newline(level);
    out += ']';
    return;
  case Value::Kind::Dict: {
    if (v.dict->empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<std::string, Value> *> items;
    for (const auto &kv : *v.dict)
      items.push_back(&kv);
    if (sortKeys)
      std::stable_sort(items.begin(), items.end(), [](auto *a, auto *b) { return a->first < b->first; });
    out += '{';
    for (size_t i = 0; i < items.size(); ++i) {
      if (i)
        out += item;
      newline(level + 1);
      toJson(Value::of(items[i]->first), out, indent, item, key, sortKeys, level + 1);
      out += key;
      toJson(items[i]->second, out, indent, item, key, sortKeys, level + 1);
    }
    newline(level);
    out += '}';
    return;
  }
  }
}

bool equal(const Value &a, const Value &b) {
  if (isNumber(a) && isNumber(b))
    return num(a) == num(b);
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
  case Value::Kind::Undefined:
  case Value::Kind::None: return true;
  case Value::Kind::String: return a.string == b.string;
  case Value::Kind::List:
    if (a.list->size() != b.list->size())
      return false;
    for (size_t i = 0; i < a.list->size(); ++i)
      if (!equal((*a.list)[i], (*b.list)[i]))
        return false;
    return true;
  case Value::Kind::Dict:
    if (a.dict == b.dict)
      return true;
    if (a.dict->size() != b.dict->size())
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

// Code points of UTF-8 text, as Python iterates a str.
std::vector<std::string> chars(const std::string &s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    n = std::min(n, s.size() - i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

} // namespace kiln::jinja::detail
