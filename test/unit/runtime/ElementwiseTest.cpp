#include "TestTensors.h"

#include "runtime/kernels/host/HostKernels.h"

using namespace kiln;
using namespace kiln::test;
using host::BinaryOp;
using host::UnaryOp;

namespace {

double refUnary(UnaryOp op, double x) {
  switch (op) {
  case UnaryOp::Neg: return -x;
  case UnaryOp::Abs: return std::fabs(x);
  case UnaryOp::Exp: return std::exp(x);
  case UnaryOp::Log: return std::log(x);
  case UnaryOp::Sqrt: return std::sqrt(x);
  case UnaryOp::Rsqrt: return 1 / std::sqrt(x);
  case UnaryOp::Reciprocal: return 1 / x;
  case UnaryOp::Tanh: return std::tanh(x);
  case UnaryOp::Sigmoid: return 1 / (1 + std::exp(-x));
  case UnaryOp::Silu: return x / (1 + std::exp(-x));
  case UnaryOp::Gelu: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  case UnaryOp::GeluTanh:
    return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  case UnaryOp::Erf: return std::erf(x);
  case UnaryOp::Sin: return std::sin(x);
  case UnaryOp::Cos: return std::cos(x);
  case UnaryOp::Relu: return x > 0 ? x : 0;
  case UnaryOp::Not: return x == 0;
  }
  return 0;
}

} // namespace

TEST(Elementwise, UnaryOpsMatchFloat64) {
  std::mt19937_64 rng(4);
  const UnaryOp ops[] = {UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Exp, UnaryOp::Log,
                         UnaryOp::Sqrt, UnaryOp::Rsqrt, UnaryOp::Reciprocal,
                         UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Silu,
                         UnaryOp::Gelu, UnaryOp::GeluTanh, UnaryOp::Erf,
                         UnaryOp::Sin, UnaryOp::Cos, UnaryOp::Relu};
  for (DType dt : kFloatTypes)
    for (UnaryOp op : ops) {
      bool positive = op == UnaryOp::Log || op == UnaryOp::Sqrt ||
                      op == UnaryOp::Rsqrt || op == UnaryOp::Reciprocal;
      Tensor x = randomTensor(dt, {3, 37}, rng, positive ? 0.1 : -3, 3);
      Tensor out(dt, {3, 37});
      out.fill(NAN);
      ASSERT_TRUE(host::unary(op, x, out).isOk());
      std::vector<double> want;
      for (double v : values(x))
        want.push_back(refUnary(op, v));
      expectClose(out, want, toleranceFor(dt), "unary");
    }
}

TEST(Elementwise, BinaryBroadcastsLikeNumpy) {
  std::mt19937_64 rng(5);
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul,
                          BinaryOp::Div, BinaryOp::Pow, BinaryOp::Max,
                          BinaryOp::Min};
  for (DType dt : kFloatTypes)
    for (BinaryOp op : ops) {
      Tensor a = randomTensor(dt, {2, 1, 7}, rng, 0.5, 2);
      Tensor b = randomTensor(dt, {5, 1}, rng, 0.5, 2);
      Tensor out(dt, {2, 5, 7});
      ASSERT_TRUE(host::binary(op, a, b, out).isOk());
      std::vector<double> av = values(a), bv = values(b), want;
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 5; ++j)
          for (int k = 0; k < 7; ++k) {
            double x = av[i * 7 + k], y = bv[j];
            double r = op == BinaryOp::Add ? x + y : op == BinaryOp::Sub ? x - y
                     : op == BinaryOp::Mul ? x * y : op == BinaryOp::Div ? x / y
                     : op == BinaryOp::Pow ? std::pow(x, y)
                     : op == BinaryOp::Max ? std::max(x, y) : std::min(x, y);
            want.push_back(r);
          }
      expectClose(out, want, toleranceFor(dt), "binary");
    }
  Tensor a(DType::F32, {3}), b(DType::F32, {4}), o(DType::F32, {3});
  EXPECT_FALSE(host::binary(BinaryOp::Add, a, b, o).isOk());
}

TEST(Elementwise, IntegerBinaryIsExact) {
  Tensor a(DType::I64, {3}), b(DType::I64, {1}), out(DType::I64, {3});
  a.set(0, 9007199254740000);
  a.set(1, -7);
  a.set(2, 7);
  b.set(0, 2);
  ASSERT_TRUE(host::binary(BinaryOp::Div, a, b, out).isOk());
  EXPECT_EQ(out.as<int64_t>()[0], 4503599627370000);
  EXPECT_EQ(out.as<int64_t>()[1], -3); // truncates like ONNX Div
  b.set(0, 0);
  EXPECT_FALSE(host::binary(BinaryOp::Div, a, b, out).isOk());
}

TEST(Elementwise, CompareWhereCast) {
  std::mt19937_64 rng(6);
  Tensor a = randomTensor(DType::F32, {4, 9}, rng);
  Tensor b = randomTensor(DType::F32, {9}, rng);
  Tensor mask(DType::Bool, {4, 9});
  ASSERT_TRUE(host::compare(host::CompareOp::Lt, a, b, mask).isOk());
  Tensor sel(DType::F32, {4, 9});
  ASSERT_TRUE(host::where(mask, a, b, sel).isOk());
  std::vector<double> av = values(a), bv = values(b), want;
  for (int i = 0; i < 36; ++i) {
    EXPECT_EQ(mask.get(i), av[i] < bv[i % 9] ? 1.0 : 0.0);
    want.push_back(std::min(av[i], bv[i % 9]));
  }
  expectClose(sel, want, 0);

  Tensor f = randomTensor(DType::F32, {17}, rng, -50, 50);
  Tensor i64(DType::I64, {17}), bf(DType::BF16, {17});
  ASSERT_TRUE(host::cast(f, i64).isOk());
  ASSERT_TRUE(host::cast(f, bf).isOk());
  for (int i = 0; i < 17; ++i) {
    EXPECT_EQ(i64.get(i), std::trunc(f.get(i)));
    EXPECT_EQ(bf.get(i), host::roundTo(DType::BF16, static_cast<float>(f.get(i))));
  }
}

TEST(Elementwise, GatedActivations) {
  std::mt19937_64 rng(7);
  for (DType dt : kFloatTypes) {
    Tensor g = randomTensor(dt, {5, 43}, rng, -4, 4);
    Tensor u = randomTensor(dt, {5, 43}, rng, -2, 2);
    Tensor s(dt, {5, 43}), ge(dt, {5, 43}), gt(dt, {5, 43});
    ASSERT_TRUE(host::swiglu(g, u, s).isOk());
    ASSERT_TRUE(host::geglu(g, u, false, ge).isOk());
    ASSERT_TRUE(host::geglu(g, u, true, gt).isOk());
    std::vector<double> gv = values(g), uv = values(u), ws, we, wt;
    for (size_t i = 0; i < gv.size(); ++i) {
      ws.push_back(refUnary(UnaryOp::Silu, gv[i]) * uv[i]);
      we.push_back(refUnary(UnaryOp::Gelu, gv[i]) * uv[i]);
      wt.push_back(refUnary(UnaryOp::GeluTanh, gv[i]) * uv[i]);
    }
    expectClose(s, ws, toleranceFor(dt), "swiglu");
    expectClose(ge, we, toleranceFor(dt), "geglu");
    expectClose(gt, wt, toleranceFor(dt), "geglu tanh");
  }
  Tensor g(DType::F32, {2, 3}), u(DType::F32, {3, 2}), o(DType::F32, {2, 3});
  EXPECT_FALSE(host::swiglu(g, u, o).isOk());
}
