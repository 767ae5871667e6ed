//===- ModelTest.cpp - loading engines and validating steps ---------------===//
//
// The loader and the step loop on a recording device: memory is host memory,
// launches are recorded, not run. The engine is the tiny Llama's real
// manifest (the fuzzer's seed, from `kiln compile`) with stand-in kernel
// sections, and the weights are the tiny Llama's safetensors, so binding is
// real. What runs the kernels is checked on the GPU (test/gpu).
//
//===----------------------------------------------------------------------===//
#include "runtime/core/Generate.h"
#include "test/unit/runtime/TestEngine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace kiln;
using namespace kiln::rt;

namespace {

const std::string kLlama = test::kTinyLlama;

struct Recorded {
  std::vector<std::pair<size_t, LaunchConfig>> launches;
  std::vector<KernelArgs> args;
  size_t kernels = 0;
};

class RecordingDevice : public Device {
public:
  RecordingDevice(Recorded &r, size_t freeBytes) : r_(r), free_(freeBytes) {}
  ~RecordingDevice() override {
    for (auto &[p, b] : blocks_)
      std::free(reinterpret_cast<void *>(p));
  }
  std::string describe() const override { return "recording device"; }
  std::string arch() const override { return "sm_90"; }
  Status alloc(size_t bytes, DevPtr &out) override {
    void *p = std::calloc(1, bytes ? bytes : 1);
    out = reinterpret_cast<DevPtr>(p);
    blocks_[out] = bytes;
    return Status::ok();
  }
  void free(DevPtr p) override {
    if (blocks_.erase(p))
      std::free(reinterpret_cast<void *>(p));
  }
  Status upload(DevPtr dst, const void *src, size_t n) override {
    if (n)
      std::memcpy(reinterpret_cast<void *>(dst), src, n);
    return Status::ok();
  }
  Status download(void *dst, DevPtr src, size_t n) override {
    if (n)
      std::memcpy(dst, reinterpret_cast<const void *>(src), n);
    return Status::ok();
  }
  Status copy(DevPtr dst, DevPtr src, size_t n) override {
    if (n)
      std::memmove(reinterpret_cast<void *>(dst), reinterpret_cast<const void *>(src), n);
    return Status::ok();
  }
  Status zero(DevPtr dst, size_t n) override {
    if (n)
      std::memset(reinterpret_cast<void *>(dst), 0, n);
    return Status::ok();
  }
  Status memoryInfo(size_t &f, size_t &t) override {
    f = free_;
    t = free_ * 2;
    return Status::ok();
  }
  Status prepareKernels(const format::EngineFile &, const format::EngineManifest &m, std::string &note) override {
    r_.kernels = m.kernels.size();
    note = "recording";
    return Status::ok();
  }
  Status launch(size_t kernel, const KernelArgs &a, const LaunchConfig &c) override {
    r_.launches.push_back({kernel, c});
    r_.args.push_back(a);
    return Status::ok();
  }
  Status synchronize() override { return Status::ok(); }

private:
  Recorded &r_;
  size_t free_;
  std::map<DevPtr, size_t> blocks_;
};

/// Launch graphs that record their launches' dependent flags; a replay of
/// one captured with dependent launches takes `onUs`, without them `offUs`.
class GraphDevice : public RecordingDevice {
public:
  GraphDevice(Recorded &r, double onUs, double offUs) : RecordingDevice(r, size_t(1) << 30), on_(onUs), off_(offUs) {}
  bool supportsGraphs() const override { return true; }
  bool supportsDependentLaunch() const override { return true; }
  Status beginGraph() override {
    capturing_ = true;
    current_.clear();
    return Status::ok();
  }
  Status launch(size_t kernel, const KernelArgs &a, const LaunchConfig &c) override {
    if (!capturing_)
      return RecordingDevice::launch(kernel, a, c);
    current_.push_back(c.dependent);
    return Status::ok();
  }
  Status endGraph(uint64_t key) override {
    capturing_ = false;
    graphs[key] = current_;
    return Status::ok();
  }
  bool hasGraph(uint64_t key) const override { return graphs.count(key) != 0; }
  Status runGraph(uint64_t key) override {
    ++runs[key];
    return Status::ok();
  }
  Status timeGraph(uint64_t key, int reps, double &us) override {
    const std::vector<bool> &g = graphs.at(key);
    us = reps * (std::find(g.begin(), g.end(), true) != g.end() ? on_ : off_);
    timed[key] += reps;
    return Status::ok();
  }

