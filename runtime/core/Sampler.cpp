//===- Sampler.cpp - penalty entries for the GPU sampler ---------------===//
#include "runtime/core/Sampler.h"

#include <algorithm>

namespace kiln::rt {

namespace {

bool valid(int64_t t) { return t >= 0 && t <= INT32_MAX; }

// The entry of token `t` in `sorted`, made where absent.
SamplePenalty &entryOf(std::vector<SamplePenalty> &sorted, int64_t t) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), t,
                             [](const SamplePenalty &e, int64_t token) { return e.token < token; });
  if (it == sorted.end() || it->token != t)
    it = sorted.insert(it, SamplePenalty{static_cast<int32_t>(t), 0, 0, 0.0f});
  return *it;
}

} // namespace

void PenaltyTable::extend(const host::SamplingParams &p, const std::vector<int64_t> &tokens, size_t promptLen) {
  const bool seen = p.repetitionPenalty != 1.0f, counted = p.frequencyPenalty != 0.0f || p.presencePenalty != 0.0f;
  // A few tokens (a decode step's one) go in where they belong; many (a
  // prompt) are appended, sorted and merged once.
  const bool bulk = tokens.size() - folded_ > 16;
  for (; folded_ < tokens.size(); ++folded_) {
    const int64_t t = tokens[folded_];
    const bool output = folded_ >= promptLen;
    if (!valid(t) || !(seen || (counted && output)))
      continue;
    SamplePenalty add{static_cast<int32_t>(t), counted && output ? 1 : 0, seen ? kPenaltySeen : 0, 0.0f};
    if (bulk) {
      sorted_.push_back(add);
      continue;
    }
    SamplePenalty &e = entryOf(sorted_, t);
    e.flags |= add.flags;
    e.count += add.count;
  }
  if (!bulk)
    return;
  std::sort(sorted_.begin(), sorted_.end(), [](const SamplePenalty &a, const SamplePenalty &b) {
    return a.token < b.token;
  });
  size_t kept = 0;
  for (size_t i = 0; i < sorted_.size(); ++i) {
    if (kept > 0 && sorted_[kept - 1].token == sorted_[i].token) {
      sorted_[kept - 1].flags |= sorted_[i].flags;
      sorted_[kept - 1].count += sorted_[i].count;
    } else {
      sorted_[kept++] = sorted_[i];
    }
  }
  sorted_.resize(kept);
}

std::vector<SamplePenalty> PenaltyTable::entries(const std::vector<int64_t> &banned) const {
  std::vector<SamplePenalty> out = sorted_;
  for (int64_t t : banned)
    if (valid(t))
      entryOf(out, t).flags |= kPenaltyBan;
  return out;
}

std::vector<SamplePenalty> penaltyEntries(const host::SamplingParams &p, const std::vector<int64_t> &tokens,
                                          int64_t generated, const std::vector<int64_t> &banned) {
  PenaltyTable table;
  table.extend(p, tokens, tokens.size() - static_cast<size_t>(std::clamp<int64_t>(generated, 0, tokens.size())));
  return table.entries(banned);
}

} // namespace kiln::rt
