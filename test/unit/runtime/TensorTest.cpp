#include "TestTensors.h"

using namespace kiln::host;

TEST(Tensor, BF16RoundsToNearestEven) {
  EXPECT_EQ(floatToBF16(1.0f), 0x3f80);
  // 1 + 2^-8 is exactly half-way between bf16 1.0 and 1.0078125: ties to even.
  EXPECT_EQ(bf16ToFloat(floatToBF16(1.00390625f)), 1.0f);
  // 1 + 3*2^-8 ties up to the even neighbour 1.015625.
  EXPECT_EQ(bf16ToFloat(floatToBF16(1.01171875f)), 1.015625f);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBF16(NAN))));
  EXPECT_EQ(bf16ToFloat(floatToBF16(-INFINITY)), -INFINITY);
}

TEST(Tensor, F16ConvertsNormalsSubnormalsAndOverflow) {
  EXPECT_EQ(floatToF16(1.0f), 0x3c00);
  EXPECT_EQ(floatToF16(-2.0f), 0xc000);
  EXPECT_EQ(f16ToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(floatToF16(65520.0f), 0x7c00); // rounds to infinity
  EXPECT_EQ(f16ToFloat(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -26)), 0x0000); // below half of it
  // 1 + 2^-11 is half-way between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(floatToF16(1.00048828125f), 0x3c00);
  EXPECT_TRUE(std::isnan(f16ToFloat(floatToF16(NAN))));
  // Every finite half survives a round trip through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    uint16_t b = static_cast<uint16_t>(h);
    if (((b >> 10) & 0x1f) == 0x1f)
      continue;
    ASSERT_EQ(floatToF16(f16ToFloat(b)), b) << std::hex << h;
  }
}

TEST(Tensor, GetSetAndReshape) {
  Tensor t(DType::I64, {2, 3});
  for (int64_t i = 0; i < 6; ++i)
    t.set(i, 10 * i - 7);
  EXPECT_EQ(t.get(5), 43);
  EXPECT_TRUE(t.reshape({3, 2}).isOk());
  EXPECT_FALSE(t.reshape({4, 2}).isOk());
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
}

TEST(Tensor, GetIntIsExactForInt64) {
  Tensor t(DType::I64, {3});
  t.as<int64_t>()[0] = INT64_MAX;
  t.as<int64_t>()[1] = (int64_t(1) << 53) + 1; // not representable as a double
  t.as<int64_t>()[2] = -7;
  EXPECT_EQ(t.getInt(0), INT64_MAX);
  EXPECT_EQ(t.getInt(1), (int64_t(1) << 53) + 1);
  EXPECT_EQ(t.getInt(2), -7);
  Tensor f(DType::F32, {2});
  f.set(0, 1e30);
  f.set(1, -2.7);
  EXPECT_EQ(f.getInt(0), INT64_MAX);
  EXPECT_EQ(f.getInt(1), -2);
}