  std::map<uint64_t, std::vector<bool>> graphs; // each launch's dependent flag
  std::map<uint64_t, int> runs, timed;

private:
  double on_, off_;
  bool capturing_ = false;
  std::vector<bool> current_;
};

std::string writeEngine(const std::string &name, const std::string &edit = "", const std::string &with = "") {
  return test::writeTinyLlamaEngine(name, edit, with);
}
/// The tiny Llama compiled --max-batch 4 (its memory plan holds 4 decode
/// rows), max_batch optionally lowered to `batch`.
std::string writeEngineB4(const std::string &name, int batch = 4) {
  return test::writeTinyLlamaEngine(name, "\"max_batch\":4", "\"max_batch\":" + std::to_string(batch),
                                    "tiny_llama_b4.json");
}

Status load(Recorded &r, const std::string &engine, LoadOptions o, std::unique_ptr<Model> &m,
            size_t freeBytes = size_t(1) << 30) {
  if (o.weights.empty())
    o.weights = kLlama;
  return Model::load(std::make_unique<RecordingDevice>(r, freeBytes), engine, o, m);
}

} // namespace

TEST(Model, LoadsAndRunsTheScheduleOfEachStep) {
  Recorded r;
  std::unique_ptr<Model> m;
  Status s = load(r, writeEngine("ok"), {}, m);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(r.kernels, 22u);
  EXPECT_EQ(m->vocab(), 512);
  EXPECT_EQ(m->pages(), 8); // max_batch 1 x 128 tokens in pages of 16
  // Weights (312960 bytes in 15 slots, 256-aligned), arena, KV pool.
  EXPECT_GE(m->deviceBytes(), 312960 + 8 * 16 * 256);

  GenerateOptions g;
  g.maxTokens = 3;
  std::vector<std::vector<int64_t>> out;
  s = generate(*m, {{1, 2, 3, 4, 5}}, g, out);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].size(), 3u);
  // One prefill (20 launches) and two decode steps (14 each).
  EXPECT_EQ(r.launches.size(), 20u + 2 * 14u);
  // The first decode launch sees batch 1, one token, the pool and the
  // table width; its KV-cache kernels address layers 0 and 1.
  const KernelArgs &a = r.args[20];
  EXPECT_EQ(a.batch, 1);
  EXPECT_EQ(a.tokens, 1);
  EXPECT_EQ(a.pages, 8);
  EXPECT_EQ(a.maxBlocks, 8);
  std::set<int32_t> layers;
  for (size_t i = 20; i < 34; ++i)
    layers.insert(r.args[i].layer);
  EXPECT_EQ(layers, (std::set<int32_t>{0, 1}));
}

TEST(Model, KeepsTheFasterOfDependentLaunchOnAndOff) {
  // The seed predates dependent_launch in the manifest: every kernel may.
  std::string engine = writeEngine("overlap", "\"family\":", "\"dependent_launch\":true,\"family\":");
  for (double onUs : {10.0, 6.0}) {
    Recorded r;
    auto owned = std::make_unique<GraphDevice>(r, onUs, 8.0);
    GraphDevice &d = *owned;
    LoadOptions o;
    o.weights = kLlama;
    std::unique_ptr<Model> m;
    Status s = Model::load(std::move(owned), engine, o, m);
    ASSERT_TRUE(s.isOk()) << s.message();
    GenerateOptions g;
    g.maxTokens = 4;
    g.lookahead = false; // one input buffer, one graph per shape and choice
    std::vector<std::vector<int64_t>> out;
    s = generate(*m, {{1, 2, 3, 4, 5}}, g, out);
    ASSERT_TRUE(s.isOk()) << s.message();
    bool on = onUs < 8.0;
    EXPECT_EQ(m->overlap(), on) << onUs;
    EXPECT_NE(m->overlapChoice().find(on ? "launch on" : "launch off"), std::string::npos) << m->overlapChoice();
    // The one decode shape was captured both ways, 14 launches each, the
    // one with dependent launches where the manifest allows them; each was
    // timed 16 times; the three decode steps replay the faster one.
    ASSERT_EQ(d.graphs.size(), 2u);
    int dependent = 0;
    for (auto &[key, flags] : d.graphs) {
      EXPECT_EQ(flags.size(), 14u);
      EXPECT_EQ(d.timed[key], 16);
      bool keyOn = std::find(flags.begin(), flags.end(), true) != flags.end();
      dependent += keyOn;
      EXPECT_EQ(d.runs[key], keyOn == on ? 1 + 3 : 1) << "warm-up, then the steps";
    }
    EXPECT_EQ(dependent, 1);
  }
  // Set explicitly, nothing is timed.
  for (Overlap set : {Overlap::On, Overlap::Off}) {
    Recorded r;
    auto owned = std::make_unique<GraphDevice>(r, 10.0, 8.0);
    GraphDevice &d = *owned;
    LoadOptions o;
    o.weights = kLlama;
    o.overlap = set;
    std::unique_ptr<Model> m;
    ASSERT_TRUE(Model::load(std::move(owned), engine, o, m).isOk());
    GenerateOptions g;
    g.maxTokens = 3;
    g.lookahead = false;
    std::vector<std::vector<int64_t>> out;
    ASSERT_TRUE(generate(*m, {{1, 2, 3}}, g, out).isOk());
    EXPECT_EQ(m->overlap(), set == Overlap::On);
    EXPECT_TRUE(m->overlapChoice().empty());
    ASSERT_EQ(d.graphs.size(), 1u);
    EXPECT_TRUE(d.timed.empty());
    EXPECT_EQ(d.runs.begin()->second, 2);
  }
}

