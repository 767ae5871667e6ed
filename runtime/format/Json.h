//===- Json.h - a strict, bounded JSON parser -------------------*- C++ -*-===//
//
// For the small JSON documents models come with: safetensors headers,
// config.json, model.safetensors.index.json, tokenizer.json. RFC 8259 only
// (no comments, no trailing commas, no NaN), objects keep their key order and
// reject duplicate keys, nesting is limited so hostile input cannot exhaust
// the stack, and errors say where (line and column) and what.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_FORMAT_JSON_H
#define KILN_RUNTIME_FORMAT_JSON_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::format {

class JsonValue {
public:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;
  Kind kind() const { return kind_; }
  bool isNull() const { return kind_ == Kind::Null; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isNumber() const { return kind_ == Kind::Number; }
  bool isString() const { return kind_ == Kind::String; }
  bool isArray() const { return kind_ == Kind::Array; }
  bool isObject() const { return kind_ == Kind::Object; }
  /// A number written without fraction or exponent that fits int64.
  bool isInteger() const { return kind_ == Kind::Number && isInt_; }

  bool asBool() const { return bool_; }
  double asNumber() const { return number_; }
  int64_t asInt() const { return int_; }
  const std::string &asString() const { return string_; }
  const std::vector<JsonValue> &asArray() const { return array_; }
  const std::vector<Member> &asObject() const { return object_; }
  /// The member called `key` of an object, or null when absent (or not an object).
  const JsonValue *find(std::string_view key) const;

  static const char *kindName(Kind k);

private:
  friend class JsonParser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  bool isInt_ = false;
  double number_ = 0;
  int64_t int_ = 0;
  std::string string_;
  std::vector<JsonValue> array_;
  std::vector<Member> object_;
};

/// Parses `text` as one JSON value. Errors read "line L, column C: what".
Status parseJson(std::string_view text, JsonValue &out);

} // namespace kiln::format

#endif
