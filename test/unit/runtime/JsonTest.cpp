#include "runtime/format/Json.h"

#include <gtest/gtest.h>

using kiln::format::JsonValue;
using kiln::format::parseJson;

TEST(Json, ParsesEveryKindKeepingKeyOrder) {
  JsonValue v;
  auto s = parseJson(R"( {"b": [1, -2.5e3, true, null], "a": {"x": "h\u00e9\ud83d\ude00\n"},
                          "big": 9007199254740993, "f": 0.25} )", v);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_TRUE(v.isObject());
  EXPECT_EQ(v.asObject()[0].first, "b");
  const JsonValue *b = v.find("b");
  ASSERT_TRUE(b && b->isArray());
  EXPECT_TRUE(b->asArray()[0].isInteger());
  EXPECT_EQ(b->asArray()[0].asInt(), 1);
  EXPECT_FALSE(b->asArray()[1].isInteger());
  EXPECT_EQ(b->asArray()[1].asNumber(), -2500.0);
  EXPECT_TRUE(b->asArray()[2].asBool());
  EXPECT_TRUE(b->asArray()[3].isNull());
  EXPECT_EQ(v.find("a")->find("x")->asString(), "h\xc3\xa9\xf0\x9f\x98\x80\n");
  EXPECT_EQ(v.find("big")->asInt(), 9007199254740993); // exact beyond 2^53
  EXPECT_EQ(v.find("f")->asNumber(), 0.25);
  EXPECT_EQ(v.find("missing"), nullptr);
}

TEST(Json, RejectsMalformedInputWithAPosition) {
  const std::pair<const char *, const char *> cases[] = {
      {"{\"a\": 1,}", "line 1, column 9: expected a string key"},
      {"[1, 2", "expected ',' or ']'"},
      {"{\"a\": 1, \"a\": 2}", "duplicate key \"a\""},
      {"\"abc", "unterminated string"},
      {"01", "leading zero"},
      {"{\n  \"a\": tru }", "line 2, column 8: unexpected character 't'"},
      {"\"\\ud800x\"", "unpaired surrogate"},
      {"[1] 2", "unexpected text after the JSON value"},
      {"NaN", "unexpected character 'N'"},
      {"1e999", "number out of range"},
      {"", "unexpected end of input"},
  };
  for (auto [text, want] : cases) {
    JsonValue v;
    auto s = parseJson(text, v);
    ASSERT_FALSE(s.isOk()) << text;
    EXPECT_NE(s.message().find(want), std::string::npos) << text << " -> " << s.message();
  }
  // A key repeated far into a long object is found too (hashed past 16 keys),
  // and an object of 200,000 keys parses in linear time.
  std::string many = "{", repeated;
  for (int i = 0; i < 200000; ++i)
    many += (i ? ", \"k" : "\"k") + std::to_string(i) + "\": " + std::to_string(i);
  repeated = many + ", \"k123\": 0}";
  many += "}";
  {
    JsonValue big;
    ASSERT_TRUE(parseJson(many, big).isOk());
    EXPECT_EQ(big.asObject().size(), 200000u);
    auto s = parseJson(repeated, big);
    ASSERT_FALSE(s.isOk());
    EXPECT_NE(s.message().find("duplicate key \"k123\""), std::string::npos) << s.message();
  }
  // Deep nesting is an error, not a stack overflow.
  JsonValue v;
  auto s = parseJson(std::string(100000, '['), v);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("nesting deeper"), std::string::npos);
}
