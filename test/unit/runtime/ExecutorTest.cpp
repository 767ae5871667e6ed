//===- ExecutorTest.cpp - requests submitted and cancelled while others run ===//
//
// The executor on the host device with the tiny Llama compiled --max-batch
// 4: requests come from several threads and from inside a token callback
// while others decode, each with its own sampling; every request's tokens
// are what it gets alone, cancellation ends a request with its pages back,
// and stopping the executor ends what is open.
//
//===----------------------------------------------------------------------===//
#include "runtime/core/Executor.h"
#include "runtime/core/Generate.h"
#include "test/unit/runtime/ModelTestSupport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <thread>

using namespace kiln;
using namespace kiln::rt;
using namespace kiln::test;

namespace {

struct Results {
  std::mutex mu;
  std::map<uint64_t, Executor::Outcome> done;
  std::map<uint64_t, std::vector<int64_t>> streamed;
  Executor::TokenFn token() {
    return [this](uint64_t id, int64_t t) {
      std::lock_guard<std::mutex> l(mu);
      streamed[id].push_back(t);
      return true;
    };
  }
  Executor::DoneFn finish() {
    return [this](uint64_t id, const Executor::Outcome &o) {
      std::lock_guard<std::mutex> l(mu);
      EXPECT_EQ(done.count(id), 0u) << "request " << id << " ended twice";
      done[id] = o;
    };
  }
};

RequestOptions options(int64_t maxTokens, float temperature, uint64_t seed) {
  RequestOptions o;
  o.maxTokens = maxTokens;
  o.ignoreEos = true;
  o.sampling.temperature = temperature;
  o.seed = seed;
  return o;
}

std::vector<int64_t> alone(Model &m, const std::vector<int64_t> &prompt, const RequestOptions &r) {
  GenerateOptions g;
  g.maxTokens = r.maxTokens;
  g.ignoreEos = r.ignoreEos;
  g.sampling = r.sampling;
  g.seed = r.seed;
  std::vector<std::vector<int64_t>> out;
  EXPECT_TRUE(generate(m, {prompt}, g, out).isOk());
  return out.empty() ? std::vector<int64_t>() : out[0];
}

} // namespace

TEST(Executor, RequestsSubmittedWhileOthersRunGetTheirTokensAlone) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("executor"), m).isOk());
  std::vector<std::vector<int64_t>> prompts;
  std::vector<RequestOptions> opts;
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(iota(5 + 3 * i, 17 * i + 1));
    opts.push_back(options(10 + i, i % 2 ? 0.9f : 0.0f, 100 + static_cast<uint64_t>(i)));
  }
  prompts[7] = prompts[6]; // the same prompt again: its pages from the prefix cache
  prompts[7].push_back(3);
  std::vector<std::vector<int64_t>> want;
  for (size_t i = 0; i < prompts.size(); ++i)
    want.push_back(alone(*m, prompts[i], opts[i]));

  Results res;
  std::map<uint64_t, size_t> which;
  std::mutex whichMu;
  {
    std::unique_ptr<Executor> e;
    ASSERT_TRUE(Executor::start(*m, StepLoopOptions{}, e).isOk());
    auto submit = [&](size_t i) {
      uint64_t id = 0;
      Executor::TokenFn tok = res.token();
      if (i == 0) // request 0's third token submits request 7 from the executor's own thread
        tok = [&, inner = res.token()](uint64_t rid, int64_t t) {
          bool go = inner(rid, t);
          std::lock_guard<std::mutex> l(res.mu);
          if (res.streamed[rid].size() == 3) {
            uint64_t id7 = 0;
            EXPECT_TRUE(e->submit(prompts[7], opts[7], res.token(), res.finish(), id7).isOk());
            std::lock_guard<std::mutex> w(whichMu);
            which[id7] = 7;
          }
          return go;
        };
      ASSERT_TRUE(e->submit(prompts[i], opts[i], tok, res.finish(), id).isOk());
      std::lock_guard<std::mutex> l(whichMu);
      which[id] = i;
    };
    submit(0);
    std::thread a([&] {
      for (size_t i : {1, 3, 5})
        submit(i);
    });
    std::thread b([&] {
      for (size_t i : {2, 4, 6})
        submit(i);
    });
    a.join();
    b.join();
    e->drain();
    ExecutorStats st = e->stats();
    EXPECT_EQ(st.completed, 8);
    EXPECT_EQ(st.cancelled + st.failed, 0);
    EXPECT_EQ(st.waiting + st.prefilling + st.running, 0);
    EXPECT_EQ(st.kvPagesUsed, 0);
    EXPECT_GT(st.cachedTokens, 0) << "request 7 begins with request 6's prompt";
    int64_t generated = 0;
    for (const auto &o : opts)
      generated += o.maxTokens;
    EXPECT_EQ(st.generatedTokens, generated);
  }
  ASSERT_EQ(res.done.size(), 8u);
  for (auto &[id, o] : res.done) {
    size_t i = which.at(id);
    EXPECT_TRUE(o.status.isOk()) << i;
    EXPECT_FALSE(o.cancelled);
    EXPECT_EQ(o.tokens, want[i]) << "request " << i;
    EXPECT_EQ(res.streamed[id], o.tokens) << "request " << i << ": streamed as made";
  }
  EXPECT_EQ(m->blocks().sequences(), 0u);
}

