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

namespace {

/// Sequence `b`'s dense rows [0, n) of a [B, S, H, D] tensor as [1, n, H, D].
Tensor sequenceRows(const Tensor &t, int64_t b, int64_t n) {
  Tensor r(t.dtype(), {1, n, t.dim(2), t.dim(3)});
  size_t row = static_cast<size_t>(t.dim(2) * t.dim(3)) * host::dtypeSize(t.dtype());
  std::memcpy(r.data(), static_cast<const uint8_t *>(t.data()) + b * t.dim(1) * row, n * row);
  return r;
}

} // namespace

// Keys written through shuffled block tables in several appends (a padded
// prefill, then decode tokens) give the same attention as the dense keys.
TEST(PagedAttention, MatchesDenseAttentionThroughShuffledPages) {
  std::mt19937_64 rng(7);
  const int64_t B = 2, Hq = 6, Hkv = 2, D = 12, page = 4, layers = 2, layer = 1;
  const int64_t lens[B] = {13, 6}, maxLen = 13, pagesPerSeq = 4, pool = 9;
  for (DType dt : kFloatTypes) {
    Tensor k = randomTensor(dt, {B, maxLen, Hkv, D}, rng, -2, 2);
    Tensor v = randomTensor(dt, {B, maxLen, Hkv, D}, rng);
    Tensor cache(dt, {layers, pool, 2, page, Hkv, D});
    cache.fill(NAN); // a read of an unwritten slot poisons the output
    Tensor bt(DType::I32, {B, pagesPerSeq});
    const int32_t pages[B][pagesPerSeq] = {{7, 2, 5, 0}, {3, 8, -1, -1}};
    for (int64_t i = 0; i < B * pagesPerSeq; ++i)
      bt.setInt(i, pages[i / pagesPerSeq][i % pagesPerSeq]);
    // Prefill the first lens[b] - 2 tokens (sequence 1 padded), then two
    // single-token appends.
    auto append = [&](int64_t from, int64_t count) {
      Tensor kk(dt, {B, count, Hkv, D}), vv(dt, {B, count, Hkv, D});
      Tensor pos(DType::I64, {B, count});
      size_t row = static_cast<size_t>(Hkv * D) * host::dtypeSize(dt);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < count; ++t) {
          int64_t p = b == 0 ? from + t : from + t - (lens[0] - lens[1]);
          bool pad = p < 0 || p >= lens[b];
          pos.setInt(b * count + t, pad ? -1 : p);
          int64_t src = pad ? 0 : p;
          std::memcpy(static_cast<uint8_t *>(kk.data()) + (b * count + t) * row,
                      static_cast<const uint8_t *>(k.data()) + (b * maxLen + src) * row, row);
          std::memcpy(static_cast<uint8_t *>(vv.data()) + (b * count + t) * row,
                      static_cast<const uint8_t *>(v.data()) + (b * maxLen + src) * row, row);
        }
      ASSERT_TRUE(host::kvAppend(cache, kk, vv, bt, pos, layer, cache).isOk());
    };
    append(0, lens[0] - 2);
    append(lens[0] - 2, 1);
    append(lens[0] - 1, 1);
    // The last T = 3 queries of each sequence, causal, plus a padding row.
    const int64_t T = 4;
    Tensor q = randomTensor(dt, {B, T, Hq, D}, rng, -2, 2);
    Tensor pos(DType::I64, {B, T}), ctx(DType::I32, {B});
    for (int64_t b = 0; b < B; ++b) {
      ctx.setInt(b, lens[b]);
      for (int64_t t = 0; t < T; ++t)
        pos.setInt(b * T + t, t == T - 1 ? -1 : lens[b] - (T - 1) + t);
    }
    host::AttentionParams p;
    p.slidingWindow = 9;
    Tensor out(dt, q.shape());
    out.fill(NAN);
    ASSERT_TRUE(host::pagedAttention(q, cache, bt, ctx, pos, layer, p, out).isOk());
    for (int64_t b = 0; b < B; ++b) {
      // Dense reference: queries 0..T-2 are the last T-1 of lens[b] keys.
      Tensor qb(dt, {1, T - 1, Hq, D});
      size_t qrow = static_cast<size_t>(Hq * D) * host::dtypeSize(dt);
      std::memcpy(qb.data(), static_cast<const uint8_t *>(q.data()) + b * T * qrow,
                  (T - 1) * qrow);
      std::vector<double> want =
          refAttention(qb, sequenceRows(k, b, lens[b]), sequenceRows(v, b, lens[b]), p);
      want.resize(want.size() + Hq * D, 0.0); // the padding row is zero
      Tensor got(dt, {1, T, Hq, D});
      std::memcpy(got.data(), static_cast<const uint8_t *>(out.data()) + b * T * qrow,
                  T * qrow);
      expectClose(got, want, toleranceFor(dt), "paged attention");
    }
  }
}

TEST(PagedAttention, RejectsPagesOutsideThePoolAndShortTables) {
  Tensor cache(DType::F32, {1, 2, 2, 4, 1, 8}), k(DType::F32, {1, 1, 1, 8});
  Tensor bt(DType::I32, {1, 1}), pos(DType::I64, {1, 1});
  cache.fill(0);
  k.fill(1);
  bt.setInt(0, 5);
  pos.setInt(0, 2);
  host::Status s = host::kvAppend(cache, k, k, bt, pos, 0, cache);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("to page 5 outside the pool of 2"), std::string::npos) << s.message();
  bt.setInt(0, 1);
  pos.setInt(0, 4); // needs a second block-table entry
  s = host::kvAppend(cache, k, k, bt, pos, 0, cache);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("needs block-table entry 1 but the table has 1"), std::string::npos)
      << s.message();
  Tensor q(DType::F32, {1, 1, 2, 8}), out(DType::F32, {1, 1, 2, 8}), ctx(DType::I32, {1});
  ctx.setInt(0, 9);
  s = host::pagedAttention(q, cache, bt, ctx, pos, 0, {}, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("context length 9 of sequence 0 does not fit"), std::string::npos)
      << s.message();
  s = host::kvAppend(cache, k, k, bt, pos, 1, cache);
  EXPECT_FALSE(s.isOk());
}
