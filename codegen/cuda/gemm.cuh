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

/// The first row and output column of tile `tile`: tiles are walked in
/// groups of 8 row tiles so that the blocks of one wave share their A rows
/// and W columns in L2.
template <int BM, int NOUT>
__device__ __forceinline__ void gemmTileCorner(i64 tile, i64 tilesM, i64 tilesN, i64 &m0, i64 &c0) {
  constexpr int GROUP_M = 8;
  i64 group = tile / (GROUP_M * tilesN), firstM = group * GROUP_M;
  i64 groupRows = tilesM - firstM < GROUP_M ? tilesM - firstM : GROUP_M;
  m0 = (firstM + tile % groupRows) * BM;
  c0 = (tile % (GROUP_M * tilesN)) / groupRows * NOUT;
}

/// Epilogue from registers for one warp: PIECES_M x PIECES_N m16 x n8
/// pieces of accumulators (the pm loop steps by PM_STEP), piece (pm, pn)
/// at tile row and column `corner` gives, its four values at acc[at..]: the
/// q-th holds row (lane / 4) + 8 * (q / 2) and column 2 * (lane % 4) + q % 2.
/// S::epi (or S::value then S::put/put2 with S::SPLIT) per output; with
/// S::ARGMAX each row's best candidate goes to best[row]. Gated pairs
/// (S::GATE): with HALVES = 0 an item's two products are adjacent columns
/// (the q = 0 and 1 values of a piece); otherwise they are columns j and
/// j + BN/2 of the tile, HALVES accumulators apart, and the pieces given
/// are the first half's.
///
/// Two adjacent outputs of a thread are stored together (S::put2) where
/// the output's rows are an even number of elements. An epilogue that
/// loads (S::EPI_LOADS: a residual, a bias) computes every value of a row
/// pair before its first store, so that all its loads are in flight at
/// once (a store could alias a later load: the residual is updated in
/// place); one that does not stores each pair as it is computed, which
/// keeps the store and arithmetic pipes busy together.
template <class S, int PIECES_M, int PIECES_N, int PM_STEP, int HALVES, int ACC, class Corner>
__device__ __forceinline__ void gemmStoreTile(const Args &a, float (&acc)[ACC], const Corner &corner, i64 m0, i64 c0,
                                              i64 rows, int lane, u64 *best) {
  constexpr bool ADJACENT = S::GATE && HALVES == 0;
  constexpr int PARTNER = HALVES ? HALVES : 1; // a gated item's second product, accumulators further
#pragma unroll
  for (int pm = 0; pm < PIECES_M; pm += PM_STEP) {
    int r0, c00, at0;
    corner(pm, 0, r0, c00, at0);
    // f(n, i, pair): output column n of row half h (rows r0 + lane / 4 +
    // 8 h), its accumulator acc[i] (the gated partner PARTNER further);
    // with pair, columns n and n + 1 from acc[i] and acc[i + 1].
    auto outputs = [&](int h, auto &&f) {
#pragma unroll
      for (int pn = 0; pn < PIECES_N; ++pn) {
        int rr, cc, at;
        corner(pm, pn, rr, cc, at);
        int col = cc + 2 * (lane & 3);
        if constexpr (ADJACENT) {
          i64 n = c0 + col / 2;
          if (n < S::N)
            f(n, at + 2 * h, false);
        } else if constexpr (S::PAIRS) {
          // N even and n even (c0 and col are): n + 1 is in range with n.
          // One branch a piece, as the unpaired loop below: separate
          // branches for pairs and single columns kept the compiler from
          // issuing a loading epilogue's loads together (O projection 348
          // -> 548 us, H100 run 6).
          i64 n = c0 + col;
          if (n < S::N)
            f(n, at + 2 * h, true);
        } else {
          i64 n = c0 + col;
#pragma unroll
          for (int q = 0; q < 2; ++q)
            if (n + q < S::N)
              f(n + q, at + 2 * h + q, false);
        }
      }
    };
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int r = r0 + (lane >> 2) + h * 8;
      i64 m = m0 + r;
      if (m >= rows)
        continue;
      u64 mine = 0ull;
      auto keep = [&](float y, i64 n) {
        if constexpr (S::ARGMAX) {
          u64 cand = packArgmax(y, n);
          mine = cand > mine ? cand : mine;
        }
      };
      outputs(h, [&](i64 n, int i, bool pair) {
        if constexpr (S::SPLIT) {
          float y0 = S::value(a, m, n, acc[i], S::GATE ? acc[i + PARTNER] : 0.0f);
          float y1 = pair ? S::value(a, m, n + 1, acc[i + 1], S::GATE ? acc[i + 1 + PARTNER] : 0.0f) : 0.0f;
          keep(y0, n);
          if (pair)
            keep(y1, n + 1);
          if constexpr (S::EPI_LOADS) {
            acc[i] = y0; // stored below, once every value of the row pair is computed
            if (pair)
              acc[i + 1] = y1;
          } else if (pair) {
            S::put2(a, m, n, y0, y1);
          } else {
            S::put(a, m, n, y0);
          }
        } else { // S::PAIRS is false here: one column
          keep(S::epi(a, m, n, acc[i], S::GATE ? acc[i + PARTNER] : 0.0f), n);
        }
      });
      if constexpr (S::ARGMAX)
        atomicMax(&best[r], mine);
    }
    if constexpr (S::SPLIT && S::EPI_LOADS)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        i64 m = m0 + r0 + (lane >> 2) + h * 8;
        if (m < rows)
          outputs(h, [&](i64 n, int i, bool pair) {
            if (pair)
              S::put2(a, m, n, acc[i], acc[i + 1]);
            else
              S::put(a, m, n, acc[i]);
          });
      }
  }
}

