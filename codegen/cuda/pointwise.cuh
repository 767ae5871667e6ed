// kiln device library: the pointwise family.
//
// Elementwise groups, embeddings, RoPE and KV-cache appends.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

// ---- pointwise: elementwise groups, embeddings, rope + KV append ------------

/// out_i = S::value(i) over S::count(a) elements, grid-stride; S::run does
/// the per-element work (one or more outputs, KV-cache stores).

template <class S> __device__ void pointwise(const Args &a) {
  dependOnPrevious();
  i64 n = S::count(a);
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<i64>(gridDim.x) * blockDim.x)
    S::run(a, i);
}

} // namespace kiln
