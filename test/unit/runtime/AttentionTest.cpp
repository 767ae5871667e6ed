#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

using namespace kiln;
using namespace kiln::test;

namespace {

std::vector<double> refAttention(const Tensor &q, const Tensor &k, const Tensor &v,
                                 const host::AttentionParams &p) {
  int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  int64_t S = k.dim(1), Hkv = k.dim(2), Dv = v.dim(3);
  std::vector<double> qv = values(q), kv = values(k), vv = values(v);
  std::vector<double> out(B * T * Hq * Dv, 0.0);
  double scale = p.scale ? *p.scale : 1 / std::sqrt(double(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t t = 0; t < T; ++t) {
        int64_t kh = h * Hkv / Hq, qpos = t + S - T;
        std::vector<double> w(S, 0.0);
        double mx = -1e300, sum = 0;
        std::vector<bool> vis(S);
        for (int64_t s = 0; s < S; ++s) {
          vis[s] = (!p.causal || s <= qpos) &&
                   (!p.slidingWindow || qpos - s < *p.slidingWindow);
          if (!vis[s])
            continue;
          double d = 0;
          for (int64_t i = 0; i < D; ++i)
            d += qv[((b * T + t) * Hq + h) * D + i] * kv[((b * S + s) * Hkv + kh) * D + i];
          d *= scale;
          if (p.softcap)
            d = *p.softcap * std::tanh(d / *p.softcap);
          w[s] = d;
          mx = std::max(mx, d);
        }
        for (int64_t s = 0; s < S; ++s)
          if (vis[s]) {
            w[s] = std::exp(w[s] - mx);
            sum += w[s];
          }
        for (int64_t s = 0; s < S; ++s)
          if (vis[s])
            for (int64_t i = 0; i < Dv; ++i)
              out[((b * T + t) * Hq + h) * Dv + i] +=
                  w[s] / sum * vv[((b * S + s) * Hkv + kh) * Dv + i];
      }
  return out;
}

struct Case {
  int64_t B, T, S, Hq, Hkv, D;
  host::AttentionParams p;
};

} // namespace

TEST(Attention, CausalGqaWindowSoftcapMatchFloat64) {
  std::mt19937_64 rng(15);
  host::AttentionParams causal, window, softcap, full, scaled;
  window.slidingWindow = 4;
  softcap.softcap = 5.0;
  full.causal = false;
  scaled.scale = 0.3;
  const Case cases[] = {
      {2, 9, 9, 6, 2, 20, causal},   // prefill, GQA 3:1, odd sizes
      {1, 1, 13, 4, 4, 16, causal},  // one decode token over a longer context
      {1, 7, 11, 4, 1, 12, window},  // MQA with a sliding window
      {2, 5, 5, 2, 2, 33, softcap},
      {1, 3, 8, 6, 3, 10, full},
      {1, 4, 4, 2, 1, 8, scaled},
  };
  for (DType dt : kFloatTypes)
    for (const Case &c : cases) {
      Tensor q = randomTensor(dt, {c.B, c.T, c.Hq, c.D}, rng, -2, 2);
      Tensor k = randomTensor(dt, {c.B, c.S, c.Hkv, c.D}, rng, -2, 2);
      Tensor v = randomTensor(dt, {c.B, c.S, c.Hkv, c.D + 3}, rng);
      Tensor out(dt, {c.B, c.T, c.Hq, c.D + 3});
      out.fill(NAN);
      ASSERT_TRUE(host::attention(q, k, v, c.p, out).isOk());
      expectClose(out, refAttention(q, k, v, c.p), toleranceFor(dt), "attention");
    }
}

TEST(Attention, RejectsBadHeadCounts) {
  Tensor q(DType::F32, {1, 2, 5, 8}), k(DType::F32, {1, 2, 2, 8});
  Tensor v(DType::F32, {1, 2, 2, 8}), out(DType::F32, {1, 2, 5, 8});
  host::Status s = host::attention(q, k, v, {}, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a multiple"), std::string::npos);
}
