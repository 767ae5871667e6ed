// kiln device library: the norm family.
//
// One block per row: out = S::store(norm(x)); the statistics are in common.cuh.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

/// The norm family: one block per row (grid-stride), out = S::epi(norm(x)).
template <class S> __device__ void normRows(const Args &a) {
  __shared__ float red[33];
  dependOnPrevious();
  i64 rows = S::rows(a);
  for (i64 m = blockIdx.x; m < rows; m += gridDim.x) {
    float mean, rs;
    rowStats<S>(a, m, red, mean, rs);
    for (i64 k = threadIdx.x; k < S::K; k += blockDim.x)
      S::store(a, m, k, normed<S>(a, m, k, mean, rs));
  }
}

} // namespace kiln
