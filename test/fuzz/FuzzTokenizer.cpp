//===- FuzzTokenizer.cpp - libFuzzer target for tokenizer.json ------------===//
//
// A tokenizer.json from the fuzzer: loading either fails with a Status or
// gives a tokenizer that encodes and decodes text (including its own
// vocabulary) without crashing.
//
//===----------------------------------------------------------------------===//
#include "runtime/tokenizer/Tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::tok::Tokenizer t;
  if (!kiln::tok::Tokenizer::parse(std::string_view(reinterpret_cast<const char *>(data), size), "fuzz", t).isOk())
    return 0;
  std::vector<int64_t> ids;
  if (t.encode("Hello, wörld! 123 日本 \xF0\x9F\x98\x80\xff", ids).isOk()) {
    std::string text;
    (void)t.decode(ids, text);
  }
  std::vector<int64_t> all;
  for (int64_t i = 0; i < t.vocabSize() && i < 512; ++i)
    all.push_back(i);
  std::string text;
  (void)t.decode(all, text, true);
  return 0;
}