TEST(Executor, CancellationEndsARequestWithItsPagesBack) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("cancel"), m).isOk());
  Results res;
  std::promise<void> started;
  std::atomic<bool> once{false};
  std::unique_ptr<Executor> e;
  ASSERT_TRUE(Executor::start(*m, StepLoopOptions{}, e).isOk());
  uint64_t longId = 0, shortId = 0, queuedId = 0;
  Executor::TokenFn tok = [&](uint64_t, int64_t) {
    if (!once.exchange(true))
      started.set_value();
    return true;
  };
  ASSERT_TRUE(e->submit(iota(20, 3), options(100, 0.0f, 1), tok, res.finish(), longId).isOk());
  started.get_future().wait();
  e->cancel(longId);
  ASSERT_TRUE(e->submit(iota(8, 50), options(5, 0.0f, 2), nullptr, res.finish(), shortId).isOk());
  // Cancelled before the loop may have taken it.
  ASSERT_TRUE(e->submit(iota(8, 90), options(5, 0.0f, 3), nullptr, res.finish(), queuedId).isOk());
  e->cancel(queuedId);
  e->cancel(12345); // unknown: ignored
  e->drain();
  ExecutorStats st = e->stats();
  EXPECT_EQ(st.kvPagesUsed, 0);
  e.reset();
  ASSERT_EQ(res.done.size(), 3u);
  EXPECT_TRUE(res.done[longId].cancelled);
  EXPECT_TRUE(res.done[longId].status.isOk());
  EXPECT_GE(res.done[longId].tokens.size(), 1u);
  EXPECT_LT(res.done[longId].tokens.size(), 100u);
  EXPECT_FALSE(res.done[shortId].cancelled);
  EXPECT_EQ(res.done[shortId].tokens.size(), 5u);
  EXPECT_TRUE(res.done[queuedId].cancelled);
  EXPECT_EQ(m->blocks().sequences(), 0u);
  EXPECT_EQ(m->blocks().freePages(), m->blocks().pages());
}

