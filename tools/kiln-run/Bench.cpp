//===- Bench.cpp - kiln-run --bench and --profile reports -----------------===//
#include "tools/kiln-run/Bench.h"

#include "runtime/target/Target.h"

#include <algorithm>
#include <chrono>
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
  if (copy > 0)
    std::printf(" = %.1f%% of the measured copy bandwidth (%.1f GB/s)", 100.0 * perSecond / copy, copy / 1e9);
  std::printf(" (host-timed%s%s)\n", f.graphs ? "" : ", no graphs", f.overlap ? "" : ", no overlap");
  if (!f.overlapChoice.empty())
    std::printf("bench: %s\n", f.overlapChoice.c_str());
}

void printProfile(rt::Model &model, double steps, double copy) {
  const auto &kernels = model.manifest().kernels;
  const auto &prof = model.profile();
  double peak = peakFlops(model.device());
  std::vector<size_t> order;
  double total = 0;
  for (size_t i = 0; i < prof.size(); ++i)
    if (prof[i].calls && kernels[i].name.rfind("decode", 0) == 0) {
      order.push_back(i);
      total += prof[i].us;
    }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prof[a].us > prof[b].us; });
  std::printf("profile: %.0f decode steps, each kernel timed on its own (no graphs, no overlap): %.1f us per step "
              "in kernels; roofline from the planned bytes and FLOPs, %.0f GB/s copy%s\n",
              steps, total / steps, copy / 1e9, peak > 0 ? "" : ", no FLOP peak known for this device");
  std::printf("  %-28s %-17s %5s %9s %9s %6s %12s %14s %8s %7s\n", "kernel", "family", "calls", "us/call",
              "us/step", "share", "bytes", "flops", "GB/s", "%roof");
  for (size_t i : order) {
    const auto &k = kernels[i];
    double perCall = prof[i].us / static_cast<double>(prof[i].calls);
    double floorUs = std::max(copy > 0 ? static_cast<double>(k.bytes) / copy * 1e6 : 0.0,
                              peak > 0 ? static_cast<double>(k.flops) / peak * 1e6 : 0.0);
    std::printf("  %-28s %-17s %5lld %9.2f %9.2f %5.1f%% %12lld %14lld %8.1f %6.1f%%\n", k.name.c_str(),
                k.family.c_str(), static_cast<long long>(prof[i].calls), perCall, prof[i].us / steps,
                100.0 * prof[i].us / total, static_cast<long long>(k.bytes), static_cast<long long>(k.flops),
                static_cast<double>(k.bytes) / perCall * 1e-3, 100.0 * floorUs / perCall);
  }
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
  auto median = [](std::vector<double> v) {
    if (v.empty())
      return 0.0;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  };
  std::printf("ab: median decode tok/s over %zu runs each: overlap on %.1f, off %.1f (%+.1f%%)\n", rate[1].size(),
              median(rate[1]), median(rate[0]), 100.0 * (median(rate[1]) / std::max(1e-9, median(rate[0])) - 1.0));
  return 0;
}

int checkBatching(const std::string &engine, const std::string &device, const rt::LoadOptions &load,
                  rt::GenerateOptions o, const std::vector<int64_t> &prompt) {
  std::unique_ptr<rt::Device> d;
  std::unique_ptr<rt::Model> model;
  Status s = rt::openDevice(device, d);
  if (s)
    s = rt::Model::load(std::move(d), engine, load, model);
  if (!s) {
    std::fprintf(stderr, "kiln-run: %s\n", s.message().c_str());
    return 1;
  }
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
  s = rt::generate(*model, prompts, o, together, nullptr, &rep);
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
  for (size_t i = 0; i < prompts.size(); ++i)
    if (together[i] != alone[i]) {
      size_t at = 0;
      while (at < together[i].size() && at < alone[i].size() && together[i][at] == alone[i][at])
        ++at;
      std::printf("FAIL batching: prompt %zu parts from its run alone at token %zu; %s\n", i, at, what.c_str());
      return 1;
    }
  std::printf("PASS batching: greedy tokens identical to each prompt alone; %s\n", what.c_str());
  return 0;
}

} // namespace kiln::tools
