//===- CApiTest.cpp - the C API: statuses, tokenizer, loader errors -------===//
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {
std::string messageOf(kiln_status *s) {
  std::string m = s ? kiln_status_message(s) : "";
  kiln_status_free(s);
  return m;
}
const std::string kTok = std::string(KILN_SOURCE_DIR) + "/test/fuzz/corpus/tokenizer/gpt2.json";
} // namespace

TEST(CApi, ErrorsComeBackAsStatuses) {
  kiln_model *m = reinterpret_cast<kiln_model *>(1);
  EXPECT_NE(messageOf(kiln_model_load(nullptr, nullptr, &m)).find("must not be NULL"), std::string::npos);
  kiln_load_options o;
  kiln_load_options_init(&o);
  o.device = "tpu";
  EXPECT_NE(messageOf(kiln_model_load("x.engine", &o, &m)).find("unknown device 'tpu'"), std::string::npos);
  EXPECT_EQ(m, nullptr);
  kiln_tokenizer *t = nullptr;
  EXPECT_NE(messageOf(kiln_tokenizer_load("/nonexistent/tokenizer.json", &t)).find("cannot open"), std::string::npos);
  EXPECT_EQ(t, nullptr);
}

TEST(CApi, TokenizesAndDetokenizes) {
  kiln_tokenizer *t = nullptr;
  ASSERT_EQ(messageOf(kiln_tokenizer_load(kTok.c_str(), &t)), "");
  const char *text = "The quick brown fox, 12:45.";
  size_t n = 0;
  // Asking with no room gives the count.
  ASSERT_EQ(messageOf(kiln_tokenize(t, text, strlen(text), nullptr, 0, &n)), "");
  ASSERT_GT(n, 3u);
  std::vector<int64_t> ids(n);
  ASSERT_EQ(messageOf(kiln_tokenize(t, text, strlen(text), ids.data(), ids.size(), &n)), "");
  char back[256];
  size_t len = 0;
  ASSERT_EQ(messageOf(kiln_detokenize(t, ids.data(), ids.size(), back, sizeof(back), &len)), "");
  EXPECT_EQ(std::string(back, len), text);
  // Too small a buffer: truncated, NUL-terminated, the full length reported.
  char small[5];
  ASSERT_EQ(messageOf(kiln_detokenize(t, ids.data(), ids.size(), small, sizeof(small), &len)), "");
  EXPECT_EQ(len, strlen(text));
  EXPECT_EQ(std::string(small), "The ");
  int64_t bad = 1 << 20;
  EXPECT_NE(messageOf(kiln_detokenize(t, &bad, 1, back, sizeof(back), &len)).find("not in the vocabulary"),
            std::string::npos);
  kiln_tokenizer_free(t);

  kiln::api::Tokenizer cpp;
  ASSERT_EQ(cpp.load(kTok), "");
  std::vector<int64_t> ids2;
  ASSERT_EQ(cpp.encode(text, ids2), "");
  EXPECT_EQ(ids2, ids);
  std::string s;
  ASSERT_EQ(cpp.decode(ids2, s), "");
  EXPECT_EQ(s, text);
}
