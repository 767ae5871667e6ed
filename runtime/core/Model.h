//===- Model.h - a loaded engine: weights bound, kernels ready --*- C++ -*-===//
//
// Loading verifies the engine and its manifest, binds every weight slot by
// name from the model's safetensors (each slot's layout applied: row
// concatenation of merged projections, transposes) or from the engine's
// embedded weights, allocates the arena, the workspace and the KV pool, and
// prepares the kernels on the device. `step` runs one prefill or decode
// step as the manifest schedules it; on devices with launch graphs a decode
// step of each (batch, table width) is captured once and replayed. Not
// thread-safe: one caller at a time.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CORE_MODEL_H
#define KILN_RUNTIME_CORE_MODEL_H

#include "runtime/core/BlockManager.h"
#include "runtime/core/Device.h"
#include "runtime/core/Sampler.h"

#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace kiln::rt {

/// Programmatic dependent launch (sm_90: each kernel starts while the
/// previous one finishes). Whether it pays depends on the model and the GPU
/// (on the H100 it gains on Llama-3.1-8B and loses on Llama-3.2-1B), so by
/// default the first decode graph is captured both ways and timed, and the
/// faster one is kept for the model's life.
enum class Overlap { Auto, On, Off };
/// "auto", "on" or "off"; false for anything else.
bool parseOverlap(const std::string &text, Overlap &out);

struct LoadOptions {
  std::string weights;   // model directory with the safetensors; default: the manifest's source
  int64_t kvPages = 0;   // 0: the plan's (max_batch sequences of max_seq), within free memory
  double kvMemoryFraction = 0.9; // at most this share of free memory goes to the KV pool
  bool graphs = true;            // replay decode steps as CUDA graphs (per batch and table width)
  Overlap overlap = Overlap::Auto; // Auto needs graphs; without them it is On
  /// Sample on the GPU where the engine carries its sampler (off: the
  /// logits come back and the host samples, as on the host device).
  bool deviceSampling = true;
};

/// A kernel's launches while profiling.
struct KernelTime {
  int64_t calls = 0;
  double us = 0;            // device time, all calls
  double bytes = 0, flops = 0; // planned, all calls (each launch's own plan)
};

/// One step's inputs: `batch` sequences of `tokens` tokens, row-major.
/// Positions of -1 pad a row; context lengths count the tokens in the cache
/// after this step; block tables are `batch` rows of `maxBlocks` pages.
struct StepInput {
  int64_t batch = 0, tokens = 0, maxBlocks = 0;
  std::vector<int64_t> ids, positions;
  std::vector<int32_t> blockTables, contextLens;
};

struct StepOutput {
  int64_t vocab = 0;
  std::vector<float> logits;    // [batch, vocab]: each sequence's last position
  std::vector<int64_t> next;    // [batch]: the argmax the engine computed
};

class Model {
public:
  ~Model();
  static Status load(std::unique_ptr<Device> device, const std::string &enginePath, const LoadOptions &options,
                     std::unique_ptr<Model> &out);

  const format::EngineManifest &manifest() const { return manifest_; }
  /// The most sequences one step of `function` may take (its memory plan's;
  /// max_batch where the plan says nothing of it).
  int64_t stepSequences(const std::string &function) const {
    auto held = stepLimits_.find(function);
    return held != stepLimits_.end() ? held->second.first : manifest_.maxBatch;
  }
  Device &device() { return *device_; }
  const std::string &note() const { return note_; }
  int64_t pages() const { return pages_; }
  int64_t pageSize() const { return manifest_.kv.pageSize; }
  int64_t vocab() const { return vocab_; }
  /// Bytes this model holds on the device.
  int64_t deviceBytes() const { return deviceBytes_; }
  /// Copies KV pages (every layer's K and V), ordered before the next step.
  Status copyPages(const std::vector<PageCopy> &copies);
  /// Programmatic dependent launch on or off from the next step (no more
  /// timing); overlap() is what steps use now, overlapChoice() says how
  /// Auto chose ("" until it has).
  void setOverlap(bool on);
  bool overlap() const { return overlap_; }
  const std::string &overlapChoice() const { return overlapChoice_; }
  /// Time each launch on its own (no graphs, no overlap) into profile(),
  /// indexed like the manifest's kernels; turning it on clears it,
  /// turning it off keeps it for reading.
  void setProfiling(bool on);
  const std::vector<KernelTime> &profile() const { return profile_; }
  /// The end-of-sequence ids config.json names.
  const std::vector<int64_t> &eos() const { return eos_; }

  /// The KV pool's pages and prefix cache, as long as the model lives:
  /// generate() takes its sequences' pages here, so a prefix one call
  /// computed is reused by later calls. A step's written pages that are in
  /// the cache leave it (a caller with pages of its own overwrites them).
  BlockManager &blocks() { return *blocks_; }

  /// Runs `function` ("prefill" or "decode") on `in`.
  Status step(const std::string &function, const StepInput &in, StepOutput &out, bool wantLogits = true);

