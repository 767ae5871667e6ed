#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

#include <cstring>

using namespace kiln;
using namespace kiln::test;

TEST(Norm, RmsNormMatchesFloat64) {
  std::mt19937_64 rng(11);
  for (DType dt : kFloatTypes)
    for (float offset : {0.0f, 1.0f}) {
      Tensor x = randomTensor(dt, {2, 3, 45}, rng, -3, 3);
      Tensor w = randomTensor(dt, {45}, rng, 0.5, 1.5);
      Tensor out(dt, {2, 3, 45});
      out.fill(NAN);
      ASSERT_TRUE(host::rmsNorm(x, w, 1e-5f, offset, out).isOk());
      std::vector<double> xv = values(x), wv = values(w), want;
      for (int r = 0; r < 6; ++r) {
        double ss = 0;
        for (int i = 0; i < 45; ++i)
          ss += xv[r * 45 + i] * xv[r * 45 + i];
        double inv = 1 / std::sqrt(ss / 45 + 1e-5);
        for (int i = 0; i < 45; ++i)
          want.push_back(xv[r * 45 + i] * inv * (wv[i] + offset));
      }
      expectClose(out, want, toleranceFor(dt), "rms_norm");
    }
}

TEST(Norm, LayerNormWithAndWithoutBias) {
  std::mt19937_64 rng(12);
  for (DType dt : kFloatTypes)
    for (bool withBias : {false, true}) {
      Tensor x = randomTensor(dt, {7, 29}, rng, -2, 4);
      Tensor w = randomTensor(dt, {29}, rng);
      Tensor b = randomTensor(dt, {29}, rng);
      Tensor out(dt, {7, 29});
      ASSERT_TRUE(host::layerNorm(x, w, withBias ? &b : nullptr, 1e-5f, out).isOk());
      std::vector<double> xv = values(x), wv = values(w), bv = values(b), want;
      for (int r = 0; r < 7; ++r) {
        double mean = 0, var = 0;
        for (int i = 0; i < 29; ++i)
          mean += xv[r * 29 + i] / 29;
        for (int i = 0; i < 29; ++i)
          var += (xv[r * 29 + i] - mean) * (xv[r * 29 + i] - mean) / 29;
        for (int i = 0; i < 29; ++i)
          want.push_back((xv[r * 29 + i] - mean) / std::sqrt(var + 1e-5) * wv[i] +
                         (withBias ? bv[i] : 0));
      }
      expectClose(out, want, toleranceFor(dt), "layer_norm");
    }
  Tensor x(DType::F32, {2, 4}), w(DType::F32, {5}), o(DType::F32, {2, 4});
  EXPECT_FALSE(host::layerNorm(x, w, nullptr, 1e-5f, o).isOk());
}

namespace {

/// Rotary embedding in float64 straight from the definition.
std::vector<double> refRope(const Tensor &x, const Tensor &pos, host::RopeStyle style,
                            int64_t rd, const std::vector<double> &inv, double mag) {
  int64_t B = x.dim(0), T = x.dim(1), H = x.dim(2), D = x.dim(3);
  std::vector<double> v = values(x);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        double *p = v.data() + ((b * T + t) * H + h) * D;
        for (int64_t i = 0; i < rd / 2; ++i) {
          double a = pos.get(b * T + t) * inv[i];
          int64_t i0 = style == host::RopeStyle::Neox ? i : 2 * i;
          int64_t i1 = style == host::RopeStyle::Neox ? i + rd / 2 : 2 * i + 1;
          double x0 = p[i0], x1 = p[i1];
          p[i0] = (x0 * std::cos(a) - x1 * std::sin(a)) * mag;
          p[i1] = (x1 * std::cos(a) + x0 * std::sin(a)) * mag;
        }
      }
  return v;
}

} // namespace

TEST(Rope, BothStylesAndPartialRotary) {
  std::mt19937_64 rng(13);
  for (DType dt : kFloatTypes)
    for (host::RopeStyle style : {host::RopeStyle::Neox, host::RopeStyle::GptJ})
      for (int64_t rd : {int64_t(0), int64_t(12)}) {
        Tensor x = randomTensor(dt, {2, 5, 3, 18}, rng);
        Tensor pos(DType::I64, {2, 5});
        for (int i = 0; i < 10; ++i)
          pos.set(i, (i * 37) % 101); // positions need not be contiguous
        host::RopeParams p;
        p.style = style;
        p.theta = 10000.0;
        p.rotaryDim = rd;
        Tensor out(dt, x.shape());
        ASSERT_TRUE(host::rope(x, pos, p, out).isOk());
        int64_t r = rd ? rd : 18;
        std::vector<double> inv;
        for (int64_t i = 0; i < r / 2; ++i)
          inv.push_back(std::pow(10000.0, -2.0 * i / r));
        expectClose(out, refRope(x, pos, style, r, inv, 1.0), toleranceFor(dt), "rope");
      }
}