/// Epilogue from shared memory, for gemmWs's epilogue warps (warp `ew` of
/// WARPS): a BM x BN tile of products staged as T (the product's dtype:
/// every epilogue rounds the product to it first, so staging is exact),
/// rows PITCH elements apart; with S::GATE item j's two products are
/// columns j and j + BN/2. A lane takes eight adjacent outputs (one
/// 16-byte read of the products, one 16-byte store: S::put8), a warp 32
/// such octets in row order, U of them a lane at once: 8 U element
/// functions without a branch between them, which the compiler
/// interleaves (three warps hide no latency by switching). A loading
/// epilogue (S::EPI_LOADS) computes all 8 U before the first store (a
/// store could alias a later load: the residual is updated in place). An
/// octet past the tile's rows or S::N (an edge) goes one output at a time.
template <class S, int BM, int BN, int PITCH, int WARPS, class T>
__device__ __forceinline__ void gemmStoreStaged(const Args &a, const T *sE, i64 m0, i64 c0, i64 rows, int ew,
                                                int lane) {
  static_assert(sizeof(T) == 2, "16-bit products");
  constexpr int NOUT = S::GATE ? BN / 2 : BN, OPR = NOUT / 8, CHUNKS = BM * OPR / 32, U = 2;
  static_assert(NOUT % 8 == 0 && BM * OPR % 32 == 0, "whole octets, whole chunks");
  auto unpack = [](const T *p, float (&f)[8]) {
    union {
      uint4 u;
      T h[8];
    } w;
    w.u = *reinterpret_cast<const uint4 *>(p);
#pragma unroll
    for (int j = 0; j < 8; ++j)
      f[j] = static_cast<float>(w.h[j]);
  };
#pragma unroll 1
  for (int first = ew; first < CHUNKS; first += WARPS * U) {
    float y[U][8];
    bool whole[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int chunk = first + u * WARPS;
      const int idx = chunk * 32 + lane, r = idx / OPR, col = 8 * (idx % OPR);
      const i64 m = m0 + r, n = c0 + col;
      const bool mine = chunk < CHUNKS && m < rows;
      whole[u] = mine && n + 8 <= S::N;
      if (!mine)
        continue;
      float p[8], q[8];
      unpack(sE + r * PITCH + col, p);
      if constexpr (S::GATE)
        unpack(sE + r * PITCH + col + NOUT, q);
      else
#pragma unroll
        for (int j = 0; j < 8; ++j)
          q[j] = 0.0f;
      if (whole[u]) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
          y[u][j] = S::value(a, m, n + j, p[j], q[j]);
        if constexpr (!S::EPI_LOADS)
          S::put8(a, m, n, y[u]);
      } else {
        for (int j = 0; j < 8 && n + j < S::N; ++j)
          S::put(a, m, n + j, S::value(a, m, n + j, p[j], q[j]));
      }
    }
    if constexpr (S::EPI_LOADS)
#pragma unroll
      for (int u = 0; u < U; ++u)
        if (whole[u]) {
          const int idx = (first + u * WARPS) * 32 + lane;
          S::put8(a, m0 + idx / OPR, c0 + 8 * (idx % OPR), y[u]);
        }
  }
}

