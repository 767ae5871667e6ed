//===- Attention.cpp - causal GQA attention with window and softcap -------===//
#include "runtime/kernels/host/HostKernels.h"

#include <cmath>
#include <limits>

namespace kiln::host {

Status attention(const Tensor &q, const Tensor &k, const Tensor &v,
                 const AttentionParams &p, Tensor &out) {
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return Status::error("attention operands must be [batch, seq, heads, head_dim]");
  int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  int64_t S = k.dim(1), Hkv = k.dim(2), Dv = v.dim(3);
  KILN_RETURN_IF_ERROR(expectShape(k, {B, S, Hkv, D}, "attention key"));
  KILN_RETURN_IF_ERROR(expectShape(v, {B, S, Hkv, Dv}, "attention value"));
  KILN_RETURN_IF_ERROR(expectShape(out, {B, T, Hq, Dv}, "attention result"));
  if (Hkv == 0 || Hq % Hkv)
    return Status::error("attention query heads " + std::to_string(Hq) +
                         " not a multiple of kv heads " + std::to_string(Hkv));
  if (p.causal && T > S)
    return Status::error("causal attention with more queries than keys");
  double scale = p.scale ? *p.scale : 1.0 / std::sqrt(static_cast<double>(D));
  std::vector<float> qv = q.toF32(), kv = k.toF32(), vv = v.toF32();
  std::vector<float> ov(static_cast<size_t>(out.numel()));
  std::vector<float> sc(static_cast<size_t>(S));
  int64_t group = Hq / Hkv, offset = S - T;
  const float ninf = -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t kh = h / group;
      for (int64_t t = 0; t < T; ++t) {
        const float *qp = qv.data() + ((b * T + t) * Hq + h) * D;
        int64_t qpos = t + offset;
        float mx = ninf;
        for (int64_t s = 0; s < S; ++s) {
          bool visible = !p.causal || s <= qpos;
          if (p.slidingWindow && qpos - s >= *p.slidingWindow)
            visible = false;
          if (!visible) {
            sc[s] = ninf;
            continue;
          }
          const float *kp = kv.data() + ((b * S + s) * Hkv + kh) * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; ++d)
            dot += qp[d] * kp[d];
          float x = static_cast<float>(dot * scale);
          if (p.softcap)
            x = static_cast<float>(*p.softcap * std::tanh(x / *p.softcap));
          sc[s] = x;
          mx = std::max(mx, x);
        }
        float sum = 0.0f;
        for (int64_t s = 0; s < S; ++s) {
          sc[s] = sc[s] == ninf ? 0.0f : std::exp(sc[s] - mx);
          sum += sc[s];
        }
        float *op = ov.data() + ((b * T + t) * Hq + h) * Dv;
        for (int64_t s = 0; s < S; ++s) {
          if (sc[s] == 0.0f)
            continue;
          float w = sc[s] / sum;
          const float *vp = vv.data() + ((b * S + s) * Hkv + kh) * Dv;
          for (int64_t d = 0; d < Dv; ++d)
            op[d] += w * vp[d];
        }
      }
    }
  out.fromF32(ov);
  return Status::ok();
}

} // namespace kiln::host
