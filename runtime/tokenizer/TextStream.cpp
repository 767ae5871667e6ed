//===- TextStream.cpp - generated tokens as text, with stop strings -------===//
#include "runtime/tokenizer/TextStream.h"

#include <algorithm>

namespace kiln::tok {

namespace {

constexpr const char kReplacement[] = "\xEF\xBF\xBD"; // U+FFFD

/// Bytes at the end of `s` (from `from` on) that are U+FFFD: a character
/// the decoders could not finish yet.
size_t trailingReplacements(const std::string &s, size_t from) {
  size_t end = s.size();
  while (end >= from + 3 && s.compare(end - 3, 3, kReplacement) == 0)
    end -= 3;
  return s.size() - end;
}

/// The longest suffix of s[from, end) that is a proper prefix of one of
/// `stops`.
size_t partialStop(const std::string &s, size_t from, size_t end, const std::vector<std::string> &stops) {
  size_t best = 0;
  for (const std::string &stop : stops)
    for (size_t n = std::min(stop.size() - 1, end - from); n > best; --n)
      if (s.compare(end - n, n, stop, 0, n) == 0) {
        best = n;
        break;
      }
  return best;
}

} // namespace

TextStream::TextStream(const Tokenizer &tokenizer, std::vector<std::string> stops, bool skipSpecial)
    : TextStream(tokenizer, std::move(stops), skipSpecial, {}) {}

TextStream::TextStream(const Tokenizer &tokenizer, std::vector<std::string> stops, bool skipSpecial,
                       std::vector<int64_t> keepSpecial)
    : tokenizer_(tokenizer), skipSpecial_(skipSpecial), keep_(std::move(keepSpecial)) {
  for (std::string &s : stops)
    if (!s.empty())
      stops_.push_back(std::move(s));
}

Status TextStream::push(int64_t id, std::string &ready, bool &stopped) {
  ready.clear();
  stopped = false;
  if (!stoppedBy_.empty())
    return Status::error("text stream: a token after the stop string '" + stoppedBy_ + "'");
  ids_.push_back(id);
  std::string full;
  if (Status s = tokenizer_.decode(ids_, full, skipSpecial_, keep_); !s) {
    ids_.pop_back();
    return s;
  }
  full_ = std::move(full);
  // Text already returned stands (see the header); new text starts there.
  size_t from = emitted_.size();
  if (full_.size() < from || full_.compare(0, from, emitted_) != 0)
    full_ = emitted_ + (full_.size() > from ? full_.substr(from) : std::string());
  // A stop string can only begin where returned text ends: any earlier
  // start was a partial match, held back.
  size_t at = std::string::npos, len = 0;
  for (const std::string &stop : stops_) {
    size_t p = full_.find(stop, from);
    if (p != std::string::npos && (p < at || (p == at && stop.size() < len))) {
      at = p;
      len = stop.size();
      stoppedBy_ = stop;
    }
  }
  if (at != std::string::npos) {
    ready = full_.substr(from, at - from);
    emitted_ += ready;
    stopped = true;
    return Status::ok();
  }
  // Held back: trailing U+FFFD (a character not yet whole) and, before
  // them, the longest start of a stop string.
  size_t pending = trailingReplacements(full_, from);
  size_t hold = pending + partialStop(full_, from, full_.size() - pending, stops_);
  if (full_.size() - hold > from)
    ready = full_.substr(from, full_.size() - hold - from);
  emitted_ += ready;
  return Status::ok();
}

std::string TextStream::finish() {
  if (!stoppedBy_.empty() || full_.size() <= emitted_.size())
    return std::string();
  std::string rest = full_.substr(emitted_.size());
  emitted_ += rest;
  return rest;
}

} // namespace kiln::tok
