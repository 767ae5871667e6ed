//===- ModelTest.cpp - loading engines and validating steps ---------------===//
//
// The loader, the step and the block manager on a recording device: memory
// is host memory, launches are recorded, not run. The engine is the tiny
// Llama's real manifest (the fuzzer's seed, from `kiln compile`) with
// stand-in kernel sections, and the weights are the tiny Llama's
// safetensors, so binding is real. What runs the kernels is checked on the
// GPU (test/gpu). The step loop's tests are GenerateTest.cpp.
//
//===----------------------------------------------------------------------===//
#include "runtime/core/Generate.h"
#include "test/unit/runtime/ModelTestSupport.h"

#include <gtest/gtest.h>

#include "runtime/kernels/host/Tensor.h"

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

using namespace kiln;
using namespace kiln::rt;
using namespace kiln::test;

namespace {

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
  EXPECT_NE(s.message().find("at batch 2 from an arena range of"), std::string::npos) << s.message();
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

// Decode steps launched one ahead (ids fed from the previous step on the

// device) give the tokens of steps launched one at a time: with a queue

// (two slots, three prompts), and when a sequence stops on a token while

// the step after it is already launched (its row is discarded).

// A prefill step of several sequences (the memory plan holds max_batch of

// them: the per-sequence buffers, such as the last token's hidden state,

// for every one) gives each sequence's logits as its own step does, on the

// host device; a step of more sequences than the plan holds is refused.

TEST(Model, PrefillsSeveralSequencesInOneStep) {
  std::unique_ptr<Model> m;
  Status s = loadOnHost(writeEngineB4("prefill4"), m);
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

// A long prompt admitted while another sequence decodes is prefilled in

// chunks between that sequence's decode steps (max_num_tokens 16, less

// the running sequence's decode token), not in one stall: no more than 16

// prompt tokens between two decode steps, the short prompt's tokens made

// while the long one is still prefilling, and on the host device every

// prompt's tokens those it gets alone.

// Prompts admitted together are prefilled together: 20, 20 and 40 tokens

// in two prefill steps (3 x 20, then the last 20 of the longest), not one

// step each; on the host device each prompt's tokens (greedy and seeded

// sampling) are those it gets alone, and the first logits its own.

// Penalties in the step loop (host device): each greedy token of a

// penalised generation is the argmax of that position's logits (an

// unpenalised call on the same context) after the penalties computed here

// from their definitions over the prompt and the tokens before it.

// On the host device the tokens of a call that reuses the cached prefix

// of an earlier one are the tokens of one that computes it all.

// An engine with decode buckets (the tiny Llama compiled --max-batch 4:
// decode_b1, decode_b2 and decode at 4): a step runs through the smallest
// bucket that holds it; with graphs it is padded to that bucket's batch
// (rows at position -1, no pages) and captured once per bucket; without
// them (the host) it runs its own batch, and a sequence's tokens are the
// same whichever bucket carries it.
TEST(Model, RunsADecodeStepThroughTheSmallestBucketThatHoldsIt) {
  const std::string engine = writeTinyLlamaEngine("buckets", "", "", "tiny_llama_b4_buckets.json");
  Recorded r;
  r.graphs = true;
  std::unique_ptr<Model> m;
  LoadOptions lo;
  lo.overlap = Overlap::Off;
  Status s = load(r, engine, lo, m);
  ASSERT_TRUE(s.isOk()) << s.message();
  const auto &man = m->manifest();
  ASSERT_EQ(man.decodeBuckets().size(), 3u);
  EXPECT_EQ(man.decodeFor(1)->name, "decode_b1");
  EXPECT_EQ(man.decodeFor(2)->name, "decode_b2");
  EXPECT_EQ(man.decodeFor(3)->name, "decode");
  EXPECT_EQ(man.decodeFor(4)->name, "decode");
  EXPECT_EQ(man.decodeFor(5), nullptr);
  std::set<size_t> b1, b2, b4; // each bucket's kernels
  for (auto [set, name] : {std::pair{&b1, "decode_b1"}, {&b2, "decode_b2"}, {&b4, "decode"}})
    for (const format::LaunchDesc &l : man.function(name)->launches)
      set->insert(static_cast<size_t>(l.kernel));
  ASSERT_NE(b1, b4) << "the batch-1 bucket's kernels are its own";

  const int64_t blocks = 8;
  auto step = [&](int64_t batch) {
    StepInput in;
    in.batch = batch;
    in.tokens = 1;
    in.maxBlocks = blocks;
    in.blockTables.assign(static_cast<size_t>(batch * blocks), 0);
    for (int64_t b = 0; b < batch; ++b) {
      in.ids.push_back(7 + b);
      in.positions.push_back(3);
      in.contextLens.push_back(4);
      in.blockTables[b * blocks] = static_cast<int32_t>(b);
    }
    size_t from = r.args.size();
    StepOutput out;
    EXPECT_TRUE(m->step("decode", in, out, false).isOk());
    return std::pair{from, r.args.size()};
  };
  for (int64_t batch : {1, 2, 3, 3, 4, 1}) {
    auto [from, to] = step(batch);
    ASSERT_GT(to, from) << "batch " << batch;
    const std::set<size_t> &want = batch == 1 ? b1 : batch == 2 ? b2 : b4;
    const int32_t rows = batch == 1 ? 1 : batch == 2 ? 2 : 4;
    for (size_t i = from; i < to; ++i) {
      EXPECT_TRUE(want.count(r.launches[i].first)) << "batch " << batch << ": kernel "
                                                    << man.kernels[r.launches[i].first].name;
      EXPECT_EQ(r.args[i].batch, rows) << "batch " << batch << " is padded to its bucket";
    }
  }
  // One graph per bucket (the repeated batches 3 and 1 replayed theirs).
  EXPECT_EQ(r.captured.size(), 3u);

  // On the host (no graphs) the same prompts decode to the same tokens
  // alone (decode_b1), in pairs (decode_b2) and three or four together
  // (decode).
  std::unique_ptr<Model> h;
  ASSERT_TRUE(loadOnHost(engine, h).isOk());
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 6;
  g.prefixCaching = false;
  std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5}, {9, 8, 7}, {42, 43, 44, 45}, {5, 5, 5, 5, 5, 5}};
  std::vector<std::vector<int64_t>> together;
  GenerateReport rep;
  ASSERT_TRUE(generate(*h, prompts, g, together, nullptr, &rep).isOk());
  EXPECT_EQ(rep.largestBatch, 4);
  for (size_t n : {1u, 2u}) {
    std::vector<std::vector<int64_t>> some(prompts.begin(), prompts.begin() + static_cast<long>(n)), out;
    ASSERT_TRUE(generate(*h, some, g, out).isOk());
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(out[i], together[i]) << n << " together, prompt " << i;
  }
}

