//===- Reduction.cpp - reduce, argmax, softmax ------------------------------===//
#include "runtime/kernels/host/HostKernels.h"

#include <cmath>
#include <limits>

namespace kiln::host {
namespace {

/// Splits x's shape around `axis` into (outer, len, inner).
void splitAxis(const Shape &s, int64_t axis, int64_t &outer, int64_t &len,
               int64_t &inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= s[i];
  len = s[axis];
  for (size_t i = axis + 1; i < s.size(); ++i)
    inner *= s[i];
}

Status checkAxis(const Tensor &x, int64_t axis, const char *op) {
  if (axis < 0 || axis >= x.rank())
    return Status::error(std::string(op) + " axis " + std::to_string(axis) +
                         " out of range for rank " + std::to_string(x.rank()));
  return Status::ok();
}

} // namespace

Status reduce(ReduceOp op, const Tensor &x, const std::vector<int64_t> &axes,
              bool keepDims, Tensor &out) {
  std::vector<bool> reduced(x.rank(), false);
  for (int64_t a : axes) {
    KILN_RETURN_IF_ERROR(checkAxis(x, a, "reduce"));
    reduced[a] = true;
  }
  Shape outShape, keptShape;
  for (int64_t i = 0; i < x.rank(); ++i) {
    keptShape.push_back(reduced[i] ? 1 : x.dim(i));
    if (!reduced[i] || keepDims)
      outShape.push_back(reduced[i] ? 1 : x.dim(i));
  }
  KILN_RETURN_IF_ERROR(expectShape(out, outShape, "reduce result"));
  for (int64_t a : axes)
    if (x.dim(a) == 0 && (op == ReduceOp::Max || op == ReduceOp::Min))
      return Status::error("max/min reduction over an empty axis");

  int64_t n = out.numel();
  double init = op == ReduceOp::Max ? -std::numeric_limits<double>::infinity()
                : op == ReduceOp::Min ? std::numeric_limits<double>::infinity()
                                      : 0.0;
  std::vector<double> acc(static_cast<size_t>(n), init);
  std::vector<float> xv = x.toF32();
  // Walk x; map each index to the output index with reduced dims at 0.
  std::vector<int64_t> idx(x.rank(), 0), outStride(x.rank(), 0);
  int64_t st = 1;
  for (int64_t i = x.rank() - 1; i >= 0; --i) {
    outStride[i] = reduced[i] ? 0 : st;
    st *= keptShape[i];
  }
  int64_t o = 0;
  for (int64_t i = 0, total = x.numel(); i < total; ++i) {
    double v = xv[i];
    double &a = acc[o];
    if (op == ReduceOp::Max)
      a = std::max(a, v);
    else if (op == ReduceOp::Min)
      a = std::min(a, v);
    else
      a += v;
    for (int64_t d = x.rank() - 1; d >= 0; --d) {
      if (++idx[d] < x.dim(d)) {
        o += outStride[d];
        break;
      }
      o -= outStride[d] * (x.dim(d) - 1);
      idx[d] = 0;
    }
  }
  if (op == ReduceOp::Mean) {
    int64_t count = x.numel() / std::max<int64_t>(n, 1);
    for (double &a : acc)
      a /= static_cast<double>(count);
  }
  for (int64_t i = 0; i < n; ++i)
    out.set(i, acc[i]);
  return Status::ok();
}

Status argmax(const Tensor &x, int64_t axis, bool keepDims, Tensor &out) {
  KILN_RETURN_IF_ERROR(checkAxis(x, axis, "argmax"));
  if (x.dim(axis) == 0)
    return Status::error("argmax over an empty axis");
  Shape s = x.shape();
  if (keepDims)
    s[axis] = 1;
  else
    s.erase(s.begin() + axis);
  KILN_RETURN_IF_ERROR(expectShape(out, s, "argmax result"));
  int64_t outer, len, inner;
  splitAxis(x.shape(), axis, outer, len, inner);
  std::vector<float> xv = x.toF32();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      float bv = xv[o * len * inner + i];
      for (int64_t j = 1; j < len; ++j) {
        float v = xv[(o * len + j) * inner + i];
        if (v > bv || (std::isnan(v) && !std::isnan(bv))) {
          bv = v;
          best = j;
        }
      }
      out.set(o * inner + i, static_cast<double>(best));
    }
  return Status::ok();
}

Status softmax(const Tensor &x, int64_t axis, Tensor &out) {
  KILN_RETURN_IF_ERROR(checkAxis(x, axis, "softmax"));
  KILN_RETURN_IF_ERROR(expectShape(out, x.shape(), "softmax result"));
  int64_t outer, len, inner;
  splitAxis(x.shape(), axis, outer, len, inner);
  std::vector<float> xv = x.toF32();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) -> float & { return xv[(o * len + j) * inner + i]; };
      float mx = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < len; ++j)
        mx = std::max(mx, at(j));
      float sum = 0.0f;
      for (int64_t j = 0; j < len; ++j) {
        // A row of -inf (fully masked) gives zeros rather than NaNs.
        float e = std::isinf(mx) && mx < 0 ? 0.0f : std::exp(at(j) - mx);
        at(j) = e;
        sum += e;
      }
      for (int64_t j = 0; j < len; ++j)
        at(j) = sum > 0 ? at(j) / sum : 0.0f;
    }
  out.fromF32(xv);
  return Status::ok();
}

Status cumsum(const Tensor &x, int64_t axis, bool exclusive, bool reverse, Tensor &out) {
  KILN_RETURN_IF_ERROR(checkAxis(x, axis, "cumsum"));
  KILN_RETURN_IF_ERROR(expectShape(out, x.shape(), "cumsum result"));
  int64_t outer, len, inner;
  splitAxis(x.shape(), axis, outer, len, inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double acc = 0; // exact for integers below 2^53
      for (int64_t k = 0; k < len; ++k) {
        int64_t j = reverse ? len - 1 - k : k;
        int64_t at = (o * len + j) * inner + i;
        double v = x.get(at);
        if (!exclusive)
          acc += v;
        out.set(at, acc);
        if (exclusive)
          acc += v;
      }
    }
  return Status::ok();
}

} // namespace kiln::host