/// Whether gemmMma runs its warpgroup (wgmma) main loop: compiled for
/// sm_90a, asked for (WGMMA), 128-byte rows (BK = 64) and a block of whole
/// warpgroups.
template <int BK, int WM, int WN, bool WGMMA> struct UseWgmma {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static constexpr bool value = WGMMA && BK == 64 && (WM * WN) % 4 == 0;
#else
  static constexpr bool value = false;
#endif
};

template <class S, int BM, int BN, int BK, int STAGES, int WM, int WN, bool WGMMA = false>
__device__ void gemmMma(const Args &a) {
  typedef typename S::TA T;
  static_assert(sizeof(T) == 2, "tensor-core tiles of 16-bit elements");
  constexpr bool WG = UseWgmma<BK, WM, WN, WGMMA>::value;
  constexpr int THREADS = WM * WN * 32, CH = BK / 8, WTM = BM / WM, WTN = BN / WN;
  constexpr int MI = WTM / 16, NI = WTN / 8;
  // Warpgroup tiling: WGS warpgroups, each MB m64 blocks by NW columns.
  constexpr int WGS = THREADS / 128 > 0 ? THREADS / 128 : 1;
  constexpr bool WG_SPLIT_N = BM / 64 < WGS;
  constexpr int MB = WG_SPLIT_N ? 1 : (BM / 64) / WGS, NW = WG_SPLIT_N ? BN / WGS : BN;
  static_assert(BK % 16 == 0 && CH <= 8 && (CH & (CH - 1)) == 0, "BK: 16, 32 or 64");
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tiles are whole m16 x n16 pieces");
  static_assert((BM * CH) % THREADS == 0 && (BN * CH) % THREADS == 0, "stage copies divide evenly");
  constexpr int NOUT = S::GATE ? BN / 2 : BN; // output items per tile
  constexpr int A_CP = BM * CH / THREADS, B_CP = BN * CH / THREADS;
  // wgmma with three or more stages keeps one k-tile's MMAs in flight while
  // the next is issued: a stage is refilled only once every warpgroup is
  // past the MMAs two k-tiles back, so loads run STAGES - 2 tiles ahead
  // (STAGES - 1 with mma.sync, whose reads end at the barrier).
  constexpr bool OVERLAP = WG && STAGES >= 3;
  constexpr int AHEAD = OVERLAP ? STAGES - 2 : STAGES - 1;
  extern __shared__ __align__(128) unsigned char smemRaw[];
  // The 128-byte swizzle of wgmma's descriptors is on address bits: stages
  // start on 1024-byte boundaries (the emitter adds 1024 bytes for this).
  unsigned char *smem = smemRaw;
  if constexpr (WG)
    smem += (1024 - static_cast<unsigned>(__cvta_generic_to_shared(smemRaw)) % 1024) % 1024;
  T *sA = reinterpret_cast<T *>(smem); // [STAGES][BM * BK]
  T *sB = sA + STAGES * BM * BK;       // [STAGES][BN * BK]
  __shared__ float sMean[S::NORM ? BM : 1], sRs[S::NORM ? BM : 1];
  __shared__ u64 best[S::ARGMAX ? BM : 1];
  dependOnPrevious();
  const T *A = S::A(a);
  const T *W = S::W(a);
  const i64 rows = S::rows(a);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp / WN, wn = warp % WN;
  const i64 tilesM = (rows + BM - 1) / BM, tilesN = (S::N + NOUT - 1) / NOUT;
  const int kTiles = static_cast<int>((S::K + BK - 1) / BK);
  for (i64 tile = blockIdx.x; tile < tilesM * tilesN; tile += gridDim.x) {
    i64 m0, c0;
    gemmTileCorner<BM, NOUT>(tile, tilesM, tilesN, m0, c0);
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
    for (int s = 0; s < AHEAD; ++s) {
      if (s < kTiles)
        load(s, s);
      cpAsyncCommit();
    }
    if constexpr (S::NORM != 0) {
      for (int r = warp; r < BM; r += THREADS / 32) {
        float mean = 0.0f, rs = 1.0f;
        if (m0 + r < rows)
          rowStatsBy<S>(a, m0 + r, lane, 32, [](float v) { return warpSum(v); }, mean, rs);
        if (lane == 0) {
          sMean[r] = mean;
          sRs[r] = rs;
        }
      }
    }
    if constexpr (S::ARGMAX)
      for (int r = tid; r < BM; r += THREADS)
        best[r] = 0ull;
    // Accumulators: mma.sync fragments, or each warpgroup's m64 x NW blocks.
    constexpr int ACC = WG ? MB * (NW / 2) : MI * NI * 4;
    float acc[ACC];
#pragma unroll
    for (int i = 0; i < ACC; ++i)
      acc[i] = 0.0f;
    const int wg = warp / 4;
    for (int kt = 0; kt < kTiles; ++kt) {
      cpAsyncWait<AHEAD - 1>();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
      if constexpr (WG)
        fenceProxyAsync(); // this thread's copies, before the tensor cores read them
#endif
      __syncthreads(); // stage kt landed for every thread; the stage refilled next is free
      if (kt + AHEAD < kTiles)
        load((kt + AHEAD) % STAGES, kt + AHEAD);
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
            v[j] = static_cast<T>(k < S::K ? normValue<S>(a, static_cast<float>(v[j]), k, sMean[r], sRs[r]) : 0.0f);
          }
          *reinterpret_cast<uint4 *>(p) = raw;
        }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
        if constexpr (WG)
          fenceProxyAsync();
#endif
        __syncthreads();
      }
      if constexpr (WG) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
        const int rowBase = WG_SPLIT_N ? 0 : wg * MB * 64, colBase = WG_SPLIT_N ? wg * NW : 0;
        wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; ++kk) {
          u64 db = smemDescSw128(tB + colBase * BK) + 2 * kk; // k-step: 32 bytes further in the row
#pragma unroll
          for (int mb = 0; mb < MB; ++mb) {
            u64 da = smemDescSw128(tA + (rowBase + mb * 64) * BK) + 2 * kk;
            Wgmma<NW, T>::mma(*reinterpret_cast<float(*)[NW / 2]>(acc + mb * (NW / 2)), da, db);
          }
        }
        wgmmaCommit();
        wgmmaWait<OVERLAP ? 1 : 0>();
