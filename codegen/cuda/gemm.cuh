// kiln device library: the GEMM family (prefill projections).
//
// Tensor-core tiles over many rows: gemmMma (ldmatrix + mma.sync m16n8k16
// fed by a cp.async ring of shared-memory stages; the tile shape is
// choose-tiling's), and gemm (WMMA, no pipelining) for weights whose K is
// not a multiple of 8 elements (16-byte rows are what cp.async moves).
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
  static_assert(BM % (WM * 16) == 0 && BN % (WN * 16) == 0, "warp tiles are whole 16x16 fragments");
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

// ---- GEMM: tensor cores through mma.sync, pipelined --------------------------
//
// y[m, n] = epi(m, n, sum_k A'[m, k] W[S::row(n, j), k]) with A [rows, K] and
// W [NMM, K] row-major in the activation dtype (bf16 or f16), K % 8 == 0.
//
// Block tile BM x BN over (rows, W rows), BK deep; WM x WN warps each own a
// (BM / WM) x (BN / WN) patch of m16n8k16 accumulators in registers. The
// block's tiles stream through a ring of STAGES shared-memory stages filled
// by cp.async (16 bytes per thread and copy, zero-filled past the rows, the
// columns and K), read by ldmatrix. Rows of a stage are BK elements, their
// 16-byte chunks XOR-swizzled by the row so that the eight rows an ldmatrix
// phase reads fall in distinct banks.
//
// GATE: the tile's W rows interleave the two rows of each output item (row
// 2i: S::row(c0 + i, 0), row 2i + 1: S::row(c0 + i, 1)), so the two columns
// a thread holds side by side in an accumulator are the item's mm0 and mm1
// (SwiGLU/GeGLU halves, RoPE pairs): the epilogue runs from registers.
// NORM: each stage's A tile is normalised in shared memory once it has
// landed (row statistics computed per tile by the warps), then read.
// Tiles are walked in groups of GROUP_M row tiles so that the blocks of one
// wave share their A rows and W columns in L2.

/// Element offset of 16-byte chunk `c` of row `r` in a stage of rows of
/// CH chunks: the chunk index XOR the row's bank group.
template <int CH> __device__ __forceinline__ int swz(int r, int c) {
  return r * CH * 8 + ((c ^ ((r * CH / 8) % CH)) * 8);
}

