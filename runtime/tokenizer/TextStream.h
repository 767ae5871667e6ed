//===- TextStream.h - generated tokens as text, with stop strings -*- C++ -*-===//
//
// The text of a request's generated tokens as they come, for streaming and
// for stop strings (what an OpenAI-style `stop` asks for): each push returns
// the text newly ready to show and says when a stop string has appeared.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TOKENIZER_TEXTSTREAM_H
#define KILN_RUNTIME_TOKENIZER_TEXTSTREAM_H

#include "runtime/tokenizer/Tokenizer.h"

#include <string>
#include <vector>

namespace kiln::tok {

/// Text of a growing list of token ids. What push() returns never ends in
/// a character still incomplete (trailing U+FFFD, which the decoders give
/// for a character whose bytes span tokens until its last byte comes) nor
/// in text that may still become a stop string; once a stop string appears
/// the text ends before it (the earliest such place; of stop strings
/// beginning there, the shortest) and the stream takes no more tokens.
/// Every push decodes all the ids again (the decoders' rules, such as a
/// stripped leading space, apply to the whole text): a push costs the text
/// so far. Text once returned stands: should a later decode change it (no
/// tokenizer kiln reads does), the stream goes on from its length.
class TextStream {
public:
  /// `stops`: the stop strings (empty ones are ignored); `skipSpecial`:
  /// special added tokens (end-of-sequence, chat markers) give no text.
  TextStream(const Tokenizer &tokenizer, std::vector<std::string> stops, bool skipSpecial = true);
  /// The same, keeping the special tokens `keepSpecial` names (as text)
  /// where the others are skipped.
  TextStream(const Tokenizer &tokenizer, std::vector<std::string> stops, bool skipSpecial,
             std::vector<int64_t> keepSpecial);

  /// Adds `id`; `ready` is set to the text it makes ready (may be empty),
  /// `stopped` to whether a stop string now ends the text. An id outside
  /// the vocabulary, or a push after a stop, is an error (nothing added).
  Status push(int64_t id, std::string &ready, bool &stopped);
  /// The text held back at the end (an incomplete character or the start
  /// of a stop string), released as it is: call when the tokens end for
  /// another reason (length, end of sequence, cancellation). Empty after a
  /// stop.
  std::string finish();

  /// Everything push() and finish() returned, in order.
  const std::string &text() const { return emitted_; }
  /// The stop string that ended the text, or empty.
  const std::string &stoppedBy() const { return stoppedBy_; }
  bool stopped() const { return !stoppedBy_.empty(); }
  const std::vector<int64_t> &ids() const { return ids_; }

private:
  const Tokenizer &tokenizer_;
  std::vector<std::string> stops_;
  bool skipSpecial_;
  std::vector<int64_t> keep_;
  std::vector<int64_t> ids_;
  std::string full_;     // the decoded text of ids_
  std::string emitted_;  // returned so far: a prefix of full_
  std::string stoppedBy_;
};

} // namespace kiln::tok

#endif
