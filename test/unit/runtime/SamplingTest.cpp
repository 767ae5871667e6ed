#include "TestTensors.h"

#include "runtime/core/Sampler.h"
#include "runtime/kernels/host/HostKernels.h"

#include <algorithm>
#include <limits>
#include <map>

using namespace kiln;

TEST(Sampling, GreedyIsArgmax) {
  std::mt19937_64 rng(18);
  std::uniform_real_distribution<float> u(-5, 5);
  std::vector<float> logits(101);
  for (float &l : logits)
    l = u(rng);
  int64_t best = std::max_element(logits.begin(), logits.end()) - logits.begin();
  host::Rng r(1);
  int64_t tok = -1;
  ASSERT_TRUE(host::sampleToken(logits.data(), 101, {}, r, tok).isOk());
  EXPECT_EQ(tok, best);
  host::SamplingParams k1{1.0f, 1, 1.0f};
  ASSERT_TRUE(host::sampleToken(logits.data(), 101, k1, r, tok).isOk());
  EXPECT_EQ(tok, best);
}

TEST(Sampling, TopKAndTopPRestrictTheSupport) {
  // Logits whose softmax at temperature 1 is roughly 0.5, 0.25, 0.125, ...
  std::vector<float> logits(10);
  for (int i = 0; i < 10; ++i)
    logits[i] = -static_cast<float>(i) * std::log(2.0f);
  std::swap(logits[0], logits[7]); // the best id is 7, not 0
  std::vector<double> probs;
  ASSERT_TRUE(host::samplingDistribution(logits.data(), 10, {1.0f, 3, 1.0f}, probs).isOk());
  EXPECT_NEAR(probs[7], 4.0 / 7, 1e-6);
  EXPECT_NEAR(probs[1], 2.0 / 7, 1e-6);
  EXPECT_NEAR(probs[2], 1.0 / 7, 1e-6);
  EXPECT_EQ(probs[3], 0.0);
  // top_p 0.7: 0.5 + 0.25 reaches it, so two tokens remain.
  ASSERT_TRUE(host::samplingDistribution(logits.data(), 10, {1.0f, 0, 0.7f}, probs).isOk());
  EXPECT_NEAR(probs[7], 2.0 / 3, 1e-6);
  EXPECT_NEAR(probs[1], 1.0 / 3, 1e-6);
  EXPECT_EQ(probs[2], 0.0);

  host::Rng r(42);
  std::map<int64_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    int64_t tok;
    ASSERT_TRUE(host::sampleToken(logits.data(), 10, {1.0f, 3, 1.0f}, r, tok).isOk());
    ++counts[tok];
  }
  EXPECT_EQ(counts.size(), 3u);
  // Frequencies within 5 standard deviations of the distribution.
  for (auto [id, want] : {std::pair<int64_t, double>{7, 4.0 / 7}, {1, 2.0 / 7}, {2, 1.0 / 7}}) {
    double sd = std::sqrt(want * (1 - want) / n);
    EXPECT_NEAR(counts[id] / double(n), want, 5 * sd) << id;
  }
}

TEST(Sampling, SeedReproducesAndErrorsAreReported) {
  std::vector<float> logits = {0.1f, 0.3f, 0.2f, 0.25f, 0.15f};
  host::SamplingParams p{0.8f, 0, 0.95f};
  std::vector<int64_t> a, b;
  host::Rng r1(7), r2(7), r3(8);
  for (int i = 0; i < 64; ++i) {
    int64_t t1, t2, t3;
    ASSERT_TRUE(host::sampleToken(logits.data(), 5, p, r1, t1).isOk());
    ASSERT_TRUE(host::sampleToken(logits.data(), 5, p, r2, t2).isOk());
    ASSERT_TRUE(host::sampleToken(logits.data(), 5, p, r3, t3).isOk());
    a.push_back(t1);
    b.push_back(t2);
    b.push_back(t3);
  }
  for (int i = 0; i < 64; ++i)
    EXPECT_EQ(a[i], b[2 * i]);
  int differ = 0;
  for (int i = 0; i < 64; ++i)
    differ += a[i] != b[2 * i + 1];
  EXPECT_GT(differ, 0) << "another seed gave the same 64 tokens";

  logits[2] = NAN;
  int64_t tok;
  host::Status s = host::sampleToken(logits.data(), 5, p, r1, tok);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("NaN"), std::string::npos);
  EXPECT_FALSE(host::sampleToken(logits.data(), 0, p, r1, tok).isOk());
}

