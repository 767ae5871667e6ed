//===- GenerateTest.cpp - the step loop -----------------------------------===//
//
// generate() on the recording device (what it launches, how it admits,
// waits, preempts and shares pages) and on the host device (the tokens:
// the same whatever else runs, chunked or batched, cached or computed).
//
//===----------------------------------------------------------------------===//
#include "runtime/core/Generate.h"
#include "runtime/core/StepLoop.h"
#include "test/unit/runtime/ModelTestSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

using namespace kiln;
using namespace kiln::rt;
using namespace kiln::test;

namespace {

/// Greedy generation on the host device (the tiny Llama, real weights).
Status hostGenerate(const std::vector<std::vector<int64_t>> &prompts, const GenerateOptions &g,
                    std::vector<std::vector<int64_t>> &out, GenerateReport &rep) {
  std::unique_ptr<Model> m;
  KILN_RETURN_IF_ERROR(loadOnHost(writeEngineB4("ahead", 2), m));
  // The tiny Llama's decode writes its embedding elsewhere than its next
  // tokens: a step launched ahead reads the ids where the last one left them.
  EXPECT_TRUE(m->feedsIdsInPlace());
  return generate(*m, prompts, g, out, nullptr, &rep);
}

} // namespace

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

TEST(Generate, ALongPromptIsPrefilledBetweenDecodeSteps) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(test::writeTinyLlamaEngine("chunked", "\"max_num_tokens\":128", "\"max_num_tokens\":16", "tiny_llama_b4.json"), m).isOk());
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

TEST(Generate, LongPromptsArePrefilledInChunksOfSixtyFourOrMore) {
  // max_num_tokens 128, four prompts of 100 admitted together: a step takes
  // two of them 64 tokens each, not four 32 each (each prompt in a step
  // re-reads its cached keys); what is left after goes as it is.
  Recorded r;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(load(r, writeEngineB4("chunks"), {}, m).isOk());
  ASSERT_EQ(m->manifest().maxNumTokens, 128);
  ASSERT_GE(m->stepSequences("prefill"), 4);
  GenerateOptions g;
  g.ignoreEos = true;
  g.maxTokens = 2;
  g.prefixCaching = false;
  std::vector<std::vector<int64_t>> prompts, out;
  for (int i = 0; i < 4; ++i)
    prompts.push_back(iota(100, 7 * i + 1));
  GenerateReport rep;
  Status s = generate(*m, prompts, g, out, nullptr, &rep);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(rep.prefillTokens, 400);
  size_t prefillLaunches = 0, pairsOf64 = 0;
  for (size_t i = 0; i < r.launches.size(); ++i) {
    const KernelArgs &a = r.args[i];
    if (m->manifest().kernels[r.launches[i].first].name.rfind("prefill", 0) != 0)
      continue;
    ++prefillLaunches;
    EXPECT_LE(a.batch, 2) << "launch " << i;
    pairsOf64 += a.batch == 2 && a.tokens == 64;
  }
  EXPECT_GT(prefillLaunches, 0u);
  EXPECT_GT(pairsOf64, 0u);
  EXPECT_EQ(m->blocks().sequences(), 0u);
}

TEST(Generate, AdmittedPromptsArePrefilledTogether) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("together"), m).isOk());
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

TEST(Generate, PenalisedTokensAreTheArgmaxOfThePenalisedLogits) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("penalties"), m).isOk());
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

TEST(Generate, TokensFromACachedPrefixAreTheTokensComputed) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("cachedhost"), m).isOk());
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

