#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

using namespace kiln;
using namespace kiln::test;

TEST(Movement, GatherRowsWithNegativeIndices) {
  std::mt19937_64 rng(16);
  Tensor data = randomTensor(DType::BF16, {11, 6}, rng);
  Tensor idx(DType::I64, {2, 3});
  const int64_t ids[] = {0, 10, -1, 3, 3, -11};
  for (int i = 0; i < 6; ++i)
    idx.set(i, ids[i]);
  Tensor out(DType::BF16, {2, 3, 6});
  ASSERT_TRUE(host::gather(data, idx, 0, out).isOk());
  for (int i = 0; i < 6; ++i) {
    int64_t row = ids[i] < 0 ? ids[i] + 11 : ids[i];
    for (int j = 0; j < 6; ++j)
      EXPECT_EQ(out.get(i * 6 + j), data.get(row * 6 + j));
  }
  // Gather along axis 1.
  Tensor cols(DType::I32, {2});
  cols.set(0, 5);
  cols.set(1, 1);
  Tensor out1(DType::BF16, {11, 2});
  ASSERT_TRUE(host::gather(data, cols, 1, out1).isOk());
  EXPECT_EQ(out1.get(7 * 2 + 0), data.get(7 * 6 + 5));
  EXPECT_EQ(out1.get(7 * 2 + 1), data.get(7 * 6 + 1));
  idx.set(0, 11);
  host::Status s = host::gather(data, idx, 0, out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("out of range"), std::string::npos);
}

TEST(Movement, TransposeConcatSliceBroadcast) {
  std::mt19937_64 rng(17);
  Tensor x = randomTensor(DType::F32, {2, 3, 5}, rng);
  Tensor t(DType::F32, {5, 2, 3});
  ASSERT_TRUE(host::transpose(x, {2, 0, 1}, t).isOk());
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 5; ++c)
        EXPECT_EQ(t.get((c * 2 + a) * 3 + b), x.get((a * 3 + b) * 5 + c));
  EXPECT_FALSE(host::transpose(x, {0, 0, 1}, t).isOk());

  Tensor y = randomTensor(DType::F32, {2, 4, 5}, rng);
  Tensor cat(DType::F32, {2, 7, 5});
  ASSERT_TRUE(host::concat({&x, &y}, 1, cat).isOk());
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 7; ++b)
      for (int c = 0; c < 5; ++c)
        EXPECT_EQ(cat.get((a * 7 + b) * 5 + c),
                  b < 3 ? x.get((a * 3 + b) * 5 + c) : y.get((a * 4 + b - 3) * 5 + c));

  // x[:, 2:0:-1, 1::2] -> [2, 2, 2]
  Tensor s(DType::F32, {2, 2, 2});
  ASSERT_TRUE(host::slice(x, {0, 2, 1}, {1, -1, 2}, s).isOk());
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 2; ++c)
        EXPECT_EQ(s.get((a * 2 + b) * 2 + c), x.get((a * 3 + (2 - b)) * 5 + 1 + 2 * c));
  Tensor tooBig(DType::F32, {2, 3, 3});
  EXPECT_FALSE(host::slice(x, {0, 0, 1}, {1, 1, 2}, tooBig).isOk());

  Tensor row = randomTensor(DType::F32, {1, 5}, rng);
  Tensor bc(DType::F32, {3, 4, 5});
  ASSERT_TRUE(host::broadcastTo(row, bc).isOk());
  for (int i = 0; i < 60; ++i)
    EXPECT_EQ(bc.get(i), row.get(i % 5));
}

TEST(Movement, GatherNdPicksTuplesAndSlices) {
  std::mt19937_64 rng(19);
  Tensor data = randomTensor(DType::F32, {4, 5, 6}, rng);
  Tensor idx(DType::I64, {3, 2});
  const int64_t ids[] = {0, 4, 3, -1, 2, 2};
  for (int i = 0; i < 6; ++i)
    idx.set(i, ids[i]);
  Tensor out(DType::F32, {3, 6});
  ASSERT_TRUE(host::gatherNd(data, idx, out).isOk());
  for (int t = 0; t < 3; ++t) {
    int64_t a = ids[2 * t], b = ids[2 * t + 1] < 0 ? ids[2 * t + 1] + 5 : ids[2 * t + 1];
    for (int c = 0; c < 6; ++c)
      EXPECT_EQ(out.get(t * 6 + c), data.get((a * 5 + b) * 6 + c));
  }
  idx.set(0, 4);
  EXPECT_FALSE(host::gatherNd(data, idx, out).isOk());
}
