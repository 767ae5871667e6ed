//===- Bench.cpp - kiln-run --bench and --profile reports -----------------===//
#include "tools/kiln-run/Bench.h"

#include "runtime/target/Target.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

namespace kiln::tools {

namespace {

/// The dense bf16 peak (FLOP/s) of the built-in target with the device's
/// architecture and SM count, or 0.
double peakFlops(rt::Device &d) {
  for (const target::TargetDesc &t : target::builtinTargets())
    if (t.arch.rfind(d.arch(), 0) == 0 && t.smCount == d.multiprocessors())
      return t.bf16DenseTflops * 1e12;
  return 0;
}

} // namespace

void printBench(rt::Model &model, const BenchFigures &f, double copy) {
  const auto &m = model.manifest();
  // Bytes one decode step must read: the weights, and for each sequence on
  // average half the generated context's KV on top of the prompt's.
  double batch = static_cast<double>(f.batch);
  double bytes = static_cast<double>(m.memory.weights) +
                 batch * static_cast<double>(m.kv.bytesPerToken) * (static_cast<double>(f.prompt) + f.steps / 2);
  double perSecond = bytes * f.steps / f.decodeSeconds;
  // Batch 1 reports per token; a batch per step of `batch` tokens.
  bool one = f.batch == 1;
  std::string batchText = one ? "" : "batch " + std::to_string(f.batch) + ", ";
  char each[48] = "";
  if (!one)
    std::snprintf(each, sizeof each, " (%.1f per sequence)", f.steps / f.decodeSeconds);
  const char *unit = one ? "token" : "step";
  std::printf("bench: %s on %s: %sprompt %zu, %zu tokens%s: prefill %.2f ms; decode %.1f tok/s%s, %.3f ms/%s, "
              "%.0f bytes/%s (weights + KV), %.1f GB/s",
              f.engine.c_str(), f.device.c_str(), batchText.c_str(), f.prompt, f.tokens, one ? "" : " each",
              f.prefillMs, batch * f.steps / f.decodeSeconds, each, 1e3 * f.decodeSeconds / f.steps, unit, bytes, unit,
              perSecond / 1e9);
  // The share of the copy bandwidth is a GPU's figure of merit; the host's
  // reference kernels are not built to stream.
  if (copy > 0 && model.device().arch() != "host")
    std::printf(" = %.1f%% of the measured copy bandwidth (%.1f GB/s)", 100.0 * perSecond / copy, copy / 1e9);
  std::printf(" (host-timed%s%s)\n", f.graphs ? "" : ", no graphs", f.overlap ? "" : ", no overlap");
  if (!f.overlapChoice.empty())
    std::printf("bench: %s\n", f.overlapChoice.c_str());
}

void printProfile(rt::Model &model, double steps, double copy, const std::string &function) {
  const auto &kernels = model.manifest().kernels;
  const auto &prof = model.profile();
  double peak = peakFlops(model.device());
  std::vector<size_t> order;
  double total = 0;
  for (size_t i = 0; i < prof.size(); ++i)
    if (prof[i].calls && kernels[i].name.rfind(function, 0) == 0) {
      order.push_back(i);
      total += prof[i].us;
    }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prof[a].us > prof[b].us; });
  std::printf("profile: %.0f %s steps, each kernel timed on its own (no graphs, no overlap): %.1f us per step "
              "in kernels; roofline from the planned bytes and FLOPs, %.0f GB/s copy%s\n",
              steps, function.c_str(), total / steps, copy / 1e9, peak > 0 ? "" : ", no FLOP peak known for this device");
  std::printf("  %-28s %-17s %5s %9s %9s %6s %12s %14s %8s %8s %7s\n", "kernel", "family", "calls", "us/call",
              "us/step", "share", "bytes", "flops", "GB/s", "TFLOP/s", "%roof");
  for (size_t i : order) {
    const auto &k = kernels[i];
    double calls = static_cast<double>(prof[i].calls), perCall = prof[i].us / calls;
    // Each launch's planned bytes and FLOPs (a kernel serving several
    // decode buckets moves the rows of the one that ran), per call.
    double bytes = prof[i].bytes / calls, flops = prof[i].flops / calls;
    double floorUs = std::max(copy > 0 ? bytes / copy * 1e6 : 0.0, peak > 0 ? flops / peak * 1e6 : 0.0);
    std::printf("  %-28s %-17s %5lld %9.2f %9.2f %5.1f%% %12lld %14lld %8.1f %8.1f %6.1f%%\n", k.name.c_str(),
                k.family.c_str(), static_cast<long long>(prof[i].calls), perCall, prof[i].us / steps,
                100.0 * prof[i].us / total, static_cast<long long>(bytes), static_cast<long long>(flops),
                bytes / perCall * 1e-3, flops / perCall * 1e-6,
                100.0 * floorUs / perCall);
  }
}

