// kiln device library: the prefill attention family.
//
// Every query of a prompt against the paged cache.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

/// Prefill: warps take (b, t, h) rows, all keys up to the query's position.

template <class S> __device__ void attentionPrefill(const Args &a) {
  dependOnPrevious();
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5;
  i64 rowsTotal = static_cast<i64>(a.batch) * a.tokens * S::H;
  for (i64 r = static_cast<i64>(blockIdx.x) * warps + warp; r < rowsTotal;
       r += static_cast<i64>(gridDim.x) * warps) {
    i64 h = r % S::H, t = (r / S::H) % a.tokens, b = r / (static_cast<i64>(S::H) * a.tokens);
    i64 qpos = S::position(a, b, t);
    AttnRow<S> row;
    row.l = 0.0f;
    if (qpos >= 0) {
      i64 len = S::contextLen(a, b);
      attendRange<S>(a, b, t, h, qpos, 0, len, row);
    } else {
#pragma unroll
      for (int j = 0; j < AttnRow<S>::PER; ++j)
        row.acc[j] = 0.0f;
    }
    storeRow<S>(a, b, t, h, row);
  }
}

} // namespace kiln
