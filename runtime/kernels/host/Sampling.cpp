//===- Sampling.cpp - seeded greedy / temperature / top-k / top-p / min-p -===//
#include "runtime/kernels/host/HostKernels.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace kiln::host {

static uint64_t splitmix64(uint64_t &x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

Rng::Rng(uint64_t seed) {
  for (uint64_t &s : s_)
    s = splitmix64(seed);
}

uint64_t Rng::next() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

static Status checkLogits(const float *logits, int64_t n) {
  if (n <= 0)
    return Status::error("sampling from an empty row of logits");
  for (int64_t i = 0; i < n; ++i)
    if (std::isnan(logits[i]))
      return Status::error("logits contain NaN at index " + std::to_string(i));
  return Status::ok();
}

static int64_t argmaxRow(const float *logits, int64_t n) {
  return std::max_element(logits, logits + n) - logits; // first on ties
}

Status checkSamplingParams(const SamplingParams &p) {
  if (!(p.topP > 0.0f && p.topP <= 1.0f))
    return Status::error("top_p must be in (0, 1]");
  if (!(p.minP >= 0.0f && p.minP <= 1.0f))
    return Status::error("min_p must be in [0, 1]");
  if (p.topK < 0)
    return Status::error("top_k must be 0 (all) or positive");
  if (!(p.repetitionPenalty > 0.0f) || !std::isfinite(p.repetitionPenalty))
    return Status::error("repetition_penalty must be positive (1: none)");
  if (!(p.frequencyPenalty >= -2.0f && p.frequencyPenalty <= 2.0f))
    return Status::error("frequency_penalty must be in [-2, 2]");
  if (!(p.presencePenalty >= -2.0f && p.presencePenalty <= 2.0f))
    return Status::error("presence_penalty must be in [-2, 2]");
  return Status::ok();
}

void applyPenalties(float *logits, int64_t n, const SamplingParams &p, const int64_t *seen, size_t numSeen,
                    const int64_t *output, size_t numOutput) {
  if (p.repetitionPenalty != 1.0f) {
    std::vector<bool> done(static_cast<size_t>(n), false);
    for (size_t i = 0; i < numSeen; ++i) {
      int64_t t = seen[i];
      if (t < 0 || t >= n || done[static_cast<size_t>(t)])
        continue;
      done[static_cast<size_t>(t)] = true;
      float &l = logits[t];
      l = l > 0.0f ? l / p.repetitionPenalty : l * p.repetitionPenalty;
    }
  }
  if (p.frequencyPenalty != 0.0f || p.presencePenalty != 0.0f) {
    std::vector<int64_t> count(static_cast<size_t>(n), 0);
    for (size_t i = 0; i < numOutput; ++i)
      if (output[i] >= 0 && output[i] < n)
        ++count[static_cast<size_t>(output[i])];
    for (int64_t t = 0; t < n; ++t)
      if (int64_t c = count[static_cast<size_t>(t)])
        logits[t] -= p.frequencyPenalty * static_cast<float>(c) + p.presencePenalty;
  }
}

Status samplingDistribution(const float *logits, int64_t n,
                            const SamplingParams &p, std::vector<double> &probs) {
  KILN_RETURN_IF_ERROR(checkLogits(logits, n));
  probs.assign(static_cast<size_t>(n), 0.0);
  if (p.temperature <= 0.0f || p.topK == 1) {
    probs[argmaxRow(logits, n)] = 1.0;
    return Status::ok();
  }
  KILN_RETURN_IF_ERROR(checkSamplingParams(p));
  // The tokens by logit, descending, ties to the lower id: a total order,
  // so any partial ordering by it agrees with a full sort. The vocabulary is
  // never sorted whole: top-k's tokens are selected (nth_element), and of
  // them only a prefix long enough to hold the nucleus is sorted, grown
  // fourfold until its mass reaches top_p.
  auto before = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  int64_t keep = p.topK > 0 ? std::min(p.topK, n) : n;
  if (keep < n)
    std::nth_element(order.begin(), order.begin() + keep, order.end(), before);
  const double t = static_cast<double>(p.temperature);
  double mx = logits[*std::min_element(order.begin(), order.begin() + keep, before)] / t, sum = 0.0;
  for (int64_t i = 0; i < keep; ++i)
    sum += std::exp(logits[order[i]] / t - mx);
  // Nucleus: the smallest prefix whose mass reaches top_p.
  std::vector<double> e;
  int64_t nucleus = keep;
  for (int64_t sorted = std::min<int64_t>(keep, 256);; sorted = std::min(keep, sorted * 4)) {
    if (sorted < keep)
      std::nth_element(order.begin(), order.begin() + sorted, order.begin() + keep, before);
    std::sort(order.begin(), order.begin() + sorted, before);
    e.resize(static_cast<size_t>(sorted));
    double cum = 0.0;
    nucleus = -1;
    for (int64_t i = 0; i < sorted; ++i) {
      e[i] = std::exp(logits[order[i]] / t - mx);
      cum += e[i] / sum;
      if (cum >= p.topP) {
        nucleus = i + 1;
        break;
      }
    }
    if (nucleus > 0 || sorted == keep) {
      if (nucleus < 0)
        nucleus = keep;
      break;
    }
  }
  // min_p: the prefix whose probabilities reach min_p times the largest
  // (e is in descending order, e[0] the largest).
  if (p.minP > 0.0f) {
    int64_t above = 1;
    while (above < nucleus && e[above] >= static_cast<double>(p.minP) * e[0])
      ++above;
    nucleus = above;
  }
  double kept = 0.0;
  for (int64_t i = 0; i < nucleus; ++i)
    kept += e[i];
  for (int64_t i = 0; i < nucleus; ++i)
    probs[order[i]] = e[i] / kept;
  return Status::ok();
}

void philox4x32(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]}, k[2] = {key[0], key[1]};
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c[0], p1 = static_cast<uint64_t>(0xCD9E8D57u) * c[2];
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], n2 = static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1];
    c[0] = n0, c[1] = static_cast<uint32_t>(p1), c[2] = n2, c[3] = static_cast<uint32_t>(p0);
    k[0] += 0x9E3779B9u, k[1] += 0xBB67AE85u;
  }
  for (int i = 0; i < 4; ++i)
    out[i] = c[i];
}

