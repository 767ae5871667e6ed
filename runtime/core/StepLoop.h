//===- StepLoop.h - the continuous-batching step loop, one step at a time -*- C++ -*-===//
//
// The iteration-level scheduler behind generate() and the executor: requests
// are added at any time, each with its own sampling, length and stop tokens;
// each step() admits waiting requests while a batch slot and their pages are
// free, prefills admitted prompts within the step's token budget and runs one
// decode step of the running ones (docs/runtime.md, "Generation").
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CORE_STEPLOOP_H
#define KILN_RUNTIME_CORE_STEPLOOP_H

#include "runtime/core/Model.h"
#include "runtime/kernels/host/HostKernels.h"

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace kiln::rt {

/// How one request is generated.
struct RequestOptions {
  host::SamplingParams sampling;
  int64_t maxTokens = 32;
  int64_t minTokens = 0;     // end-of-sequence ids are masked until this many
  std::vector<int64_t> stop; // besides the model's end-of-sequence ids
  bool ignoreEos = false;
  /// Its draws: Philox keyed by the seed at the position of the token
  /// drawn, so its tokens depend on its prompt and seed alone.
  uint64_t seed = 0;
  /// Each token's log-probability under the model (its logits' log-softmax,
  /// before temperature, penalties or truncation), and with topLogprobs > 0
  /// that many most likely tokens with theirs.
  bool logprobs = false;
  int64_t topLogprobs = 0;
};

struct StepLoopOptions {
  bool prefixCaching = true; // reuse (and add to) the model's cached prefixes
  bool lookahead = true;     // greedy decoding launches each step before the last one's tokens are back
  bool prefillFirst = false; // no decode while an admitted prompt prefills (benchmarks)
  bool firstLogits = false;  // keep each request's last prompt position's logits
};

/// What the loop did, in all (GenerateReport's counters).
struct StepLoopCounters {
  int64_t prefillTokens = 0, decodeSteps = 0, largestBatch = 0, aheadSteps = 0, discardedRows = 0;
  int64_t preemptions = 0, waits = 0, pageCopies = 0, prefillSteps = 0, prefixWaits = 0;
  int64_t longestPrefillBetweenDecodes = 0;
  int64_t promptTokens = 0, cachedTokens = 0; // requests' prompts at their first admission, and the cached part
};

class StepLoop {
public:
  /// Called on the calling thread of step() with (request, token) as each
  /// token is made; false ends that request there.
  using TokenFn = std::function<bool(size_t, int64_t)>;
  StepLoop(Model &model, const StepLoopOptions &options, TokenFn onToken = nullptr);
  /// Every page a request holds goes back to the pool.
  ~StepLoop();
  StepLoop(const StepLoop &) = delete;
  StepLoop &operator=(const StepLoop &) = delete;

  /// Whether `model` can run the request: refuses (naming what) an empty
  /// prompt, one whose tokens plus maxTokens exceed the engine's max_seq
  /// (kRequestRefused), ids outside the vocabulary, bad sampling
  /// parameters or top logprobs outside [0, 20].
  static Status check(const Model &model, const std::vector<int64_t> &prompt, const RequestOptions &options);
  /// Queues a request that check() accepts; `id` names it from then on.
  Status add(std::vector<int64_t> prompt, const RequestOptions &options, size_t &id);
  /// Ends a request at the next step: waiting, it never starts; admitted,
  /// its pages go back (what it computed stays in the prefix cache). Its
  /// tokens so far stand. Unknown or finished ids are ignored.
  void cancel(size_t id);
  /// Whether any request waits, prefills or runs (or a cancellation waits
  /// to be applied).
  bool busy() const;
  /// One iteration: admission, prefill within the budget, one decode step
  /// (several when greedy decoding runs ahead with nothing else to do, until
  /// a request finishes or `interrupt` says new work came). A device error
  /// is returned; a request that cannot fit the pool even alone is refused
  /// in its own status.
  Status step(const std::function<bool()> &interrupt = nullptr);

  /// A request's record while the loop keeps it (until forget()).
  struct Record {
    std::vector<int64_t> tokens;   // generated
    std::vector<float> logprobs;   // with RequestOptions::logprobs: each token's
    std::vector<std::vector<std::pair<int64_t, float>>> topLogprobs; // and the most likely ones', most first
    std::vector<float> firstLogits;
    Status status = Status::ok();  // ok, or why it was refused
    int64_t cachedTokens = 0;      // prompt tokens whose KV came from the prefix cache
    bool finished = false, cancelled = false;
  };
  const Record &record(size_t id) const;
  /// Drops a finished request's record.
  void forget(size_t id);

  size_t waiting() const { return waiting_.size(); }
  size_t prefilling() const { return prefilling_.size(); }
  size_t running() const { return running_.size(); }
  const StepLoopCounters &counters() const { return c_; }

private:
  struct Sequence;
  Status admit(Sequence &s);
  bool awaitsPages(const Sequence &s) const;
  Status prefillStep(const std::vector<Sequence *> &rows, int64_t c, bool othersRunning);
  StepInput decodeInput(const std::vector<Sequence *> &rows) const;
  Status decodeAhead(const std::function<bool()> &interrupt);
  Status decodeAheadSteps(const std::function<bool()> &interrupt);
  Status applyCopies(std::vector<PageCopy> &copies);
  Status pick(const float *logits, int64_t vocab, Sequence &s, int64_t &token);
  /// The draw of `s`'s next token on the device (Model::sample).
  SampleSpec sampleSpec(Sequence &s) const;
  /// Samples the rows of the step just run on the device; a row whose
  /// `wanted` is false is drawn greedily and not read.
  Status pickOnDevice(const std::vector<Sequence *> &rows, const std::vector<bool> &wanted,
                      std::vector<int64_t> &tokens);
  void recordLogprobs(Sequence &s, float logprob, std::vector<std::pair<int64_t, float>> top);
  void finish(Sequence &s, int64_t token);
  void accept(Sequence &s, int64_t token);
  void retire(Sequence &s);
  void refuse(Sequence &s, Status why);
  void requeue(Sequence &s);
  void end(Sequence &s); // finished: out of every queue
  void applyCancels();
  void stepped(size_t rows);
  void dropDone();

  Model &model_;
  BlockManager &blocks_;
  StepLoopOptions o_;
  TokenFn onToken_;
  int64_t maxBlocks_ = 0;
  size_t next_ = 0;
  std::map<size_t, std::unique_ptr<Sequence>> seqs_;
  std::deque<Sequence *> waiting_, prefilling_;
  std::vector<Sequence *> running_; // in admission order
  std::vector<size_t> cancels_;
  std::vector<float> scratch_;
  int64_t sinceDecode_ = 0; // prefill tokens since the last decode step while sequences ran
  StepLoopCounters c_;
};

} // namespace kiln::rt

#endif