TEST(Model, NamesWhatIsWrongWithTheWeights) {
  Recorded r;
  std::unique_ptr<Model> m;
  LoadOptions o;
  o.weights = "/nonexistent/model";
  Status s = load(r, writeEngine("noweights"), o, m);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("reading the engine's weights: /nonexistent/model: "), std::string::npos) << s.message();

  o.weights = std::string(KILN_SOURCE_DIR) + "/test/models/hf/gpt2";
  s = load(r, writeEngine("gpt2weights"), o, m);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("has no tensor 'model.embed_tokens.weight'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("is this the model the engine was compiled from?"), std::string::npos);

  // The engine binds the embedding as [512, 64]; pretend it is [256, 128].
  s = load(r, writeEngine("shape", "\"name\":\"model.embed_tokens.weight\",\"shape\":[512,64]",
                          "\"name\":\"model.embed_tokens.weight\",\"shape\":[256,128]"),
           {}, m);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("tensor 'model.embed_tokens.weight' is [512, 64], the engine binds [256, 128]"),
            std::string::npos)
      << s.message();
}

TEST(Model, RefusesAKvPoolThatDoesNotFit) {
  Recorded r;
  std::unique_ptr<Model> m;
  LoadOptions o;
  o.kvPages = 1000000;
  Status s = load(r, writeEngine("bigpool"), o, m, size_t(64) << 20);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("a KV pool of 1000000 pages"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("does not fit"), std::string::npos);
  // Without the option the pool shrinks to what fits.
  s = load(r, writeEngine("smallpool"), {}, m, size_t(1) << 20);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_LT(m->pages(), 8 * 1024);
}

// A manifest whose max_batch outgrows its memory plan (the batch-1 plan's
// decode buffers edited to take two rows: run, they would overlap and give
// the second row wrong logits) is refused, naming the launch and the bytes;
// lowering max_batch under the plan is fine.
TEST(Model, RefusesAMemoryPlanThatDoesNotHoldMaxBatch) {
  Recorded r;
  std::unique_ptr<Model> m;
  Status s = load(r, writeEngine("overgrown", "\"max_batch\":1", "\"max_batch\":2"), {}, m);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("the memory plan does not hold decode's largest step"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("at max_batch 2 from an arena range of"), std::string::npos) << s.message();
  EXPECT_TRUE(load(r, writeEngineB4("b4"), {}, m).isOk());
  EXPECT_TRUE(load(r, writeEngineB4("b4as3", 3), {}, m).isOk());
  s = load(r, test::writeTinyLlamaEngine("b4as8", "\"max_batch\":4", "\"max_batch\":8", "tiny_llama_b4.json"), {}, m);
  EXPECT_NE(s.message().find("the memory plan does not hold"), std::string::npos) << s.message();
}

TEST(Model, RefusesRequestsBeyondTheEngine) {
  Recorded r;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(load(r, writeEngine("limits"), {}, m).isOk());
  std::vector<std::vector<int64_t>> out;
  GenerateOptions g;
  g.maxTokens = 16;
  // 120 + 16 tokens > max_seq 128.
  Status s = generate(*m, {std::vector<int64_t>(120, 7)}, g, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("exceeds the engine's max_seq 128: recompile with a larger --max-seq"),
            std::string::npos)
      << s.message();
  s = generate(*m, {{}}, g, out);
  EXPECT_FALSE(s.isOk());

  StepInput in;
  in.batch = 2;
  in.tokens = 1;
  in.maxBlocks = 8;
  in.ids = {1, 2};
  in.positions = {0, 0};
  in.blockTables.assign(16, 0);
  in.contextLens = {1, 1};
  StepOutput o;
  s = m->step("decode", in, o);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("exceeds max_batch 1"), std::string::npos) << s.message();

  in.batch = 1;
  in.ids = {9999};
  in.positions = {0};
  in.blockTables.assign(8, 0);
  in.contextLens = {1};
  s = m->step("decode", in, o);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("token id 9999 is outside the vocabulary of 512"), std::string::npos) << s.message();

  in.ids = {1};
  in.blockTables[0] = 8;
  s = m->step("decode", in, o);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("outside the pool of 8"), std::string::npos) << s.message();
}

TEST(Model, AFullKvPoolIsAnError) {
  Recorded r;
  std::unique_ptr<Model> m;
  LoadOptions o;
  o.kvPages = 1; // 16 tokens
  ASSERT_TRUE(load(r, writeEngine("onepage"), o, m).isOk());
  GenerateOptions g;
  g.maxTokens = 8;
  std::vector<std::vector<int64_t>> out;
  Status s = generate(*m, {std::vector<int64_t>(12, 3)}, g, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), StatusCode::kKvCacheFull) << s.message();
  EXPECT_NE(s.message().find("the KV cache is full"), std::string::npos) << s.message();
}

