#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

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