namespace {

/// The recording device, plus the engine's sampler kernel emulated with the
/// host sampler on the parameters the runtime packed (the kernel itself is
/// checked against the host sampler on the GPU: kiln-run --check-sampling).
class SamplingDevice : public RecordingDevice {
public:
  SamplingDevice(Recorded &r, size_t sampler) : RecordingDevice(r, size_t(1) << 30), sampler_(sampler) {}
  Status launch(size_t kernel, const KernelArgs &a, const LaunchConfig &c) override {
    if (kernel != sampler_)
      return RecordingDevice::launch(kernel, a, c);
    ++samplerLaunches;
    rowsSampled += a.batch;
    EXPECT_EQ(c.block, 1024u);
    EXPECT_EQ(c.grid, static_cast<unsigned>(a.batch));
    const int64_t n = a.tokens;
    const auto *logits = reinterpret_cast<const uint16_t *>(a.p[0]); // bf16
    const auto *rows = reinterpret_cast<const SampleRow *>(a.p[1]);
    const auto *pens = reinterpret_cast<const SamplePenalty *>(a.p[2]);
    auto *tokens = reinterpret_cast<int64_t *>(a.p[3]);
    for (int32_t r = 0; r < a.batch; ++r) {
      const SampleRow &R = rows[r];
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        x[i] = host::bf16ToFloat(logits[r * n + i]);
      for (int32_t e = R.penBegin; e < R.penEnd; ++e) {
        const SamplePenalty &p = pens[e];
        float &l = x[p.token];
        if (p.flags & kPenaltySeen)
          l = l > 0.0f ? l / R.repetition : l * R.repetition;
        if (p.count > 0)
          l -= R.frequency * static_cast<float>(p.count) + R.presence;
        if (p.flags & kPenaltyBan)
          l = -std::numeric_limits<float>::infinity();
      }
      host::SamplingParams sp;
      sp.temperature = R.temperature, sp.topK = R.topK, sp.topP = R.topP, sp.minP = R.minP;
      EXPECT_TRUE(host::sampleTokenWith(x.data(), n, sp, host::counterUniform(R.seed, R.position), tokens[r]).isOk());
    }
    return Status::ok();
  }
  size_t sampler_;
  int samplerLaunches = 0, rowsSampled = 0;
};

// The manifest with the sampler kernel kiln compile appends (kernel 22).
const char *kSamplerKernel =
    R"(},{"binaries":{"sm_90a":{"cubin":[0,16],"ptx":[0,16]}},"family":"sample","grid":{"divisor":1,"factor":1,)"
    R"("max":0,"symbols":["batch"]},"host":{"args":[],"ops":[],"yields":[]},"name":"kiln_sample","smem":64,)"
    R"("source":[0,16],"threads":1024,"workspace":{"divisor":1,"factor":0,"max":0,"symbols":[]}}],"kiln_manifest":1)";

} // namespace

