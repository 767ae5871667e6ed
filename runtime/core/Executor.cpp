//===- Executor.cpp - a step loop on its own thread, taking requests ------===//
#include "runtime/core/Executor.h"

#include <set>

namespace kiln::rt {

Executor::Executor(Model &model, const StepLoopOptions &options)
    : model_(model), loop_(model, options, [this](size_t loopId, int64_t token) {
        ++generated_; // copied into stats_ under the lock after each step
        Active &a = active_.at(loopId);
        delivering_ = loopId;
        return a.onToken ? a.onToken(a.id, token) : true;
      }) {}

bool Executor::tokenLogprobs(float &logprob, std::vector<std::pair<int64_t, float>> &top) const {
  // The StepLoop records a token's log-probabilities before it hands the
  // token on (StepLoop::pick, then finish).
  const StepLoop::Record &r = loop_.record(delivering_);
  if (r.logprobs.empty())
    return false;
  logprob = r.logprobs.back();
  top.clear();
  if (!r.topLogprobs.empty() && r.topLogprobs.size() == r.logprobs.size())
    top = r.topLogprobs.back();
  return true;
}

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
  KILN_RETURN_IF_ERROR(StepLoop::check(model_, prompt, options));
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

Executor::Outcome Executor::outcomeOf(size_t loopId) const {
  const StepLoop::Record &rec = loop_.record(loopId);
  Outcome o;
  o.status = rec.status;
  o.tokens = rec.tokens;
  o.cancelled = rec.cancelled;
  o.cachedTokens = rec.cachedTokens;
  o.logprobs = rec.logprobs;
  o.topLogprobs = rec.topLogprobs;
  return o;
}

void Executor::deliver(uint64_t id, const DoneFn &onDone, const Outcome &o) {
  {
    std::lock_guard<std::mutex> l(mu_);
    (o.cancelled ? stats_.cancelled : o.status ? stats_.completed : stats_.failed) += 1;
  }
  if (onDone)
    onDone(id, o);
}

void Executor::run() {
  std::vector<Pending> taken;
  std::vector<uint64_t> cancels;
  std::set<uint64_t> cancelledEarly; // cancelled before the loop took them
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
    // Cancellations of requests the loop has not taken yet end them here;
    // the others reach the loop.
    cancelledEarly.insert(cancels.begin(), cancels.end());
    for (Pending &p : taken) {
      Outcome o;
      size_t loopId = 0;
      if (cancelledEarly.count(p.id))
        o.cancelled = true;
      else if (o.status = loop_.add(std::move(p.prompt), p.options, loopId); o.status) {
        active_[loopId] = {p.id, std::move(p.onToken), std::move(p.onDone)};
        loopIds_[p.id] = loopId;
        continue;
      }
      deliver(p.id, p.onDone, o);
    }
    taken.clear();
    for (uint64_t id : cancels)
      if (auto it = loopIds_.find(id); it != loopIds_.end())
        loop_.cancel(it->second);
    cancels.clear();
    cancelledEarly.clear();

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
        Outcome o = outcomeOf(loopId);
        o.status = st;
        o.cancelled = false;
        deliver(a.id, a.onDone, o);
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
      deliver(it->second.id, it->second.onDone, outcomeOf(it->first));
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
    Outcome o = outcomeOf(loopId);
    o.cancelled = true;
    deliver(a.id, a.onDone, o);
  }
  std::vector<Pending> left;
  {
    std::lock_guard<std::mutex> l(mu_);
    left.swap(pending_);
  }
  Outcome cancelled;
  cancelled.cancelled = true;
  for (Pending &p : left)
    deliver(p.id, p.onDone, cancelled);
  idle_.notify_all();
}

} // namespace kiln::rt
