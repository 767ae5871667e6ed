//===- Executor.cpp - a step loop on its own thread, taking requests ------===//
#include "runtime/core/Executor.h"

namespace kiln::rt {

Executor::Executor(Model &model, const StepLoopOptions &options)
    : model_(model), loop_(model, options, [this](size_t loopId, int64_t token) {
        ++generated_; // copied into stats_ under the lock after each step
        Active &a = active_.at(loopId);
        return a.onToken ? a.onToken(a.id, token) : true;
      }) {}

Status Executor::start(Model &model, const StepLoopOptions &options, std::unique_ptr<Executor> &out) {
  std::unique_ptr<Executor> e(new Executor(model, options));
  e->stats_.kvPages = model.blocks().pages();
  e->thread_ = std::thread([p = e.get()] { p->run(); });
  out = std::move(e);
  return Status::ok();
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

Status Executor::submit(std::vector<int64_t> prompt, const RequestOptions &options, TokenFn onToken, DoneFn onDone,
                        uint64_t &id) {
  const format::EngineManifest &m = model_.manifest();
  if (prompt.empty())
    return Status::error("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) + options.maxTokens > m.maxSeq)
    return Status::error(StatusCode::kRequestRefused,
                         "a prompt of " + std::to_string(prompt.size()) + " tokens plus " +
                             std::to_string(options.maxTokens) + " new ones exceeds the engine's max_seq " +
                             std::to_string(m.maxSeq));
  for (int64_t t : prompt)
    if (t < 0 || t >= model_.vocab())
      return Status::error("token id " + std::to_string(t) + " is outside the vocabulary of " +
                           std::to_string(model_.vocab()));
  KILN_RETURN_IF_ERROR(host::checkSamplingParams(options.sampling));
  if (options.topLogprobs < 0 || options.topLogprobs > 20)
    return Status::error("top logprobs: " + std::to_string(options.topLogprobs) + " is not between 0 and 20");
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!health_)
      return health_;
    if (stop_)
      return Status::error("the executor is stopping");
    id = next_++;
    pending_.push_back({id, std::move(prompt), options, std::move(onToken), std::move(onDone)});
    ++stats_.waiting;
    busy_ = true;
  }
  wake_.notify_all();
  return Status::ok();
}

void Executor::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    cancels_.push_back(id);
  }
  wake_.notify_all();
}

ExecutorStats Executor::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

Status Executor::health() const {
  std::lock_guard<std::mutex> l(mu_);
  return health_;
}

void Executor::drain() {
  std::unique_lock<std::mutex> l(mu_);
  idle_.wait(l, [&] { return (!busy_ && pending_.empty() && cancels_.empty()) || stop_ || !health_; });
}

void Executor::report(size_t loopId, Active &a) {
  const StepLoop::Record &rec = loop_.record(loopId);
  Outcome o;
  o.status = rec.status;
  o.tokens = rec.tokens;
  o.cancelled = rec.cancelled;
  o.cachedTokens = rec.cachedTokens;
  o.logprobs = rec.logprobs;
  o.topLogprobs = rec.topLogprobs;
  {
    std::lock_guard<std::mutex> l(mu_);
    (o.cancelled ? stats_.cancelled : o.status ? stats_.completed : stats_.failed) += 1;
  }
  if (a.onDone)
    a.onDone(a.id, o);
}

