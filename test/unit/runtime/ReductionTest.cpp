#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

using namespace kiln;
using namespace kiln::test;

TEST(Reduction, SumMeanMaxOverSeveralAxes) {
  std::mt19937_64 rng(8);
  for (DType dt : kFloatTypes) {
    Tensor x = randomTensor(dt, {3, 5, 7}, rng);
    std::vector<double> xv = values(x);
    for (host::ReduceOp op : {host::ReduceOp::Sum, host::ReduceOp::Mean,
                              host::ReduceOp::Max, host::ReduceOp::Min}) {
      // Reduce axes 0 and 2, keeping dims: result [1, 5, 1].
      Tensor out(dt, {1, 5, 1});
      ASSERT_TRUE(host::reduce(op, x, {2, 0}, true, out).isOk());
      std::vector<double> want;
      for (int j = 0; j < 5; ++j) {
        double acc = op == host::ReduceOp::Max ? -1e300
                   : op == host::ReduceOp::Min ? 1e300 : 0;
        for (int i = 0; i < 3; ++i)
          for (int k = 0; k < 7; ++k) {
            double v = xv[(i * 5 + j) * 7 + k];
            acc = op == host::ReduceOp::Max ? std::max(acc, v)
                : op == host::ReduceOp::Min ? std::min(acc, v) : acc + v;
          }
        want.push_back(op == host::ReduceOp::Mean ? acc / 21 : acc);
      }
      expectClose(out, want, toleranceFor(dt), "reduce");
    }
  }
  Tensor x(DType::F32, {2, 3}), wrong(DType::F32, {2, 1});
  EXPECT_FALSE(host::reduce(host::ReduceOp::Sum, x, {1}, false, wrong).isOk());
  EXPECT_FALSE(host::reduce(host::ReduceOp::Sum, x, {2}, false, wrong).isOk());
}

TEST(Reduction, ArgmaxTakesTheFirstMaximum) {
  std::mt19937_64 rng(9);
  Tensor x = randomTensor(DType::F32, {4, 19}, rng);
  x.set(2 * 19 + 3, 5.0);
  x.set(2 * 19 + 11, 5.0);
  Tensor out(DType::I64, {4});
  ASSERT_TRUE(host::argmax(x, 1, false, out).isOk());
  std::vector<double> xv = values(x);
  for (int r = 0; r < 4; ++r) {
    int best = 0;
    for (int j = 1; j < 19; ++j)
      if (xv[r * 19 + j] > xv[r * 19 + best])
        best = j;
    EXPECT_EQ(out.get(r), best);
  }
  EXPECT_EQ(out.get(2), 3);
}

TEST(Reduction, SoftmaxOverAnyAxis) {
  std::mt19937_64 rng(10);
  for (DType dt : kFloatTypes) {
    Tensor x = randomTensor(dt, {3, 11, 5}, rng, -6, 6);
    Tensor out(dt, {3, 11, 5});
    ASSERT_TRUE(host::softmax(x, 1, out).isOk());
    std::vector<double> xv = values(x), want(xv.size());
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) {
        double mx = -1e300, sum = 0;
        for (int j = 0; j < 11; ++j)
          mx = std::max(mx, xv[(i * 11 + j) * 5 + k]);
        for (int j = 0; j < 11; ++j)
          sum += std::exp(xv[(i * 11 + j) * 5 + k] - mx);
        for (int j = 0; j < 11; ++j)
          want[(i * 11 + j) * 5 + k] = std::exp(xv[(i * 11 + j) * 5 + k] - mx) / sum;
      }
    expectClose(out, want, toleranceFor(dt), "softmax");
  }
}

TEST(Reduction, CumsumInclusiveExclusiveReverse) {
  std::mt19937_64 rng(20);
  for (DType dt : {DType::F32, DType::I64})
    for (bool exclusive : {false, true})
      for (bool reverse : {false, true}) {
        Tensor x = randomTensor(dt, {3, 7}, rng, -5, 5);
        Tensor out(dt, {3, 7});
        ASSERT_TRUE(host::cumsum(x, 1, exclusive, reverse, out).isOk());
        std::vector<double> xv = values(x);
        for (int r = 0; r < 3; ++r)
          for (int j = 0; j < 7; ++j) {
            double want = 0;
            for (int k = 0; k < 7; ++k) {
              bool in = reverse ? (exclusive ? k > j : k >= j) : (exclusive ? k < j : k <= j);
              want += in ? xv[r * 7 + k] : 0;
            }
            EXPECT_NEAR(out.get(r * 7 + j), want, 1e-5) << exclusive << reverse;
          }
      }
}
