// kiln device library: the norm family.
//
// One block per row: out = S::store(norm(x)); the statistics are in common.cuh.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

/// The norm family: one block per row (grid-stride), out = S::epi(norm(x)).
/// A block of THREADS per row. Up to 32 elements a thread (K <= 32 x
/// THREADS) the row is read once into registers, every load of a thread in
/// flight together (a loop bounded by blockDim would issue them one round
/// trip at a time), and the statistics and the output come from there;
/// the sums run in the order rowStats takes them. Longer rows stream twice.
template <class S, int THREADS> __device__ void normRows(const Args &a) {
  constexpr int PER = static_cast<int>((S::K + THREADS - 1) / THREADS);
  __shared__ float red[33];
  // A thread's gamma (and beta) load beside its first row's elements, not
  // after the row's statistics: one round trip to memory, not two. After
  // the wait: the kernel's operands need not be weights.
  dependOnPrevious();
  triggerDependents(); // a row is a few microseconds: the next kernel's prefetch covers it
  float gw[PER <= 32 ? PER : 1], bw[PER <= 32 ? PER : 1];
  if constexpr (PER <= 32) {
#pragma unroll
    for (int i = 0; i < PER; ++i) {
      i64 k = threadIdx.x + static_cast<i64>(i) * THREADS;
      gw[i] = k < S::K ? S::gamma(a, k) : 0.0f;
      bw[i] = S::NORM == 2 && k < S::K ? S::beta(a, k) : 0.0f;
    }
  }
  i64 rows = S::rows(a);
  for (i64 m = blockIdx.x; m < rows; m += gridDim.x) {
    if constexpr (PER <= 32) {
      float v[PER];
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        i64 k = threadIdx.x + static_cast<i64>(i) * THREADS;
        v[i] = k < S::K ? S::x(a, m, k) : 0.0f;
      }
      float mean = 0.0f, s = 0.0f;
      if constexpr (S::NORM == 2) {
#pragma unroll
        for (int i = 0; i < PER; ++i)
          s += v[i];
        mean = blockSum(s, red) / static_cast<float>(S::K);
        s = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < PER; ++i)
        if (threadIdx.x + static_cast<i64>(i) * THREADS < S::K) {
          float d = v[i] - mean;
          s += d * d;
        }
      float rs = rsqrtf(blockSum(s, red) / static_cast<float>(S::K) + S::EPS);
#pragma unroll
      for (int i = 0; i < PER; ++i) {
        i64 k = threadIdx.x + static_cast<i64>(i) * THREADS;
        if (k < S::K)
          S::store(a, m, k, normWith<S>(v[i], gw[i], bw[i], mean, rs));
      }
    } else {
      float mean, rs;
      rowStats<S>(a, m, red, mean, rs);
      for (i64 k = threadIdx.x; k < S::K; k += THREADS)
        S::store(a, m, k, normed<S>(a, m, k, mean, rs));
    }
  }
}

} // namespace kiln