namespace {

/// An integer member of the engine's config.json, or `otherwise`.
int64_t configInt(const rt::Model &model, const char *key, int64_t otherwise) {
  const format::JsonValue *v = model.manifest().config.find(key);
  return v && v->isInteger() ? v->asInt() : otherwise;
}

double median(std::vector<double> v) {
  if (v.empty())
    return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

} // namespace

std::vector<int64_t> seededPrompt(uint64_t seed, int64_t index, int64_t length) {
  host::Rng rng(seed + 1 + static_cast<uint64_t>(index));
  std::vector<int64_t> p;
  for (int64_t i = 0; i < length; ++i)
    p.push_back(static_cast<int64_t>(rng.next() % 256));
  return p;
}

int openModel(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
              std::unique_ptr<rt::Model> &model, std::string *describe) {
  std::unique_ptr<rt::Device> d;
  std::string fallback;
  Status s = rt::openDevice(device, d, &fallback);
  if (s && !fallback.empty())
    std::fprintf(stderr, "kiln-run: --device auto: no usable GPU (%s); running on the host\n", fallback.c_str());
  if (s && describe)
    *describe = d->describe();
  if (s)
    s = rt::Model::load(std::move(d), engine, load, model);
  if (!s) {
    std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}

int benchPrefill(rt::Model &model, const std::string &engine, const std::string &device,
                 const std::vector<int64_t> &lengths, int64_t batch, int64_t reps, bool profile, uint64_t seed) {
  const auto &m = model.manifest();
  if (reps < 1) {
    std::fprintf(stderr, "kiln-run: --reps takes a count of at least 1\n");
    return 2;
  }
  if (batch < 1 || batch > m.maxBatch) {
    std::fprintf(stderr, "kiln-run: --batch %lld: the engine takes 1 to %lld sequences\n",
                 static_cast<long long>(batch), static_cast<long long>(m.maxBatch));
    return 2;
  }
  int64_t H = configInt(model, "hidden_size", 0), L = configInt(model, "num_hidden_layers", 0);
  int64_t NH = configInt(model, "num_attention_heads", 0), KV = configInt(model, "num_key_value_heads", NH);
  int64_t I = configInt(model, "intermediate_size", 0), V = configInt(model, "vocab_size", 0);
  int64_t D = configInt(model, "head_dim", NH ? H / std::max<int64_t>(1, NH) : 0);
  double perToken = 2.0 * L * (static_cast<double>(H) * (NH + 2 * KV) * D + static_cast<double>(NH) * D * H +
                               3.0 * static_cast<double>(H) * I);
  int64_t perStep = std::max<int64_t>(1, m.maxNumTokens / batch); // tokens of each sequence per step
  int64_t maxBlocks = (m.maxSeq + m.pageSize - 1) / m.pageSize;
  for (size_t li = 0; li < lengths.size(); ++li) {
    int64_t n = lengths[li];
    if (n > m.maxSeq) {
      std::fprintf(stderr, "kiln-run: a prompt of %lld tokens exceeds the engine's max_seq %lld\n",
                   static_cast<long long>(n), static_cast<long long>(m.maxSeq));
      return 2;
    }
    rt::BlockManager blocks(model.pages(), model.pageSize());
    std::vector<std::vector<int64_t>> prompts;
    for (int64_t b = 0; b < batch; ++b) {
      if (Status s = blocks.reserve(b, n); !s) {
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
        return 1;
      }
      prompts.push_back(seededPrompt(seed, b, n));
    }
    int64_t chunk = std::min(n, perStep), steps = (n + chunk - 1) / chunk;
    auto prefill = [&]() -> Status {
      rt::StepOutput so;
      for (int64_t c = 0; c < n; c += chunk) {
        int64_t t = std::min(chunk, n - c);
        rt::StepInput in;
        in.batch = batch;
        in.tokens = t;
        in.maxBlocks = maxBlocks;
        in.blockTables.assign(static_cast<size_t>(batch * maxBlocks), 0);
        for (int64_t b = 0; b < batch; ++b) {
          for (int64_t i = 0; i < t; ++i) {
            in.ids.push_back(prompts[b][c + i]);
            in.positions.push_back(c + i);
          }
          const std::vector<int32_t> &tab = blocks.table(b);
          std::copy(tab.begin(), tab.end(), in.blockTables.begin() + b * maxBlocks);
          in.contextLens.push_back(static_cast<int32_t>(c + t));
        }
        if (Status s = model.step("prefill", in, so, c + t >= n); !s)
          return s;
      }
      return Status::ok();
    };
    std::vector<double> ms;
    for (int64_t r = 0; r <= reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      if (Status s = prefill(); !s) {
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
        return 1;
      }
      if (r > 0) // the first run warms up
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    double flops = batch * (perToken * n + 2.0 * V * H + 4.0 * L * NH * D * (static_cast<double>(n) * n / 2));
    double med = median(ms);
    std::printf("prefill: %s on %s: batch %lld x %lld tokens in %lld step%s of %lld: TTFT %.3f ms (median of %zu, "
                "min %.3f), %.1f TFLOP/s%s\n",
                engine.c_str(), device.c_str(), static_cast<long long>(batch), static_cast<long long>(n),
                static_cast<long long>(steps), steps == 1 ? "" : "s", static_cast<long long>(chunk), med, ms.size(),
                *std::min_element(ms.begin(), ms.end()), flops / med * 1e-9,
                H && L && NH && I && V ? "" : " (config lacks Llama fields: FLOPs unknown)");
    if (profile && li + 1 == lengths.size()) {
      model.setProfiling(true);
      Status s = prefill();
      model.setProfiling(false);
      if (!s) {
        std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
        return 1;
      }
      double copy = 0;
      (void)model.device().copyBandwidth(copy);
      printProfile(model, static_cast<double>(steps), copy, "prefill");
    }
  }
  return 0;
}

int abOverlap(rt::Model &model, const std::vector<int64_t> &prompt, rt::GenerateOptions o, int runs) {
  std::vector<double> rate[2]; // [overlap off, on]
  bool initial = model.overlap();
  for (int i = 0; i < 2 * runs; ++i) {
    bool on = i % 2 == 0;
    model.setOverlap(on);
    std::vector<std::chrono::steady_clock::time_point> stamps;
    o.onToken = [&](size_t, int64_t) {
      stamps.push_back(std::chrono::steady_clock::now());
      return true;
    };
    std::vector<std::vector<int64_t>> out;
    if (Status s = rt::generate(model, {prompt}, o, out); !s) {
      std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
      return 1;
    }
    if (stamps.size() < 3)
      continue;
    // The first decode step captures the graph: time from the second on.
    double seconds = std::chrono::duration<double>(stamps.back() - stamps[1]).count();
    double tps = static_cast<double>(stamps.size() - 2) / seconds;
    rate[on].push_back(tps);
    std::printf("ab: run %d, overlap %s: decode %.1f tok/s\n", i / 2 + 1, on ? "on" : "off", tps);
  }
  model.setOverlap(initial);
  std::printf("ab: median decode tok/s over %zu runs each: overlap on %.1f, off %.1f (%+.1f%%)\n", rate[1].size(),
              median(rate[1]), median(rate[0]), 100.0 * (median(rate[1]) / std::max(1e-9, median(rate[0])) - 1.0));
  return 0;
}

namespace {
std::string fmtGap(double g) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2e", g);
  return b;
}
} // namespace

int checkBatching(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
                  rt::GenerateOptions o, const std::vector<int64_t> &prompt, double maxTieGap) {
  std::unique_ptr<rt::Model> model;
  if (int rc = openModel(engine, device, load, model, nullptr))
    return rc;
  int64_t vocab = model->vocab(), n = static_cast<int64_t>(prompt.size());
  auto other = [&](int64_t i) { return (prompt[static_cast<size_t>(i % n)] * 7 + 13 + i) % vocab; };
  std::vector<std::vector<int64_t>> prompts;
  prompts.push_back(prompt);
  prompts.push_back(prompt); // all cached: the last page is copied, then rewritten
  for (int64_t keep : {n / 2, n - 1}) {
    std::vector<int64_t> p(prompt.begin(), prompt.begin() + keep);
    for (int64_t i = 0; i < 5; ++i)
      p.push_back(other(keep + i));
    prompts.push_back(p);
  }
  prompts.push_back(std::vector<int64_t>(prompt.rbegin(), prompt.rend()));
  std::vector<int64_t> longer = prompt;
  for (int64_t i = 0; i < 17; ++i)
    longer.push_back(other(i));
  prompts.push_back(longer);
  int64_t room = model->manifest().maxSeq - static_cast<int64_t>(longer.size());
  o.maxTokens = std::min(o.maxTokens, room);
  o.ignoreEos = true;
  o.sampling = host::SamplingParams(); // greedy
  o.onToken = nullptr;

  std::vector<std::vector<int64_t>> together, alone;
  rt::GenerateReport rep;
  Status s = rt::generate(*model, prompts, o, together, nullptr, &rep);
  rt::GenerateOptions single = o;
  single.prefixCaching = false;
  for (size_t i = 0; s && i < prompts.size(); ++i) {
    std::vector<std::vector<int64_t>> one;
    s = rt::generate(*model, {prompts[i]}, single, one);
    if (s)
      alone.push_back(one[0]);
  }
  if (!s) {
    std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
    return 1;
  }
  int64_t cached = 0;
  for (int64_t c : rep.cachedTokens)
    cached += c;
  std::string what = std::to_string(prompts.size()) + " prompts of " + std::to_string(o.maxTokens) +
                     " tokens in one call (largest batch " + std::to_string(rep.largestBatch) + ", " +
                     std::to_string(rep.decodeSteps) + " decode steps, " + std::to_string(cached) +
                     " prompt tokens from the prefix cache, " + std::to_string(rep.pageCopies) + " page copies, " +
                     std::to_string(rep.preemptions) + " preemptions, " + std::to_string(rep.waits) +
                     " deferred admissions, KV pool of " + std::to_string(model->pages()) + " pages)";
  // Where a prompt's tokens part from its run alone: with maxTieGap, a
  // parting at a near-tie passes -- the two tokens' logits, at the context
  // both runs share up to there (one prefill, no prefix cache), within
  // maxTieGap of each other relative to the largest logit. A sequence
  // preempted and resumed recomputes its KV by prefill rather than decode
  // (GPU bf16: other kernels, other rounding), so its later tokens equal
  // the uninterrupted run's only up to such ties.
  std::string ties;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (together[i] != alone[i]) {
      size_t at = 0;
      while (at < together[i].size() && at < alone[i].size() && together[i][at] == alone[i][at])
        ++at;
      double gap = -1;
      if (maxTieGap >= 0 && at < together[i].size() && at < alone[i].size()) {
        std::vector<int64_t> context = prompts[i];
        context.insert(context.end(), alone[i].begin(), alone[i].begin() + static_cast<std::ptrdiff_t>(at));
        rt::GenerateOptions one = single;
        one.maxTokens = 1;
        std::vector<std::vector<int64_t>> next;
        std::vector<std::vector<float>> logits;
        if (Status t = rt::generate(*model, {context}, one, next, &logits); !t) {
          std::fprintf(stderr, "kiln-run: %s\n", t.message().c_str());
          return 1;
        }
        const std::vector<float> &l = logits[0];
        float largest = 0;
        for (float x : l)
          largest = std::max(largest, std::fabs(x));
        int64_t a = alone[i][at], b = together[i][at];
        if (a >= 0 && b >= 0 && a < static_cast<int64_t>(l.size()) && b < static_cast<int64_t>(l.size()) &&
            largest > 0)
          gap = std::fabs(l[static_cast<size_t>(a)] - l[static_cast<size_t>(b)]) / largest;
      }
      if (gap < 0 || gap > maxTieGap) {
        std::printf("FAIL batching: prompt %zu parts from its run alone at token %zu%s; %s\n", i, at,
                    gap >= 0 ? (", logits " + fmtGap(gap) + " apart").c_str() : "", what.c_str());
        return 1;
      }
      ties += (ties.empty() ? "" : ", ") + std::string("prompt ") + std::to_string(i) + " at token " +
              std::to_string(at) + " (logits " + fmtGap(gap) + " apart)";
    }
  if (!ties.empty()) {
    std::printf("PASS batching: greedy tokens identical to each prompt alone up to near-ties: %s, within %s of "
                "the largest logit; %s\n",
                ties.c_str(), fmtGap(maxTieGap).c_str(), what.c_str());
    return 0;
  }
  std::printf("PASS batching: greedy tokens identical to each prompt alone; %s\n", what.c_str());
  return 0;
}

} // namespace kiln::tools
