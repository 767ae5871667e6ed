// kiln device library: the GEMM family (prefill projections).
//
// Tensor-core tiles over many rows.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

// ---- GEMM: prefill projections (tensor cores through WMMA) ------------------
//
// Block tile BM x BN over (rows, matmul columns), BK = 32 deep, 4 or 8 warps
// each holding a (BM / WM) x (BN / WN) patch of 16x16 accumulators. The norm
// prologue is applied while staging A. The epilogue goes through a BM x BN
// f32 tile in shared memory (reusing the staging space), so GATE pairs
// column j with j + BN/2 of the same tile (W rows S::row(item, 0 or 1)).

template <class S, int BM, int BN, int WM, int WN>
__device__ void gemm(const Args &a) {
  using namespace nvcuda;
  constexpr int BK = 32, PAD = 8, THREADS = WM * WN * 32;
  constexpr int FM = BM / WM / 16, FN = BN / WN / 16;
  constexpr int NOUT = S::GATE ? BN / 2 : BN; // output columns per tile
  typedef typename S::TA TA;
  extern __shared__ __align__(128) unsigned char smem[];
  TA *sA = reinterpret_cast<TA *>(smem);
  TA *sB = sA + BM * (BK + PAD);
  float *sC = reinterpret_cast<float *>(smem); // after the main loop
  __shared__ float red[33];
  __shared__ float sMean[BM], sRs[BM];
  __shared__ u64 best[S::ARGMAX ? BM : 1];
  dependOnPrevious();
  const typename S::TW *W = S::W(a);
  i64 rows = S::rows(a);
  int warp = threadIdx.x >> 5, wm = warp / WN, wn = warp % WN;
  i64 tilesM = (rows + BM - 1) / BM, tilesN = (S::N + NOUT - 1) / NOUT;
  for (i64 tile = blockIdx.x; tile < tilesM * tilesN; tile += gridDim.x) {
    i64 m0 = (tile / tilesN) * BM, c0 = (tile % tilesN) * NOUT;
    if (S::NORM) {
      for (int r = 0; r < BM; ++r) {
        float mean = 0.0f, rs = 1.0f;
        if (m0 + r < rows)
          rowStats<S>(a, m0 + r, red, mean, rs);
        if (threadIdx.x == 0) {
          sMean[r] = mean;
          sRs[r] = rs;
        }
      }
      __syncthreads();
    }
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j)
        wmma::fill_fragment(acc[i][j], 0.0f);
    for (i64 k0 = 0; k0 < S::K; k0 += BK) {
      for (int e = threadIdx.x; e < BM * BK; e += THREADS) {
        int r = e / BK, k = e % BK;
        i64 m = m0 + r, kk = k0 + k;
        float v = 0.0f;
        if (m < rows && kk < S::K)
          v = S::NORM ? normed<S>(a, m, kk, sMean[r], sRs[r]) : S::x(a, m, kk);
        sA[r * (BK + PAD) + k] = static_cast<TA>(v);
      }
      for (int e = threadIdx.x; e < BN * BK; e += THREADS) {
        int r = e / BK, k = e % BK;
        int half = S::GATE && r >= BN / 2 ? 1 : 0;
        i64 item = c0 + r - half * (BN / 2);
        bool ok = item < S::N;
        i64 col = S::row(item, half);
        i64 kk = k0 + k;
        sB[r * (BK + PAD) + k] =
            ok && kk < S::K ? W[col * S::K + kk] : static_cast<typename S::TW>(0.0f);
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, TA, wmma::row_major> fa[FM];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, TA, wmma::col_major> fb[FN];
#pragma unroll
        for (int i = 0; i < FM; ++i)
          wmma::load_matrix_sync(fa[i], sA + (wm * FM * 16 + i * 16) * (BK + PAD) + kk, BK + PAD);
#pragma unroll
        for (int j = 0; j < FN; ++j)
          wmma::load_matrix_sync(fb[j], sB + (wn * FN * 16 + j * 16) * (BK + PAD) + kk, BK + PAD);
#pragma unroll
        for (int i = 0; i < FM; ++i)
#pragma unroll
          for (int j = 0; j < FN; ++j)
            wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < FM; ++i)
#pragma unroll
      for (int j = 0; j < FN; ++j)
        wmma::store_matrix_sync(sC + (wm * FM * 16 + i * 16) * (BN + 4) + wn * FN * 16 + j * 16,
                                acc[i][j], BN + 4, wmma::mem_row_major);
    if (S::ARGMAX)
      for (int r = threadIdx.x; r < BM; r += THREADS)
        best[r] = 0ull;
    __syncthreads();
    for (int e = threadIdx.x; e < BM * NOUT; e += THREADS) {
      int r = e / NOUT, j = e % NOUT;
      i64 m = m0 + r, n = c0 + j;
      if (m >= rows || n >= S::N)
        continue;
      float y = S::epi(a, m, n, sC[r * (BN + 4) + j], S::GATE ? sC[r * (BN + 4) + j + BN / 2] : 0.0f);
      if (S::ARGMAX)
        atomicMax(&best[r], packArgmax(y, n));
    }
    __syncthreads();
    if (S::ARGMAX) {
      for (int r = threadIdx.x; r < BM; r += THREADS)
        if (m0 + r < rows)
          atomicMax(S::argmaxBest(a) + m0 + r, best[r]);
      __syncthreads();
    }
  }
  if (S::ARGMAX)
    finishArgmax(S::argmaxBest(a), S::argmaxCounter(a), rows, S::argmaxOut(a));
}

} // namespace kiln