TEST(BlockManager, ReservesReleasesAndRefusesWithoutChange) {
  BlockManager b(4, 16);
  ASSERT_TRUE(b.reserve(0, 17).isOk()); // 2 pages
  EXPECT_EQ(b.table(0), (std::vector<int32_t>{0, 1}));
  ASSERT_TRUE(b.reserve(0, 32).isOk()); // still 2
  EXPECT_EQ(b.freePages(), 2);
  ASSERT_TRUE(b.reserve(1, 20).isOk());
  EXPECT_EQ(b.table(1), (std::vector<int32_t>{2, 3}));
  Status s = b.reserve(0, 33);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(b.table(0).size(), 2u); // unchanged
  b.release(0);
  EXPECT_EQ(b.freePages(), 2);
  ASSERT_TRUE(b.reserve(2, 1).isOk());
  EXPECT_EQ(b.table(2).size(), 1u);
  EXPECT_TRUE(b.table(0).empty());
}

namespace {
std::vector<int64_t> iota(int64_t n, int64_t start) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i)
    v.push_back(start + i);
  return v;
}
} // namespace

TEST(BlockManager, SharesTheCachedPagesOfACommonPrefix) {
  BlockManager b(8, 16);
  std::vector<int64_t> a = iota(40, 100); // pages [0,16) [16,32) full, [32,40) partial
  int64_t cached = -1;
  b.admit(0, a, 40, cached);
  EXPECT_EQ(cached, 0);
  ASSERT_TRUE(b.reserve(0, 41).isOk());
  b.publish(0, a, 40); // the two full pages enter the cache
  const std::vector<int32_t> ta = b.table(0);
  EXPECT_TRUE(b.cached(ta[0]) && b.cached(ta[1]) && !b.cached(ta[2]));

  // Same first 32 tokens, then different: shares two pages.
  std::vector<int64_t> c = iota(32, 100);
  for (int64_t x : iota(9, 7))
    c.push_back(x);
  b.admit(1, c, static_cast<int64_t>(c.size()), cached);
  EXPECT_EQ(cached, 32);
  ASSERT_TRUE(b.reserve(1, 42).isOk());
  EXPECT_EQ(b.table(1)[0], ta[0]);
  EXPECT_EQ(b.table(1)[1], ta[1]);
  EXPECT_NE(b.table(1)[2], ta[2]);
  EXPECT_EQ(b.references(ta[0]), 2);

  // Differs in the first page: the second page's tokens alone do not match
  // (the key chains the whole prefix).
  std::vector<int64_t> d = a;
  d[3] = 1;
  b.admit(2, d, 40, cached);
  EXPECT_EQ(cached, 0);
  b.release(2);

  // Releasing keeps the pages cached; a later sequence still finds them.
  b.release(0);
  b.release(1);
  EXPECT_EQ(b.references(ta[0]), 0);
  EXPECT_EQ(b.freePages(), 8);
  b.admit(3, a, 40, cached);
  EXPECT_EQ(cached, 32);
  EXPECT_EQ(b.references(ta[1]), 1);
}

TEST(BlockManager, CopiesASharedPageBeforeItIsWritten) {
  BlockManager b(6, 16);
  std::vector<int64_t> a = iota(32, 5); // exactly two pages
  int64_t cached = 0;
  b.admit(0, a, 32, cached);
  ASSERT_TRUE(b.reserve(0, 33).isOk());
  b.publish(0, a, 32);
  // A second sequence with the same prompt shares both pages; to compute
  // the last token's logits it rewrites position 31, in the shared page.
  b.admit(1, a, 32, cached);
  EXPECT_EQ(cached, 32);
  std::vector<PageCopy> copies;
  ASSERT_TRUE(b.prepareWrite(1, 31, 32, copies).isOk());
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].from, b.table(0)[1]);
  EXPECT_EQ(copies[0].to, b.table(1)[1]);
  EXPECT_NE(b.table(1)[1], b.table(0)[1]);
  EXPECT_EQ(b.table(1)[0], b.table(0)[0]); // the untouched page stays shared
  EXPECT_EQ(b.references(b.table(0)[1]), 1);
  // Writing a private page copies nothing.
  copies.clear();
  ASSERT_TRUE(b.prepareWrite(1, 31, 32, copies).isOk());
  EXPECT_TRUE(copies.empty());
  // A cached page is read-only even for its only holder.
  b.release(1);
  ASSERT_TRUE(b.prepareWrite(0, 20, 21, copies).isOk());
  EXPECT_EQ(copies.size(), 1u);
}

