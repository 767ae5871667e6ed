// kiln device library: the GEMM family (prefill projections).
//
// Tensor-core tiles over many rows: gemmMma (ldmatrix + mma.sync m16n8k16
// fed by a cp.async ring of shared-memory stages; the tile shape is
// choose-tiling's), and gemm (WMMA, no pipelining) for weights whose K is
// not a multiple of 8 elements (16-byte rows are what cp.async moves).
// The TMA-fed warp-specialised kernel, gemmWs, is gemm_ws.cuh (it shares
// swz, gemmTileCorner and gemmStoreTile from here).
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
/// S::epi (or S::value then S::put/put2 with S::SPLIT) per output, for the
/// pieces pn that `keepPiece(pn)` keeps (all by default); with
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
/// Every piece of a tile (gemmStoreTile's default `keepPiece`).
struct AllPieces {
  __device__ __forceinline__ constexpr bool operator()(int) const { return true; }
};
template <class S, int PIECES_M, int PIECES_N, int PM_STEP, int HALVES, int ACC, class Corner,
          class KeepPiece = AllPieces>
__device__ __forceinline__ void gemmStoreTile(const Args &a, float (&acc)[ACC], const Corner &corner, i64 m0, i64 c0,
                                              i64 rows, int lane, u64 *best,
                                              const KeepPiece &keepPiece = KeepPiece()) {
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
        if (!keepPiece(pn))
          continue;
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

/// Whether gemmMma runs its warpgroup (wgmma) main loop: compiled for
/// sm_90a, asked for (WGMMA), 128-byte rows (BK = 64) and a block of whole
/// warpgroups.
// ---- split-K ----------------------------------------------------------------
//
// A tile's K range in SPLITK parts, each a unit of work of its own, so that a
// few row tiles (a decode step's 64 rows) still keep every SM streaming
// weights. Each part stores its partial products (f32) in its own slice of
// the kernel's workspace and takes a ticket; the last of the tile's parts
// to finish sums the slices in split order -- the same sum whichever
// finishes last, so a row's result depends only on its inputs -- resets the
// ticket and runs the epilogue. Workspace: a ticket per tile (256-byte
// aligned), then SPLITK slices of BM x BN floats per tile.

/// The tile's unit of work in split-K: `unit` -> (tile, split) and the
/// part's k-tiles [kt0, kt1).
template <int SPLITK>
__device__ __forceinline__ void splitKRange(i64 unit, int kTiles, i64 &tile, int &split, int &kt0, int &kt1) {
  tile = unit / SPLITK;
  split = static_cast<int>(unit % SPLITK);
  const int per = (kTiles + SPLITK - 1) / SPLITK;
  kt0 = split * per < kTiles ? split * per : kTiles;
  kt1 = kt0 + per < kTiles ? kt0 + per : kTiles;
}

/// Stores this part's accumulators, takes the tile's ticket and returns
/// whether this part finished last; if so, acc holds the whole sum. `sync`
/// synchronises every thread holding accumulators; `flag` is shared memory.
template <int BM, int BN, int SPLITK, int PIECES_M, int PIECES_N, int PM_STEP, int ACC, class Corner, class Sync>
__device__ __forceinline__ bool splitKReduce(const Args &a, float (&acc)[ACC], const Corner &corner, i64 tile,
                                             i64 tiles, int split, int lane, bool leader, const Sync &sync,
                                             int *flag) {
  unsigned *ticket = static_cast<unsigned *>(a.ws);
  float *slices = reinterpret_cast<float *>(static_cast<unsigned char *>(a.ws) + (tiles * 4 + 255) / 256 * 256);
  float *mine = slices + (tile * SPLITK + split) * (BM * BN);
  auto each = [&](auto &&f) {
#pragma unroll
    for (int pm = 0; pm < PIECES_M; pm += PM_STEP)
#pragma unroll
      for (int pn = 0; pn < PIECES_N; ++pn) {
        int r, c, at;
        corner(pm, pn, r, c, at);
        f((r + (lane >> 2)) * BN + c + 2 * (lane & 3), at);
      }
  };
  each([&](int off, int at) {
    *reinterpret_cast<float2 *>(mine + off) = make_float2(acc[at], acc[at + 1]);
    *reinterpret_cast<float2 *>(mine + off + 8 * BN) = make_float2(acc[at + 2], acc[at + 3]);
  });
  __threadfence();
  sync();
  if (leader)
    *flag = atomicAdd(ticket + tile, 1u) == SPLITK - 1;
  sync();
  if (!*flag)
    return false;
  __threadfence();
  each([&](int off, int at) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int p = 0; p < SPLITK; ++p) {
      const float *part = slices + (tile * SPLITK + p) * (BM * BN) + off;
      float2 lo = __ldcg(reinterpret_cast<const float2 *>(part));
      float2 hi = __ldcg(reinterpret_cast<const float2 *>(part + 8 * BN));
      s[0] += lo.x, s[1] += lo.y, s[2] += hi.x, s[3] += hi.y;
    }
#pragma unroll
    for (int q = 0; q < 4; ++q)
      acc[at + q] = s[q];
  });
  if (leader)
    ticket[tile] = 0u; // the workspace left as found: no part of the tile takes a ticket now
  return true;
}

template <int BK, int WM, int WN, bool WGMMA> struct UseWgmma {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static constexpr bool value = WGMMA && BK == 64 && (WM * WN) % 4 == 0;
#else
  static constexpr bool value = false;
#endif
};

/// Cluster split-K's parts where sm90.cuh's cluster machinery is compiled
/// (sm_90a); compiled for another GPU (the runtime re-compiling an
/// engine's sources) a kernel asked for CSPLIT parts runs whole tiles, one
/// a block, the extra blocks idle.
template <int CSPLIT> struct ClusterParts {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static constexpr int value = CSPLIT;
#else
  static constexpr int value = 1;
#endif
};

