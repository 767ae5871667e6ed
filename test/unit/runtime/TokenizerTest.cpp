//===- TokenizerTest.cpp - the regex subset and tokenizer.json errors -----===//
//
// Encoding itself is checked against pip's tokenizers on a multilingual
// corpus (test/tokenizer/check_tokenizers.py); these pin the pieces and the
// errors.
//
//===----------------------------------------------------------------------===//
#include "runtime/tokenizer/Normalize.h"
#include "runtime/tokenizer/Regex.h"
#include "runtime/tokenizer/TextStream.h"
#include "runtime/tokenizer/Tokenizer.h"

#include <gtest/gtest.h>

#include <random>

using namespace kiln;
using namespace kiln::tok;

namespace {

std::vector<std::string> split(const char *pattern, const std::string &text) {
  Regex re;
  Status s = Regex::compile(pattern, re);
  EXPECT_TRUE(s.isOk()) << s.message();
  std::vector<uint32_t> cps = decodeUtf8(text);
  std::vector<std::pair<size_t, size_t>> m;
  s = re.findAll(cps, m);
  EXPECT_TRUE(s.isOk()) << s.message();
  std::vector<std::string> out;
  for (auto [b, e] : m) {
    std::string piece;
    for (size_t i = b; i < e; ++i)
      appendUtf8(cps[i], piece);
    out.push_back(piece);
  }
  return out;
}

const char *kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

} // namespace

TEST(Regex, SplitsAsGpt2Does) {
  EXPECT_EQ(split(kGpt2, "Hello world's 123!!"),
            (std::vector<std::string>{"Hello", " world", "'s", " 123", "!!"}));
  // \s+(?!\S) leaves the last space to the next word.
  EXPECT_EQ(split(kGpt2, "a   b"), (std::vector<std::string>{"a", "  ", " b"}));
  EXPECT_EQ(split(kGpt2, "Größe 日本語"), (std::vector<std::string>{"Größe", " 日本語"}));
}

TEST(Regex, CaseInsensitiveGroupsAndCountedRepeats) {
  const char *p = "(?i:'s|'t)|\\p{N}{1,3}|\\p{L}+";
  EXPECT_EQ(split(p, "IT'S 12345"), (std::vector<std::string>{"IT", "'S", "123", "45"}));
}

TEST(Regex, RefusesWhatItDoesNotImplement) {
  Regex re;
  for (const char *p : {"(?<=a)b", "\\p{Lu}", "(a", "a{2", "[a-", "^a", "a++"}) {
    Status s = Regex::compile(p, re);
    EXPECT_FALSE(s.isOk()) << p;
    EXPECT_NE(s.message().find("regex: "), std::string::npos) << s.message();
  }
}

TEST(Regex, StopsRunawayBacktracking) {
  Regex re;
  ASSERT_TRUE(Regex::compile("(a|aa)*c", re).isOk());
  std::vector<std::pair<size_t, size_t>> m;
  Status s = re.findAll(decodeUtf8(std::string(64, 'a')), m);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("backtracks too much"), std::string::npos) << s.message();
}

TEST(Tokenizer, ErrorsNameTheFileAndThePart) {
  Tokenizer t;
  auto error = [&](const std::string &json) {
    Status s = Tokenizer::parse(json, "tok.json", t);
    EXPECT_FALSE(s.isOk());
    return s.message();
  };
  EXPECT_NE(error("{").find("tok.json: line 1"), std::string::npos);
  EXPECT_NE(error("{\"model\": {\"type\": \"WordPiece\"}}").find("tok.json: model 'WordPiece' is not supported"),
            std::string::npos);
  EXPECT_NE(error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}")
                .find("merge 'a b' names a token not in the vocab"),
            std::string::npos);
  EXPECT_NE(error("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, "
                  "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}")
                .find("pre_tokenizer 'BertPreTokenizer' is not supported"),
            std::string::npos);
  // Ids index a table: a sparse id in a tiny file is refused, not allocated
  // (the fuzzer found 2^31 here asking for 64 GB).
  EXPECT_NE(error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2000000000}, \"merges\": []}}")
                .find("vocab entry 'b' has id 2000000000, far beyond the 2 tokens"),
            std::string::npos);
  EXPECT_NE(error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, "
                  "\"added_tokens\": [{\"id\": 900000, \"content\": \"<s>\"}]}")
                .find("added token '<s>' has id 900000"),
            std::string::npos);
}