  /// A decode step in two halves, so the next one can be launched before
  /// this one's tokens are back (greedy decoding without logits on the
  /// host). beginDecode launches it and starts copying its next tokens
  /// back; with `feedIds`, its input ids are the next tokens of the decode
  /// step begun just before (same batch, same order), read on the device
  /// (in place, or copied: feedsIdsInPlace), and `in.ids` is not read. endDecode waits for the oldest step begun and
  /// not ended, and gives its next tokens. At most two are in flight.
  Status beginDecode(const StepInput &in, bool feedIds);
  Status endDecode(StepOutput &out);
  int64_t decodesInFlight() const { return static_cast<int64_t>(inFlight_.size()); }
  /// Whether fed ids are read where the previous step wrote them (else
  /// copied first): the manifest shows decode writes nothing over its next
  /// tokens before its last read of the ids.
  bool feedsIdsInPlace() const { return feedInPlace_; }

  /// Whether sample() runs: the engine carries the sampler, the device is
  /// a GPU and LoadOptions::deviceSampling is on.
  bool samplesOnDevice() const { return sampler_ >= 0; }
  /// The next tokens of the last step's rows, specs[b] for row b, drawn on
  /// the device from the logits the step left there (or from `logits`:
  /// [specs.size(), vocab] of the step's logits dtype, on the device); only
  /// the tokens (and the log-probabilities asked for) come back. Call it
  /// before the next step. A row whose logits hold NaN is an error.
  Status sample(const std::vector<SampleSpec> &specs, std::vector<Sampled> &out, DevPtr logits = 0);

private:
  using Resolve = std::function<DevPtr(const format::OperandDesc &)>;
  /// Checks `in`, uploads it and launches `function` on it (as a graph for
  /// decode); `f` is the function and `results` where its results are.
  /// `slot` 1: the second decode input buffer, uploaded aside (beginDecode
  /// alternates, so the step in flight never reads the one written).
  Status launchStep(const std::string &function, const StepInput &in, bool feedIds, int slot,
                    const format::FunctionDesc *&f, std::vector<DevPtr> &results);
  Model() = default;
  Status bindWeights(const format::EngineFile &engine, const std::string &dir);
  Status launchAll(const format::FunctionDesc &f, int64_t B, int64_t T, int64_t M, const Resolve &resolve);
  /// Records f's launches into graph `key` with overlap_ as it is.
  Status capture(const format::FunctionDesc &f, int64_t B, int64_t T, int64_t M, const Resolve &resolve,
                 uint64_t key);
  /// Overlap::Auto: captures the step both ways, times them alternately on
  /// its own inputs (a step is a function of them: replays rewrite the same
  /// values), and keeps the faster.
  Status chooseOverlap(const format::FunctionDesc &f, int64_t B, int64_t T, int64_t M, const Resolve &resolve,
                       uint64_t key);

  std::unique_ptr<Device> device_;
  format::EngineManifest manifest_;
  std::string source_, note_, overlapChoice_;
  DevPtr weights_ = 0, arena_ = 0, workspace_ = 0, kv_ = 0, io_ = 0;
  std::vector<unsigned char> staging_; // a step's inputs, packed for one upload
  std::vector<DevPtr> weightPtrs_;
  std::vector<uint64_t> workspaceOffsets_; // each kernel's region
  int64_t pages_ = 0, vocab_ = 0, deviceBytes_ = 0, ioTokens_ = 0, ioBlocks_ = 0;
  /// Per function, the sequences and the rows (batch x tokens) a step may
  /// take: what its memory plan holds.
  std::map<std::string, std::pair<int64_t, int64_t>> stepLimits_;
  std::unique_ptr<BlockManager> blocks_;
  std::vector<int64_t> eos_;
  bool useGraphs_ = true, overlap_ = true, autoOverlap_ = false, profiling_ = false;
  std::vector<KernelTime> profile_;
  struct InFlight {
    int ticket;
    int64_t batch;
  };
  std::vector<InFlight> inFlight_; // decode steps begun, oldest first
  DevPtr lastNext_ = 0;             // the last decode's next tokens on the device
  int64_t lastBatch_ = 0;           // and its batch (0: none to feed from)
  DevPtr ioDecode_ = 0;             // the second decode input buffer
  int nextSlot_ = 0;                // beginDecode's next input buffer
  // Fed ids are read where the previous step left them (no copy): decode
  // writes nothing over its next-token result before its last read of the
  // ids (checked on the manifest at load).
  bool feedInPlace_ = false;
  int64_t sampler_ = -1;       // the sampling kernel, where sample() runs
  DevPtr samplerBuf_ = 0;      // its rows, tokens, log-probabilities, top entries, then penalties
  size_t samplerBytes_ = 0;
  DevPtr lastLogits_ = 0;      // the last step's logits
  int64_t lastRows_ = 0;       // and its rows
  std::vector<unsigned char> sampleStaging_;
};

} // namespace kiln::rt

#endif
