//===- Norm.cpp - RMSNorm and LayerNorm over the last axis ------------------===//
#include "runtime/kernels/host/HostKernels.h"

#include <cmath>

namespace kiln::host {

static Status checkNorm(const Tensor &x, const Tensor &weight, const Tensor &out,
                        const char *what) {
  if (x.rank() < 1)
    return Status::error(std::string(what) + " input must have rank >= 1");
  KILN_RETURN_IF_ERROR(expectShape(weight, {x.shape().back()}, "norm weight"));
  return expectShape(out, x.shape(), what);
}

Status rmsNorm(const Tensor &x, const Tensor &weight, float eps,
               float weightOffset, Tensor &out) {
  KILN_RETURN_IF_ERROR(checkNorm(x, weight, out, "rms_norm result"));
  int64_t d = x.shape().back(), rows = d ? x.numel() / d : 0;
  std::vector<float> xv = x.toF32(), w = weight.toF32();
  for (int64_t r = 0; r < rows; ++r) {
    float *row = xv.data() + r * d;
    float ss = 0.0f;
    for (int64_t i = 0; i < d; ++i)
      ss += row[i] * row[i];
    float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    for (int64_t i = 0; i < d; ++i)
      row[i] = row[i] * inv * (w[i] + weightOffset);
  }
  out.fromF32(xv);
  return Status::ok();
}

Status layerNorm(const Tensor &x, const Tensor &weight, const Tensor *bias,
                 float eps, Tensor &out) {
  KILN_RETURN_IF_ERROR(checkNorm(x, weight, out, "layer_norm result"));
  int64_t d = x.shape().back(), rows = d ? x.numel() / d : 0;
  if (bias)
    KILN_RETURN_IF_ERROR(expectShape(*bias, {d}, "layer_norm bias"));
  std::vector<float> xv = x.toF32(), w = weight.toF32();
  std::vector<float> b = bias ? bias->toF32() : std::vector<float>(d, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float *row = xv.data() + r * d;
    float mean = 0.0f;
    for (int64_t i = 0; i < d; ++i)
      mean += row[i];
    mean /= static_cast<float>(d);
    float var = 0.0f;
    for (int64_t i = 0; i < d; ++i)
      var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<float>(d);
    float inv = 1.0f / std::sqrt(var + eps);
    for (int64_t i = 0; i < d; ++i)
      row[i] = (row[i] - mean) * inv * w[i] + b[i];
  }
  out.fromF32(xv);
  return Status::ok();
}

} // namespace kiln::host
