// kiln.dequant's host kernel against known answers: int32 words packed by
// hand from each format's description (GPTQ: values along K, low bits first,
// zeros stored minus one; gptq_v2: zeros as they are; AWQ: eight 4-bit
// columns in the order 0 2 4 6 1 3 5 7), so the reader is not checked
// against a packer that could share its mistakes.
#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

#include <cmath>

using namespace kiln;
using namespace kiln::test;
using host::DequantParams;
using host::QuantPacking;

namespace {

Tensor i32(Shape shape, std::vector<uint32_t> words) {
  Tensor t(DType::I32, std::move(shape));
  for (size_t i = 0; i < words.size(); ++i)
    t.as<int32_t>()[i] = static_cast<int32_t>(words[i]);
  return t;
}

Tensor f32(Shape shape, std::vector<float> v) {
  Tensor t(DType::F32, std::move(shape));
  t.fromF32(v);
  return t;
}

std::vector<float> run(const Tensor &q, const Tensor &s, const Tensor *z, const Tensor *g, DequantParams p, Shape out,
                       Status *status = nullptr) {
  Tensor o(DType::F32, std::move(out));
  o.fill(NAN);
  Status st = host::dequant(q, s, z, g, p, o);
  if (status)
    *status = st;
  else
    EXPECT_TRUE(st.isOk()) << st.message();
  return o.toF32();
}

} // namespace

TEST(Dequant, GptqFourBitsAlongKLowBitsFirst) {
  // Column 0's word holds k = 0..7 as 0..7, column 1's as 8..15 (0x76543210:
  // nibble i is i). No zeros: symmetric, z = 8. Scale 0.5 and 2.
  Tensor q = i32({1, 2}, {0x76543210u, 0xFEDCBA98u});
  Tensor s = f32({1, 2}, {0.5f, 2.0f});
  DequantParams p{QuantPacking::Gptq, 4, -1};
  std::vector<float> w = run(q, s, nullptr, nullptr, p, {8, 2});
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(w[k * 2 + 0], (k - 8) * 0.5f) << k;
    EXPECT_EQ(w[k * 2 + 1], (k + 8 - 8) * 2.0f) << k;
  }
}

TEST(Dequant, GptqZerosAreStoredMinusOneAndV2AsTheyAre) {
  // K = 8, N = 8, one group. Every column's values are 0x76543210 (k);
  // zeros word 0x00000037: column 0 stores 7, column 1 stores 3, the rest 0.
  Tensor q = i32({1, 8}, std::vector<uint32_t>(8, 0x76543210u));
  Tensor s = f32({1, 8}, std::vector<float>(8, 1.0f));
  Tensor z = i32({1, 1}, {0x00000037u});
  std::vector<float> v1 = run(q, s, &z, nullptr, {QuantPacking::Gptq, 4, -1}, {8, 8});
  std::vector<float> v2 = run(q, s, &z, nullptr, {QuantPacking::GptqV2, 4, -1}, {8, 8});
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(v1[k * 8 + 0], k - 8.0f); // stored 7: zero point 8
    EXPECT_EQ(v1[k * 8 + 1], k - 4.0f); // stored 3: 4
    EXPECT_EQ(v1[k * 8 + 5], k - 1.0f); // stored 0: 1
    EXPECT_EQ(v2[k * 8 + 0], k - 7.0f);
    EXPECT_EQ(v2[k * 8 + 1], k - 3.0f);
    EXPECT_EQ(v2[k * 8 + 5], k - 0.0f);
  }
}

TEST(Dequant, GptqEightBitsGroupsAndActOrder) {
  // 8 bits, K = 8 (two words a column), N = 1: 0x04030201 then 0x08070605
  // hold k = 0..7 as 1..8. Groups of 4 rows, scales 1 and 10; z = 128.
  Tensor q = i32({2, 1}, {0x04030201u, 0x08070605u});
  Tensor s = f32({2, 1}, {1.0f, 10.0f});
  std::vector<float> w = run(q, s, nullptr, nullptr, {QuantPacking::Gptq, 8, 4}, {8, 1});
  for (int k = 0; k < 8; ++k)
    EXPECT_EQ(w[k], (k + 1 - 128.0f) * (k < 4 ? 1.0f : 10.0f)) << k;
  // desc_act: g_idx sends rows to groups in any order.
  Tensor g = i32({8}, {1, 0, 1, 0, 0, 1, 1, 0});
  std::vector<float> a = run(q, s, nullptr, &g, {QuantPacking::Gptq, 8, 4}, {8, 1});
  const int groups[8] = {1, 0, 1, 0, 0, 1, 1, 0};
  for (int k = 0; k < 8; ++k)
    EXPECT_EQ(a[k], (k + 1 - 128.0f) * (groups[k] ? 10.0f : 1.0f)) << k;
  // A group past the last is refused, naming the row.
  Tensor bad = i32({8}, {0, 0, 2, 0, 0, 0, 0, 0});
  Status st = Status::ok();
  run(q, s, nullptr, &bad, {QuantPacking::Gptq, 8, 4}, {8, 1}, &st);
  EXPECT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("g_idx[2] = 2"), std::string::npos) << st.message();
}

