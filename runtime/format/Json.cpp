//===- Json.cpp - a strict, bounded JSON parser ---------------------------===//
#include "runtime/format/Json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>
#include <unordered_set>

namespace kiln::format {

const JsonValue *JsonValue::find(std::string_view key) const {
  if (kind_ != Kind::Object)
    return nullptr;
  for (const Member &m : object_)
    if (m.first == key)
      return &m.second;
  return nullptr;
}

const char *JsonValue::kindName(Kind k) {
  switch (k) {
  case Kind::Null: return "null";
  case Kind::Bool: return "a boolean";
  case Kind::Number: return "a number";
  case Kind::String: return "a string";
  case Kind::Array: return "an array";
  case Kind::Object: return "an object";
  }
  return "?";
}

class JsonParser {
public:
  explicit JsonParser(std::string_view t) : text_(t) {}

  Status parseDocument(JsonValue &out) {
    skipSpace();
    KILN_RETURN_IF_ERROR(parseValue(out, 0));
    skipSpace();
    if (pos_ != text_.size())
      return error("unexpected text after the JSON value");
    return Status::ok();
  }

private:
  static constexpr int kMaxDepth = 128;

  Status error(const std::string &what) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Status::error("line " + std::to_string(line) + ", column " +
                         std::to_string(col) + ": " + what);
  }

  void skipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word)
      return false;
    pos_ += word.size();
    return true;
  }

  Status parseValue(JsonValue &v, int depth) {
    if (depth > kMaxDepth)
      return error("nesting deeper than " + std::to_string(kMaxDepth));
    if (pos_ >= text_.size())
      return error("unexpected end of input");
    char c = text_[pos_];
    if (c == '{')
      return parseObject(v, depth);
    if (c == '[')
      return parseArray(v, depth);
    if (c == '"') {
      v.kind_ = JsonValue::Kind::String;
      return parseString(v.string_);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return parseNumber(v);
    if (consume("true")) {
      v.kind_ = JsonValue::Kind::Bool;
      v.bool_ = true;
      return Status::ok();
    }
    if (consume("false")) {
      v.kind_ = JsonValue::Kind::Bool;
      return Status::ok();
    }
    if (consume("null"))
      return Status::ok();
    return error(std::string("unexpected character '") + c + "'");
  }

  Status parseObject(JsonValue &v, int depth) {
    v.kind_ = JsonValue::Kind::Object;
    ++pos_; // {
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Status::ok();
    }
    // Keys seen, hashed once an object is past a few (a request's object of
    // many keys would otherwise be a quadratic search).
    std::unordered_set<std::string> seen;
    while (true) {
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"')
        return error("expected a string key");
      std::string key;
      KILN_RETURN_IF_ERROR(parseString(key));
      if (v.object_.size() == 16)
        for (const auto &m : v.object_)
          seen.insert(m.first);
      bool repeated = v.object_.size() < 16 ? v.find(key) != nullptr : !seen.insert(key).second;
      if (repeated)
        return error("duplicate key \"" + key + "\"");
      skipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':')
        return error("expected ':' after a key");
      ++pos_;
      skipSpace();
      v.object_.emplace_back(std::move(key), JsonValue());
      KILN_RETURN_IF_ERROR(parseValue(v.object_.back().second, depth + 1));
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return Status::ok();
      }
      return error("expected ',' or '}' in an object");
    }
  }

  Status parseArray(JsonValue &v, int depth) {
    v.kind_ = JsonValue::Kind::Array;
    ++pos_; // [
    skipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Status::ok();
    }
    while (true) {
      skipSpace();
      v.array_.emplace_back();
      KILN_RETURN_IF_ERROR(parseValue(v.array_.back(), depth + 1));
      skipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return Status::ok();
      }
      return error("expected ',' or ']' in an array");
    }
  }

  static void appendUtf8(std::string &s, uint32_t cp) {
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  Status parseHex4(uint32_t &cp) {
    if (pos_ + 4 > text_.size())
      return error("truncated \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char h = text_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9')
        cp |= h - '0';
      else if (h >= 'a' && h <= 'f')
        cp |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F')
        cp |= h - 'A' + 10;
      else
        return error("bad hex digit in \\u escape");
    }
    return Status::ok();
  }

  Status parseString(std::string &s) {
    ++pos_; // "
    while (true) {
      if (pos_ >= text_.size())
        return error("unterminated string");
      char c = text_[pos_++];
      if (c == '"')
        return Status::ok();
      if (static_cast<unsigned char>(c) < 0x20)
        return error("control character in a string");
      if (c != '\\') {
        s += c;
        continue;
      }
      if (pos_ >= text_.size())
        return error("unterminated escape");
      char e = text_[pos_++];
      switch (e) {
      case '"': s += '"'; break;
      case '\\': s += '\\'; break;
      case '/': s += '/'; break;
      case 'b': s += '\b'; break;
      case 'f': s += '\f'; break;
      case 'n': s += '\n'; break;
      case 'r': s += '\r'; break;
      case 't': s += '\t'; break;
      case 'u': {
        uint32_t cp;
        KILN_RETURN_IF_ERROR(parseHex4(cp));
        if (cp >= 0xd800 && cp <= 0xdbff) { // a high surrogate needs its pair
          uint32_t lo;
          if (!consume("\\u"))
            return error("unpaired surrogate in \\u escape");
          KILN_RETURN_IF_ERROR(parseHex4(lo));
          if (lo < 0xdc00 || lo > 0xdfff)
            return error("unpaired surrogate in \\u escape");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          return error("unpaired surrogate in \\u escape");
        }
        appendUtf8(s, cp);
        break;
      }
      default:
        return error(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  Status parseNumber(JsonValue &v) {
    size_t start = pos_;
    bool integral = true;
    if (text_[pos_] == '-')
      ++pos_;
    if (pos_ >= text_.size() || !isDigit(text_[pos_]))
      return error("expected a digit");
    if (text_[pos_] == '0' && pos_ + 1 < text_.size() && isDigit(text_[pos_ + 1]))
      return error("leading zero in a number");
    while (pos_ < text_.size() && isDigit(text_[pos_]))
      ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= text_.size() || !isDigit(text_[pos_]))
        return error("expected a digit after '.'");
      while (pos_ < text_.size() && isDigit(text_[pos_]))
        ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-'))
        ++pos_;
      if (pos_ >= text_.size() || !isDigit(text_[pos_]))
        return error("expected a digit in the exponent");
      while (pos_ < text_.size() && isDigit(text_[pos_]))
        ++pos_;
    }
    std::string lit(text_.substr(start, pos_ - start));
    v.kind_ = JsonValue::Kind::Number;
    v.number_ = std::strtod(lit.c_str(), nullptr);
    if (!std::isfinite(v.number_))
      return error("number out of range");
    if (integral) {
      errno = 0;
      long long i = std::strtoll(lit.c_str(), nullptr, 10);
      if (errno == 0) {
        v.isInt_ = true;
        v.int_ = i;
      }
    }
    return Status::ok();
  }

  static bool isDigit(char c) { return c >= '0' && c <= '9'; }

  std::string_view text_;
  size_t pos_ = 0;
};

Status parseJson(std::string_view text, JsonValue &out) {
  out = JsonValue();
  return JsonParser(text).parseDocument(out);
}

} // namespace kiln::format
