//===- Generate.h - pages, sampling and the step loop -----------*- C++ -*-===//
#ifndef KILN_RUNTIME_CORE_GENERATE_H
#define KILN_RUNTIME_CORE_GENERATE_H

#include "runtime/core/Model.h"
#include "runtime/kernels/host/HostKernels.h"

#include <functional>
#include <map>
#include <vector>

namespace kiln::rt {

/// The KV pool's pages: a free list and each sequence's block table.
class BlockManager {
public:
  explicit BlockManager(int64_t pages, int64_t pageSize);
  /// Gives sequence `seq` pages for `tokens` tokens in all; an error (and
  /// nothing changed) when the pool cannot.
  Status reserve(int64_t seq, int64_t tokens);
  void release(int64_t seq);
  const std::vector<int32_t> &table(int64_t seq) const;
  int64_t freePages() const { return static_cast<int64_t>(free_.size()); }
  int64_t pageSize() const { return pageSize_; }

private:
  int64_t pageSize_;
  std::vector<int32_t> free_;
  std::map<int64_t, std::vector<int32_t>> tables_;
};

struct GenerateOptions {
  int64_t maxTokens = 32;
  int64_t minTokens = 0; // end-of-sequence ids are masked until this many
  host::SamplingParams sampling;
  uint64_t seed = 0;
  std::vector<int64_t> stop; // besides the model's end-of-sequence ids
  bool ignoreEos = false;     // generate maxTokens whatever comes (benchmarks)
  /// Called with (sequence, token) as each token is made; false stops that sequence.
  std::function<bool(size_t, int64_t)> onToken;
};

/// Generates for each prompt: prefill (in chunks of the engine's
/// max_num_tokens), then decode steps over every unfinished sequence at once.
/// `firstLogits`, when given, receives each prompt's last-position logits.
Status generate(Model &model, const std::vector<std::vector<int64_t>> &prompts, const GenerateOptions &options,
                std::vector<std::vector<int64_t>> &outputs, std::vector<std::vector<float>> *firstLogits = nullptr);

} // namespace kiln::rt

#endif