TEST(Dequant, AwqColumnsInTheOrder0246_1357) {
  // One row of 8 columns in one word whose nibble i is i: AutoAWQ put
  // column 0 in nibble 0, 2 in 1, 4 in 2, 6 in 3, 1 in 4, 3 in 5, 5 in 6 and 7
  // in 7, so the columns read 0 4 1 5 2 6 3 7. Zeros packed the same way:
  // 0x00000010 is nibble 1 = 1, i.e. column 2's zero point 1, the rest 0.
  Tensor q = i32({1, 1}, {0x76543210u});
  Tensor s = f32({1, 8}, std::vector<float>(8, 1.0f));
  Tensor z = i32({1, 1}, {0x00000010u});
  std::vector<float> w = run(q, s, &z, nullptr, {QuantPacking::Awq, 4, -1}, {1, 8});
  const float want[8] = {0, 4, 1 - 1, 5, 2, 6, 3, 7};
  for (int c = 0; c < 8; ++c)
    EXPECT_EQ(w[c], want[c]) << c;
}

TEST(Dequant, RefusesWhatDoesNotFit) {
  Tensor q = i32({1, 8}, std::vector<uint32_t>(8, 0u));
  Tensor s = f32({1, 8}, std::vector<float>(8, 1.0f));
  Status st = Status::ok();
  run(q, s, nullptr, nullptr, {QuantPacking::Gptq, 3, -1}, {8, 8}, &st);
  EXPECT_FALSE(st.isOk());
  run(q, s, nullptr, nullptr, {QuantPacking::Awq, 8, -1}, {8, 8}, &st);
  EXPECT_FALSE(st.isOk());
  run(q, s, nullptr, nullptr, {QuantPacking::Gptq, 4, 3}, {8, 8}, &st); // 3 does not divide 8
  EXPECT_FALSE(st.isOk());
  run(q, s, nullptr, nullptr, {QuantPacking::Gptq, 4, -1}, {16, 8}, &st); // qweight holds 8 rows
  EXPECT_FALSE(st.isOk());
  Tensor qf(DType::F32, {1, 8});
  run(qf, s, nullptr, nullptr, {QuantPacking::Gptq, 4, -1}, {8, 8}, &st);
  EXPECT_FALSE(st.isOk());
}

TEST(Dequant, LargeMatricesSplitOverThreadsGiveEveryValue) {
  // 1024 x 1024 (the size from which rows go to several threads), GPTQ
  // 4 bits, groups of 128 in act order: value (k, n) = (7k + 3n) mod 16,
  // zero point 8 (stored 7), scale 1 + group / 8 + n / 1024.
  const int64_t K = 1024, N = 1024, G = 8;
  Tensor q(DType::I32, {K / 8, N}), s(DType::F32, {G, N}), z(DType::I32, {G, N / 8}), g(DType::I32, {K});
  for (int64_t r = 0; r < K / 8; ++r)
    for (int64_t n = 0; n < N; ++n) {
      uint32_t word = 0;
      for (int j = 0; j < 8; ++j)
        word |= static_cast<uint32_t>((7 * (r * 8 + j) + 3 * n) % 16) << (4 * j);
      q.as<int32_t>()[r * N + n] = static_cast<int32_t>(word);
    }
  std::vector<float> sv(static_cast<size_t>(G * N));
  for (int64_t gi = 0; gi < G; ++gi)
    for (int64_t n = 0; n < N; ++n)
      sv[static_cast<size_t>(gi * N + n)] = 1.0f + static_cast<float>(gi) / 8 + static_cast<float>(n) / 1024;
  s.fromF32(sv);
  for (int64_t i = 0; i < G * N / 8; ++i)
    z.as<int32_t>()[i] = static_cast<int32_t>(0x77777777u);
  for (int64_t k = 0; k < K; ++k)
    g.as<int32_t>()[k] = static_cast<int32_t>((k * 5) % G); // every group, rows interleaved
  std::vector<float> w = run(q, s, &z, &g, {QuantPacking::Gptq, 4, 128}, {K, N});
  int64_t wrong = 0;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) {
      float want = static_cast<float>((7 * k + 3 * n) % 16 - 8) * sv[static_cast<size_t>(((k * 5) % G) * N + n)];
      wrong += w[static_cast<size_t>(k * N + n)] != want;
    }
  EXPECT_EQ(wrong, 0);
}

