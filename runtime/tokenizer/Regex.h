//===- Regex.h - the regex subset tokenizer pre-tokenizers use -*- C++ -*-===//
//
// A backtracking matcher over Unicode code points for the patterns
// tokenizer.json files carry (GPT-2, Llama 3, Qwen2 splits): alternation,
// groups `(?:...)` and `(?i:...)`, classes with ranges, negation, `\p{L}`,
// `\p{N}`, `\s`, `\S`, `\d`, `\w`, escapes, quantifiers `? * + {m,n}` (greedy
// or lazy), `.`, and lookahead `(?=...)`, `(?!...)`. Alternatives are tried
// leftmost-first, as Oniguruma and fancy-regex do. An unsupported construct
// is an error naming it, never a silent mismatch.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TOKENIZER_REGEX_H
#define KILN_RUNTIME_TOKENIZER_REGEX_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::tok {

/// UTF-8 to code points; each maximal start of a well-formed sequence that
/// does not finish, and each byte that starts none, becomes one U+FFFD (the
/// Unicode standard's practice, Rust's from_utf8_lossy's).
std::vector<uint32_t> decodeUtf8(std::string_view s);
void appendUtf8(uint32_t cp, std::string &out);

bool isLetter(uint32_t cp);
bool isNumber(uint32_t cp);
bool isWhitespace(uint32_t cp);

class Regex {
public:
  Regex();
  ~Regex();
  Regex(Regex &&) noexcept;
  Regex &operator=(Regex &&) noexcept;
  static Status compile(std::string_view pattern, Regex &out);
  /// Non-overlapping leftmost matches as [begin, end) code point offsets.
  /// A pattern that backtracks without bound (more than a million steps at
  /// one position) is an error rather than a hang.
  Status findAll(const std::vector<uint32_t> &text, std::vector<std::pair<size_t, size_t>> &out) const;

  struct Node;

private:
  std::unique_ptr<Node> root_;
};

} // namespace kiln::tok

#endif