#endif
      } else {
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
              mma16816<T>(*reinterpret_cast<float(*)[4]>(acc + (i * NI + j) * 4), af[i], bf[j][0], bf[j][1]);
        }
      }
    }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if constexpr (WG)
      wgmmaWait<0>();
#endif
    cpAsyncWait<0>();
    __syncthreads(); // every warp is done with the ring before the next tile refills it
    // Epilogue from registers. Either way an m16 x n8 piece of accumulators
    // holds row (lane / 4) + 8 * (q / 2) and column 2 * (lane % 4) + q % 2
    // in its q-th value; `piece` gives the tile row and column of piece p's
    // corner and the offset of its four values in acc.
    constexpr int PIECES_M = WG ? MB * 4 : MI, PIECES_N = WG ? NW / 8 : NI;
    auto corner = [&](int pm, int pn, int &r, int &c, int &at) {
      if constexpr (WG) {
        const int rowBase = WG_SPLIT_N ? 0 : wg * MB * 64, colBase = WG_SPLIT_N ? wg * NW : 0;
        int mb = pm / 4; // pm % 4 is this warp's own 16 rows: one per warp
        r = rowBase + mb * 64 + (warp % 4) * 16;
        c = colBase + pn * 8;
        at = mb * (NW / 2) + pn * 4;
      } else {
        r = wm * WTM + pm * 16;
        c = wn * WTN + pn * 8;
        at = (pm * NI + pn) * 4;
      }
    };
    gemmStoreTile<S, PIECES_M, PIECES_N, WG ? 4 : 1, 0>(a, acc, corner, m0, c0, rows, lane, best);
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

