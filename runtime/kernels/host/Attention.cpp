//===- Attention.cpp - attention over dense and paged keys ---------------===//
//
// Both entry points run the same row routine: one query row against S keys
// that it reads through accessors, with causal, sliding-window and softcap
// masks decided per key by the caller.
//
//===----------------------------------------------------------------------===//
#include "runtime/kernels/host/HostKernels.h"

#include <cmath>
#include <limits>

namespace kiln::host {

namespace {

/// Softmax(q.k * scale) . v for one query row over keys 0..S-1. `keyAt(s)` and
/// `valueAt(s)` give pointers to key/value rows, `visible(s)` the mask. A row
/// that sees no key is left at zero.
template <typename KeyAt, typename ValueAt, typename Visible>
void attendRow(const float *q, int64_t D, int64_t Dv, int64_t S, double scale,
               const AttentionParams &p, KeyAt keyAt, ValueAt valueAt,
               Visible visible, std::vector<float> &scores, float *out) {
  const float ninf = -std::numeric_limits<float>::infinity();
  scores.assign(static_cast<size_t>(S), ninf);
  float mx = ninf;
  for (int64_t s = 0; s < S; ++s) {
    if (!visible(s))
      continue;
    const float *k = keyAt(s);
    float dot = 0.0f;
    for (int64_t d = 0; d < D; ++d)
      dot += q[d] * k[d];
    float x = static_cast<float>(dot * scale);
    if (p.softcap)
      x = static_cast<float>(*p.softcap * std::tanh(x / *p.softcap));
    scores[s] = x;
    mx = std::max(mx, x);
  }
  if (mx == ninf)
    return;
  float sum = 0.0f;
  for (int64_t s = 0; s < S; ++s) {
    scores[s] = scores[s] == ninf ? 0.0f : std::exp(scores[s] - mx);
    sum += scores[s];
  }
  for (int64_t s = 0; s < S; ++s) {
    if (scores[s] == 0.0f)
      continue;
    float w = scores[s] / sum;
    const float *v = valueAt(s);
    for (int64_t d = 0; d < Dv; ++d)
      out[d] += w * v[d];
  }
}

/// Key `s` is visible from a query at `qpos` under the causal and window masks.
bool maskAllows(const AttentionParams &p, int64_t qpos, int64_t s) {
  if (p.causal && s > qpos)
    return false;
  return !(p.slidingWindow && qpos - s >= *p.slidingWindow);
}

Status checkHeads(int64_t hq, int64_t hkv) {
  if (hkv == 0 || hq % hkv)
    return Status::error("attention query heads " + std::to_string(hq) +
                         " not a multiple of kv heads " + std::to_string(hkv));
  return Status::ok();
}

double scaleOf(const AttentionParams &p, int64_t D) {
  return p.scale ? *p.scale : 1.0 / std::sqrt(static_cast<double>(D));
}

} // namespace

Status attention(const Tensor &q, const Tensor &k, const Tensor &v,
                 const AttentionParams &p, Tensor &out) {
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return Status::error("attention operands must be [batch, seq, heads, head_dim]");
  int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  int64_t S = k.dim(1), Hkv = k.dim(2), Dv = v.dim(3);
  KILN_RETURN_IF_ERROR(expectShape(k, {B, S, Hkv, D}, "attention key"));
  KILN_RETURN_IF_ERROR(expectShape(v, {B, S, Hkv, Dv}, "attention value"));
  KILN_RETURN_IF_ERROR(expectShape(out, {B, T, Hq, Dv}, "attention result"));
  KILN_RETURN_IF_ERROR(checkHeads(Hq, Hkv));
  if (p.causal && T > S)
    return Status::error("causal attention with more queries than keys");
  double scale = scaleOf(p, D);
  std::vector<float> qv = q.toF32(), kv = k.toF32(), vv = v.toF32();
  std::vector<float> ov(static_cast<size_t>(out.numel())), scores;
  int64_t group = Hq / Hkv, offset = S - T;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h) {
      int64_t kh = h / group;
      for (int64_t t = 0; t < T; ++t) {
        int64_t qpos = t + offset;
        attendRow(
            qv.data() + ((b * T + t) * Hq + h) * D, D, Dv, S, scale, p,
            [&](int64_t s) { return kv.data() + ((b * S + s) * Hkv + kh) * D; },
            [&](int64_t s) { return vv.data() + ((b * S + s) * Hkv + kh) * Dv; },
            [&](int64_t s) { return maskAllows(p, qpos, s); }, scores,
            ov.data() + ((b * T + t) * Hq + h) * Dv);
      }
    }
  out.fromF32(ov);
  return Status::ok();
}