double counterUniform(uint64_t seed, uint64_t position) {
  const uint32_t counter[4] = {static_cast<uint32_t>(position), static_cast<uint32_t>(position >> 32), 0u, 0u};
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  uint32_t r[4];
  philox4x32(counter, key, r);
  uint64_t bits = (static_cast<uint64_t>(r[0]) << 32) | r[1];
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

Status sampleToken(const float *logits, int64_t n, const SamplingParams &p,
                   Rng &rng, int64_t &token) {
  KILN_RETURN_IF_ERROR(checkLogits(logits, n));
  if (p.temperature <= 0.0f || p.topK == 1) {
    token = argmaxRow(logits, n);
    return Status::ok();
  }
  return sampleTokenWith(logits, n, p, rng.uniform(), token);
}

Status sampleTokenWith(const float *logits, int64_t n, const SamplingParams &p, double u, int64_t &token) {
  KILN_RETURN_IF_ERROR(checkLogits(logits, n));
  if (p.temperature <= 0.0f || p.topK == 1) {
    token = argmaxRow(logits, n);
    return Status::ok();
  }
  std::vector<double> probs;
  KILN_RETURN_IF_ERROR(samplingDistribution(logits, n, p, probs));
  double cum = 0.0;
  int64_t last = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (probs[i] <= 0.0)
      continue;
    last = i;
    cum += probs[i];
    if (u < cum) {
      token = i;
      return Status::ok();
    }
  }
  token = last; // rounding left u just above the total mass
  return Status::ok();
}

float logprobOf(const float *logits, int64_t n, int64_t token, int64_t topN,
                std::vector<std::pair<int64_t, float>> &top) {
  double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
  for (int64_t i = 0; i < n; ++i)
    mx = std::max(mx, static_cast<double>(logits[i]));
  for (int64_t i = 0; i < n; ++i)
    sum += std::exp(static_cast<double>(logits[i]) - mx);
  const double lse = mx + std::log(sum);
  top.clear();
  if (int64_t k = std::min(topN, n); k > 0) {
    std::vector<int64_t> ids(static_cast<size_t>(n));
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int64_t a, int64_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int64_t i = 0; i < k; ++i)
      top.push_back({ids[i], static_cast<float>(logits[ids[i]] - lse)});
  }
  return static_cast<float>(logits[token] - lse);
}

} // namespace kiln::host
