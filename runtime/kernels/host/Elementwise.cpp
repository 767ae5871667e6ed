//===- Elementwise.cpp - unary, binary, compare, where, cast, gated MLPs --===//
#include "runtime/kernels/host/HostKernels.h"
#include "runtime/kernels/host/Indexing.h"

#include <cmath>

namespace kiln::host {
namespace {

float geluErf(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }
float geluTanh(float x) {
  const float c = 0.7978845608028654f; // sqrt(2/pi)
  return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}
float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

double applyBinary(BinaryOp op, double a, double b, bool integer) {
  switch (op) {
  case BinaryOp::Add: return a + b;
  case BinaryOp::Sub: return a - b;
  case BinaryOp::Mul: return a * b;
  case BinaryOp::Div: return integer ? std::trunc(a / b) : a / b;
  case BinaryOp::Pow: return std::pow(a, b);
  case BinaryOp::Max: return std::max(a, b);
  case BinaryOp::Min: return std::min(a, b);
  case BinaryOp::And: return (a != 0) && (b != 0);
  case BinaryOp::Or: return (a != 0) || (b != 0);
  }
  return 0;
}

bool applyCompare(CompareOp op, double a, double b) {
  switch (op) {
  case CompareOp::Eq: return a == b;
  case CompareOp::Ne: return a != b;
  case CompareOp::Lt: return a < b;
  case CompareOp::Le: return a <= b;
  case CompareOp::Gt: return a > b;
  case CompareOp::Ge: return a >= b;
  }
  return false;
}

Status expectBroadcast(const Shape &a, const Shape &b, const Tensor &out,
                       const char *what) {
  Shape s;
  KILN_RETURN_IF_ERROR(broadcastShapes(a, b, s));
  return expectShape(out, s, what);
}

} // namespace

float applyUnary(UnaryOp op, float x) {
  switch (op) {
  case UnaryOp::Neg: return -x;
  case UnaryOp::Abs: return std::fabs(x);
  case UnaryOp::Exp: return std::exp(x);
  case UnaryOp::Log: return std::log(x);
  case UnaryOp::Sqrt: return std::sqrt(x);
  case UnaryOp::Rsqrt: return 1.0f / std::sqrt(x);
  case UnaryOp::Reciprocal: return 1.0f / x;
  case UnaryOp::Tanh: return std::tanh(x);
  case UnaryOp::Sigmoid: return sigmoid(x);
  case UnaryOp::Silu: return x * sigmoid(x);
  case UnaryOp::Gelu: return geluErf(x);
  case UnaryOp::GeluTanh: return geluTanh(x);
  case UnaryOp::Erf: return std::erf(x);
  case UnaryOp::Sin: return std::sin(x);
  case UnaryOp::Cos: return std::cos(x);
  case UnaryOp::Relu: return x > 0 ? x : 0.0f;
  case UnaryOp::Not: return x == 0 ? 1.0f : 0.0f;
  }
  return 0;
}

Status unary(UnaryOp op, const Tensor &x, Tensor &out) {
  KILN_RETURN_IF_ERROR(expectShape(out, x.shape(), "unary result"));
  if (!isFloat(x.dtype())) {
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      double v = x.get(i);
      out.set(i, op == UnaryOp::Neg ? -v
                 : op == UnaryOp::Abs ? std::fabs(v)
                 : op == UnaryOp::Not ? (v == 0 ? 1.0 : 0.0)
                 : applyUnary(op, static_cast<float>(v)));
    }
    return Status::ok();
  }
  std::vector<float> v = x.toF32();
  for (float &e : v)
    e = applyUnary(op, e);
  out.fromF32(v);
  return Status::ok();
}

Status binary(BinaryOp op, const Tensor &a, const Tensor &b, Tensor &out) {
  KILN_RETURN_IF_ERROR(expectBroadcast(a.shape(), b.shape(), out, "binary result"));
  detail::BroadcastWalker<2> walk(out.shape(), {&a.shape(), &b.shape()});
  int64_t n = out.numel();
  if (isFloat(out.dtype())) {
    std::vector<float> av = a.toF32(), bv = b.toF32(), ov(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i, walk.advance())
      ov[i] = static_cast<float>(
          applyBinary(op, av[walk.offset(0)], bv[walk.offset(1)], false));
    out.fromF32(ov);
    return Status::ok();
  }
  if (op == BinaryOp::Div) {
    for (int64_t i = 0; i < b.numel(); ++i)
      if (b.get(i) == 0)
        return Status::error("integer division by zero");
  }
  for (int64_t i = 0; i < n; ++i, walk.advance())
    out.set(i, applyBinary(op, a.get(walk.offset(0)), b.get(walk.offset(1)), true));
  return Status::ok();
}

Status compare(CompareOp op, const Tensor &a, const Tensor &b, Tensor &out) {
  KILN_RETURN_IF_ERROR(expectBroadcast(a.shape(), b.shape(), out, "compare result"));
  detail::BroadcastWalker<2> walk(out.shape(), {&a.shape(), &b.shape()});
  for (int64_t i = 0, n = out.numel(); i < n; ++i, walk.advance())
    out.set(i, applyCompare(op, a.get(walk.offset(0)), b.get(walk.offset(1))));
  return Status::ok();
}

Status where(const Tensor &cond, const Tensor &a, const Tensor &b, Tensor &out) {
  Shape s1, s2;
  KILN_RETURN_IF_ERROR(broadcastShapes(cond.shape(), a.shape(), s1));
  KILN_RETURN_IF_ERROR(broadcastShapes(s1, b.shape(), s2));
  KILN_RETURN_IF_ERROR(expectShape(out, s2, "where result"));
  detail::BroadcastWalker<3> walk(out.shape(),
                                  {&cond.shape(), &a.shape(), &b.shape()});
  for (int64_t i = 0, n = out.numel(); i < n; ++i, walk.advance())
    out.set(i, cond.get(walk.offset(0)) != 0 ? a.get(walk.offset(1))
                                             : b.get(walk.offset(2)));
  return Status::ok();
}

Status cast(const Tensor &x, Tensor &out) {
  KILN_RETURN_IF_ERROR(expectShape(out, x.shape(), "cast result"));
  bool toInt = !isFloat(out.dtype()) && out.dtype() != DType::Bool;
  bool intToInt = toInt && !isFloat(x.dtype());
  for (int64_t i = 0, n = x.numel(); i < n; ++i) {
    if (intToInt) { // exact, also beyond 2^53
      out.setInt(i, x.getInt(i));
      continue;
    }
    double v = x.get(i);
    out.set(i, toInt ? std::trunc(v) : v);
  }
  return Status::ok();
}

static Status gated(const Tensor &gate, const Tensor &up, Tensor &out,
                    float (*act)(float)) {
  KILN_RETURN_IF_ERROR(expectShape(up, gate.shape(), "gated MLP 'up' operand"));
  KILN_RETURN_IF_ERROR(expectShape(out, gate.shape(), "gated MLP result"));
  std::vector<float> g = gate.toF32(), u = up.toF32();
  for (size_t i = 0; i < g.size(); ++i)
    g[i] = act(g[i]) * u[i];
  out.fromF32(g);
  return Status::ok();
}

Status swiglu(const Tensor &gate, const Tensor &up, Tensor &out) {
  return gated(gate, up, out, [](float x) { return x * sigmoid(x); });
}

Status geglu(const Tensor &gate, const Tensor &up, bool tanhApprox, Tensor &out) {
  return gated(gate, up, out, tanhApprox ? geluTanh : geluErf);
}

} // namespace kiln::host
