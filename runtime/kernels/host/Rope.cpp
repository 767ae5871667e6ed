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

namespace {

/// The cosine and sine of angle `pos * inv`, times `mag`, in f32. The angle
/// in double: at positions in the 100k range an f32 angle is off by ~1e-2
/// radians.
void cosSinOf(double pos, double inv, double mag, float &c, float &s) {
  double ang = pos * inv;
  c = static_cast<float>(std::cos(ang) * mag);
  s = static_cast<float>(std::sin(ang) * mag);
}

Status checkRotaryDim(const RopeParams &p, int64_t rd, int64_t D) {
  if (rd <= 0 || rd % 2 || rd > D)
    return Status::error("rope rotary_dim " + std::to_string(rd) +
                         " must be positive, even and at most the head dim " +
                         std::to_string(D));
  if (!p.invFreq.empty() && static_cast<int64_t>(p.invFreq.size()) * 2 != rd)
    return Status::error("rope has " + std::to_string(p.invFreq.size()) +
                         " explicit frequencies for a rotary dim of " + std::to_string(rd));
  return Status::ok();
}

} // namespace

Status ropeCosSin(const Tensor &positions, const RopeParams &p, Tensor &out) {
  int64_t rd = p.rotaryDim;
  KILN_RETURN_IF_ERROR(checkRotaryDim(p, rd, rd));
  if (positions.rank() != 2)
    return Status::error("rope_cos_sin positions must be [batch, tokens], got " +
                         shapeToString(positions.shape()));
  int64_t P = positions.dim(0), T = positions.dim(1), half = rd / 2;
  KILN_RETURN_IF_ERROR(expectShape(out, {P, T, half, 2}, "rope_cos_sin result"));
  if (out.dtype() != DType::F32)
    return Status::error("rope_cos_sin result must be f32");
  std::vector<double> inv = ropeInvFreq(p, rd);
  double mag = ropeMagnitude(p);
  float *o = out.as<float>();
  for (int64_t r = 0; r < P * T; ++r) {
    double pos = positions.get(r);
    for (int64_t i = 0; i < half; ++i)
      cosSinOf(pos, inv[i], mag, o[(r * half + i) * 2], o[(r * half + i) * 2 + 1]);
  }
  return Status::ok();
}

Status rope(const Tensor &x, const Tensor &positions, const RopeParams &p,
            Tensor &out, const Tensor *cosSin) {
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
  KILN_RETURN_IF_ERROR(checkRotaryDim(p, rd, D));
  int64_t half = rd / 2;
  if (cosSin) {
    KILN_RETURN_IF_ERROR(expectShape(*cosSin, {positions.dim(0), T, half, 2}, "rope cos_sin"));
    if (cosSin->dtype() != DType::F32)
      return Status::error("rope cos_sin must be f32");
  }
  std::vector<double> inv = ropeInvFreq(p, rd);
  double mag = ropeMagnitude(p);
  std::vector<float> xv = x.toF32();
  std::vector<float> c(half), s(half);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t row = (shared ? 0 : b) * T + t;
      for (int64_t i = 0; i < half; ++i) {
        if (cosSin) {
          c[i] = cosSin->as<float>()[(row * half + i) * 2];
          s[i] = cosSin->as<float>()[(row * half + i) * 2 + 1];
        } else {
          cosSinOf(static_cast<double>(positions.get(row)), inv[i], mag, c[i], s[i]);
        }
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