// Where the engine has a sampler and the device is a GPU, sampled requests
// are drawn by it: the step loop packs each row's parameters, seed,
// position and penalty entries (end-of-sequence masked below min_tokens)
// and reads back only the tokens -- the same tokens as the host sampler on
// the logits brought back (LoadOptions::deviceSampling off), for prompts
// sampled together; a greedy request with nothing to mask takes the
// sampler for its prompt's first token only, then the engine's argmax.
TEST(Model, SampledRequestsAreDrawnByTheEnginesSamplerAsOnTheHost) {
  std::string engine = writeEngine("sampler", "}],\"kiln_manifest\":1", kSamplerKernel);
  GenerateOptions g;
  g.maxTokens = 6;
  g.minTokens = 3;
  g.sampling.temperature = 0.9f;
  g.sampling.topP = 0.95f;
  g.sampling.topK = 300;
  g.sampling.frequencyPenalty = 0.7f;
  g.sampling.presencePenalty = 0.4f;
  g.seeds = {11, 12, 13};
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5}, {7, 7, 7}, {9, 8, 7, 6, 5, 4, 3, 2}};
  auto run = [&](bool onDevice, std::vector<std::vector<int64_t>> &out, int &launches) {
    Recorded r;
    auto owned = std::make_unique<SamplingDevice>(r, 22);
    SamplingDevice *dev = owned.get();
    LoadOptions o;
    o.weights = kLlama;
    o.deviceSampling = onDevice;
    std::unique_ptr<Model> m;
    ASSERT_TRUE(Model::load(std::move(owned), engine, o, m).isOk());
    EXPECT_EQ(m->samplesOnDevice(), onDevice);
    ASSERT_TRUE(generate(*m, prompts, g, out).isOk());
    launches = dev->samplerLaunches;
    if (onDevice) {
      EXPECT_GE(dev->rowsSampled, 3 * 6);
      // Greedy: the prompt's first token through the sampler (one prefill
      // step), the next two from the engine's argmax.
      GenerateOptions greedy;
      greedy.maxTokens = 3;
      std::vector<std::vector<int64_t>> unused;
      ASSERT_TRUE(generate(*m, {{1, 2, 3}}, greedy, unused).isOk());
      EXPECT_EQ(dev->samplerLaunches - launches, 1);
    }
  };
  std::vector<std::vector<int64_t>> gpu, host;
  int gpuLaunches = 0, hostLaunches = 0;
  run(true, gpu, gpuLaunches);
  run(false, host, hostLaunches);
  EXPECT_GT(gpuLaunches, 0);
  EXPECT_EQ(hostLaunches, 0);
  ASSERT_EQ(gpu.size(), 3u);
  EXPECT_EQ(gpu, host);
  for (const auto &t : gpu)
    EXPECT_GE(t.size(), 3u); // min_tokens: end-of-sequence masked (a ban entry) below 3
  // The sampled tokens are not all one id (the draws moved with seed and position).
  std::set<int64_t> ids;
  for (const auto &t : gpu)
    ids.insert(t.begin(), t.end());
  EXPECT_GT(ids.size(), 3u);
}