TEST(Tokenizer, MergesByRankAndDecodes) {
  // b + c merges first (rank 0), then a + bc.
  const char *json = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "bc": 3, "abc": 4, "ab": 5},
    "merges": ["b c", "a bc", "a b"]}, "added_tokens": [{"id": 6, "content": "<eos>", "special": true}]})";
  Tokenizer t;
  ASSERT_TRUE(Tokenizer::parse(json, "t.json", t).isOk());
  std::vector<int64_t> ids;
  ASSERT_TRUE(t.encode("abcab<eos>c", ids).isOk());
  EXPECT_EQ(ids, (std::vector<int64_t>{4, 5, 6, 2}));
  std::string text;
  ASSERT_TRUE(t.decode(ids, text).isOk());
  EXPECT_EQ(text, "abcab<eos>c");
  ASSERT_TRUE(t.decode(ids, text, /*skipSpecial=*/true).isOk());
  EXPECT_EQ(text, "abcabc");
  Status s = t.encode("abd", ids);
  EXPECT_FALSE(s.isOk()); // no token for d, no unk, no byte fallback
  s = t.decode({99}, text);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("token id 99 is not in the vocabulary"), std::string::npos);
}

// Expected values from Python's unicodedata.normalize("NFC", ...): composition,
// Hangul LV and LVT, canonical reordering, singletons, a composition
// exclusion, blocked marks, a starter + starter pair, a lone mark.
TEST(Normalize, ComposesAsUnicodeNfc) {
  const std::pair<const char *, const char *> cases[] = {
      {"e\u0301", "\u00e9"},
      {"\u1100\u1161\u11a8", "\uac01"},
      {"\u1100\u1161", "\uac00"},
      {"q\u0307\u0323", "q\u0323\u0307"},
      {"\u212b", "\u00c5"},
      {"\u0958", "\u0915\u093c"},
      {"a\u0308\u0301", "\u00e4\u0301"},
      {"\u0344", "\u0308\u0301"},
      {"A\u030a\u0301", "\u01fa"},
      {"\u0b47\u0b3e", "\u0b4b"},
      {"\u00e9\u0327", "\u0229\u0301"},
      {"\u1e0b\u0323", "\u1e0d\u0307"},
      {"x\u0301\u0301", "x\u0301\u0301"},
      {"\u0301e", "\u0301e"},
      {"Tie\u0302\u0301ng Vie\u0323\u0302t", "Ti\u1ebfng Vi\u1ec7t"},
      {"\U0001d15e", "\U0001d157\U0001d165"},
      {"\u304b\u3099", "\u304c"},
  };
  for (const auto &[in, want] : cases)
    EXPECT_EQ(tok::toNfc(in), want) << in;
  EXPECT_EQ(tok::toNfc("plain ascii"), "plain ascii");
  // Bytes that are not UTF-8 pass through; text around them is composed.
  EXPECT_EQ(tok::toNfc(std::string("e\u0301\xff") + "e\u0301"), std::string("\u00e9\xff") + "\u00e9");
}

// ---- TextStream: generated tokens as text, with stop strings -------------

namespace {

const std::string kLlamaTok = std::string(KILN_SOURCE_DIR) + "/test/models/hf/llama/tokenizer.json";

/// Pushes every id; returns the chunks (finish()'s last unless stopped).
std::vector<std::string> streamAll(TextStream &s, const std::vector<int64_t> &ids) {
  std::vector<std::string> chunks;
  for (int64_t id : ids) {
    std::string ready;
    bool stopped = false;
    Status st = s.push(id, ready, stopped);
    EXPECT_TRUE(st.isOk()) << st.message();
    chunks.push_back(ready);
    if (stopped)
      return chunks;
  }
  chunks.push_back(s.finish());
  return chunks;
}

bool validUtf8(const std::string &s) {
  std::string again;
  for (uint32_t c : decodeUtf8(s))
    appendUtf8(c, again);
  return again == s && s.find("\xEF\xBF\xBD") == std::string::npos;
}

} // namespace

