//===- Indexing.h - strides and broadcast iteration (internal) --*- C++ -*-===//
#ifndef KILN_RUNTIME_KERNELS_HOST_INDEXING_H
#define KILN_RUNTIME_KERNELS_HOST_INDEXING_H

#include "runtime/kernels/host/Tensor.h"

#include <array>

namespace kiln::host::detail {

inline std::vector<int64_t> rowMajorStrides(const Shape &s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i)
    st[i] = st[i + 1] * s[i + 1];
  return st;
}

/// Strides of `in` seen through numpy broadcasting to `out` (0 on broadcast
/// dimensions, leading dimensions added as 0).
inline std::vector<int64_t> broadcastStrides(const Shape &in, const Shape &out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> inSt = rowMajorStrides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    st[off + i] = in[i] == 1 ? 0 : inSt[i];
  return st;
}

/// Walks the elements of `out` in row-major order, keeping the offset of each
/// of N broadcast inputs.
template <size_t N> class BroadcastWalker {
public:
  BroadcastWalker(const Shape &out, const std::array<const Shape *, N> &ins)
      : shape_(out), idx_(out.size(), 0) {
    for (size_t k = 0; k < N; ++k) {
      strides_[k] = broadcastStrides(*ins[k], out);
      offsets_[k] = 0;
    }
  }
  int64_t offset(size_t k) const { return offsets_[k]; }
  void advance() {
    for (int64_t d = static_cast<int64_t>(shape_.size()) - 1; d >= 0; --d) {
      if (++idx_[d] < shape_[d]) {
        for (size_t k = 0; k < N; ++k)
          offsets_[k] += strides_[k][d];
        return;
      }
      idx_[d] = 0;
      for (size_t k = 0; k < N; ++k)
        offsets_[k] -= strides_[k][d] * (shape_[d] - 1);
    }
  }

private:
  Shape shape_;
  std::vector<int64_t> idx_;
  std::array<std::vector<int64_t>, N> strides_;
  std::array<int64_t, N> offsets_;
};

} // namespace kiln::host::detail

#endif