// A soak: 300 random requests in 12 calls on a pool of 10 pages (160
// tokens for up to 4 sequences of up to 120): random prompt lengths, half
// of them behind one of two shared prefixes, each request cancelled after
// a random number of tokens (its callback returns false), greedy and
// seeded sampling in turn. Every call ends with no sequence holding a
// page and every page free or idle in the prefix cache, each request with
// as many tokens as it let run, and three requests a call give the same
// tokens alone. (Under ASan in CI: nothing leaks.)
TEST(Generate, SoakOfRandomRequestsLeavesEveryPageFree) {
  std::unique_ptr<Device> host;
  ASSERT_TRUE(rt::openDevice("host", host).isOk());
  LoadOptions lo;
  lo.weights = kLlama;
  lo.kvPages = 10;
  std::unique_ptr<Model> m;
  ASSERT_TRUE(Model::load(std::move(host), writeEngineB4("soak"), lo, m).isOk());
  std::mt19937 rng(2026);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::vector<int64_t> prefixes[2];
  for (auto &p : prefixes)
    for (int i = 0; i < 32; ++i)
      p.push_back(uniform(0, 511));
  int64_t preemptions = 0, cached = 0, cancelled = 0;
  for (int call = 0; call < 12; ++call) {
    const size_t n = 25;
    std::vector<std::vector<int64_t>> prompts(n);
    std::vector<size_t> cutoff(n);
    std::vector<uint64_t> seeds(n);
    for (size_t i = 0; i < n; ++i) {
      int len = uniform(1, 90);
      if (uniform(0, 1)) {
        const std::vector<int64_t> &pre = prefixes[uniform(0, 1)];
        prompts[i].assign(pre.begin(), pre.begin() + std::min(len, 32));
      }
      while (static_cast<int>(prompts[i].size()) < len)
        prompts[i].push_back(uniform(0, 511));
      cutoff[i] = static_cast<size_t>(uniform(1, 30));
      seeds[i] = static_cast<uint64_t>(uniform(0, 1 << 30));
    }
    GenerateOptions g;
    g.ignoreEos = true;
    g.maxTokens = 30;
    g.seeds = seeds;
    g.sampling.temperature = call % 2 ? 0.8f : 0.0f;
    g.sampling.topK = call % 4 == 1 ? 20 : 0;
    std::vector<size_t> made(n, 0);
    g.onToken = [&](size_t i, int64_t) { return ++made[i] < cutoff[i]; };
    std::vector<std::vector<int64_t>> out;
    GenerateReport rep;
    Status s = generate(*m, prompts, g, out, nullptr, &rep);
    ASSERT_TRUE(s.isOk()) << "call " << call << ": " << s.message();
    EXPECT_EQ(m->blocks().sequences(), 0u) << "call " << call;
    EXPECT_EQ(m->blocks().freePages(), m->blocks().pages()) << "call " << call;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(out[i].size(), cutoff[i]) << "call " << call << ", request " << i;
      cancelled += cutoff[i] < 30;
    }
    preemptions += rep.preemptions;
    for (int64_t c : rep.cachedTokens)
      cached += c;
    // Three requests alone: the same tokens whatever ran beside them.
    for (int k = 0; k < 3; ++k) {
      size_t i = static_cast<size_t>(uniform(0, static_cast<int>(n) - 1));
      GenerateOptions one = g;
      one.seeds = {seeds[i]};
      size_t count = 0;
      one.onToken = [&](size_t, int64_t) { return ++count < cutoff[i]; };
      std::vector<std::vector<int64_t>> alone;
      ASSERT_TRUE(generate(*m, {prompts[i]}, one, alone).isOk());
      EXPECT_EQ(alone[0], out[i]) << "call " << call << ", request " << i;
    }
  }
  EXPECT_GT(preemptions, 0) << "the pool never ran out";
  EXPECT_GT(cached, 0) << "no prefix was ever reused";
  EXPECT_GT(cancelled, 100);
}

// Log-probabilities: each token's under the model (the log-softmax of the
// logits it was drawn from) and the top 3, for a greedy and a sampled
// request beside one that asked for none. The greedy request's first
// token's is the log-softmax of the prompt's last logits at that token,
// and each greedy token is its own top-1.
TEST(Generate, LogprobsAreTheModelsLogSoftmax) {
  std::unique_ptr<Model> m;
  ASSERT_TRUE(loadOnHost(writeEngineB4("logprobs"), m).isOk());
  StepLoopOptions lo;
  lo.firstLogits = true;
  StepLoop loop(*m, lo);
  RequestOptions greedy;
  greedy.maxTokens = 6;
  greedy.ignoreEos = true;
  greedy.logprobs = true;
  greedy.topLogprobs = 3;
  RequestOptions sampled = greedy;
  sampled.sampling.temperature = 1.0f;
  sampled.seed = 9;
  RequestOptions none = greedy;
  none.logprobs = false;
  size_t g = 0, s = 0, n = 0;
  ASSERT_TRUE(loop.add(iota(9, 4), greedy, g).isOk());
  ASSERT_TRUE(loop.add(iota(7, 30), sampled, s).isOk());
  ASSERT_TRUE(loop.add(iota(5, 60), none, n).isOk());
  RequestOptions bad = greedy;
  bad.topLogprobs = 21;
  size_t b = 0;
  EXPECT_FALSE(loop.add(iota(5, 60), bad, b).isOk());
  while (loop.busy())
    ASSERT_TRUE(loop.step().isOk());
  const StepLoop::Record &rg = loop.record(g), &rs = loop.record(s), &rn = loop.record(n);
  ASSERT_EQ(rg.tokens.size(), 6u);
  ASSERT_EQ(rg.logprobs.size(), 6u);
  ASSERT_EQ(rs.logprobs.size(), rs.tokens.size());
  EXPECT_TRUE(rn.logprobs.empty());
  EXPECT_TRUE(rn.topLogprobs.empty());
  // The first token against the prompt's last logits.
  const std::vector<float> &l = rg.firstLogits;
  double mx = *std::max_element(l.begin(), l.end()), sum = 0;
  for (float x : l)
    sum += std::exp(x - mx);
  EXPECT_NEAR(rg.logprobs[0], l[static_cast<size_t>(rg.tokens[0])] - (mx + std::log(sum)), 1e-5);
  for (const StepLoop::Record *r : {&rg, &rs})
    for (size_t i = 0; i < r->tokens.size(); ++i) {
      EXPECT_LE(r->logprobs[i], 0.0f);
      ASSERT_EQ(r->topLogprobs[i].size(), 3u);
      for (size_t k = 1; k < 3; ++k)
        EXPECT_GE(r->topLogprobs[i][k - 1].second, r->topLogprobs[i][k].second);
      EXPECT_GE(r->topLogprobs[i][0].second, r->logprobs[i]);
      if (r == &rg) {
        EXPECT_EQ(r->topLogprobs[i][0].first, r->tokens[i]) << "greedy token " << i << " is its top-1";
        EXPECT_FLOAT_EQ(r->topLogprobs[i][0].second, r->logprobs[i]);
      }
    }
}
