//===- Executor.h - a step loop on its own thread, taking requests --*- C++ -*-===//
//
// Serving: requests are submitted and cancelled from any thread while one
// thread owns the model and runs the StepLoop, admitting each new request at
// the next step (a greedy run-ahead stretch ends as soon as one arrives).
// Tokens and each request's end are reported through its callbacks, on the
// executor's thread.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CORE_EXECUTOR_H
#define KILN_RUNTIME_CORE_EXECUTOR_H

#include "runtime/core/StepLoop.h"

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::rt {

/// A snapshot of what the executor holds and has done.
struct ExecutorStats {
  int64_t waiting = 0;    // submitted, not admitted yet (including those not yet taken by the loop)
  int64_t prefilling = 0; // admitted, prompt not all computed
  int64_t running = 0;    // decoding
  int64_t kvPages = 0, kvPagesUsed = 0; // the pool, and pages held by requests (not idle cached ones)
  int64_t promptTokens = 0, cachedTokens = 0; // prompt tokens of admitted requests, and those the prefix cache held
  int64_t completed = 0, cancelled = 0, failed = 0; // requests ended each way (failed: refused or cut short)
  int64_t decodeSteps = 0, generatedTokens = 0;
};

class Executor {
public:
  /// Each token of a request as it is made; false ends the request there.
  using TokenFn = std::function<bool(uint64_t request, int64_t token)>;
  /// A request's end: its status (ok when it completed or was cancelled;
  /// otherwise why it was refused, cut short or the device failed), its
  /// tokens, whether it was cancelled, and the prompt tokens the prefix
  /// cache held. Called once per accepted request.
  struct Outcome {
    Status status = Status::ok();
    std::vector<int64_t> tokens;
    bool cancelled = false;
    int64_t cachedTokens = 0;
    std::vector<float> logprobs; // with RequestOptions::logprobs (StepLoop::Record)
    std::vector<std::vector<std::pair<int64_t, float>>> topLogprobs;
  };
  using DoneFn = std::function<void(uint64_t request, const Outcome &)>;

  /// Starts the executor's thread on `model`, which it uses alone until it
  /// is destroyed.
  static Status start(Model &model, const StepLoopOptions &options, std::unique_ptr<Executor> &out);
  /// Cancels every request still open (each gets its DoneFn), then joins.
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  /// Queues a request; any thread. Refused at once (nothing queued) for an
  /// empty prompt, one too long for the engine, bad sampling parameters, or
  /// an executor whose device failed. `id` names it for cancel().
  Status submit(std::vector<int64_t> prompt, const RequestOptions &options, TokenFn onToken, DoneFn onDone,
                uint64_t &id);
  /// Ends a request at the executor's next step (its DoneFn then reports
  /// it cancelled, with the tokens it had); any thread. Unknown or ended
  /// requests are ignored.
  void cancel(uint64_t id);
  /// Only inside a TokenFn (on the executor's thread): the log-probability
  /// of the token being delivered and its most likely alternatives (most
  /// first), when its request asked for them (RequestOptions::logprobs);
  /// false otherwise. Streams send them with each token's text.
  bool tokenLogprobs(float &logprob, std::vector<std::pair<int64_t, float>> &top) const;
  ExecutorStats stats() const;
  /// ok, or the device error that stopped the executor.
  Status health() const;
  /// Blocks until nothing is queued, admitted or running.
  void drain();

private:
  explicit Executor(Model &model, const StepLoopOptions &options);
  void run();
  struct Pending {
    uint64_t id;
    std::vector<int64_t> prompt;
    RequestOptions options;
    TokenFn onToken;
    DoneFn onDone;
  };
  struct Active {
    uint64_t id;
    TokenFn onToken;
    DoneFn onDone;
  };
  /// A finished (or ending) request's outcome from its StepLoop record.
  Outcome outcomeOf(size_t loopId) const;
  /// Counts the outcome in the statistics and hands it to onDone.
  void deliver(uint64_t id, const DoneFn &onDone, const Outcome &o);

  Model &model_;
  StepLoop loop_;
  std::map<size_t, Active> active_; // by StepLoop id (the executor's thread only)
  std::map<uint64_t, size_t> loopIds_;

  mutable std::mutex mu_;
  std::condition_variable wake_, idle_;
  std::vector<Pending> pending_;
  std::vector<uint64_t> cancels_;
  bool stop_ = false, busy_ = false;
  Status health_ = Status::ok();
  uint64_t next_ = 1;
  ExecutorStats stats_;
  int64_t generated_ = 0;    // the executor's thread
  size_t delivering_ = 0;    // the StepLoop id whose token a TokenFn is given (the executor's thread)
  bool loopHealthy_ = true;  // the executor's thread: false once a step failed
  std::thread thread_;
};

} // namespace kiln::rt

#endif
