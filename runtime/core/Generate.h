//===- Generate.h - pages, sampling and the step loop -----------*- C++ -*-===//
#ifndef KILN_RUNTIME_CORE_GENERATE_H
#define KILN_RUNTIME_CORE_GENERATE_H

#include "runtime/core/BlockManager.h"
#include "runtime/core/Model.h"
#include "runtime/kernels/host/HostKernels.h"

#include <functional>
#include <map>
#include <vector>

namespace kiln::rt {

struct GenerateOptions {
  int64_t maxTokens = 32;
  int64_t minTokens = 0; // end-of-sequence ids are masked until this many
  host::SamplingParams sampling;
  /// Sampling draws: Philox keyed by a prompt's seed at the position of the
  /// token drawn (host::counterUniform), so a prompt's tokens depend only on
  /// its seed, never on the other prompts or the batching; the same prompt
  /// with the same seed samples the same tokens. `seeds`: one per prompt,
  /// or empty for `seed` for all.
  uint64_t seed = 0;
  std::vector<uint64_t> seeds;
  std::vector<int64_t> stop; // besides the model's end-of-sequence ids
  bool ignoreEos = false;     // generate maxTokens whatever comes (benchmarks)
  /// Called with (sequence, token) as each token is made; false stops that sequence.
  std::function<bool(size_t, int64_t)> onToken;
  /// Reuse the KV pages of prompt prefixes already computed (by earlier
  /// calls on the model, this call's earlier prompts, or a preempted
  /// sequence's own); false neither looks them up nor adds any.
  bool prefixCaching = true;
  /// Greedy decoding with nothing waiting to be admitted launches each
  /// decode step before the previous one's tokens are back (its ids read
  /// on the device), so the GPU does not wait for the host between steps.
  /// Tokens are the same either way; a step launched for a sequence that
  /// then finishes is discarded.
  bool lookahead = true;
  /// Decode waits while any admitted prompt is still prefilling (no
  /// token budget shared with decode): the prompts admitted together
  /// decode together from their first step, as a batched benchmark
  /// (`kiln-run --bench --batch`, llama-batched-bench) times them. Serving
  /// keeps it off: running sequences would stall behind long prompts.
  bool prefillFirst = false;
};

/// What the step loop did, per prompt and in all.
struct GenerateReport {
  std::vector<Status> status;        // per prompt: ok, or why it was refused or cut short
  std::vector<int64_t> cachedTokens; // per prompt: tokens whose KV came from the prefix cache
  int64_t prefillTokens = 0;         // tokens prefilled (cached ones excluded)
  int64_t decodeSteps = 0, largestBatch = 0;
  int64_t aheadSteps = 0;            // decode steps launched before the previous one's tokens were back
  int64_t discardedRows = 0;         // rows of those for sequences that had finished
  int64_t preemptions = 0;           // sequences evicted to free pages, later resumed
  int64_t waits = 0;                 // admissions deferred for want of pages
  int64_t pageCopies = 0;            // copy-on-write copies of shared pages
  int64_t prefillSteps = 0;          // prefill steps (a prompt takes one per chunk)
  int64_t prefixWaits = 0;           // admissions deferred for pages another prompt was about to write
  /// The most prompt tokens prefilled between two decode steps while other
  /// sequences were running: at most max_num_tokens, however long a prompt.
  int64_t longestPrefillBetweenDecodes = 0;
};

/// Generates for each prompt with continuous batching: a prompt is admitted
/// when a batch slot and the pages for it are free (sharing the cached
/// pages of a prefix it begins with), then each iteration prefills the
/// admitted prompts within a token budget -- the engine's max_num_tokens
/// less one decode token per running sequence, at least one -- and runs one
/// decode step of every running sequence, at most max_batch sequences at a
/// time: a long prompt is prefilled in chunks between decode steps, never
/// stalling the running ones for more than one budget. A finished sequence
/// frees its slot and pages at once for the next prompt. When a running
/// sequence needs a page and none is free, a prompt still prefilling gives
/// its pages back first (the most recently admitted), then the most
/// recently admitted other running sequence is preempted: its pages are
/// released (its prefix stays cached) and it resumes later from its
/// tokens, so no work is lost. A prompt that cannot fit even alone is
/// refused (its status in `report`) while the others complete; the call
/// then returns the first such error. `firstLogits`, when given, receives
/// each prompt's last-position logits.
Status generate(Model &model, const std::vector<std::vector<int64_t>> &prompts, const GenerateOptions &options,
                std::vector<std::vector<int64_t>> &outputs, std::vector<std::vector<float>> *firstLogits = nullptr,
                GenerateReport *report = nullptr);

} // namespace kiln::rt

#endif