// ---- GEMM: warp-specialised wgmma (sm_90a) -------------------------------------
//
// The same product and epilogue as gemmMma for plain GEMMs (no norm
// prologue, no argmax): BM / 64 consumer warpgroups, each the owner of 64
// rows x BN of accumulators (one m64nBNk16 wgmma per 16 of K), and one
// producer warp whose first thread alone moves tiles, by TMA. The runtime
// encodes two tensor maps per launch (the kernel's manifest entry lists
// them): maps.map[0] over A [rows, K] with BM x 64 boxes, maps.map[1] over
// W [NMM, K] with BN x 64 boxes (BN / 2 with S::GATE), both 128-byte
// swizzled as wgmma's descriptors read them and zero-filled past the
// tensor. The producer fills a ring of STAGES stages (BK = 64): per stage
// one expect-tx arrival on its `full` mbarrier and the boxes' copies, which
// complete it. A consumer waits on `full`, issues the stage's MMAs, and
// once they have retired (one k-tile later: one group stays in flight)
// arrives on the stage's `empty` mbarrier, which the producer waits on
// before it refills the stage. No block-wide barrier in the main loop: the
// copies run up to STAGES - 1 k-tiles ahead and carry on into the next tile
// while the consumers run the epilogue.
//
// PINGPONG: two consumer warpgroups that each own whole tiles (BM / 64 m64
// blocks by BN) and take the block's tiles in turn, their main loops in
// tile order: a warpgroup starts its main loop once the other has finished
// the previous tile's (the `turn` mbarriers), so that one runs the tensor
// cores while the other runs its epilogue.
//
// S::GATE: W's rows are an item's two halves (S::row(n, j) = n + j * N, the
// emitter checks), loaded as two boxes, rows c0.. and N + c0..: column j
// and j + BN/2 of the tile are item c0 + j's two products, which a thread
// holds both of (gemmStoreTile's HALVES).
//
// CLUSTER = 2 (cooperative): the kernel runs in clusters of two blocks
// (__cluster_dims__) that take two tiles at a time sharing one operand,
// which each block's producer loads half of into both blocks' stages
// (TMA multicast): W's BN rows for two tiles rows apart, or A's BM rows
// for two tiles columns apart when the row tiles are odd in number and
// the column tiles even. Per stage each block then reads 2/3 of the bytes
// from L2 (128 x 256 tiles: 32 KB, not 48), the limit of a lone block at
// the tensor cores' rate. The maps' boxes are BM/2 and BN/2 rows; a stage
// completes on its own block's `full` barrier with the same bytes, and is
// refilled once both blocks' consumers have released it (each consumer
// warp arrives on the `empty` barrier of both blocks).
//
// EPIWG (cooperative, BM <= 128): the epilogue runs in warps of its own
// while the consumers start the next tile's main loop, so the tensor
// cores do not idle through it. A consumer warp stages its products in
// shared memory as T (a BM x BN tile, rows padded by 16 bytes so that the
// accumulator layout's stores and the epilogue's row reads take every
// bank once), then arrives on `staged`; the three warps after the
// producer's run the element functions from there (gemmStoreStaged: 32
// adjacent pairs of a row a warp at a time, coalesced) and arrive on
// `drained`, which a consumer waits on before it stages its next tile.

