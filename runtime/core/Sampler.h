//===- Sampler.h - the engine's GPU sampler, from the host's side -*- C++ -*-===//
//
// Every engine carries a sampling kernel (codegen/cuda/sampling.cuh): one
// block per row of a step's logits draws the row's next token as the host
// kernels do (runtime/kernels/host/Sampling.cpp) -- penalties, greedy or
// temperature with top-k, top-p and min-p, the request's Philox draw at the
// token's position, log-probabilities -- so only the tokens come back.
// These are the kernel's parameter records (the layouts match the device's)
// and how a request's penalties become entries.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CORE_SAMPLER_H
#define KILN_RUNTIME_CORE_SAMPLER_H

#include "runtime/kernels/host/HostKernels.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace kiln::rt {

/// kiln::SampleRow: one row's parameters.
struct SampleRow {
  float temperature, topP, minP, repetition, frequency, presence;
  int32_t topK, penBegin, penEnd, topN;
  uint64_t seed, position;
  int32_t flags, pad;
};
static_assert(sizeof(SampleRow) == 64, "SampleRow must match kiln::SampleRow");

/// kiln::SamplePenalty: a token a row's penalties touch.
struct SamplePenalty {
  int32_t token;
  int32_t count; // in the output: frequency and presence
  int32_t flags; // kPenaltySeen (repetition), kPenaltyBan (-inf)
  float value;   // the kernel's
};
static_assert(sizeof(SamplePenalty) == 16, "SamplePenalty must match kiln::SamplePenalty");

/// kiln::SampleTop: one of the top log-probabilities.
struct SampleTop {
  int64_t token;
  float logprob;
  int32_t pad;
};
static_assert(sizeof(SampleTop) == 16, "SampleTop must match kiln::SampleTop");

constexpr int32_t kSampleLogprobs = 1;
constexpr int32_t kPenaltySeen = 1, kPenaltyBan = 2;
/// The most top log-probabilities a row may ask for (OpenAI's limit).
constexpr int64_t kMaxTopLogprobs = 20;

/// What one row of a step's logits is sampled with.
struct SampleSpec {
  host::SamplingParams params;
  uint64_t seed = 0, position = 0; // the draw: counterUniform(seed, position)
  bool logprobs = false;
  int64_t topLogprobs = 0;
  std::vector<SamplePenalty> penalties; // sorted by token, each token once
};

struct Sampled {
  int64_t token = 0;
  float logprob = 0.0f;                          // with logprobs
  std::vector<std::pair<int64_t, float>> top;    // with topLogprobs, most likely first
};

/// A request's penalty entries, kept as its tokens grow: each step folds in
/// only the tokens added since the last (a decode step adds one), not the
/// whole history again.
class PenaltyTable {
public:
  /// Folds in the tokens of `tokens` not folded yet; those from `promptLen`
  /// on are the output's (frequency and presence count them). `p` must be
  /// the same on every call.
  void extend(const host::SamplingParams &p, const std::vector<int64_t> &tokens, size_t promptLen);
  /// The entries, with the `banned` ids (-inf) added: what
  /// host::applyPenalties and the ban would change, each token once, sorted.
  std::vector<SamplePenalty> entries(const std::vector<int64_t> &banned) const;

private:
  std::vector<SamplePenalty> sorted_;
  size_t folded_ = 0;
};

/// The entries for `p`'s penalties over `tokens` (the prompt, then the
/// `generated` tokens of the output) and the `banned` ids, in one go.
std::vector<SamplePenalty> penaltyEntries(const host::SamplingParams &p, const std::vector<int64_t> &tokens,
                                          int64_t generated, const std::vector<int64_t> &banned);

} // namespace kiln::rt

#endif