TEST(BlockManager, ReusesTheLeastRecentlyReleasedCachedPagesLast) {
  BlockManager b(4, 16);
  std::vector<int64_t> a = iota(32, 1), c = iota(32, 50);
  int64_t cached = 0;
  b.admit(0, a, 32, cached);
  ASSERT_TRUE(b.reserve(0, 32).isOk());
  b.publish(0, a, 32);
  b.release(0);
  b.admit(1, c, 32, cached);
  ASSERT_TRUE(b.reserve(1, 32).isOk()); // the two free pages
  b.publish(1, c, 32);
  b.release(1);
  // All four pages are cached and idle; a sequence of three pages evicts
  // a's (released first) and one of c's.
  ASSERT_TRUE(b.reserve(2, 48).isOk());
  EXPECT_EQ(b.freePages(), 1);
  b.admit(3, a, 32, cached);
  EXPECT_EQ(cached, 0);
  b.release(3);
  // Out of pages: an error, nothing taken.
  Status s = b.reserve(4, 48);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), StatusCode::kKvCacheFull);
  EXPECT_NE(s.message().find("the KV cache is full"), std::string::npos) << s.message();
  EXPECT_EQ(b.freePages(), 1);
}

TEST(Generate, BatchesContinuouslyWithinMaxBatch) {
  Recorded r;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(load(r, writeEngineB4("batch4"), {}, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  std::vector<std::vector<int64_t>> prompts, out;
  for (int i = 0; i < 6; ++i)
    prompts.push_back(iota(5 + i, 10 * i + 1));
  g.maxTokens = 4;
  GenerateReport rep;
  Status s = generate(*m, prompts, g, out, nullptr, &rep);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (const auto &o : out)
    EXPECT_EQ(o.size(), 4u);
  EXPECT_EQ(rep.largestBatch, 4);
  // Every decode launch ran at most 4 sequences; the first batch's four
  // finish together and the last two run as a pair: 3 + 3 steps.
  EXPECT_EQ(rep.decodeSteps, 6);
  for (const KernelArgs &a : r.args)
    EXPECT_LE(a.batch, 4);
  EXPECT_EQ(rep.prefillTokens, 5 + 6 + 7 + 8 + 9 + 10);
}

TEST(Generate, ReusesPromptPrefixesAcrossRequests) {
  Recorded r;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(load(r, writeEngine("prefix"), {}, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 2;
  std::vector<int64_t> system = iota(32, 3), a = system, b = system;
  a.push_back(100);
  b.push_back(200);
  b.push_back(201);
  std::vector<std::vector<int64_t>> out;
  GenerateReport rep;
  ASSERT_TRUE(generate(*m, {a, b, system}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{0, 32, 31}));
  EXPECT_EQ(rep.prefillTokens, 33 + 2 + 1);
  // The third prompt is all cached: its last token is recomputed into a
  // copy of the shared last page.
  EXPECT_EQ(rep.pageCopies, 1);
  // Without prefix caching everything is prefilled.
  g.prefixCaching = false;
  ASSERT_TRUE(generate(*m, {a, b, system}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.prefillTokens, 33 + 34 + 32);
  EXPECT_EQ(rep.pageCopies, 0);
}

TEST(Generate, WaitsOrPreemptsWhenTheKvPoolIsFullAndLosesNoWork) {
  Recorded r;
  std::unique_ptr<Model> m;
  LoadOptions o;
  o.kvPages = 4; // 64 tokens
  ASSERT_TRUE(load(r, writeEngineB4("tight"), o, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 24; // each sequence ends at 10 + 24 tokens: 3 pages
  g.prefixCaching = false;
  std::vector<std::vector<int64_t>> prompts, out;
  for (int i = 0; i < 3; ++i)
    prompts.push_back(iota(10, 40 * i + 1));
  GenerateReport rep;
  Status s = generate(*m, prompts, g, out, nullptr, &rep);
  ASSERT_TRUE(s.isOk()) << s.message();
  for (const auto &t : out)
    EXPECT_EQ(t.size(), 24u);
  EXPECT_GT(rep.preemptions + rep.waits, 0);
  for (const Status &st : rep.status)
    EXPECT_TRUE(st.isOk());
}

TEST(Generate, RefusesOnlyThePromptThatCannotFitAlone) {
  Recorded r;
  std::unique_ptr<Model> m;
  LoadOptions o;
  o.kvPages = 2; // 32 tokens
  ASSERT_TRUE(load(r, writeEngineB4("refuse", 2), o, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 4;
  std::vector<std::vector<int64_t>> out;
  GenerateReport rep;
  Status s = generate(*m, {iota(8, 1), iota(40, 1), iota(6, 9)}, g, out, nullptr, &rep);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.code(), StatusCode::kRequestRefused);
  EXPECT_EQ(rep.status[1].code(), StatusCode::kRequestRefused);
  EXPECT_NE(s.message().find("prompt 1 of 40 tokens does not fit the KV pool even alone"), std::string::npos)
      << s.message();
  EXPECT_EQ(out[0].size(), 4u);
  EXPECT_TRUE(out[1].empty());
  EXPECT_EQ(out[2].size(), 4u);
  EXPECT_TRUE(rep.status[0].isOk() && rep.status[2].isOk());
}

namespace {

/// Greedy generation on the host device (the tiny Llama, real weights).
Status hostGenerate(const std::vector<std::vector<int64_t>> &prompts, const GenerateOptions &g,
                    std::vector<std::vector<int64_t>> &out, GenerateReport &rep) {
  std::unique_ptr<Device> host;
  KILN_RETURN_IF_ERROR(openHostDevice(host));
  std::unique_ptr<Model> m;
  LoadOptions o;
  o.weights = kLlama;
  KILN_RETURN_IF_ERROR(
      Model::load(std::move(host), writeEngineB4("ahead", 2), o, m));
  // The tiny Llama's decode writes its embedding elsewhere than its next
  // tokens: a step launched ahead reads the ids where the last one left them.
  EXPECT_TRUE(m->feedsIdsInPlace());
  return generate(*m, prompts, g, out, nullptr, &rep);
}

} // namespace

// Decode steps launched one ahead (ids fed from the previous step on the
// device) give the tokens of steps launched one at a time: with a queue
// (two slots, three prompts), and when a sequence stops on a token while
// the step after it is already launched (its row is discarded).
TEST(Generate, LaunchingAheadKeepsTheTokens) {
  std::vector<std::vector<int64_t>> prompts = {iota(7, 3), iota(12, 40), iota(5, 90)}, plain, ahead;
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 12;
  g.lookahead = false;
  GenerateReport rep;
  Status s = hostGenerate(prompts, g, plain, rep);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(rep.aheadSteps, 0);
  std::set<int64_t> distinct(plain[2].begin(), plain[2].end());
  ASSERT_GT(distinct.size(), 3u) << "the tiny Llama repeats one token: this test would prove little";
  g.lookahead = true;
  s = hostGenerate(prompts, g, ahead, rep);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(ahead, plain);
  EXPECT_GT(rep.aheadSteps, 0);
  EXPECT_EQ(rep.discardedRows, 0); // every sequence runs to max_tokens: nothing launched for nothing

  // Stop the last prompt at its 4th token; the others go on.
  g.ignoreEos = false;
  g.stop = {plain[2][3]};
  g.lookahead = false;
  ASSERT_TRUE(hostGenerate(prompts, g, plain, rep).isOk());
  ASSERT_EQ(plain[2].size(), 4u);
  g.lookahead = true;
  ASSERT_TRUE(hostGenerate(prompts, g, ahead, rep).isOk());
  EXPECT_EQ(ahead, plain);
  EXPECT_GT(rep.discardedRows, 0);
}

// A prefill step of several sequences (the memory plan holds max_batch of
// them: the per-sequence buffers, such as the last token's hidden state,
// for every one) gives each sequence's logits as its own step does, on the
// host device; a step of more sequences than the plan holds is refused.
TEST(Model, PrefillsSeveralSequencesInOneStep) {
  std::unique_ptr<Device> host;
  ASSERT_TRUE(openDevice("host", host).isOk());
  LoadOptions o;
  o.weights = kLlama;
  std::unique_ptr<Model> m;
  Status s = Model::load(std::move(host), writeEngineB4("prefill4"), o, m);
  ASSERT_TRUE(s.isOk()) << s.message();
  const int64_t T = 6, blocks = 8;
  std::vector<std::vector<int64_t>> prompts = {{3, 1, 4, 1, 5, 9}, {2, 7, 1, 8, 2, 8}, {100, 200, 300, 400, 5, 6}};
  auto input = [&](const std::vector<size_t> &which) {
    StepInput in;
    in.batch = static_cast<int64_t>(which.size());
    in.tokens = T;
    in.maxBlocks = blocks;
    in.blockTables.assign(static_cast<size_t>(in.batch * blocks), 0);
    for (size_t b = 0; b < which.size(); ++b) {
      for (int64_t t = 0; t < T; ++t) {
        in.ids.push_back(prompts[which[b]][static_cast<size_t>(t)]);
        in.positions.push_back(t);
      }
      in.contextLens.push_back(static_cast<int32_t>(T));
      in.blockTables[b * blocks] = static_cast<int32_t>(which[b]); // a page each
    }
    return in;
  };
  StepOutput together;
  ASSERT_TRUE(m->step("prefill", input({0, 1, 2}), together).isOk());
  ASSERT_EQ(together.logits.size(), static_cast<size_t>(3 * together.vocab));
  for (size_t b = 0; b < 3; ++b) {
    StepOutput alone;
    ASSERT_TRUE(m->step("prefill", input({b}), alone).isOk());
    std::vector<float> row(together.logits.begin() + static_cast<long>(b * together.vocab),
                           together.logits.begin() + static_cast<long>((b + 1) * together.vocab));
    EXPECT_EQ(row, alone.logits) << "sequence " << b;
    EXPECT_EQ(together.next[b], alone.next[0]) << "sequence " << b;
  }
  StepOutput out;
  s = m->step("prefill", input({0, 1, 2, 0, 1}), out);
  EXPECT_FALSE(s.isOk());
}

// The prefix cache lives as long as the model: a prefix one call computed
// is reused by the next call (the pages counted), not with prefixCaching
// off, and not once a step that took its pages elsewhere (the caller's own
// block tables) has written over them; a call leaves no page held.
TEST(Generate, ReusesPrefixesAcrossCallsUntilTheirPagesAreWritten) {
  Recorded r;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(load(r, writeEngine("across"), {}, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 2;
  std::vector<int64_t> system = iota(32, 3), a = system, b = system;
  a.push_back(100);
  b.push_back(200);
  b.push_back(201);
  std::vector<std::vector<int64_t>> out;
  GenerateReport rep;
  ASSERT_TRUE(generate(*m, {a}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{0}));
  EXPECT_EQ(m->blocks().sequences(), 0u);
  ASSERT_TRUE(generate(*m, {b}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{32}));
  EXPECT_EQ(rep.prefillTokens, 2);
  g.prefixCaching = false;
  ASSERT_TRUE(generate(*m, {b}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{0}));
  g.prefixCaching = true;
  ASSERT_TRUE(generate(*m, {b}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{32})) << "the cache outlives a call that did not use it";
  // A step of 16 tokens on the caller's own table, page 0 first: the page
  // holding the prefix's first 16 tokens (pages go out lowest first).
  StepInput in;
  in.batch = 1;
  in.tokens = 16;
  in.maxBlocks = 8;
  in.blockTables.assign(8, 0);
  for (int64_t t = 0; t < 16; ++t) {
    in.ids.push_back(7);
    in.positions.push_back(t);
  }
  in.contextLens = {16};
  StepOutput so;
  ASSERT_TRUE(m->step("prefill", in, so).isOk());
  ASSERT_TRUE(generate(*m, {b}, g, out, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{0})) << "page 0 was written over";
  EXPECT_EQ(m->blocks().sequences(), 0u);
}

// A long prompt admitted while another sequence decodes is prefilled in
// chunks between that sequence's decode steps (max_num_tokens 16, less
// the running sequence's decode token), not in one stall: no more than 16
// prompt tokens between two decode steps, the short prompt's tokens made
// while the long one is still prefilling, and on the host device every
// prompt's tokens those it gets alone.
TEST(Generate, ALongPromptIsPrefilledBetweenDecodeSteps) {
  std::unique_ptr<Device> host;
  ASSERT_TRUE(openDevice("host", host).isOk());
  LoadOptions o;
  o.weights = kLlama;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(Model::load(std::move(host),
                          test::writeTinyLlamaEngine("chunked", "\"max_num_tokens\":128", "\"max_num_tokens\":16",
                                                     "tiny_llama_b4.json"),
                          o, m)
                  .isOk());
  ASSERT_EQ(m->manifest().maxNumTokens, 16);
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 12;
  g.prefixCaching = false;
  std::vector<int64_t> shortPrompt = iota(6, 5), longPrompt = iota(100, 17);
  std::vector<std::pair<size_t, int64_t>> order;
  g.onToken = [&](size_t i, int64_t t) {
    order.push_back({i, t});
    return true;
  };
  std::vector<std::vector<int64_t>> together;
  GenerateReport rep;
  ASSERT_TRUE(generate(*m, {shortPrompt, longPrompt}, g, together, nullptr, &rep).isOk());
  EXPECT_GT(rep.longestPrefillBetweenDecodes, 0);
  EXPECT_LE(rep.longestPrefillBetweenDecodes, 16);
  EXPECT_GE(rep.prefillSteps, 1 + (100 + 14) / 15) << "the long prompt in chunks of at most 15";
  // The short prompt's tokens before the long one's first: one per decode
  // step while the long prompt was prefilling (7 chunks of 15 or fewer).
  size_t shortFirst = 0;
  while (shortFirst < order.size() && order[shortFirst].first == 0)
    ++shortFirst;
  EXPECT_GE(shortFirst, 7u) << "the short prompt waited for the long one's whole prefill";
  g.onToken = nullptr;
  for (size_t i = 0; i < 2; ++i) {
    std::vector<std::vector<int64_t>> alone;
    ASSERT_TRUE(generate(*m, {i == 0 ? shortPrompt : longPrompt}, g, alone).isOk());
    EXPECT_EQ(alone[0], together[i]) << "prompt " << i;
  }
  EXPECT_EQ(m->blocks().sequences(), 0u);
}

// Prompts admitted together are prefilled together: 20, 20 and 40 tokens
// in two prefill steps (3 x 20, then the last 20 of the longest), not one
// step each; on the host device each prompt's tokens (greedy and seeded
// sampling) are those it gets alone, and the first logits its own.
TEST(Generate, AdmittedPromptsArePrefilledTogether) {
  std::unique_ptr<Device> host;
  ASSERT_TRUE(openDevice("host", host).isOk());
  LoadOptions o;
  o.weights = kLlama;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(Model::load(std::move(host), writeEngineB4("together"), o, m).isOk());
  ASSERT_GE(m->stepSequences("prefill"), 3);
  std::vector<std::vector<int64_t>> prompts = {iota(20, 3), iota(20, 40), iota(40, 90)};
  for (float temperature : {0.0f, 1.0f}) {
    GenerateOptions g;
    g.ignoreEos = true;
    g.maxTokens = 4;
    g.prefixCaching = false;
    g.sampling.temperature = temperature;
    g.seed = 5;
    std::vector<std::vector<int64_t>> together;
    std::vector<std::vector<float>> logits;
    GenerateReport rep;
    ASSERT_TRUE(generate(*m, prompts, g, together, &logits, &rep).isOk());
    EXPECT_EQ(rep.prefillSteps, 2) << "temperature " << temperature;
    for (size_t i = 0; i < prompts.size(); ++i) {
      std::vector<std::vector<int64_t>> alone;
      std::vector<std::vector<float>> aloneLogits;
      ASSERT_TRUE(generate(*m, {prompts[i]}, g, alone, &aloneLogits).isOk());
      EXPECT_EQ(alone[0], together[i]) << "prompt " << i << ", temperature " << temperature;
      EXPECT_EQ(aloneLogits[0], logits[i]) << "prompt " << i;
    }
  }
  EXPECT_EQ(m->blocks().sequences(), 0u);
}

// Penalties in the step loop (host device): each greedy token of a
// penalised generation is the argmax of that position's logits (an
// unpenalised call on the same context) after the penalties computed here
// from their definitions over the prompt and the tokens before it.
TEST(Generate, PenalisedTokensAreTheArgmaxOfThePenalisedLogits) {
  std::unique_ptr<Device> host;
  ASSERT_TRUE(openDevice("host", host).isOk());
  LoadOptions o;
  o.weights = kLlama;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(Model::load(std::move(host), writeEngineB4("penalties"), o, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 12;
  g.prefixCaching = false;
  // Penalties below 1 and below 0 favour what was seen (the tiny model's
  // greedy tokens never repeat, so positive ones would never bind).
  g.sampling.repetitionPenalty = 0.25f;
  g.sampling.frequencyPenalty = -1.0f;
  g.sampling.presencePenalty = -2.0f;
  const std::vector<int64_t> prompt = {3, 9, 9, 27, 81, 243, 217, 139};
  std::vector<std::vector<int64_t>> out;
  ASSERT_TRUE(generate(*m, {prompt}, g, out).isOk());
  ASSERT_EQ(out[0].size(), 12u);
  GenerateOptions plain;
  plain.ignoreEos = true;
  plain.maxTokens = 1;
  plain.prefixCaching = false;
  int changed = 0;
  for (size_t k = 0; k < out[0].size(); ++k) {
    std::vector<int64_t> context = prompt;
    context.insert(context.end(), out[0].begin(), out[0].begin() + static_cast<long>(k));
    std::vector<std::vector<int64_t>> next;
    std::vector<std::vector<float>> logits;
    ASSERT_TRUE(generate(*m, {context}, plain, next, &logits).isOk());
    std::vector<float> l = logits[0];
    std::set<int64_t> seen(context.begin(), context.end());
    for (int64_t t : seen)
      l[static_cast<size_t>(t)] = l[static_cast<size_t>(t)] > 0 ? l[static_cast<size_t>(t)] / 0.25f
                                                                 : l[static_cast<size_t>(t)] * 0.25f;
    std::map<int64_t, int> count;
    for (size_t j = 0; j < k; ++j)
      ++count[out[0][j]];
    for (auto [t, c] : count)
      l[static_cast<size_t>(t)] -= -1.0f * static_cast<float>(c) + -2.0f;
    int64_t want = std::max_element(l.begin(), l.end()) - l.begin();
    EXPECT_EQ(out[0][k], want) << "token " << k;
    changed += next[0][0] != want;
  }
  EXPECT_GT(changed, 0) << "the penalties changed no token: the test checks nothing";
  g.sampling.repetitionPenalty = -1.0f;
  Status bad = generate(*m, {prompt}, g, out);
  EXPECT_NE(bad.message().find("repetition_penalty"), std::string::npos) << bad.message();
}

// On the host device the tokens of a call that reuses the cached prefix
// of an earlier one are the tokens of one that computes it all.
TEST(Generate, TokensFromACachedPrefixAreTheTokensComputed) {
  std::unique_ptr<Device> host;
  ASSERT_TRUE(openDevice("host", host).isOk());
  LoadOptions o;
  o.weights = kLlama;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(Model::load(std::move(host), writeEngineB4("cachedhost"), o, m).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 8;
  g.sampling.temperature = 1.0f;
  g.seed = 99;
  std::vector<int64_t> p = iota(40, 11);
  std::vector<std::vector<int64_t>> first, cached, computed;
  GenerateReport rep;
  ASSERT_TRUE(generate(*m, {p}, g, first, nullptr, &rep).isOk());
  ASSERT_TRUE(generate(*m, {p}, g, cached, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{32}));
  g.prefixCaching = false;
  ASSERT_TRUE(generate(*m, {p}, g, computed, nullptr, &rep).isOk());
  EXPECT_EQ(rep.cachedTokens, (std::vector<int64_t>{0}));
  EXPECT_EQ(cached, computed);
  EXPECT_EQ(first, computed);
}