// kiln compile --quantize's rounding (host::quantizeRoundTrip), worked by
// hand from its description. Row 0, one group of 4 at 4 bits: lo = -1,
// hi = 2, s = f16(3 / 15) = 0.199951171875, z = round(1 / s = 5.0012) = 5;
// 0.5 / s = 2.5006 -> 3, 2 / s = 10.0024 -> 10, 0.25 / s = 1.2503 -> 1, so
// (q - z) * s = -5s, 3s, 10s, s. Row 1 in groups of 2: [-3, -1] has hi = 0,
// s = f16(0.2) again, z = round(15.0037) = 15: -15s and -5s; [0, 0] has a
// zero scale, taken as 1: zeros.
TEST(Dequant, QuantizeRoundTripKnownAnswers) {
  const float s = 0.199951171875f;
  Tensor w = f32({1, 4}, {-1.0f, 0.5f, 2.0f, 0.25f}), out(DType::F32, {1, 4});
  ASSERT_TRUE(host::quantizeRoundTrip(w, 4, 4, "w", out).isOk());
  EXPECT_EQ(out.toF32(), (std::vector<float>{-5 * s, 3 * s, 10 * s, s}));
  Tensor w2 = f32({1, 4}, {-3.0f, -1.0f, 0.0f, 0.0f}), out2(DType::F32, {1, 4});
  ASSERT_TRUE(host::quantizeRoundTrip(w2, 4, 2, "w", out2).isOk());
  EXPECT_EQ(out2.toF32(), (std::vector<float>{-15 * s, -5 * s, 0.0f, 0.0f}));
  // The same rows stored [K, N] (k_axis 0), side by side as two columns.
  Tensor wt = f32({4, 2}, {-1.0f, -3.0f, 0.5f, -1.0f, 2.0f, 0.0f, 0.25f, 0.0f}), outT(DType::F32, {4, 2});
  ASSERT_TRUE(host::quantizeRoundTrip(wt, 4, 2, "w", outT, 0).isOk());
  Tensor rowwise(DType::F32, {1, 4});
  ASSERT_TRUE(host::quantizeRoundTrip(w, 4, 2, "w", rowwise).isOk());
  std::vector<float> t = outT.toF32(), r = rowwise.toF32();
  EXPECT_EQ((std::vector<float>{t[0], t[2], t[4], t[6]}), r);
  EXPECT_EQ((std::vector<float>{t[1], t[3], t[5], t[7]}), out2.toF32());
  // Eight bits: 255 levels of the same range are finer than 15.
  Tensor out8(DType::F32, {1, 4});
  ASSERT_TRUE(host::quantizeRoundTrip(w, 8, -1, "w", out8).isOk());
  std::vector<float> e8 = out8.toF32(), e4 = out.toF32(), x = w.toF32();
  double err8 = 0, err4 = 0;
  for (int i = 0; i < 4; ++i)
    err8 += std::fabs(e8[i] - x[i]), err4 += std::fabs(e4[i] - x[i]);
  EXPECT_LT(err8, err4 / 4);
  // bf16 out: the f32 values rounded once.
  Tensor outB(DType::BF16, {1, 4});
  ASSERT_TRUE(host::quantizeRoundTrip(w, 4, 4, "w", outB).isOk());
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(outB.toF32()[i], host::bf16ToFloat(host::floatToBF16(e4[i])));
}

TEST(Dequant, QuantizeRoundTripRefusesWhatItCannotDo) {
  Tensor w = f32({2, 6}, std::vector<float>(12, 0.5f)), out(DType::F32, {2, 6});
  auto says = [](Status s, const char *what) {
    EXPECT_FALSE(s.isOk());
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
  };
  says(host::quantizeRoundTrip(w, 4, 4, "proj.weight", out), "proj.weight: a group size of 4 does not divide its 6");
  says(host::quantizeRoundTrip(w, 3, 2, "proj.weight", out), "3 bits");
  Tensor big = f32({1, 2}, {-1e6f, 1e6f}), outBig(DType::F32, {1, 2});
  says(host::quantizeRoundTrip(big, 4, -1, "proj.weight", outBig), "too large for a quantization scale in f16");
  Tensor ints(DType::I32, {2, 6});
  says(host::quantizeRoundTrip(ints, 4, 2, "proj.weight", out), "f32, f16 or bf16");
}
