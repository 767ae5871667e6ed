//===- SampleCheck.cpp - kiln-run --check-sampling ---------------------===//
//
// The engine's GPU sampler against the host's on the same logits: rows of
// several shapes (the model's own logits after a prefill, Gaussian logits
// of two spreads, a flat row, a row of few distinct values full of ties, a
// spike) under a grid of sampling parameters, penalties, bans and
// log-probabilities, each at 32 draw positions. The draw is the same
// Philox uniform on both sides; the host's probabilities are double, the
// kernel's float, so a draw within float rounding of a boundary may land
// on the neighbouring token: agreement is counted, not required to be
// total.
//
//===----------------------------------------------------------------------===//
#include "Bench.h"

#include "runtime/core/Sampler.h"
#include "runtime/kernels/host/HostKernels.h"
#include "runtime/kernels/host/Tensor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

namespace kiln::tools {
namespace {

struct HostDraw {
  int64_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int64_t, float>> top;
};

// What StepLoop::pick does with the logits brought back.
Status hostDraw(const std::vector<float> &row, const rt::SampleSpec &s, const std::vector<int64_t> &tokens,
                int64_t generated, const std::vector<int64_t> &banned, HostDraw &out) {
  const int64_t n = static_cast<int64_t>(row.size());
  std::vector<float> x = row;
  if (s.params.penalised())
    host::applyPenalties(x.data(), n, s.params, tokens.data(), tokens.size(),
                         tokens.data() + (tokens.size() - static_cast<size_t>(generated)),
                         static_cast<size_t>(generated));
  for (int64_t e : banned)
    x[static_cast<size_t>(e)] = -std::numeric_limits<float>::infinity();
  KILN_RETURN_IF_ERROR(host::sampleTokenWith(x.data(), n, s.params, host::counterUniform(s.seed, s.position),
                                             out.token));
  out.logprob = host::logprobOf(row.data(), n, out.token, s.topLogprobs, out.top);
  return Status::ok();
}

} // namespace

int checkSampling(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
                  const std::vector<int64_t> &prompt, uint64_t seed, double minAgreement) {
  std::unique_ptr<rt::Model> model;
  if (int rc = openModel(engine, device, load, model, nullptr))
    return rc;
  if (!model->samplesOnDevice()) {
    std::printf("FAIL the model does not sample on this device (no sampler in the engine, or the host device)\n");
    return 1;
  }
  const int64_t n = model->vocab();
  const format::FunctionDesc *decode = model->manifest().function("decode");
  host::DType dt;
  if (!host::parseDType(decode->resultTypes[0].dtype, dt)) {
    std::printf("FAIL logits of dtype %s\n", decode->resultTypes[0].dtype.c_str());
    return 1;
  }
  auto die = [](const Status &s) {
    std::printf("ERROR %s\n", s.message().c_str());
    return 1;
  };

  // The rows: the model's logits for the prompt, then synthetic ones.
  std::vector<std::vector<float>> rows;
  std::vector<std::string> rowNames;
  {
    rt::StepInput in;
    in.batch = 1;
    in.tokens = static_cast<int64_t>(prompt.size());
    in.maxBlocks = (model->manifest().maxSeq + model->pageSize() - 1) / model->pageSize();
    in.ids = prompt;
    for (int64_t p = 0; p < in.tokens; ++p)
      in.positions.push_back(p);
    in.contextLens = {static_cast<int32_t>(in.tokens)};
    in.blockTables.assign(static_cast<size_t>(in.maxBlocks), 0);
    for (int64_t j = 0; j * model->pageSize() < in.tokens; ++j)
      in.blockTables[static_cast<size_t>(j)] = static_cast<int32_t>(j);
    rt::StepOutput out;
    if (Status s = model->step("prefill", in, out, true); !s)
      return die(s);
    rows.push_back(out.logits);
    rowNames.push_back("model");
  }
  std::mt19937_64 rng(seed);
  auto gaussian = [&](double sd) {
    std::normal_distribution<float> d(0.0f, static_cast<float>(sd));
    std::vector<float> r(static_cast<size_t>(n));
    for (float &v : r)
      v = d(rng);
    return r;
  };
  rows.push_back(gaussian(1.0));
  rowNames.push_back("gauss1");
  rows.push_back(gaussian(4.0));
  rowNames.push_back("gauss4");
  rows.push_back(std::vector<float>(static_cast<size_t>(n), 0.25f));
  rowNames.push_back("flat");
  {
    std::vector<float> r = gaussian(2.0);
    for (float &v : r)
      v = std::round(v * 2.0f) / 2.0f; // a few distinct values: ties at every cut
    rows.push_back(r);
    rowNames.push_back("ties");
  }
  {
    std::vector<float> r = gaussian(1.0);
    r[static_cast<size_t>(n / 3)] = 30.0f;
    rows.push_back(r);
    rowNames.push_back("spike");
  }
  // Round to the logits' dtype: both sides read the same values.
  for (std::vector<float> &r : rows)
    for (float &v : r)
      v = host::roundTo(dt, v);

  // The parameter sets.
  struct Case {
    const char *name;
    host::SamplingParams p;
    bool penalties = false, ban = false, logprobs = false;
    int64_t top = 0;
  };
  auto params = [](float t, int64_t k, float p, float minP) {
    host::SamplingParams s;
    s.temperature = t, s.topK = k, s.topP = p, s.minP = minP;
    return s;
  };
  std::vector<Case> cases = {
      {"greedy", params(0, 0, 1, 0)},
      {"t1", params(1.0f, 0, 1, 0)},
      {"t0.7", params(0.7f, 0, 1, 0)},
      {"t1.5", params(1.5f, 0, 1, 0)},
      {"k5", params(1.0f, 5, 1, 0)},
      {"k50", params(0.8f, 50, 1, 0)},
      {"k1000", params(1.0f, 1000, 1, 0)},
      {"p0.5", params(1.0f, 0, 0.5f, 0)},
      {"p0.9", params(0.8f, 0, 0.9f, 0)},
      {"p0.99", params(1.0f, 0, 0.99f, 0)},
      {"k40p0.95", params(0.7f, 40, 0.95f, 0)},
      {"minp0.05", params(1.0f, 0, 1, 0.05f)},
      {"minp0.3p0.9", params(1.0f, 0, 0.9f, 0.3f)},
      {"k100p0.8minp0.1", params(1.2f, 100, 0.8f, 0.1f)},
  };
  {
    Case c{"penalties", params(0.9f, 0, 0.95f, 0)};
    c.p.repetitionPenalty = 1.3f, c.p.frequencyPenalty = 0.5f, c.p.presencePenalty = 0.3f, c.penalties = true;
    cases.push_back(c);
    Case g{"greedy+pen+ban", params(0, 0, 1, 0)};
    g.p.repetitionPenalty = 1.5f, g.penalties = true, g.ban = true;
    cases.push_back(g);
    Case l{"logprobs5", params(1.0f, 20, 1, 0)};
    l.logprobs = true, l.top = 5;
    cases.push_back(l);
    Case l20{"logprobs20+pen", params(0.6f, 0, 0.9f, 0)};
    l20.logprobs = true, l20.top = 20, l20.p.presencePenalty = 1.0f, l20.penalties = true;
    cases.push_back(l20);
  }

  // Every (row, case) at 32 positions, as rows of sample() calls.
  host::Tensor staged(dt, {0});
  rt::DevPtr buf = 0;
  const int64_t perCall =
      std::min<int64_t>(32, std::max(model->manifest().maxBatch, model->manifest().maxNumTokens));
  size_t bytes = static_cast<size_t>(perCall * n) * host::dtypeSize(dt);
  if (Status s = model->device().alloc(bytes, buf); !s)
    return die(s);
  int64_t draws = 0, agree = 0, lpChecked = 0, topMismatch = 0;
  double lpWorst = 0;
  std::string firstMiss;
  std::vector<double> callUs; // each sample() call: upload, kernel, download
  std::mt19937_64 hist(seed + 1);
  for (size_t r = 0; r < rows.size(); ++r)
    for (const Case &c : cases) {
      std::vector<rt::SampleSpec> specs;
      std::vector<std::vector<int64_t>> tokensOf;
      std::vector<int64_t> generatedOf;
      std::vector<std::vector<int64_t>> bannedOf;
      for (int64_t j = 0; j < perCall; ++j) {
        rt::SampleSpec s;
        s.params = c.p;
        s.seed = seed * 7919 + r * 131 + j;
        s.position = static_cast<uint64_t>(100 + j * 17);
        s.logprobs = c.logprobs;
        s.topLogprobs = c.top;
        // A history: 40 tokens, the last 15 generated, drawn from the
        // row's likeliest 64 ids and a few anywhere, with repeats.
        std::vector<int64_t> toks, banned;
        std::vector<int64_t> order(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i)
          order[static_cast<size_t>(i)] = i;
        const std::vector<float> &row = rows[r];
        std::partial_sort(order.begin(), order.begin() + std::min<int64_t>(64, n), order.end(),
                          [&](int64_t a, int64_t b) { return row[a] > row[b]; });
        for (int t = 0; t < 40; ++t)
          toks.push_back(hist() % 4 ? order[hist() % std::min<int64_t>(64, n)] : static_cast<int64_t>(hist() % n));
        if (c.ban)
          banned = {order[0], static_cast<int64_t>(hist() % n)};
        if (c.penalties || c.ban)
          s.penalties = rt::penaltyEntries(c.penalties ? c.p : host::SamplingParams(), toks, 15, banned);
        specs.push_back(s);
        tokensOf.push_back(toks);
        generatedOf.push_back(15);
        bannedOf.push_back(banned);
      }
      // The row, perCall times, in the logits' dtype.
      std::vector<float> all;
      for (int64_t j = 0; j < perCall; ++j)
        all.insert(all.end(), rows[r].begin(), rows[r].end());
      staged = host::Tensor(dt, {perCall, n});
      staged.fromF32(all);
      if (Status s = model->device().upload(buf, staged.data(), staged.byteSize()); !s)
        return die(s);
      std::vector<rt::Sampled> got;
      auto t0 = std::chrono::steady_clock::now();
      if (Status s = model->sample(specs, got, buf); !s)
        return die(s);
      callUs.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      int64_t missed = 0;
      for (int64_t j = 0; j < perCall; ++j) {
        HostDraw want;
        if (Status s = hostDraw(rows[r], specs[j], tokensOf[j], generatedOf[j], bannedOf[j], want); !s)
          return die(s);
        ++draws;
        if (got[j].token == want.token)
          ++agree;
        else
          ++missed;
        if (got[j].token != want.token && firstMiss.empty())
          firstMiss = rowNames[r] + "/" + c.name + " position " + std::to_string(specs[j].position) + ": " +
                      std::to_string(got[j].token) + " against " + std::to_string(want.token);
        if (c.logprobs) {
          ++lpChecked;
          if (got[j].token == want.token)
            lpWorst = std::max(lpWorst, static_cast<double>(std::fabs(got[j].logprob - want.logprob)));
          if (got[j].top.size() != want.top.size()) {
            ++topMismatch;
          } else {
            for (size_t t = 0; t < want.top.size(); ++t) {
              if (got[j].top[t].first != want.top[t].first)
                ++topMismatch;
              lpWorst = std::max(lpWorst, static_cast<double>(std::fabs(got[j].top[t].second - want.top[t].second)));
            }
          }
        }
      }
      if (missed)
        std::fprintf(stderr, "kiln-run: --check-sampling: %s/%s: %lld of %lld draws differ\n", rowNames[r].c_str(),
                     c.name, static_cast<long long>(missed), static_cast<long long>(perCall));
    }
  model->device().free(buf);
  const double rate = static_cast<double>(agree) / static_cast<double>(std::max<int64_t>(1, draws));
  const bool pass = rate >= minAgreement && lpWorst <= 2e-3 && topMismatch == 0;
  std::sort(callUs.begin(), callUs.end());
  const double medianUs = callUs.empty() ? 0.0 : callUs[callUs.size() / 2];
  std::printf("%s GPU sampler against the host's: %lld/%lld draws agree (%.2f%%, at least %.2f%% asked) over %zu rows x "
              "%zu parameter sets; log-probabilities within %.2e (%lld rows), top lists %s; a call of %lld rows of %lld "
              "logits %.0f us (median, with its copies)%s%s\n",
              pass ? "PASS" : "FAIL", static_cast<long long>(agree), static_cast<long long>(draws), 100.0 * rate,
              100.0 * minAgreement, rows.size(), cases.size(), lpWorst, static_cast<long long>(lpChecked),
              topMismatch ? (std::to_string(topMismatch) + " entries differ").c_str() : "identical",
              static_cast<long long>(perCall), static_cast<long long>(n), medianUs, firstMiss.empty() ? "" : "; first difference: ", firstMiss.c_str());
  return pass ? 0 : 1;
}

} // namespace kiln::tools