/// CSPLIT > 1 (decode, sm_90): each tile's K in CSPLIT parts taken by the
/// blocks of one cluster (KILN_CLUSTER_DIMS), summed through distributed
/// shared memory (clusterSplitSum), each block the epilogue of its share
/// of the pieces; as gemmWs's CSPLIT.
template <class S, int BM, int BN, int BK, int STAGES, int WM, int WN, bool WGMMA = false, int SPLITK = 1,
          int CSPLIT = 1>
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
  static_assert(SPLITK == 1 || !S::ARGMAX, "split-K tiles end in one block's epilogue, an argmax in every");
  constexpr int CS = ClusterParts<CSPLIT>::value;
  static_assert(CSPLIT == 1 || (SPLITK == 1 && !S::ARGMAX && !S::NORM), "cluster split-K: plain parts");
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
  const T *A = S::A(a);
  const T *W = S::W(a);
  const i64 rows = S::rows(a);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wm = warp / WN, wn = warp % WN;
  const i64 tilesM = (rows + BM - 1) / BM, tilesN = (S::N + NOUT - 1) / NOUT;
  const int kTiles = static_cast<int>((S::K + BK - 1) / BK);
  __shared__ int lastPart;
  int part = 0;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (CS > 1)
    part = static_cast<int>(clusterRank());
#endif
  // A unit's tile, its split-K part and its k-tiles kt0 .. kt1 - 1 (with
  // CS, this block's part of them).
  auto unitWork = [&](i64 unit, i64 &tile, int &split, int &kt0, int &kt1) {
    tile = unit, split = 0, kt0 = 0, kt1 = kTiles;
    if constexpr (SPLITK > 1)
      splitKRange<SPLITK>(unit, kTiles, tile, split, kt0, kt1);
    if constexpr (CS > 1) {
      const int per = (kTiles + CS - 1) / CS;
      kt0 = part * per < kTiles ? part * per : kTiles;
      kt1 = kt0 + per < kTiles ? kt0 + per : kTiles;
    }
  };
  // Before the wait (KILN_PDL_PREFETCH): the W rows of this block's first
  // unit, its part of K, into L2 (the rows bRow reads).
  if (KILN_PDL_PREFETCH > 0 && blockIdx.x / CS < tilesM * tilesN * SPLITK) {
    i64 tile;
    int split, kt0, kt1;
    unitWork(blockIdx.x / CS, tile, split, kt0, kt1);
    i64 m0, c0;
    gemmTileCorner<BM, NOUT>(tile, tilesM, tilesN, m0, c0);
    const i64 k1 = static_cast<i64>(kt1) * BK < S::K ? static_cast<i64>(kt1) * BK : S::K;
    prefetchWeightRows(
        W, S::K, BN,
        [&](int r) -> i64 {
          const i64 item = S::GATE ? c0 + r / 2 : c0 + r;
          return item < S::N ? S::row(item, S::GATE ? r % 2 : 0) : -1;
        },
        static_cast<i64>(kt0) * BK, k1);
  }
  dependOnPrevious();
  for (i64 unit = blockIdx.x / CS; unit < tilesM * tilesN * SPLITK; unit += gridDim.x / CS) {
    i64 tile;
    int split, kt0, kt1;
    unitWork(unit, tile, split, kt0, kt1);
    const int kCount = kt1 - kt0;
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
      if (s < kCount)
        load(s, kt0 + s);
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
    for (int kt = 0; kt < kCount; ++kt) {
      cpAsyncWait<AHEAD - 1>();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
      if constexpr (WG)
        fenceProxyAsync(); // this thread's copies, before the tensor cores read them
#endif
      __syncthreads(); // stage kt landed for every thread; the stage refilled next is free
      if (kt + AHEAD < kCount)
        load((kt + AHEAD) % STAGES, kt0 + kt + AHEAD);
      if (kt + AHEAD == kCount || (kt == 0 && AHEAD > kCount))
        triggerDependents(); // every load issued
      cpAsyncCommit();
      const T *tA = sA + (kt % STAGES) * BM * BK;
      const T *tB = sB + (kt % STAGES) * BN * BK;
      if constexpr (S::NORM != 0) {
        // Normalise the landed A tile in place, rounded as the unfused norm
        // stores it.
        T *wA = const_cast<T *>(tA);
        i64 k0 = static_cast<i64>(kt0 + kt) * BK;
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
    if constexpr (SPLITK > 1)
      if (!splitKReduce<BM, BN, SPLITK, PIECES_M, PIECES_N, WG ? 4 : 1>(
              a, acc, corner, tile, tilesM * tilesN, split, lane, tid == 0, [] { __syncthreads(); }, &lastPart))
        continue; // another part of the tile finishes it
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if constexpr (CS > 1) {
      // The ring is drained (the barrier above): it stages the products.
      static_assert(ACC * THREADS * 4 <= STAGES * (BM + BN) * BK * 2, "the ring holds the block's products");
      auto owns = [&](int pn) { return pn * CS / PIECES_N == part; };
      clusterSplitSum<CS, THREADS>(acc, reinterpret_cast<float *>(sA), tid, part, [&](int i) {
        return owns(WG ? (i % (NW / 2)) / 4 : (i / 4) % NI);
      });
      gemmStoreTile<S, PIECES_M, PIECES_N, WG ? 4 : 1, 0>(a, acc, corner, m0, c0, rows, lane, best, owns);
      clusterSync(); // every block has read this one's products
      continue;
    }
#endif
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

} // namespace kiln