//===--- Paged KV cache ------------------------------------------------------===//

namespace {

struct CacheDims {
  int64_t layers, pages, page, heads, dim;
};

Status cacheDims(const Tensor &cache, int64_t layer, CacheDims &c) {
  if (cache.rank() != 6 || cache.dim(2) != 2)
    return Status::error("KV cache must be [layers, pages, 2, page_size, kv_heads, "
                         "head_dim], got " + shapeToString(cache.shape()));
  c = {cache.dim(0), cache.dim(1), cache.dim(3), cache.dim(4), cache.dim(5)};
  if (layer < 0 || layer >= c.layers)
    return Status::error("layer " + std::to_string(layer) + " is out of range for a cache of " +
                         std::to_string(c.layers) + " layers");
  return Status::ok();
}

/// The element offset of token `pos` of sequence `b` (K when kv == 0, V when 1)
/// in `layer`, through the block table.
Status slotOffset(const Tensor &blockTables, const CacheDims &c, int64_t layer,
                  int64_t b, int64_t pos, int64_t kv, int64_t &offset) {
  int64_t slot = pos / c.page;
  if (slot >= blockTables.dim(1))
    return Status::error("position " + std::to_string(pos) + " of sequence " +
                         std::to_string(b) + " needs block-table entry " +
                         std::to_string(slot) + " but the table has " +
                         std::to_string(blockTables.dim(1)));
  int64_t page = blockTables.getInt(b * blockTables.dim(1) + slot);
  if (page < 0 || page >= c.pages)
    return Status::error("sequence " + std::to_string(b) + " maps position " +
                         std::to_string(pos) + " to page " + std::to_string(page) +
                         " outside the pool of " + std::to_string(c.pages));
  offset = ((((layer * c.pages + page) * 2 + kv) * c.page + pos % c.page) * c.heads) * c.dim;
  return Status::ok();
}

} // namespace

Status kvAppend(const Tensor &cache, const Tensor &key, const Tensor &value,
                const Tensor &blockTables, const Tensor &positions, int64_t layer,
                Tensor &out) {
  CacheDims c;
  KILN_RETURN_IF_ERROR(cacheDims(cache, layer, c));
  if (key.rank() != 4 || blockTables.rank() != 2)
    return Status::error("kv_append takes keys [batch, tokens, kv_heads, head_dim] "
                         "and block tables [batch, pages]");
  int64_t B = key.dim(0), T = key.dim(1);
  KILN_RETURN_IF_ERROR(expectShape(key, {B, T, c.heads, c.dim}, "kv_append key"));
  KILN_RETURN_IF_ERROR(expectShape(value, key.shape(), "kv_append value"));
  KILN_RETURN_IF_ERROR(expectShape(positions, {B, T}, "kv_append positions"));
  KILN_RETURN_IF_ERROR(expectShape(blockTables, {B, blockTables.dim(1)}, "kv_append block tables"));
  KILN_RETURN_IF_ERROR(expectShape(out, cache.shape(), "kv_append result"));
  if (cache.dtype() != key.dtype() || value.dtype() != key.dtype() || out.dtype() != key.dtype())
    return Status::error("kv_append keys, values and cache must share a dtype");
  if (out.data() != cache.data() && cache.byteSize())
    std::memcpy(out.data(), cache.data(), cache.byteSize());
  size_t es = dtypeSize(key.dtype()), row = static_cast<size_t>(c.heads * c.dim) * es;
  auto *dst = static_cast<uint8_t *>(out.data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      int64_t pos = positions.getInt(b * T + t);
      if (pos < 0)
        continue;
      size_t src = static_cast<size_t>(b * T + t) * row;
      for (int64_t kv = 0; kv < 2; ++kv) {
        int64_t off;
        KILN_RETURN_IF_ERROR(slotOffset(blockTables, c, layer, b, pos, kv, off));
        const auto *from = static_cast<const uint8_t *>(kv ? value.data() : key.data());
        std::memcpy(dst + static_cast<size_t>(off) * es, from + src, row);
      }
    }
  return Status::ok();
}