TEST(TextStream, ReturnsWholeCharactersThatAddUpToTheText) {
  Tokenizer t;
  ASSERT_TRUE(Tokenizer::load(kLlamaTok, t).isOk());
  // Characters of 2-4 bytes, which a 512-token byte-level vocabulary
  // splits over several tokens.
  const std::string text = "Grüße, 日本語のテキスト 🙂🚀 and ascii; ünïcödé ∑∫ done.";
  std::vector<int64_t> ids;
  ASSERT_TRUE(t.encode(text, ids).isOk());
  ASSERT_GT(ids.size(), 20u);
  TextStream s(t, {});
  std::vector<std::string> chunks = streamAll(s, ids);
  std::string joined;
  size_t split = 0;
  for (const std::string &c : chunks) {
    EXPECT_TRUE(validUtf8(c)) << "chunk '" << c << "'";
    joined += c;
    split += c.empty();
  }
  EXPECT_EQ(joined, text);
  EXPECT_EQ(s.text(), text);
  EXPECT_GT(split, 0u); // some tokens ended inside a character and waited
  EXPECT_FALSE(s.stopped());
}

TEST(TextStream, EndsBeforeTheEarliestStopStringAndHoldsBackItsStart) {
  Tokenizer t;
  ASSERT_TRUE(Tokenizer::load(kLlamaTok, t).isOk());
  std::vector<int64_t> ids;
  ASSERT_TRUE(t.encode("Hello world. The end. Then more text", ids).isOk());
  TextStream s(t, {"more", "The end", ""});
  std::vector<std::string> chunks = streamAll(s, ids);
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.stoppedBy(), "The end");
  EXPECT_EQ(s.text(), "Hello world. ");
  std::string joined;
  for (const std::string &c : chunks) {
    joined += c;
    // Never a piece of the stop string, even for a moment.
    EXPECT_EQ(joined.find('T'), std::string::npos) << joined;
  }
  EXPECT_EQ(s.finish(), "");
  std::string ready;
  bool stopped = false;
  Status st = s.push(ids[0], ready, stopped);
  EXPECT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("after the stop string 'The end'"), std::string::npos);

  // A stop string's start at the end is held back, and released by finish().
  ASSERT_TRUE(t.encode("abc xy", ids).isOk());
  TextStream p(t, {"xyz"});
  streamAll(p, ids);
  EXPECT_FALSE(p.stopped());
  EXPECT_EQ(p.text(), "abc xy");

  // Ids outside the vocabulary are refused and leave the stream as it was.
  TextStream q(t, {});
  EXPECT_FALSE(q.push(t.vocabSize() + 5, ready, stopped).isOk());
  EXPECT_TRUE(q.ids().empty());
}

TEST(TextStream, MatchesTheTextCutAtTheFirstStopForRandomStreams) {
  Tokenizer t;
  ASSERT_TRUE(Tokenizer::load(kLlamaTok, t).isOk());
  std::mt19937 rng(11);
  const std::vector<std::string> alphabet = {"a", "b", " ", "ab", "é", "日", "🙂", ".", "\n"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i)
      text += alphabet[rng() % alphabet.size()];
    std::vector<int64_t> ids;
    ASSERT_TRUE(t.encode(text, ids).isOk());
    std::string decoded;
    ASSERT_TRUE(t.decode(ids, decoded, true).isOk());
    // Stop strings: pieces of the text (some hit) and of the alphabet.
    std::vector<std::string> stops;
    for (int k = static_cast<int>(rng() % 3); k > 0; --k) {
      std::string stop;
      for (int i = 1 + static_cast<int>(rng() % 3); i > 0; --i)
        stop += alphabet[rng() % alphabet.size()];
      stops.push_back(stop);
    }
    size_t at = std::string::npos, len = 0;
    std::string by;
    for (const std::string &stop : stops) {
      size_t p = decoded.find(stop);
      if (p != std::string::npos && (p < at || (p == at && stop.size() < len))) {
        at = p;
        len = stop.size();
        by = stop;
      }
    }
    TextStream s(t, stops);
    std::string joined;
    for (const std::string &c : streamAll(s, ids)) {
      EXPECT_TRUE(validUtf8(c));
      joined += c;
    }
    EXPECT_EQ(joined, at == std::string::npos ? decoded : decoded.substr(0, at)) << "trial " << trial;
    EXPECT_EQ(s.stoppedBy(), by) << "trial " << trial;
  }
}