void Executor::run() {
  std::vector<Pending> taken;
  std::vector<uint64_t> cancels;
  std::map<uint64_t, bool> cancelledEarly; // cancelled before the loop took them
  auto interrupt = [this] {
    std::lock_guard<std::mutex> l(mu_);
    return !pending_.empty() || !cancels_.empty() || stop_;
  };
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      busy_ = (loop_.busy() && loopHealthy_) || !pending_.empty() || !cancels_.empty();
      if (!busy_)
        idle_.notify_all();
      wake_.wait(l, [&] { return stop_ || !pending_.empty() || !cancels_.empty() || (loop_.busy() && loopHealthy_); });
      if (stop_)
        break;
      taken.swap(pending_);
      cancels.swap(cancels_);
      busy_ = true;
    }
    // Cancellations of requests the loop has not taken yet end them here.
    for (uint64_t id : cancels)
      cancelledEarly[id] = true;
    for (Pending &p : taken) {
      if (cancelledEarly.erase(p.id)) {
        Outcome o;
        o.cancelled = true;
        {
          std::lock_guard<std::mutex> l(mu_);
          --stats_.waiting;
          ++stats_.cancelled;
        }
        if (p.onDone)
          p.onDone(p.id, o);
        continue;
      }
      size_t loopId = 0;
      Status s = loop_.add(std::move(p.prompt), p.options, loopId);
      if (!s) {
        Outcome o;
        o.status = s;
        {
          std::lock_guard<std::mutex> l(mu_);
          --stats_.waiting;
          ++stats_.failed;
        }
        if (p.onDone)
          p.onDone(p.id, o);
        continue;
      }
      active_[loopId] = {p.id, std::move(p.onToken), std::move(p.onDone)};
      loopIds_[p.id] = loopId;
    }
    taken.clear();
    for (uint64_t id : cancels)
      if (auto it = loopIds_.find(id); it != loopIds_.end()) {
        loop_.cancel(it->second);
        cancelledEarly.erase(id);
      }
    cancels.clear();
    cancelledEarly.clear(); // ids never submitted or already ended

    // After a device error the loop is not stepped again (what it holds is
    // reported already; its pages go back when the executor ends).
    Status st = loop_.busy() && loopHealthy_ ? loop_.step(interrupt) : Status::ok();
    if (!st) {
      loopHealthy_ = false;
      // The device failed: every open request ends with its error, and the
      // executor takes no more.
      {
        std::lock_guard<std::mutex> l(mu_);
        health_ = st;
      }
      idle_.notify_all();
      for (auto &[loopId, a] : active_) {
        Outcome o;
        o.status = st;
        o.tokens = loop_.record(loopId).tokens;
        {
          std::lock_guard<std::mutex> l(mu_);
          ++stats_.failed;
        }
        if (a.onDone)
          a.onDone(a.id, o);
      }
      active_.clear();
      loopIds_.clear();
    }
    // Requests that ended this step report and leave.
    for (auto it = active_.begin(); it != active_.end();) {
      if (!loop_.record(it->first).finished) {
        ++it;
        continue;
      }
      report(it->first, it->second);
      loopIds_.erase(it->second.id);
      loop_.forget(it->first);
      it = active_.erase(it);
    }
    const StepLoopCounters &c = loop_.counters();
    std::lock_guard<std::mutex> l(mu_);
    stats_.waiting = static_cast<int64_t>(loop_.waiting() + pending_.size());
    stats_.prefilling = static_cast<int64_t>(loop_.prefilling());
    stats_.running = static_cast<int64_t>(loop_.running());
    stats_.kvPagesUsed = model_.blocks().pages() - model_.blocks().freePages();
    stats_.promptTokens = c.promptTokens;
    stats_.cachedTokens = c.cachedTokens;
    stats_.generatedTokens = generated_;
    stats_.decodeSteps = c.decodeSteps;
  }
  // Stopping: what is still open ends cancelled, with the tokens it had.
  for (auto &[loopId, a] : active_) {
    Outcome o;
    o.cancelled = true;
    const StepLoop::Record &rec = loop_.record(loopId);
    o.tokens = rec.tokens;
    o.cachedTokens = rec.cachedTokens;
    if (a.onDone)
      a.onDone(a.id, o);
  }
  std::vector<Pending> left;
  {
    std::lock_guard<std::mutex> l(mu_);
    left.swap(pending_);
  }
  for (Pending &p : left) {
    Outcome o;
    o.cancelled = true;
    if (p.onDone)
      p.onDone(p.id, o);
  }
  idle_.notify_all();
}

} // namespace kiln::rt