Status pagedAttention(const Tensor &q, const Tensor &cache, const Tensor &blockTables,
                      const Tensor &contextLens, const Tensor &positions, int64_t layer,
                      const AttentionParams &p, Tensor &out) {
  CacheDims c;
  KILN_RETURN_IF_ERROR(cacheDims(cache, layer, c));
  if (q.rank() != 4 || blockTables.rank() != 2)
    return Status::error("paged_attention takes queries [batch, tokens, heads, head_dim] "
                         "and block tables [batch, pages]");
  int64_t B = q.dim(0), T = q.dim(1), Hq = q.dim(2), D = q.dim(3);
  KILN_RETURN_IF_ERROR(expectShape(q, {B, T, Hq, c.dim}, "paged_attention query"));
  KILN_RETURN_IF_ERROR(checkHeads(Hq, c.heads));
  KILN_RETURN_IF_ERROR(expectShape(blockTables, {B, blockTables.dim(1)}, "paged_attention block tables"));
  KILN_RETURN_IF_ERROR(expectShape(contextLens, {B}, "paged_attention context lengths"));
  KILN_RETURN_IF_ERROR(expectShape(positions, {B, T}, "paged_attention positions"));
  KILN_RETURN_IF_ERROR(expectShape(out, q.shape(), "paged_attention result"));
  double scale = scaleOf(p, D);
  std::vector<float> qv = q.toF32(), cv = cache.toF32();
  std::vector<float> ov(static_cast<size_t>(out.numel())), scores;
  std::vector<int64_t> keyOff, valueOff;
  int64_t group = Hq / c.heads;
  for (int64_t b = 0; b < B; ++b) {
    int64_t S = contextLens.getInt(b);
    if (S < 0 || S > blockTables.dim(1) * c.page)
      return Status::error("context length " + std::to_string(S) + " of sequence " +
                           std::to_string(b) + " does not fit its block table of " +
                           std::to_string(blockTables.dim(1)) + " pages");
    keyOff.resize(static_cast<size_t>(S));
    valueOff.resize(static_cast<size_t>(S));
    for (int64_t s = 0; s < S; ++s) {
      KILN_RETURN_IF_ERROR(slotOffset(blockTables, c, layer, b, s, 0, keyOff[s]));
      KILN_RETURN_IF_ERROR(slotOffset(blockTables, c, layer, b, s, 1, valueOff[s]));
    }
    for (int64_t t = 0; t < T; ++t) {
      int64_t qpos = positions.getInt(b * T + t);
      if (qpos < 0)
        continue;
      for (int64_t h = 0; h < Hq; ++h) {
        int64_t kh = (h / group) * c.dim;
        attendRow(
            qv.data() + ((b * T + t) * Hq + h) * D, D, D, S, scale, p,
            [&](int64_t s) { return cv.data() + keyOff[s] + kh; },
            [&](int64_t s) { return cv.data() + valueOff[s] + kh; },
            [&](int64_t s) { return maskAllows(p, qpos, s); }, scores,
            ov.data() + ((b * T + t) * Hq + h) * D);
      }
    }
  }
  out.fromF32(ov);
  return Status::ok();
}

} // namespace kiln::host