template <class S, int BM, int BN, int BK, int STAGES, int WM, int WN>
__device__ void gemmMma(const Args &a) {
  typedef typename S::TA T;
  static_assert(sizeof(T) == 2, "tensor-core tiles of 16-bit elements");
  constexpr int THREADS = WM * WN * 32, CH = BK / 8, WTM = BM / WM, WTN = BN / WN;
  constexpr int MI = WTM / 16, NI = WTN / 8, GROUP_M = 8;
  static_assert(BK % 16 == 0 && CH <= 8 && (CH & (CH - 1)) == 0, "BK: 16, 32 or 64");
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tiles are whole m16 x n16 pieces");
  static_assert((BM * CH) % THREADS == 0 && (BN * CH) % THREADS == 0, "stage copies divide evenly");
  constexpr int NOUT = S::GATE ? BN / 2 : BN; // output items per tile
  constexpr int A_CP = BM * CH / THREADS, B_CP = BN * CH / THREADS;
  extern __shared__ __align__(128) unsigned char smem[];
  T *sA = reinterpret_cast<T *>(smem);               // [STAGES][BM * BK]
  T *sB = sA + STAGES * BM * BK;                       // [STAGES][BN * BK]
  __shared__ float sMean[S::NORM ? BM : 1], sRs[S::NORM ? BM : 1];
  __shared__ u64 best[S::ARGMAX ? BM : 1];
  dependOnPrevious();
  const T *A = reinterpret_cast<const T *>(S::A(a));
  const T *W = reinterpret_cast<const T *>(S::W(a));
  const i64 rows = S::rows(a);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp / WN, wn = warp % WN;
  const i64 tilesM = (rows + BM - 1) / BM, tilesN = (S::N + NOUT - 1) / NOUT;
  const int kTiles = static_cast<int>((S::K + BK - 1) / BK);
  for (i64 tile = blockIdx.x; tile < tilesM * tilesN; tile += gridDim.x) {
    i64 group = tile / (GROUP_M * tilesN), firstM = group * GROUP_M;
    i64 groupRows = tilesM - firstM < GROUP_M ? tilesM - firstM : GROUP_M;
    i64 tm = firstM + tile % groupRows, tn = (tile % (GROUP_M * tilesN)) / groupRows;
    i64 m0 = tm * BM, c0 = tn * NOUT;
    // This thread's copies: the global row each one reads (nullptr: zeros).
    const T *aRow[A_CP];
    const T *bRow[B_CP];
#pragma unroll
    for (int i = 0; i < A_CP; ++i) {
      int r = (tid + i * THREADS) / CH;
      aRow[i] = m0 + r < rows ? A + (m0 + r) * S::K : nullptr;
    }
#pragma unroll
    for (int i = 0; i < B_CP; ++i) {
      int r = (tid + i * THREADS) / CH;
      i64 item = S::GATE ? c0 + r / 2 : c0 + r;
      bRow[i] = item < S::N ? W + S::row(item, S::GATE ? r % 2 : 0) * S::K : nullptr;
    }
    auto load = [&](int stage, int kt) {
      i64 k0 = static_cast<i64>(kt) * BK;
#pragma unroll
      for (int i = 0; i < A_CP; ++i) {
        int e = tid + i * THREADS, r = e / CH, c = e % CH;
        i64 k = k0 + c * 8;
        bool ok = aRow[i] && k < S::K;
        cpAsync16(sA + stage * BM * BK + swz<CH>(r, c), ok ? aRow[i] + k : A, ok ? 16 : 0);
      }
#pragma unroll
      for (int i = 0; i < B_CP; ++i) {
        int e = tid + i * THREADS, r = e / CH, c = e % CH;
        i64 k = k0 + c * 8;
        bool ok = bRow[i] && k < S::K;
        cpAsync16(sB + stage * BN * BK + swz<CH>(r, c), ok ? bRow[i] + k : W, ok ? 16 : 0);
      }
    };
    // The pipeline fills while the norm's statistics are computed.
#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < kTiles)
        load(s, s);
      cpAsyncCommit();
    }
    if constexpr (S::NORM != 0) {
      for (int r = warp; r < BM; r += THREADS / 32) {
        float mean = 0.0f, rs = 1.0f;
        if (m0 + r < rows) {
          float sum = 0.0f;
          if (S::NORM == 2) {
            for (i64 k = lane; k < S::K; k += 32)
              sum += S::x(a, m0 + r, k);
            mean = warpSum(sum) / static_cast<float>(S::K);
            sum = 0.0f;
          }
          for (i64 k = lane; k < S::K; k += 32) {
            float v = S::x(a, m0 + r, k) - mean;
            sum += v * v;
          }
          rs = rsqrtf(warpSum(sum) / static_cast<float>(S::K) + S::EPS);
        }
        if (lane == 0) {
          sMean[r] = mean;
          sRs[r] = rs;
        }
      }
    }
    if constexpr (S::ARGMAX)
      for (int r = tid; r < BM; r += THREADS)
        best[r] = 0ull;
    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int j = 0; j < NI; ++j)
