//===- Sampler.cpp - penalty entries for the GPU sampler ---------------===//
#include "runtime/core/Sampler.h"

#include <algorithm>
#include <map>

namespace kiln::rt {

std::vector<SamplePenalty> penaltyEntries(const host::SamplingParams &p, const std::vector<int64_t> &tokens,
                                          int64_t generated, const std::vector<int64_t> &banned) {
  std::map<int64_t, SamplePenalty> at;
  auto entry = [&](int64_t t) -> SamplePenalty & {
    auto [it, fresh] = at.try_emplace(t, SamplePenalty{static_cast<int32_t>(t), 0, 0, 0.0f});
    return it->second;
  };
  auto valid = [](int64_t t) { return t >= 0 && t <= INT32_MAX; };
  if (p.repetitionPenalty != 1.0f)
    for (int64_t t : tokens)
      if (valid(t))
        entry(t).flags |= kPenaltySeen;
  if (p.frequencyPenalty != 0.0f || p.presencePenalty != 0.0f) {
    size_t first = tokens.size() - static_cast<size_t>(std::clamp<int64_t>(generated, 0, tokens.size()));
    for (size_t i = first; i < tokens.size(); ++i)
      if (valid(tokens[i]))
        ++entry(tokens[i]).count;
  }
  for (int64_t t : banned)
    if (valid(t))
      entry(t).flags |= kPenaltyBan;
  std::vector<SamplePenalty> out;
  out.reserve(at.size());
  for (auto &[t, e] : at)
    out.push_back(e);
  return out;
}

} // namespace kiln::rt
