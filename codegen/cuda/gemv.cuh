// kiln device library: the GEMV family (decode projections).
//
// A few rows of activations against a streamed weight.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

// ---- GEMV: decode projections ---------------------------------------------
//
// y[m, n] = epi(m, n, sum_k A'[m, k] W[n, k]) for the few rows m of a decode
// step, W [NMM, K] row-major (the weight's [N, K] form). A' is A after the
// optional norm prologue, staged in shared memory as the activation dtype.
//
// The weights are streamed once, so the kernel is bound by how many of their
// bytes are in flight: each warp owns one output column (or, with SPLITK,
// one K slice of a column shared by SPLITK warps of the block); its lanes
// read 16-byte vectors of consecutive K and issue UNROLL of them before the
// first multiply. Before the prologue each warp asks L2 for its first
// column's leading bytes, so the norm and the staging overlap the first
// weight fetch. GATE: output item n reads the two W rows S::row(n, 0) and
// S::row(n, 1): n and n + N (SwiGLU/GeGLU over merged halves), or d and
// d + D/2 of a head (RoPE's pairs: the epilogue rotates them and stores
// queries and the KV cache). ARGMAX: the argmax over n of the stored y[m, :] goes
// to S::argmaxOut.

__device__ __forceinline__ void prefetchL2(const void *p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/// Rows m0 .. m0 + mc of A, normalised when S::NORM, into sA (S::MC x S::K
/// of the activation dtype). The copy moves 16-byte vectors with eight per
/// thread in flight; the norm then reads shared memory, so the prologue
/// costs a few memory round trips however long K is.
template <class S, int THREADS>
__device__ __forceinline__ void stageRows(const Args &a, i64 m0, int mc, typename S::TA *sA, float *red,
                                          float *sMean, float *sRs) {
  typedef typename S::TA TA;
  constexpr int AV = S::K % (16 / sizeof(TA)) == 0 ? static_cast<int>(16 / sizeof(TA)) : 1;
  typedef typename Raw<TA, AV>::type RA;
  constexpr i64 NV = S::K / AV;
  const TA *A = S::A(a);
  for (int r = 0; r < mc; ++r)
    for (i64 v0 = threadIdx.x; v0 < NV; v0 += THREADS * 8) {
      RA buf[8];
#pragma unroll
      for (int u = 0; u < 8; ++u)
        if (v0 + u * THREADS < NV)
          buf[u] = loadRaw<TA, AV>(A, (m0 + r) * S::K + (v0 + u * THREADS) * AV);
#pragma unroll
      for (int u = 0; u < 8; ++u)
        if (v0 + u * THREADS < NV)
          *reinterpret_cast<RA *>(sA + r * S::K + (v0 + u * THREADS) * AV) = buf[u];
    }
  __syncthreads();
  for (int r = 0; r < mc; ++r) {
    float mean = 0.0f, rs = 1.0f;
    if constexpr (S::NORM != 0) {
      TA *row = sA + r * S::K;
      float sum = 0.0f;
      if (S::NORM == 2) {
        for (i64 k = threadIdx.x; k < S::K; k += THREADS)
          sum += ldf(row, k);
        mean = blockSum(sum, red) / static_cast<float>(S::K);
        sum = 0.0f;
      }
      for (i64 k = threadIdx.x; k < S::K; k += THREADS) {
        float v = ldf(row, k) - mean;
        sum += v * v;
      }
      rs = rsqrtf(blockSum(sum, red) / static_cast<float>(S::K) + S::EPS);
#pragma unroll 8
      for (i64 k = threadIdx.x; k < S::K; k += THREADS) {
        float v = (ldf(row, k) - mean) * rs * S::gamma(a, k);
        if (S::NORM == 2)
          v += S::beta(a, k);
        row[k] = static_cast<TA>(roundTo<TA>(v));
      }
    }
    if (threadIdx.x == 0) {
      sMean[r] = mean;
      sRs[r] = rs;
    }
  }
}

template <class S, int THREADS, int SPLITK, int VEC, int UNROLL>
__device__ void gemv(const Args &a) {
  constexpr int WARPS = THREADS / 32;
  constexpr int GROUPS = WARPS / SPLITK;      // columns in flight per block
  constexpr int NM = S::GATE ? 2 : 1;         // W rows per output column
  constexpr i64 CHUNK = 32 * VEC;             // K elements per warp-wide load
  constexpr i64 KS = ((S::K + SPLITK - 1) / SPLITK + VEC - 1) / VEC * VEC; // K per split
  constexpr int ITERS = static_cast<int>((KS + CHUNK - 1) / CHUNK);
  typedef typename S::TA TA;
  typedef typename S::TW TW;
  typedef typename Raw<TW, VEC>::type RW;
  __shared__ __align__(16) TA sA[S::STAGE ? S::MC * S::K : 8];
  __shared__ float sMean[S::MC], sRs[S::MC];
  __shared__ float red[33];
  __shared__ float part[SPLITK > 1 ? WARPS * S::MC * NM : 1];
  __shared__ u64 best[S::ARGMAX ? S::MC : 1];
  const TA *A = S::A(a);
  const TW *W = S::W(a);
  i64 rows = S::rows(a);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int group = warp / SPLITK, slice = warp % SPLITK;
  const i64 kBegin = slice * KS, kEnd = kBegin + KS < S::K ? kBegin + KS : S::K;
  {
    i64 n = static_cast<i64>(blockIdx.x) * GROUPS + group;
    if (n < S::N)
#pragma unroll
      for (int u = 0; u < UNROLL && u < ITERS; ++u) {
        i64 k = kBegin + u * CHUNK + lane * VEC;
        if (k < kEnd)
#pragma unroll
          for (int j = 0; j < NM; ++j)
            prefetchL2(W + S::row(n, j) * S::K + k);
      }
  }
  dependOnPrevious();
  for (i64 m0 = 0; m0 < rows; m0 += S::MC) {
    int mc = static_cast<int>(rows - m0 < S::MC ? rows - m0 : S::MC);
    // Stage A' (normalised) for rows m0 .. m0 + mc, or only its norm
    // statistics when it does not fit.
    if constexpr (S::STAGE != 0) {
      stageRows<S, THREADS>(a, m0, mc, sA, red, sMean, sRs);
    } else {
      for (int r = 0; r < mc; ++r) {
        float mean = 0.0f, rs = 1.0f;
        if constexpr (S::NORM != 0)
          rowStats<S>(a, m0 + r, red, mean, rs);
        if (threadIdx.x == 0) {
          sMean[r] = mean;
          sRs[r] = rs;
        }
      }
    }
    if (S::ARGMAX && threadIdx.x < S::MC)
      best[threadIdx.x] = 0ull;
    __syncthreads();
    for (i64 n0 = static_cast<i64>(blockIdx.x) * GROUPS; n0 < S::N;
         n0 += static_cast<i64>(gridDim.x) * GROUPS) {
      i64 n = n0 + group;
      bool live = n < S::N;
      float acc[S::MC][NM];
#pragma unroll
      for (int r = 0; r < S::MC; ++r)
#pragma unroll
        for (int j = 0; j < NM; ++j)
          acc[r][j] = 0.0f;
      if (live) {
        for (int it0 = 0; it0 < ITERS; it0 += UNROLL) {
          // All UNROLL x NM loads first, then the arithmetic.
          RW raw[UNROLL][NM];
#pragma unroll
          for (int u = 0; u < UNROLL; ++u) {
            i64 k = kBegin + (it0 + u) * CHUNK + lane * VEC;
#pragma unroll
            for (int j = 0; j < NM; ++j)
              if (it0 + u < ITERS && k < kEnd)
                raw[u][j] = loadRaw<TW, VEC>(W, S::row(n, j) * S::K + k);
          }
#pragma unroll
          for (int u = 0; u < UNROLL; ++u) {
            i64 k = kBegin + (it0 + u) * CHUNK + lane * VEC;
            if (it0 + u >= ITERS || k >= kEnd)
              continue;
            float w[NM][VEC];
#pragma unroll
            for (int j = 0; j < NM; ++j)
              unpackRaw<TW, VEC>(raw[u][j], w[j]);
#pragma unroll
            for (int r = 0; r < S::MC; ++r) {
              if (r >= mc)
                break;
              float x[VEC];
              if constexpr (S::STAGE != 0) {
                loadShared<TA, VEC>(sA, r * S::K + k, x);
              } else if constexpr (S::NORM != 0) {
#pragma unroll
                for (int v = 0; v < VEC; ++v)
                  x[v] = normed<S>(a, m0 + r, k + v, sMean[r], sRs[r]);
              } else {
                loadVec<TA, VEC>(A, (m0 + r) * S::K + k, x);
              }
#pragma unroll
              for (int j = 0; j < NM; ++j)
#pragma unroll
                for (int v = 0; v < VEC; ++v)
                  acc[r][j] += x[v] * w[j][v];
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < S::MC; ++r)
#pragma unroll
        for (int j = 0; j < NM; ++j)
          acc[r][j] = warpSum(acc[r][j]);
      if (SPLITK > 1) {
        if (lane == 0)
          for (int r = 0; r < S::MC; ++r)
            for (int j = 0; j < NM; ++j)
              part[(warp * S::MC + r) * NM + j] = acc[r][j];
        __syncthreads();
        if (slice == 0)
          for (int r = 0; r < S::MC; ++r)
            for (int j = 0; j < NM; ++j) {
              float s = 0.0f;
              for (int q = 0; q < SPLITK; ++q)
                s += part[((group * SPLITK + q) * S::MC + r) * NM + j];
              acc[r][j] = s;
            }
        __syncthreads();
      }
      if (live && slice == 0 && lane == 0)
        for (int r = 0; r < mc; ++r) {
          float y = S::epi(a, m0 + r, n, acc[r][0], NM > 1 ? acc[r][NM - 1] : 0.0f);
          if (S::ARGMAX)
            atomicMax(&best[r], packArgmax(y, n));
        }
    }
    if (S::ARGMAX) {
      __syncthreads();
      if (threadIdx.x < mc)
        atomicMax(S::argmaxBest(a) + m0 + threadIdx.x, best[threadIdx.x]);
    }
    __syncthreads();
  }
  if (S::ARGMAX)
    finishArgmax(S::argmaxBest(a), S::argmaxCounter(a), rows, S::argmaxOut(a));
}

} // namespace kiln
