#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

using namespace kiln;
using namespace kiln::test;

namespace {

/// float64 matmul over explicit batch broadcasting of rank-3 operands.
std::vector<double> refMatmul(const Tensor &a, const Tensor &b, bool tb,
                              int64_t batch, bool aBroadcast, bool bBroadcast) {
  int64_t M = a.dim(a.rank() - 2), K = a.dim(a.rank() - 1);
  int64_t N = tb ? b.dim(b.rank() - 2) : b.dim(b.rank() - 1);
  std::vector<double> av = values(a), bv = values(b), out;
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) {
          double x = av[(aBroadcast ? 0 : i) * M * K + m * K + k];
          int64_t bo = (bBroadcast ? 0 : i) * K * N;
          double y = bv[bo + (tb ? n * K + k : k * N + n)];
          acc += x * y;
        }
        out.push_back(acc);
      }
  return out;
}

} // namespace

TEST(Matmul, MatchesFloat64OnOddShapes) {
  std::mt19937_64 rng(1);
  for (DType dt : kFloatTypes)
    for (bool tb : {false, true}) {
      Tensor a = randomTensor(dt, {7, 13}, rng);
      Tensor b = randomTensor(dt, tb ? Shape{9, 13} : Shape{13, 9}, rng);
      Tensor out(dt, {7, 9});
      out.fill(NAN);
      ASSERT_TRUE(host::matmul(a, b, tb, out).isOk());
      expectClose(out, refMatmul(a, b, tb, 1, false, false), toleranceFor(dt),
                  host::dtypeName(dt));
    }
}

TEST(Matmul, BroadcastsBatchDimensions) {
  std::mt19937_64 rng(2);
  Tensor a = randomTensor(DType::F32, {3, 5, 33}, rng);
  Tensor b = randomTensor(DType::F32, {33, 17}, rng); // broadcast over batch
  Tensor out(DType::F32, {3, 5, 17});
  ASSERT_TRUE(host::matmul(a, b, false, out).isOk());
  expectClose(out, refMatmul(a, b, false, 3, false, true), 2e-5);

  Tensor a1 = randomTensor(DType::F32, {1, 4, 6}, rng);
  Tensor b1 = randomTensor(DType::F32, {3, 6, 5}, rng);
  Tensor out1(DType::F32, {3, 4, 5});
  ASSERT_TRUE(host::matmul(a1, b1, false, out1).isOk());
  expectClose(out1, refMatmul(a1, b1, false, 3, true, false), 2e-5);
}

TEST(Matmul, VectorOperandsAndErrors) {
  std::mt19937_64 rng(3);
  Tensor v = randomTensor(DType::F32, {11}, rng);
  Tensor w = randomTensor(DType::F32, {5, 11}, rng);
  Tensor out(DType::F32, {5});
  ASSERT_TRUE(host::matmul(v, w, true, out).isOk());
  Tensor v2 = v;
  ASSERT_TRUE(v2.reshape({1, 11}).isOk());
  expectClose(out, refMatmul(v2, w, true, 1, false, false), 2e-5);

  Tensor bad(DType::F32, {4, 6});
  Tensor o(DType::F32, {5, 6});
  host::Status s = host::matmul(w, bad, false, o);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("contraction mismatch"), std::string::npos);
}