#pragma unroll
        for (int q = 0; q < 4; ++q)
          acc[i][j][q] = 0.0f;
    for (int kt = 0; kt < kTiles; ++kt) {
      cpAsyncWait<STAGES - 2>();
      __syncthreads(); // stage kt landed for every thread; stage kt - 1 is free
      if (kt + STAGES - 1 < kTiles)
        load((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
      cpAsyncCommit();
      const T *tA = sA + (kt % STAGES) * BM * BK;
      const T *tB = sB + (kt % STAGES) * BN * BK;
      if constexpr (S::NORM != 0) {
        // Normalise the landed A tile in place, rounded as the unfused norm
        // stores it.
        T *wA = const_cast<T *>(tA);
        i64 k0 = static_cast<i64>(kt) * BK;
        for (int e = tid; e < BM * CH; e += THREADS) {
          int r = e / CH, c = e % CH;
          T *p = wA + swz<CH>(r, c);
          uint4 raw = *reinterpret_cast<const uint4 *>(p);
          T *v = reinterpret_cast<T *>(&raw);
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            i64 k = k0 + c * 8 + j;
            float y = 0.0f;
            if (k < S::K) {
              y = (static_cast<float>(v[j]) - sMean[r]) * sRs[r] * S::gamma(a, k);
              if (S::NORM == 2)
                y += S::beta(a, k);
            }
            v[j] = static_cast<T>(y);
          }
          *reinterpret_cast<uint4 *>(p) = raw;
        }
        __syncthreads();
      }
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        unsigned af[MI][4], bf[NI][2];
#pragma unroll
        for (int i = 0; i < MI; ++i)
          ldmatrix4(af[i], tA + swz<CH>(wm * WTM + i * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
        for (int j = 0; j < NI; j += 2) {
          unsigned r[4];
          ldmatrix4(r, tB + swz<CH>(wn * WTN + j * 8 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)));
          bf[j][0] = r[0];
          bf[j][1] = r[1];
          bf[j + 1][0] = r[2];
          bf[j + 1][1] = r[3];
        }
#pragma unroll
        for (int i = 0; i < MI; ++i)
#pragma unroll
          for (int j = 0; j < NI; ++j)
            mma16816<T>(acc[i][j], af[i], bf[j][0], bf[j][1]);
      }
    }
    cpAsyncWait<0>();
    __syncthreads(); // every warp is done with the ring before the next tile refills it
    // Epilogue from registers: accumulator q of fragment (i, j) is row
    // (lane / 4) + 8 * (q / 2) and column 2 * (lane % 4) + q % 2 of it.
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int r = wm * WTM + i * 16 + (lane >> 2) + h * 8;
        i64 m = m0 + r;
        if (m >= rows)
          continue;
        u64 mine = 0ull;
#pragma unroll
        for (int j = 0; j < NI; ++j) {
          int col = wn * WTN + j * 8 + 2 * (lane & 3);
          if constexpr (S::GATE) {
            i64 n = c0 + col / 2;
            if (n < S::N) {
              float y = S::epi(a, m, n, acc[i][j][2 * h], acc[i][j][2 * h + 1]);
              if constexpr (S::ARGMAX) {
                u64 c = packArgmax(y, n);
                mine = c > mine ? c : mine;
              }
            }
          } else {
#pragma unroll
            for (int q = 0; q < 2; ++q) {
              i64 n = c0 + col + q;
              if (n < S::N) {
                float y = S::epi(a, m, n, acc[i][j][2 * h + q], 0.0f);
                if constexpr (S::ARGMAX) {
                  u64 c = packArgmax(y, n);
                  mine = c > mine ? c : mine;
                }
              }
            }
          }
        }
        if constexpr (S::ARGMAX)
          atomicMax(&best[r], mine);
      }
    if constexpr (S::ARGMAX) {
      __syncthreads();
      for (int r = tid; r < BM; r += THREADS)
        if (m0 + r < rows)
          atomicMax(S::argmaxBest(a) + m0 + r, best[r]);
      __syncthreads();
    }
  }
  if (S::ARGMAX)
    finishArgmax(S::argmaxBest(a), S::argmaxCounter(a), rows, S::argmaxOut(a));
}

} // namespace kiln