TEST(TextStream, HoldsAByteFallbackCharacterUntilItIsWhole) {
  Tokenizer t;
  ASSERT_TRUE(Tokenizer::load(std::string(KILN_SOURCE_DIR) + "/test/fuzz/corpus/tokenizer/llama2.json", t).isOk());
  // <0xC3> alone is the start of a two-byte character: nothing yet; a
  // token that is not a byte ends it as U+FFFD, then shown. (This file
  // marks its byte tokens special: kept here.)
  TextStream s(t, {}, /*skipSpecial=*/false);
  std::string ready;
  bool stopped = false;
  ASSERT_TRUE(s.push(t.tokenId("<0xC3>"), ready, stopped).isOk());
  EXPECT_EQ(ready, "");
  ASSERT_TRUE(s.push(t.tokenId("a"), ready, stopped).isOk());
  EXPECT_EQ(ready, "\xEF\xBF\xBD" "a");
  // An incomplete character at the end comes out with finish().
  TextStream e(t, {}, /*skipSpecial=*/false);
  ASSERT_TRUE(e.push(t.tokenId("b"), ready, stopped).isOk());
  EXPECT_EQ(ready, "b");
  ASSERT_TRUE(e.push(t.tokenId("<0xC3>"), ready, stopped).isOk());
  EXPECT_EQ(ready, "");
  EXPECT_EQ(e.finish(), "\xEF\xBF\xBD");
  EXPECT_EQ(e.text(), "b\xEF\xBF\xBD");
}

// Ill-formed UTF-8 as Python's bytes.decode("utf-8", "replace") and Rust's
// from_utf8_lossy decode it: one U+FFFD per maximal start of a well-formed
// sequence, one per byte that starts none (overlongs, surrogates, past
// U+10FFFF, stray continuations).
TEST(Utf8, SubstitutesMaximalSubpartsAsTheTokenizersLibraryDoes) {
  const std::pair<std::string, std::string> cases[] = {
      {"a\xE3\x81" "b", "a\uFFFD" "b"},          // a truncated 3-byte character: one
      {"\xF0\x9F\x99" "x", "\uFFFD" "x"},        // a truncated 4-byte one: one
      {"\xE3\x81", "\uFFFD"},                    // truncated at the end
      {"\xC0\xAF", "\uFFFD\uFFFD"},              // overlong: each byte
      {"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},    // a surrogate: each byte
      {"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"}, // past U+10FFFF
      {"\x80\xBF", "\uFFFD\uFFFD"},              // stray continuations
      {"\xE0\xA0\x80", "\u0800"},                // the smallest 3-byte character
      {"\xF0\x9F\x99\x82", "\U0001F642"},
  };
  for (const auto &[in, want] : cases) {
    std::string got;
    for (uint32_t c : decodeUtf8(in))
      appendUtf8(c, got);
    EXPECT_EQ(got, want);
  }
}

TEST(TextStream, KeepsTheSpecialTokensItIsToldToKeep) {
  // A tool-call marker kept as text (kiln-serve's mistral parser) while the
  // end-of-sequence token, special too, is still skipped.
  const char *json = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "[": 2}, "merges": []},
    "added_tokens": [{"id": 3, "content": "[TOOL_CALLS]", "special": true},
                     {"id": 4, "content": "</s>", "special": true}]})";
  Tokenizer t;
  ASSERT_TRUE(Tokenizer::parse(json, "test", t).isOk());
  ASSERT_EQ(t.tokenId("[TOOL_CALLS]"), 3);
  const std::vector<int64_t> ids{0, 3, 2, 1, 4};
  TextStream plain(t, {}), kept(t, {}, true, {3});
  auto join = [](const std::vector<std::string> &chunks) {
    std::string s;
    for (const std::string &c : chunks)
      s += c;
    return s;
  };
  EXPECT_EQ(join(streamAll(plain, ids)), "a[b");
  EXPECT_EQ(join(streamAll(kept, ids)), "a[TOOL_CALLS][b");
  std::string all;
  ASSERT_TRUE(t.decode(ids, all).isOk());
  EXPECT_EQ(all, "a[TOOL_CALLS][b</s>");
}