template <class S, int BM, int BN, int STAGES, bool PINGPONG = false, int CLUSTER = 1, bool EPIWG = false>
__device__ void gemmWs(const Args &a, const TensorMaps<2> &maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  typedef typename S::TA T;
  static_assert(sizeof(T) == 2 && !S::NORM && !S::ARGMAX, "plain 16-bit GEMMs");
  static_assert(BM % 64 == 0 && BM <= 256 && (BN == 64 || BN == 128 || BN == 256), "m64 blocks, wgmma widths");
  static_assert(CLUSTER == 1 || (CLUSTER == 2 && !PINGPONG && BM >= 128), "pairs of cooperative blocks");
  static_assert(!EPIWG || (!PINGPONG && BM <= 128), "an epilogue warpgroup beside one or two cooperative ones");
  // CW consumer warpgroups, each MB m64 blocks of a tile.
  constexpr int BK = 64, CW = PINGPONG ? 2 : BM / 64, MB = PINGPONG ? BM / 64 : 1;
  constexpr int NOUT = S::GATE ? BN / 2 : BN;
  constexpr unsigned STAGE_BYTES = (BM + BN) * BK * sizeof(T);
  extern __shared__ __align__(128) unsigned char smemRaw[];
  unsigned char *smem = smemRaw + (1024 - smemAddr(smemRaw) % 1024) % 1024;
  T *sA = reinterpret_cast<T *>(smem); // [STAGES][BM * BK]
  T *sB = sA + STAGES * BM * BK;       // [STAGES][BN * BK]
  constexpr int PITCH = BN + 8;        // a staged row (EPIWG), 16 bytes of padding
  T *sE = sB + STAGES * BN * BK;       // [BM][PITCH]
  __shared__ __align__(8) u64 full[STAGES], empty[STAGES], turn[2], staged, drained;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbarInit(&full[s], 1); // the producer's expect-tx arrival (and the copies' bytes)
      // Every warp of the stage's consumers, in every block that reads it.
      mbarInit(&empty[s], (PINGPONG ? 4 : CW * 4) * CLUSTER);
    }
    mbarInit(&turn[0], 4); // a warpgroup's warps, its main loop done
    mbarInit(&turn[1], 4);
    mbarInit(&staged, CW * 4); // every consumer warp, its products staged
    mbarInit(&drained, 3);     // the epilogue's warps, the staging read
    // The barriers initialised before the copy engine (async proxy) or
    // another block of the cluster completes on them.
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    fenceProxyAsync();
  }
  if constexpr (CLUSTER > 1)
    clusterSync();
  else
    __syncthreads();
  dependOnPrevious();
  const i64 rows = S::rows(a);
  const i64 tilesM = (rows + BM - 1) / BM, tilesN = (S::N + NOUT - 1) / NOUT;
  const int kTiles = static_cast<int>((S::K + BK - 1) / BK);
  // Units of work: a tile, or a cluster's CLUSTER tiles, rows apart
  // (sharing W) or, with an odd number of row tiles and an even number of
  // column tiles, columns apart (sharing A).
  const unsigned rank = CLUSTER > 1 ? clusterRank() : 0u;
  const bool pairRows = CLUSTER == 1 || tilesM % 2 == 0 || tilesN % 2 != 0;
  const i64 unitsM = pairRows ? (tilesM + CLUSTER - 1) / CLUSTER : tilesM;
  const i64 unitsN = pairRows ? tilesN : tilesN / CLUSTER;
  const i64 units = unitsM * unitsN;
  auto tileCorner = [&](i64 unit, i64 &m0, i64 &c0) {
    if (pairRows) {
      gemmTileCorner<BM * CLUSTER, NOUT>(unit, unitsM, unitsN, m0, c0);
      m0 += static_cast<i64>(rank) * BM;
    } else {
      gemmTileCorner<BM, NOUT * CLUSTER>(unit, unitsM, unitsN, m0, c0);
      c0 += static_cast<i64>(rank) * NOUT;
    }
  };
  const i64 firstUnit = blockIdx.x / CLUSTER, unitStride = gridDim.x / CLUSTER;
  unsigned it = 0; // k-tiles through the ring so far (stage it % STAGES)
  // With EPIWG the producer's warpgroup is whole: its first warp moves the
  // tiles, the other three run the epilogue (384 threads for 128-row
  // tiles: 168 registers a thread, what the consumers' accumulators need
  // without setmaxnreg, which the compiler cannot allocate by: a 256-wide
  // wgmma does not compile in a 512-thread block's 128).
  const int producerWarp = CW * 4;
  if (EPIWG && warp > producerWarp) {
    // The epilogue warps: the same tiles as the consumers, in order.
    if constexpr (EPIWG) {
      unsigned mine = 0;
      for (i64 unit = firstUnit; unit < units; unit += unitStride, ++mine) {
        i64 m0, c0;
        tileCorner(unit, m0, c0);
        mbarWait(&staged, mine & 1);
        gemmStoreStaged<S, BM, BN, PITCH, 3>(a, sE, m0, c0, rows, warp - producerWarp - 1, lane);
        __syncwarp();
        if (lane == 0)
          mbarArrive(&drained);
      }
    }
  } else if (warp == producerWarp) {
    if (lane == 0) {
      tmaPrefetch(maps.map[0]);
      tmaPrefetch(maps.map[1]);
      for (i64 unit = firstUnit; unit < units; unit += unitStride) {
        i64 m0, c0;
        tileCorner(unit, m0, c0);
        for (int kt = 0; kt < kTiles; ++kt, ++it) {
          const int s = it % STAGES;
          mbarWait(&empty[s], ((it / STAGES) & 1) ^ 1);
          mbarArriveExpectTx(&full[s], STAGE_BYTES);
          const int k = kt * BK;
          T *dA = sA + s * BM * BK, *dB = sB + s * BN * BK;
          // W's second box of the tile: the gated item's other half, or the
          // next BN/2 rows.
          const i64 w1 = S::GATE ? c0 + S::N : c0 + BN / 2;
          if constexpr (CLUSTER == 1) {
            tmaLoad2d(dA, maps.map[0], k, static_cast<int>(m0), &full[s]);
            if constexpr (S::GATE) {
              tmaLoad2d(dB, maps.map[1], k, static_cast<int>(c0), &full[s]);
              tmaLoad2d(dB + (BN / 2) * BK, maps.map[1], k, static_cast<int>(w1), &full[s]);
            } else {
              tmaLoad2d(dB, maps.map[1], k, static_cast<int>(c0), &full[s]);
            }
          } else if (pairRows) {
            // A: this block's own rows, two boxes; W: this rank's half, to both.
            tmaLoad2d(dA, maps.map[0], k, static_cast<int>(m0), &full[s]);
            tmaLoad2d(dA + (BM / 2) * BK, maps.map[0], k, static_cast<int>(m0 + BM / 2), &full[s]);
            tmaLoad2dMulticast(dB + rank * (BN / 2) * BK, maps.map[1], k, static_cast<int>(rank ? w1 : c0), &full[s],
                               0x3);
          } else {
            // A: this rank's half of the shared rows, to both; W: its own.
            tmaLoad2dMulticast(dA + rank * (BM / 2) * BK, maps.map[0], k, static_cast<int>(m0 + rank * (BM / 2)),
                               &full[s], 0x3);
            tmaLoad2d(dB, maps.map[1], k, static_cast<int>(c0), &full[s]);
            tmaLoad2d(dB + (BN / 2) * BK, maps.map[1], k, static_cast<int>(w1), &full[s]);
          }
        }
      }
    }
  } else {
    // Consumer warpgroup wg: rows wg * 64 .. wg * 64 + 63 of each tile, or
    // (PINGPONG) every other tile whole.
    const int wg = warp / 4;
    const int rowBase = PINGPONG ? 0 : wg * 64;
    const i64 first = firstUnit + (PINGPONG ? static_cast<i64>(wg) * unitStride : 0);
    const i64 stride = unitStride * (PINGPONG ? 2 : 1);
    // A stage's MMAs retired: free it in every block that reads it.
    auto release = [&](int s) {
      if (lane == 0) {
        if constexpr (CLUSTER == 1)
          mbarArrive(&empty[s]);
        else
#pragma unroll
          for (int r = 0; r < CLUSTER; ++r)
            mbarArriveCluster(&empty[s], r);
      }
    };
    unsigned mine = 0; // this warpgroup's tiles so far
    for (i64 unit = first; unit < units; unit += stride, ++mine) {
      i64 m0, c0;
      tileCorner(unit, m0, c0);
      if constexpr (PINGPONG) {
        // The block's j-th tile (j = 2 mine + wg) starts at ring position
        // j * kTiles, once the other warpgroup's main loop of tile j - 1 is
        // done (its mine-th or, for warpgroup 0, (mine - 1)-th).
        it = (2 * mine + wg) * static_cast<unsigned>(kTiles);
        if (wg == 1)
          mbarWait(&turn[0], mine & 1);
        else if (mine > 0)
          mbarWait(&turn[1], (mine - 1) & 1);
      }
      float acc[MB * BN / 2];
#pragma unroll
      for (int i = 0; i < MB * BN / 2; ++i)
        acc[i] = 0.0f;
      int prev = -1;
      for (int kt = 0; kt < kTiles; ++kt, ++it) {
        const int s = it % STAGES;
        mbarWait(&full[s], (it / STAGES) & 1);
        const T *tA = sA + s * BM * BK + rowBase * BK, *tB = sB + s * BN * BK;
        fenceOperands(acc);
        wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; ++kk)
#pragma unroll
          for (int mb = 0; mb < MB; ++mb)
            Wgmma<BN, T>::mma(*reinterpret_cast<float(*)[BN / 2]>(acc + mb * (BN / 2)),
                              smemDescSw128(tA + mb * 64 * BK) + 2 * kk, smemDescSw128(tB) + 2 * kk);
        wgmmaCommit();
        wgmmaWait<1>(); // the previous k-tile's MMAs have read their stage
        fenceOperands(acc);
        if (prev >= 0)
          release(prev);
        prev = s;
      }
      wgmmaWait<0>();
      fenceOperands(acc);
      if (prev >= 0)
        release(prev);
      if (PINGPONG && lane == 0)
        mbarArrive(&turn[wg]);
      if constexpr (EPIWG) {
        // Stage the products (the accumulator layout: row lane / 4 and
        // + 8, columns 2 (lane % 4) + 8 pn) once the epilogue warpgroup
        // has read the previous tile's.
        if (mine > 0)
          mbarWait(&drained, (mine - 1) & 1);
        T *row0 = sE + (rowBase + (warp % 4) * 16 + (lane >> 2)) * PITCH + 2 * (lane & 3);
#pragma unroll
        for (int pn = 0; pn < BN / 8; ++pn) {
          stv2(row0, pn * 8, acc[pn * 4], acc[pn * 4 + 1]);
          stv2(row0, 8 * PITCH + pn * 8, acc[pn * 4 + 2], acc[pn * 4 + 3]);
        }
        __syncwarp();
        if (lane == 0)
          mbarArrive(&staged);
      } else {
        auto corner = [&](int pm, int pn, int &r, int &c, int &at) {
          int mb = pm / 4; // pm % 4 is this warp's own 16 rows of the block
          r = rowBase + mb * 64 + (warp % 4) * 16;
          c = pn * 8;
          at = mb * (BN / 2) + pn * 4;
        };
        constexpr int PIECES_N = S::GATE ? BN / 16 : BN / 8;
        gemmStoreTile<S, MB * 4, PIECES_N, 4, S::GATE ? (BN / 16) * 4 : 0>(a, acc, corner, m0, c0, rows, lane,
                                                                           nullptr);
      }
    }
  }
  if constexpr (CLUSTER > 1) {
    // Neither block leaves while the other may still arrive on its
    // barriers or copy into its stages.
    __syncwarp();
    clusterSync();
  }
#else
  // Compiled for a GPU without wgmma (the runtime re-compiling an sm_90a
  // engine's sources for another architecture; the emitter chooses this
  // kernel only for sm_90a targets): the same outputs, one per thread.
  typedef typename S::TA T;
  dependOnPrevious();
  const T *A = S::A(a);
  const T *W = S::W(a);
  const i64 rows = S::rows(a);
  for (i64 e = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; e < rows * S::N;
       e += static_cast<i64>(gridDim.x) * blockDim.x) {
    i64 m = e / S::N, n = e % S::N;
    float mm[2] = {0.0f, 0.0f};
    for (int j = 0; j < (S::GATE ? 2 : 1); ++j) {
      const T *w = W + S::row(n, j) * S::K, *x = A + m * S::K;
      for (i64 k = 0; k < S::K; ++k)
        mm[j] += static_cast<float>(x[k]) * static_cast<float>(w[k]);
    }
    S::epi(a, m, n, mm[0], mm[1]);
  }
#endif
}

} // namespace kiln
