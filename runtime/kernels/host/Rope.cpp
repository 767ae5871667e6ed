//===- Rope.cpp - rotary position embedding with HF's scaling rules --------===//
#include "runtime/kernels/host/HostKernels.h"

#include <algorithm>
#include <cmath>

namespace kiln::host {

std::vector<double> ropeInvFreq(const RopeParams &p, int64_t rotaryDim) {
  const double pi = 3.14159265358979323846;
  int64_t half = rotaryDim / 2;
  if (!p.invFreq.empty())
    return p.invFreq;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i)
    inv[i] = 1.0 / std::pow(p.theta, static_cast<double>(2 * i) / rotaryDim);
  switch (p.scaling) {
  case RopeScaling::None:
    break;
  case RopeScaling::Linear:
    for (double &f : inv)
      f /= p.factor;
    break;
  case RopeScaling::Llama3: {
    double old = static_cast<double>(p.originalMaxPositions);
    double lowWavelen = old / p.lowFreqFactor, highWavelen = old / p.highFreqFactor;
    for (double &f : inv) {
      double wavelen = 2 * pi / f;
      if (wavelen > lowWavelen) {
        f /= p.factor;
      } else if (wavelen >= highWavelen) {
        double smooth = (old / wavelen - p.lowFreqFactor) /
                        (p.highFreqFactor - p.lowFreqFactor);
        f = (1 - smooth) * f / p.factor + smooth * f;
      }
    }
    break;
  }
  case RopeScaling::Yarn: {
    double dim = static_cast<double>(rotaryDim);
    auto correctionDim = [&](double rotations) {
      return dim * std::log(p.originalMaxPositions / (rotations * 2 * pi)) /
             (2 * std::log(p.theta));
    };
    double low = std::max(std::floor(correctionDim(p.betaFast)), 0.0);
    double high = std::min(std::ceil(correctionDim(p.betaSlow)), dim - 1);
    if (low == high)
      high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
      double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      double extrapolation = 1.0 - ramp;
      double interp = inv[i] / p.factor;
      inv[i] = interp * (1 - extrapolation) + inv[i] * extrapolation;
    }
    break;
  }
  }
  return inv;
}

double ropeMagnitude(const RopeParams &p) {
  if (p.scaling != RopeScaling::Yarn)
    return 1.0;
  if (p.attentionFactor)
    return *p.attentionFactor;
  return p.factor <= 1.0 ? 1.0 : 0.1 * std::log(p.factor) + 1.0;
}

Status rope(const Tensor &x, const Tensor &positions, const RopeParams &p,
            Tensor &out) {
  if (x.rank() != 4)
    return Status::error("rope input must be [batch, tokens, heads, head_dim], got " +
                         shapeToString(x.shape()));
  int64_t B = x.dim(0), T = x.dim(1), H = x.dim(2), D = x.dim(3);
  // positions[1, T] applies to every sequence of the batch.
  bool shared = positions.rank() == 2 && positions.dim(0) == 1 && positions.dim(1) == T;
  if (!shared)
    KILN_RETURN_IF_ERROR(expectShape(positions, {B, T}, "rope positions"));
  KILN_RETURN_IF_ERROR(expectShape(out, x.shape(), "rope result"));
  int64_t rd = p.rotaryDim ? p.rotaryDim : D;
  if (rd % 2 || rd > D)
    return Status::error("rope rotary_dim " + std::to_string(rd) +
                         " must be even and at most the head dim " +
                         std::to_string(D));
  if (!p.invFreq.empty() && static_cast<int64_t>(p.invFreq.size()) * 2 != rd)
    return Status::error("rope has " + std::to_string(p.invFreq.size()) +
                         " explicit frequencies for a rotary dim of " + std::to_string(rd));
  std::vector<double> inv = ropeInvFreq(p, rd);
  double mag = ropeMagnitude(p);
  std::vector<float> xv = x.toF32();
  int64_t half = rd / 2;
  std::vector<float> c(half), s(half);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      double pos = positions.get((shared ? 0 : b) * T + t);
      for (int64_t i = 0; i < half; ++i) {
        // The angle in double: at positions in the 100k range an f32 angle
        // is off by ~1e-2 radians.
        double ang = pos * inv[i];
        c[i] = static_cast<float>(std::cos(ang) * mag);
        s[i] = static_cast<float>(std::sin(ang) * mag);
      }
      for (int64_t h = 0; h < H; ++h) {
        float *v = xv.data() + ((b * T + t) * H + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          int64_t i0 = p.style == RopeStyle::Neox ? i : 2 * i;
          int64_t i1 = p.style == RopeStyle::Neox ? i + half : 2 * i + 1;
          float x0 = v[i0], x1 = v[i1];
          v[i0] = x0 * c[i] - x1 * s[i];
          v[i1] = x1 * c[i] + x0 * s[i];
        }
      }
    }
  out.fromF32(xv);
  return Status::ok();
}

} // namespace kiln::host