TEST(Executor, RefusesBadRequestsAtOnceAndEndsOpenOnesWhenStopped) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("stop"), m).isOk());
  Results res;
  std::unique_ptr<Executor> e;
  ASSERT_TRUE(Executor::start(*m, StepLoopOptions{}, e).isOk());
  uint64_t id = 0;
  Status s = e->submit({}, options(4, 0.0f, 0), nullptr, res.finish(), id);
  EXPECT_NE(s.message().find("the prompt is empty"), std::string::npos) << s.message();
  s = e->submit(iota(120, 1), options(20, 0.0f, 0), nullptr, res.finish(), id);
  EXPECT_EQ(s.code(), StatusCode::kRequestRefused);
  EXPECT_NE(s.message().find("exceeds the engine's max_seq 128"), std::string::npos) << s.message();
  s = e->submit({1, 2, 100000}, options(4, 0.0f, 0), nullptr, res.finish(), id);
  EXPECT_NE(s.message().find("token id 100000 is outside the vocabulary of 512"), std::string::npos) << s.message();
  RequestOptions bad = options(4, 0.5f, 0);
  bad.sampling.topP = 1.5f;
  EXPECT_FALSE(e->submit({1, 2, 3}, bad, nullptr, res.finish(), id).isOk());
  // Four long requests, then the executor goes: each ends, cancelled.
  std::promise<void> started;
  std::atomic<bool> once{false};
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(e->submit(iota(10, 7 * i + 1), options(100, 0.0f, 0),
                          [&](uint64_t, int64_t) {
                            if (!once.exchange(true))
                              started.set_value();
                            return true;
                          },
                          res.finish(), id)
                    .isOk());
  started.get_future().wait();
  e.reset();
  ASSERT_EQ(res.done.size(), 4u);
  for (auto &[rid, o] : res.done) {
    EXPECT_TRUE(o.cancelled) << rid;
    EXPECT_LT(o.tokens.size(), 100u);
  }
  EXPECT_EQ(m->blocks().sequences(), 0u);
}

namespace {
/// The recording device, whose launches fail from the `failAt`-th on.
class FailingDevice : public RecordingDevice {
public:
  FailingDevice(Recorded &r, size_t failAt) : RecordingDevice(r, size_t(1) << 30), failAt_(failAt) {}
  Status launch(size_t kernel, const KernelArgs &a, const LaunchConfig &c) override {
    while (!open.load()) // held until the test has queued every request
      std::this_thread::yield();
    if (++launches_ >= failAt_)
      return Status::error(StatusCode::kDevice, "launch " + std::to_string(launches_) + " failed (test device)");
    return RecordingDevice::launch(kernel, a, c);
  }

  std::atomic<bool> open{true};

private:
  size_t failAt_, launches_ = 0;
};
} // namespace

// A device error mid-run ends every open request with it, and the executor
// takes no more; drain() returns, and stopping it leaves no page held.
TEST(Executor, ADeviceErrorEndsEveryOpenRequest) {
  Recorded r;
  std::unique_ptr<Model> m;
  LoadOptions lo;
  lo.weights = kLlama;
  auto device = std::make_unique<FailingDevice>(r, 60);
  FailingDevice *dev = device.get();
  ASSERT_TRUE(Model::load(std::move(device), writeEngineB4("devfail"), lo, m).isOk());
  Results res;
  std::unique_ptr<Executor> e;
  // The device waits until all three requests are queued (else, on a slow
  // machine, it could fail before the last is submitted).
  dev->open = false;
  ASSERT_TRUE(Executor::start(*m, StepLoopOptions{}, e).isOk());
  uint64_t id = 0;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(e->submit(iota(6 + i, 11 * i + 1), options(20, 0.0f, 0), nullptr, res.finish(), id).isOk());
  dev->open = true;
  e->drain();
  Status h = e->health();
  EXPECT_EQ(h.code(), StatusCode::kDevice) << h.message();
  Status s = e->submit({1, 2, 3}, options(4, 0.0f, 0), nullptr, res.finish(), id);
  EXPECT_EQ(s.code(), StatusCode::kDevice);
  e.reset();
  ASSERT_EQ(res.done.size(), 3u);
  for (auto &[rid, o] : res.done) {
    EXPECT_EQ(o.status.code(), StatusCode::kDevice) << rid;
    EXPECT_NE(o.status.message().find("failed (test device)"), std::string::npos) << o.status.message();
  }
  EXPECT_EQ(m->blocks().sequences(), 0u);
}