TEST(Rope, Llama3ScalingBands) {
  host::RopeParams p;
  p.theta = 500000.0;
  p.scaling = host::RopeScaling::Llama3;
  p.factor = 8.0;
  p.lowFreqFactor = 1.0;
  p.highFreqFactor = 4.0;
  p.originalMaxPositions = 8192;
  std::vector<double> inv = host::ropeInvFreq(p, 128);
  ASSERT_EQ(inv.size(), 64u);
  for (int i = 0; i < 64; ++i) {
    double f = std::pow(500000.0, -2.0 * i / 128), wavelen = 2 * M_PI / f;
    double want;
    if (wavelen < 8192.0 / 4)
      want = f; // high frequency: unchanged
    else if (wavelen > 8192.0)
      want = f / 8; // low frequency: divided by the factor
    else {
      double smooth = (8192.0 / wavelen - 1) / (4 - 1);
      want = (1 - smooth) * f / 8 + smooth * f;
    }
    EXPECT_NEAR(inv[i], want, 1e-12 * f) << i;
  }
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_DOUBLE_EQ(inv[63], std::pow(500000.0, -126.0 / 128) / 8);
}

TEST(Rope, LinearAndYarnScaling) {
  host::RopeParams lin;
  lin.scaling = host::RopeScaling::Linear;
  lin.factor = 4.0;
  std::vector<double> l = host::ropeInvFreq(lin, 16);
  EXPECT_DOUBLE_EQ(l[3], std::pow(10000.0, -6.0 / 16) / 4);

  host::RopeParams y;
  y.scaling = host::RopeScaling::Yarn;
  y.factor = 4.0;
  y.originalMaxPositions = 4096;
  std::vector<double> inv = host::ropeInvFreq(y, 64);
  // High frequencies are extrapolated (unchanged), low ones interpolated.
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_DOUBLE_EQ(inv[31], std::pow(10000.0, -62.0 / 64) / 4);
  EXPECT_NEAR(host::ropeMagnitude(y), 0.1 * std::log(4.0) + 1, 1e-15);

  // The rope kernel applies the magnitude.
  std::mt19937_64 rng(14);
  Tensor x = randomTensor(DType::F32, {1, 3, 2, 64}, rng);
  Tensor pos(DType::I64, {1, 3});
  for (int i = 0; i < 3; ++i)
    pos.set(i, 1000 * i + 5);
  Tensor out(DType::F32, x.shape());
  ASSERT_TRUE(host::rope(x, pos, y, out).isOk());
  expectClose(out, refRope(x, pos, host::RopeStyle::Neox, 64, inv, host::ropeMagnitude(y)),
              1e-4, "yarn rope");
}

// The step's table (ropeCosSin) holds each angle's cosine and sine as the
// rotation computes them, and a rotation reading it gives the same bits as
// one computing its own -- for shared and per-sequence positions, both
// styles, partial rotary dims and yarn's magnitude.
TEST(Rope, CosSinTableGivesTheSameBits) {
  std::mt19937_64 rng(17);
  for (bool shared : {false, true})
    for (host::RopeStyle style : {host::RopeStyle::Neox, host::RopeStyle::GptJ})
      for (int64_t rd : {int64_t(0), int64_t(12)}) {
        host::RopeParams p;
        p.style = style;
        p.theta = 500000.0;
        p.rotaryDim = rd;
        p.scaling = host::RopeScaling::Yarn;
        p.factor = 4.0;
        p.originalMaxPositions = 4096;
        Tensor x = randomTensor(DType::BF16, {2, 5, 3, 18}, rng);
        Tensor pos(DType::I64, {shared ? 1 : 2, 5});
        for (int64_t i = 0; i < pos.numel(); ++i)
          pos.set(i, static_cast<double>(rng() % 200000)); // positions far past 2^16
        int64_t r = rd ? rd : 18;
        host::RopeParams tp = p;
        tp.rotaryDim = r;
        Tensor table(DType::F32, {pos.dim(0), 5, r / 2, 2});
        table.fill(NAN);
        ASSERT_TRUE(host::ropeCosSin(pos, tp, table).isOk());
        std::vector<double> inv = host::ropeInvFreq(tp, r);
        double mag = host::ropeMagnitude(tp);
        EXPECT_GT(mag, 1.0);
        for (int64_t row = 0; row < pos.numel(); ++row)
          for (int64_t i = 0; i < r / 2; ++i) {
            double a = pos.get(row) * inv[i];
            EXPECT_NEAR(table.as<float>()[(row * r / 2 + i) * 2], std::cos(a) * mag, 2e-7 * mag);
            EXPECT_NEAR(table.as<float>()[(row * r / 2 + i) * 2 + 1], std::sin(a) * mag, 2e-7 * mag);
          }
        Tensor own(DType::BF16, x.shape()), read(DType::BF16, x.shape());
        own.fill(NAN);
        read.fill(NAN);
        ASSERT_TRUE(host::rope(x, pos, p, own).isOk());
        ASSERT_TRUE(host::rope(x, pos, p, read, &table).isOk());
        ASSERT_EQ(std::memcmp(own.data(), read.data(), own.byteSize()), 0);
      }
  // A table of another shape or dtype is refused.
  host::RopeParams p;
  Tensor x(DType::F32, {1, 2, 1, 8}), pos(DType::I64, {1, 2}), out(DType::F32, {1, 2, 1, 8});
  Tensor narrow(DType::F32, {1, 2, 2, 2}), half(DType::F16, {1, 2, 4, 2});
  EXPECT_FALSE(host::rope(x, pos, p, out, &narrow).isOk());
  EXPECT_FALSE(host::rope(x, pos, p, out, &half).isOk());
}
