//===- Tokenizer.h - tokenizer.json: BPE encode and decode ------*- C++ -*-===//
//
// Reads a Hugging Face `tokenizer.json` and encodes and decodes as the
// `tokenizers` library does, for the BPE tokenizers of the models kiln runs:
//
//   byte-level BPE (GPT-2, Llama 3, Qwen2): a ByteLevel pre-tokenizer (with
//     its GPT-2 split, or after a regex Split), bytes mapped to printable
//     code points, merges by rank (`ignore_merges` honoured);
//   SentencePiece-style BPE (Llama 2, Mistral): Prepend/Replace normalizers
//     or a Metaspace pre-tokenizer, `byte_fallback` to <0xXX> tokens;
//
// plus added tokens (matched in the raw text before anything else) and the
// decoders these use (ByteLevel, Replace, ByteFallback, Fuse, Strip,
// Metaspace). A component or option outside this set is an error at load
// naming it. Checked against `tokenizers` on a multilingual corpus
// (test/tokenizer). Immutable after load: safe to share between threads.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TOKENIZER_TOKENIZER_H
#define KILN_RUNTIME_TOKENIZER_TOKENIZER_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::tok {

class Tokenizer {
public:
  Tokenizer();
  ~Tokenizer();
  Tokenizer(Tokenizer &&) noexcept;
  Tokenizer &operator=(Tokenizer &&) noexcept;

  /// Loads `path` (a tokenizer.json); errors name the file and the part.
  static Status load(const std::string &path, Tokenizer &out);
  /// The same from the file's text; `source` names it in errors.
  static Status parse(std::string_view json, const std::string &source, Tokenizer &out);

  /// Token ids of `text` (no BOS/EOS added).
  Status encode(std::string_view text, std::vector<int64_t> &ids) const;
  /// Text of `ids`; special added tokens are left out when `skipSpecial`.
  Status decode(const std::vector<int64_t> &ids, std::string &text, bool skipSpecial = false) const;
  /// The same, keeping the special tokens `keep` names where the others are
  /// skipped (a tool-call marker the server parses).
  Status decode(const std::vector<int64_t> &ids, std::string &text, bool skipSpecial,
                const std::vector<int64_t> &keep) const;

  int64_t vocabSize() const;
  /// The id of a token's text (vocab or added), or -1.
  int64_t tokenId(std::string_view token) const;

  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
};

} // namespace kiln::tok

#endif
