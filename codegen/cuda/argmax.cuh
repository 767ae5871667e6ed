// kiln device library: row reductions.
//
// Argmax over the last axis, one warp per row.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

// ---- row reductions (argmax over an axis) -----------------------------------

/// out[r] = argmax_k S::x(a, r, k) for k < S::len(a): one warp per row.

template <class S> __device__ void argmaxRows(const Args &a) {
  dependOnPrevious();
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  i64 rows = S::rows(a), len = S::len(a);
  for (i64 r = static_cast<i64>(blockIdx.x) * warps + warp; r < rows;
       r += static_cast<i64>(gridDim.x) * warps) {
    u64 best = 0ull;
    for (i64 k = lane; k < len; k += 32) {
      u64 c = packArgmax(S::x(a, r, k), k);
      best = c > best ? c : best;
    }
    for (int o = 16; o > 0; o >>= 1) {
      u64 other = __shfl_xor_sync(0xffffffffu, best, o);
      best = other > best ? other : best;
    }
    if (lane == 0)
      S::store(a, r, unpackArgmaxIndex(best));
  }
}

} // namespace kiln
