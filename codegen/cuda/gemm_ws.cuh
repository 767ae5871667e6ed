// kiln device library: the warp-specialised GEMM (sm_90a), gemmWs.
//
// A producer warp feeding the wgmma consumers by TMA through an mbarrier
// ring, cooperative or ping-pong, in lone blocks or block pairs, with the
// epilogue from registers (gemm.cuh's gemmStoreTile) or from products
// staged in shared memory for warps of its own (gemmStoreStaged, EPIWG).
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with (this one
// after sm90.cuh and gemm.cuh); no file includes another.

namespace kiln {

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

//
// CSPLIT > 1 (decode: 64-row tiles, lone consumer warpgroup): each tile's K
// in CSPLIT parts taken by the CSPLIT blocks of one cluster
// (__cluster_dims__), so that a step of few tiles still streams weights on
// every SM, without split-K's global partials and the serial tail of its
// last part: each block stages its f32 products in its own (drained) ring,
// the cluster synchronises, and block `part` sums the parts of its 1/CSPLIT
// of the tile's columns from the peers' shared memory (in part order, the
// same sum on any block) and runs their epilogue; a second cluster barrier
// keeps every block's staging until its peers have read it. The producer
// warp takes part in both barriers of every tile.

template <class S, int BM, int BN, int STAGES, bool PINGPONG = false, int CLUSTER = 1, bool EPIWG = false,
          int SPLITK = 1, int CSPLIT = 1>
__device__ void gemmWs(const Args &a, const TensorMaps<2> &maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  typedef typename S::TA T;
  static_assert(sizeof(T) == 2 && !S::NORM && !S::ARGMAX, "plain 16-bit GEMMs");
  static_assert(BM % 64 == 0 && BM <= 256 && (BN == 64 || BN == 128 || BN == 256), "m64 blocks, wgmma widths");
  static_assert(CLUSTER == 1 || (CLUSTER == 2 && !PINGPONG && BM >= 128), "pairs of cooperative blocks");
  static_assert(!EPIWG || (!PINGPONG && BM <= 128), "an epilogue warpgroup beside one or two cooperative ones");
  static_assert(SPLITK == 1 || (!PINGPONG && CLUSTER == 1 && !EPIWG), "split-K: cooperative lone blocks");
  static_assert(CSPLIT == 1 || (BM == 64 && !PINGPONG && CLUSTER == 1 && !EPIWG && SPLITK == 1 && CSPLIT <= 8),
                "cluster split-K: one consumer warpgroup a block, up to 8 blocks a cluster");
  static_assert(CSPLIT == 1 || STAGES * (BM + BN) * 64 * 2 >= BN / 2 * 128 * 4,
                "cluster split-K: the ring holds a block's f32 products");
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
  __shared__ int lastPart;
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
  const i64 units = unitsM * unitsN * SPLITK; // split-K: each tile's SPLITK parts of K, adjacent
  auto tileCorner = [&](i64 unit, i64 &m0, i64 &c0) {
    if (pairRows) {
      gemmTileCorner<BM * CLUSTER, NOUT>(unit, unitsM, unitsN, m0, c0);
      m0 += static_cast<i64>(rank) * BM;
    } else {
      gemmTileCorner<BM, NOUT * CLUSTER>(unit, unitsM, unitsN, m0, c0);
      c0 += static_cast<i64>(rank) * NOUT;
    }
  };
  const i64 firstUnit = blockIdx.x / (CLUSTER * CSPLIT), unitStride = gridDim.x / (CLUSTER * CSPLIT);
  // Cluster split-K: this block's part of each tile's K.
  const int part = CSPLIT > 1 ? static_cast<int>(clusterRank()) : 0;
  auto partRange = [&](int &kt0, int &kt1) {
    if constexpr (CSPLIT > 1) {
      const int per = (kTiles + CSPLIT - 1) / CSPLIT;
      kt0 = part * per < kTiles ? part * per : kTiles;
      kt1 = kt0 + per < kTiles ? kt0 + per : kTiles;
    }
  };
  // A unit's tile, its split-K part and its k-tiles kt0 .. kt1 - 1.
  auto unitWork = [&](i64 unit, i64 &tile, int &split, int &kt0, int &kt1) {
    tile = unit, split = 0, kt0 = 0, kt1 = kTiles;
    if constexpr (SPLITK > 1)
      splitKRange<SPLITK>(unit, kTiles, tile, split, kt0, kt1);
    partRange(kt0, kt1);
  };
  // Before the wait (KILN_PDL_PREFETCH): the W rows of this block's first
  // unit, its part of K, into L2.
  if (KILN_PDL_PREFETCH > 0 && firstUnit < units) {
    i64 tile;
    int split, kt0, kt1;
    unitWork(firstUnit, tile, split, kt0, kt1);
    i64 m0, c0;
    tileCorner(tile, m0, c0);
    const i64 k1 = static_cast<i64>(kt1) * BK < S::K ? static_cast<i64>(kt1) * BK : S::K;
    prefetchWeightRows(
        S::W(a), S::K, BN,
        [&](int r) -> i64 {
          const i64 item = c0 + (S::GATE ? r % NOUT : r);
          return item < S::N ? S::row(item, S::GATE ? r / NOUT : 0) : -1;
        },
        static_cast<i64>(kt0) * BK, k1);
  }
  dependOnPrevious();
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
  } else if (warp == producerWarp && CSPLIT > 1) {
    // The whole warp goes through each tile's two cluster barriers; its
    // first lane moves the tiles.
    if (lane == 0) {
      tmaPrefetch(maps.map[0]);
      tmaPrefetch(maps.map[1]);
    }
    for (i64 unit = firstUnit; unit < units; unit += unitStride) {
      if (lane == 0) {
        int kt0 = 0, kt1 = kTiles;
        partRange(kt0, kt1);
        i64 m0, c0;
        tileCorner(unit, m0, c0);
        for (int kt = kt0; kt < kt1; ++kt, ++it) {
          const int s = it % STAGES;
          mbarWait(&empty[s], ((it / STAGES) & 1) ^ 1);
          mbarArriveExpectTx(&full[s], STAGE_BYTES);
          T *dA = sA + s * BM * BK, *dB = sB + s * BN * BK;
          tmaLoad2d(dA, maps.map[0], kt * BK, static_cast<int>(m0), &full[s]);
          tmaLoad2d(dB, maps.map[1], kt * BK, static_cast<int>(c0), &full[s]);
          if constexpr (S::GATE)
            tmaLoad2d(dB + (BN / 2) * BK, maps.map[1], kt * BK, static_cast<int>(c0 + S::N), &full[s]);
        }
        triggerDependents(); // its loads issued: the products and their reduction are left
      }
      __syncwarp();
      clusterSync(); // the products staged
      clusterSync(); // and read
    }
  } else if (warp == producerWarp) {
    if (lane == 0) {
      tmaPrefetch(maps.map[0]);
      tmaPrefetch(maps.map[1]);
      for (i64 unit = firstUnit; unit < units; unit += unitStride) {
        i64 tile;
        int split, kt0, kt1;
        unitWork(unit, tile, split, kt0, kt1);
        i64 m0, c0;
        tileCorner(tile, m0, c0);
        for (int kt = kt0; kt < kt1; ++kt, ++it) {
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
      triggerDependents(); // every load issued
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
      i64 tile;
      int split, kt0, kt1;
      unitWork(unit, tile, split, kt0, kt1);
      i64 m0, c0;
      tileCorner(tile, m0, c0);
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
      for (int kt = kt0; kt < kt1; ++kt, ++it) {
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
        if constexpr (SPLITK > 1) {
          // The consumer warpgroups alone synchronise (named barrier 1).
          constexpr int CONSUMERS = CW * 128;
          auto sync = [] { asm volatile("bar.sync 1, %0;\n" ::"n"(CONSUMERS) : "memory"); };
          if (!splitKReduce<BM, BN, SPLITK, MB * 4, BN / 8, 4>(a, acc, corner, tile, tilesM * tilesN, split, lane,
                                                               tid == 0, sync, &lastPart))
            continue; // another part of the tile finishes it
        }
        if constexpr (CSPLIT > 1) {
          // Stage this part's products (the ring is drained: every stage
          // of the tile landed and its MMAs retired), then sum the parts of
          // this block's pieces from every block of the cluster.
          constexpr int HV = S::GATE ? (BN / 16) * 4 : 0, PNS = PIECES_N / CSPLIT;
          static_assert(PIECES_N % CSPLIT == 0, "whole pieces a part");
          float *staged = reinterpret_cast<float *>(sA); // [BN / 2][128]
#pragma unroll
          for (int i = 0; i < BN / 2; ++i)
            staged[i * 128 + tid] = acc[i];
          fenceProxyAsync(); // the stores before the copies that refill the ring for a next tile
          clusterSync();
#pragma unroll
          for (int pn = 0; pn < PIECES_N; ++pn)
            if (pn / PNS == part)
#pragma unroll
              for (int q = 0; q < (S::GATE ? 8 : 4); ++q) {
                const int i = pn * 4 + (q & 3) + (q >> 2) * HV;
                float v[CSPLIT];
#pragma unroll
                for (int p = 0; p < CSPLIT; ++p)
                  v[p] = p == part ? acc[i] : ldClusterF32(staged + i * 128 + tid, static_cast<unsigned>(p));
                float sum = 0.0f;
#pragma unroll
                for (int p = 0; p < CSPLIT; ++p)
                  sum += v[p];
                acc[i] = sum;
              }
          gemmStoreTile<S, MB * 4, PIECES_N, 4, HV>(a, acc, corner, m0, c0, rows, lane, nullptr,
                                                    [&](int pn) { return pn / PNS == part; });
          clusterSync(); // every block has read this one's products
          continue;
        }
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