// Philox4x32-10 against the known-answer vectors of its authors' Random123
// (kat_vectors: counter, key, output).
TEST(Sampling, PhiloxKnownAnswers) {
  struct Kat {
    uint32_t ctr[4], key[2], want[4];
  } kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat &k : kats) {
    uint32_t out[4];
    host::philox4x32(k.ctr, k.key, out);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(out[i], k.want[i]) << std::hex << k.ctr[0] << " word " << i;
  }
}

// counterUniform: in [0, 1), a function of (seed, position) alone, and
// spread evenly (a chi-square over 16 bins of 16384 draws).
TEST(Sampling, CounterUniformIsStatelessAndEven) {
  EXPECT_EQ(host::counterUniform(5, 77), host::counterUniform(5, 77));
  EXPECT_NE(host::counterUniform(5, 77), host::counterUniform(5, 78));
  EXPECT_NE(host::counterUniform(5, 77), host::counterUniform(6, 77));
  int bins[16] = {};
  const int n = 16384;
  for (int i = 0; i < n; ++i) {
    double u = host::counterUniform(0x1234567890abcdefull, static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++bins[static_cast<int>(u * 16)];
  }
  double chi = 0.0, want = n / 16.0;
  for (int b : bins)
    chi += (b - want) * (b - want) / want;
  EXPECT_LT(chi, 37.7) << "chi-square of 15 degrees of freedom past its 0.1% tail";
}

// min_p keeps the tokens whose probability (after temperature) is at least
// min_p times the largest, renormalised; the rest get none.
TEST(Sampling, MinPDropsTheUnlikely) {
  std::mt19937_64 rng(31);
  std::uniform_real_distribution<float> u(-4, 4);
  std::vector<float> logits(257);
  for (float &l : logits)
    l = u(rng);
  host::SamplingParams p;
  p.temperature = 0.8f;
  p.minP = 0.3f;
  std::vector<double> probs;
  ASSERT_TRUE(host::samplingDistribution(logits.data(), 257, p, probs).isOk());
  float top = *std::max_element(logits.begin(), logits.end());
  double total = 0, kept = 0;
  std::vector<double> full(257);
  for (size_t i = 0; i < 257; ++i)
    total += full[i] = std::exp(logits[i] / static_cast<double>(p.temperature) - top / static_cast<double>(p.temperature));
  for (size_t i = 0; i < 257; ++i)
    if (full[i] >= static_cast<double>(p.minP)) // the largest is exp(0) = 1
      kept += full[i];
  int support = 0;
  for (size_t i = 0; i < 257; ++i) {
    bool in = full[i] >= static_cast<double>(p.minP);
    support += in;
    EXPECT_NEAR(probs[i], in ? full[i] / kept : 0.0, 1e-12) << i;
  }
  EXPECT_GT(support, 1);
  EXPECT_LT(support, 257);
  p.minP = 1.5f;
  EXPECT_NE(host::samplingDistribution(logits.data(), 257, p, probs).message().find("min_p"), std::string::npos);
}

// Penalties against their definitions: repetition divides a seen token's
// positive logit and multiplies a negative one (once, however often seen);
// frequency and presence subtract per output occurrence and once per
// output token; ids out of range are ignored; bad values are named.
TEST(Sampling, PenaltiesFollowTheirDefinitions) {
  std::vector<float> logits = {2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 1.0f};
  host::SamplingParams p;
  p.repetitionPenalty = 2.0f;
  p.frequencyPenalty = 0.5f;
  p.presencePenalty = 0.25f;
  const std::vector<int64_t> seen = {0, 1, 1, 3, 9, -4}, output = {3, 3, 1, 7};
  std::vector<float> got = logits;
  host::applyPenalties(got.data(), 6, p, seen.data(), seen.size(), output.data(), output.size());
  std::vector<float> want = {2.0f / 2, -1.0f * 2 - 0.5f * 1 - 0.25f, 0.5f, 3.0f / 2 - 0.5f * 2 - 0.25f, -2.0f, 1.0f};
  for (size_t i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(got[i], want[i]) << i;
  host::SamplingParams none;
  EXPECT_FALSE(none.penalised());
  EXPECT_TRUE(p.penalised());
  for (auto [field, value, name] : std::vector<std::tuple<int, float, std::string>>{
           {0, 0.0f, "repetition_penalty"}, {1, 2.5f, "frequency_penalty"}, {2, -3.0f, "presence_penalty"}}) {
    host::SamplingParams bad;
    (field == 0 ? bad.repetitionPenalty : field == 1 ? bad.frequencyPenalty : bad.presencePenalty) = value;
    EXPECT_NE(host::checkSamplingParams(bad).message().find(name), std::string::npos) << name;
  }
}

namespace {
/// The distribution by its definition, over the whole vocabulary sorted:
/// descending logits (ties to the lower id), the first top_k, the shortest
/// prefix reaching top_p, then those within min_p of the largest.
std::vector<double> byFullSort(const std::vector<float> &l, const kiln::host::SamplingParams &p) {
  int64_t n = static_cast<int64_t>(l.size());
  std::vector<int64_t> order(l.size());
  for (int64_t i = 0; i < n; ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return l[a] > l[b]; });
  int64_t keep = p.topK > 0 ? std::min<int64_t>(p.topK, n) : n;
  double mx = l[order[0]] / p.temperature, sum = 0;
  std::vector<double> e(keep);
  for (int64_t i = 0; i < keep; ++i)
    sum += e[i] = std::exp(l[order[i]] / static_cast<double>(p.temperature) - mx);
  int64_t nucleus = keep;
  double cum = 0;
  for (int64_t i = 0; i < keep; ++i)
    if ((cum += e[i] / sum) >= p.topP) {
      nucleus = i + 1;
      break;
    }
  if (p.minP > 0) {
    int64_t above = 1;
    while (above < nucleus && e[above] >= p.minP * e[0])
      ++above;
    nucleus = above;
  }
  double kept = 0;
  for (int64_t i = 0; i < nucleus; ++i)
    kept += e[i];
  std::vector<double> probs(l.size(), 0.0);
  for (int64_t i = 0; i < nucleus; ++i)
    probs[order[i]] = e[i] / kept;
  return probs;
}
} // namespace

// The sampler never sorts the whole vocabulary (top-k selected, only a
// prefix long enough for the nucleus sorted) yet gives the distribution of
// a full sort: random logits over a 128k vocabulary and a small one, with
// ties (logits rounded to a grid), for temperatures, top-k, top-p and min-p.
TEST(Sampling, PartialOrderingGivesTheFullSortsDistribution) {
  std::mt19937 rng(7);
  for (int64_t n : {int64_t(37), int64_t(1000), int64_t(128256)}) {
    std::vector<float> l(static_cast<size_t>(n));
    std::normal_distribution<float> g(0.0f, 3.0f);
    for (float &x : l)
      x = std::round(g(rng) * 8.0f) / 8.0f; // ties
    for (float temperature : {0.3f, 1.0f, 2.5f})
      for (int64_t topK : {int64_t(0), int64_t(1), int64_t(5), int64_t(300), int64_t(5000)})
        for (float topP : {1.0f, 0.95f, 0.5f, 0.01f})
          for (float minP : {0.0f, 0.05f}) {
            kiln::host::SamplingParams p;
            p.temperature = temperature;
            p.topK = topK;
            p.topP = topP;
            p.minP = minP;
            std::vector<double> got;
            ASSERT_TRUE(kiln::host::samplingDistribution(l.data(), n, p, got).isOk());
            std::vector<double> want = topK == 1 ? std::vector<double>() : byFullSort(l, p);
            if (topK == 1) {
              want.assign(l.size(), 0.0);
              want[std::max_element(l.begin(), l.end()) - l.begin()] = 1.0;
            }
            size_t support = 0;
            for (size_t i = 0; i < got.size(); ++i) {
              ASSERT_NEAR(got[i], want[i], 1e-9) << "n " << n << " T " << temperature << " k " << topK << " p "
                                                 << topP << " min_p " << minP << " token " << i;
              support += got[i] > 0;
            }
            EXPECT_GT(support, 0u);
          }
  }
}

// The GPU sampler's penalty entries (runtime/core/Sampler.h), applied as
// the kernel applies them (cuda/sampling.cuh: each entry's token once,
// repetition where seen, frequency and presence by its output count, then
// a ban), give the host's penalised row exactly, for random histories and
// every combination of penalties.
TEST(Sampling, PenaltyEntriesReproduceTheHostPenalties) {
  std::mt19937_64 rng(77);
  std::normal_distribution<float> g(0.0f, 3.0f);
  const int64_t n = 300;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> logits(n);
    for (float &l : logits)
      l = g(rng);
    host::SamplingParams p;
    p.repetitionPenalty = trial % 3 == 0 ? 1.0f : 0.5f + static_cast<float>(rng() % 100) / 50.0f;
    p.frequencyPenalty = trial % 5 == 1 ? 0.0f : static_cast<float>(rng() % 400) / 100.0f - 2.0f;
    p.presencePenalty = trial % 7 == 2 ? 0.0f : static_cast<float>(rng() % 400) / 100.0f - 2.0f;
    std::vector<int64_t> tokens(1 + rng() % 60);
    for (int64_t &t : tokens)
      t = static_cast<int64_t>(rng() % 40 == 0 ? n + rng() % 5 : rng() % (trial % 2 ? 20 : n)); // repeats, a few outside
    int64_t generated = static_cast<int64_t>(rng() % (tokens.size() + 1));
    std::vector<int64_t> banned;
    if (trial % 4 == 3)
      banned = {static_cast<int64_t>(rng() % n), static_cast<int64_t>(rng() % n)};

    std::vector<float> want = logits;
    if (p.penalised())
      host::applyPenalties(want.data(), n, p, tokens.data(), tokens.size(),
                           tokens.data() + tokens.size() - generated, static_cast<size_t>(generated));
    for (int64_t b : banned)
      want[b] = -std::numeric_limits<float>::infinity();

    std::vector<rt::SamplePenalty> entries = rt::penaltyEntries(p, tokens, generated, banned);
    std::vector<float> got = logits;
    for (size_t e = 0; e < entries.size(); ++e) {
      const rt::SamplePenalty &x = entries[e];
      if (e > 0)
        ASSERT_LT(entries[e - 1].token, x.token) << "sorted, each token once";
      if (x.token < 0 || x.token >= n)
        continue;
      float l = logits[x.token];
      if (x.flags & rt::kPenaltySeen)
        l = l > 0.0f ? l / p.repetitionPenalty : l * p.repetitionPenalty;
      if (x.count > 0)
        l -= p.frequencyPenalty * static_cast<float>(x.count) + p.presencePenalty;
      if (x.flags & rt::kPenaltyBan)
        l = -std::numeric_limits<float>::infinity();
      got[x.token] = l;
    }
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[i], want[i]) << "trial " << trial << " token " << i;

    // The same entries kept as the tokens grow (the step loop's table: the
    // prompt at once, then the output a token or a few at a time).
    const size_t promptLen = tokens.size() - static_cast<size_t>(generated);
    rt::PenaltyTable table;
    std::vector<int64_t> grown(tokens.begin(), tokens.begin() + static_cast<long>(promptLen));
    table.extend(p, grown, promptLen);
    for (size_t i = promptLen; i < tokens.size();) {
      size_t step = 1 + rng() % 3;
      for (size_t j = 0; j < step && i < tokens.size(); ++j)
        grown.push_back(tokens[i++]);
      table.extend(p, grown, promptLen);
    }
    std::vector<rt::SamplePenalty> kept = table.entries(banned);
    ASSERT_EQ(kept.size(), entries.size()) << "trial " << trial;
    for (size_t e = 0; e < kept.size(); ++e) {
      EXPECT_EQ(kept[e].token, entries[e].token);
      EXPECT_EQ(kept[e].count, entries[e].count);
      EXPECT_EQ(kept[e].flags, entries[e].flags);
    }
  }
  // Nothing to penalise, nothing banned: no entries (the kernel skips the row's lookups).
  EXPECT_TRUE(rt::penaltyEntries({}, {1, 2, 3}, 2, {}).empty());
}
