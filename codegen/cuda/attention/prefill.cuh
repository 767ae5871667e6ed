// kiln device library: the prefill attention family.
//
// Every query of a prompt against the paged cache: attentionPrefillMma
// (tensor cores, FlashAttention-2 style) for 16-bit caches and head dims
// that are multiples of 16 up to 256; attentionPrefill (a warp per query
// row, f32) for the rest.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

/// Prefill: warps take (b, t, h) rows, all keys up to the query's position.

template <class S> __device__ void attentionPrefill(const Args &a) {
  dependOnPrevious();
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5;
  i64 rowsTotal = static_cast<i64>(a.batch) * a.tokens * S::H;
  for (i64 r = static_cast<i64>(blockIdx.x) * warps + warp; r < rowsTotal;
       r += static_cast<i64>(gridDim.x) * warps) {
    i64 h = r % S::H, t = (r / S::H) % a.tokens, b = r / (static_cast<i64>(S::H) * a.tokens);
    i64 qpos = S::position(a, b, t);
    AttnRow<S> row;
    row.l = 0.0f;
    if (qpos >= 0) {
      i64 len = S::contextLen(a, b);
      attendRange<S>(a, b, t, h, qpos, 0, len, row);
    } else {
#pragma unroll
      for (int j = 0; j < AttnRow<S>::PER; ++j)
        row.acc[j] = 0.0f;
    }
    storeRow<S>(a, b, t, h, row);
  }
}


// ---- prefill attention on tensor cores -----------------------------------------
//
// A block takes BQ consecutive tokens of one sequence for HB query heads
// that share a KV head (GQA: the K/V tiles are loaded once for all of
// them) -- W = HB * BQ / 16 warps, each owning 16 rows (16 tokens of one
// head). Q is staged in shared memory and kept in registers as mma A
// fragments. Keys stream through the page table in tiles of BKV, double
// buffered with cp.async; per tile S = Q K^T (m16n8k16, f32), scale,
// softcap, the causal / sliding-window / unmapped-page mask, an online
// softmax per row in registers (each thread holds rows lane/4 and lane/4+8
// of its warp's 16), then P (rounded to the cache dtype, as FlashAttention
// does) times V through ldmatrix.trans. Tiles wholly above the block's
// last query or before its window are never loaded; a warp skips the
// tiles past its own last query. Query tiles run longest first, dealt to
// the blocks back and forth.
// Rows padded by 8 elements keep ldmatrix phases in distinct banks.
//
// WG (sm_90a, D 64 or 128, BKV = 64, whole warpgroups): S = Q K^T by
// warpgroup MMA (m64n64k16) straight from shared memory -- Q and K there
// K-major in 64-column chunks with the 128-byte swizzle, as the GEMMs'
// descriptors read them -- so Q takes no registers and a warpgroup's 64
// rows share each K read; the accumulators land in the mma.sync layout
// (rows lane/4 and lane/4 + 8 of each warp's 16), and the softmax and P V
// (mma.sync, V through ldmatrix.trans from padded rows) are unchanged.
// Tiles are skipped for the block's last query (a warpgroup's rows span
// its tokens). Compiled for another architecture it runs the mma.sync
// products from the same swizzled layout.

/// 2^x by the special-function unit (2 ulp; 0 for -inf).
__device__ __forceinline__ float fastExp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

template <class S, int HB, int BQ, int BKV, bool WG = false> __device__ void attentionPrefillMma(const Args &a) {
  typedef typename S::TC T;
  constexpr int D = S::D, G = S::H / S::HKV, TPW = BQ / 16, W = HB * TPW, THREADS = W * 32;
  constexpr int LD = D + 8, CH = D / 8, DK = D / 16, NO = D / 8, NS = BKV / 8, QROWS = HB * BQ;
  static_assert(sizeof(T) == 2 && D % 16 == 0 && BKV % 16 == 0 && BQ % 16 == 0 && G % HB == 0,
                "tensor-core attention: 16-bit cache, D and tiles multiples of 16");
  static_assert(!WG || ((D == 64 || D == 128) && BKV == 64 && W % 4 == 0), "warpgroup S: m64n64, 64-column chunks");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr bool WGMMA = WG;
#else
  constexpr bool WGMMA = false;
#endif
  constexpr i64 V_OFFSET = static_cast<i64>(S::PAGE) * S::HKV * D; // K to V within a page
  extern __shared__ __align__(128) unsigned char smemRaw[];
  // WG: the swizzled chunks start on 1024-byte boundaries.
  unsigned char *smem =
      WG ? smemRaw + (1024 - static_cast<unsigned>(__cvta_generic_to_shared(smemRaw)) % 1024) % 1024 : smemRaw;
  T *sQ = reinterpret_cast<T *>(smem);     // [QROWS][LD], or WG [D / 64][QROWS][64]
  T *sK = sQ + QROWS * (WG ? D : LD);      // [2][BKV][LD], or WG [2][D / 64][BKV][64]
  T *sV = sK + 2 * BKV * (WG ? D : LD);    // [2][BKV][LD]
  // Element offsets of (row, column) in Q's and a K buffer's layout (WG:
  // the column's 64-column chunk, its 16-byte piece swizzled by the row).
  auto qAt = [](int r, int col) {
    if constexpr (WG)
      return (col / 64) * (QROWS * 64) + swz<8>(r, (col % 64) / 8) + col % 8;
    else
      return r * LD + col;
  };
  auto kAt = [](int buf, int r, int col) {
    if constexpr (WG)
      return buf * (BKV * D) + (col / 64) * (BKV * 64) + swz<8>(r, (col % 64) / 8) + col % 8;
    else
      return (buf * BKV + r) * LD + col;
  };
  __shared__ i64 sPos[BQ];
  __shared__ bool sValid[2][BKV];
  __shared__ int sRange[2];
  dependOnPrevious();
  const T *cache = S::cache(a);
  const int *tables = S::blockTables(a);
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int hw = warp / TPW, tw = warp % TPW;
  // Unit counts and positions fit 32 bits (max_seq and the batch are ints).
  const int qTiles = (a.tokens + BQ - 1) / BQ, groups = G / HB;
  // Units ranked longest first (the last query tiles of every sequence and
  // head group, then the ones before); block b takes ranks b, 2G - 1 - b,
  // 2G + b, ... of a grid of G: long and short units alternate, so the
  // blocks' totals even out under the causal mask (ncu at 4096 tokens: SMs
  // idle 39% of the kernel with a plain stride).
  const int perTile = a.batch * S::HKV * groups;
  const int units = perTile * qTiles;
  for (int round = 0;; ++round) {
    int u = round * static_cast<int>(gridDim.x) + ((round & 1) ? gridDim.x - 1 - blockIdx.x : blockIdx.x);
    if (u >= units)
      break;
    int qt = qTiles - 1 - u / perTile, rest = u % perTile;
    int hg = rest % groups;
    rest /= groups;
    int kvh = rest % S::HKV, b = rest / S::HKV, t0 = qt * BQ;
    __syncthreads(); // the previous unit is done with shared memory
    for (int i = tid; i < BQ; i += THREADS)
      sPos[i] = t0 + i < a.tokens ? S::position(a, b, t0 + i) : -1;
    __syncthreads();
    for (int e = tid; e < HB * BQ * D; e += THREADS) {
      int r = e / D, d = e % D, hh = r / BQ, i = r % BQ;
      int h = kvh * G + hg * HB + hh;
      sQ[qAt(r, d)] = static_cast<T>(sPos[i] >= 0 ? S::q(a, b, t0 + i, h, d) : 0.0f);
    }
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    if constexpr (WGMMA)
      fenceProxyAsync(); // Q's stores, before the tensor cores read them (after the barrier below)
#endif
    if (tid == 0) {
      // Keys [lo, hi): up to the last query (causal) within the context,
      // from the first query's window; lo on a tile boundary.
      i64 lo = -1, hi = 0;
      for (int i = 0; i < BQ; ++i)
        if (sPos[i] >= 0) {
          lo = lo < 0 || sPos[i] < lo ? sPos[i] : lo;
          hi = sPos[i] + 1 > hi ? sPos[i] + 1 : hi;
        }
      i64 len = S::contextLen(a, b);
      if (!S::CAUSAL || hi > len)
        hi = len;
      lo = S::WINDOW > 0 && lo >= 0 && lo - S::WINDOW + 1 > 0 ? (lo - S::WINDOW + 1) / BKV * BKV : 0;
      sRange[0] = static_cast<int>(lo);
      sRange[1] = static_cast<int>(hi);
    }
    __syncthreads();
    const int kLo = sRange[0], kHi = sRange[1];
    const int nTiles = kHi > kLo ? (kHi - kLo + BKV - 1) / BKV : 0;
    unsigned qf[WGMMA ? 1 : DK][4];
    if constexpr (!WGMMA)
#pragma unroll
      for (int kd = 0; kd < DK; ++kd)
        ldmatrix4(qf[kd], sQ + qAt(hw * BQ + tw * 16 + (lane & 15), kd * 16 + (lane >> 4) * 8));
    // Positions relative to the key range's start fit 32 bits (max_seq).
    const int p0 = sPos[tw * 16 + (lane >> 2)] >= 0 ? static_cast<int>(sPos[tw * 16 + (lane >> 2)] - kLo) : -1;
    const int p1 = sPos[tw * 16 + (lane >> 2) + 8] >= 0 ? static_cast<int>(sPos[tw * 16 + (lane >> 2) + 8] - kLo) : -1;
    int warpLast = -1, warpFirst = 1 << 30;
    for (int i = 0; i < 16; ++i) {
      i64 p = sPos[tw * 16 + i];
      if (p >= 0) {
        warpLast = static_cast<int>(p - kLo) > warpLast ? static_cast<int>(p - kLo) : warpLast;
        warpFirst = static_cast<int>(p - kLo) < warpFirst ? static_cast<int>(p - kLo) : warpFirst;
      }
    }
    // WG: a warpgroup's MMAs are collective, so its warps skip a tile
    // together: past the block's last query.
    if constexpr (WGMMA)
      for (int i = 0; i < BQ; ++i)
        if (sPos[i] >= 0 && static_cast<int>(sPos[i] - kLo) > warpLast)
          warpLast = static_cast<int>(sPos[i] - kLo);
    const int kEnd = static_cast<int>(kHi - kLo);
    // Scores in the exp2 domain: exp(x - m) = exp2(x log2e - m log2e).
    constexpr float LOG2E = 1.4426950408889634f;
    float o[NO][4], mRow[2] = {-kiln::inf(), -kiln::inf()}, lRow[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < NO; ++n)
#pragma unroll
      for (int q = 0; q < 4; ++q)
        o[n][q] = 0.0f;
    // Each thread's copies of a tile: COPIES 16-byte chunks of K and of V.
    // The block-table entries of a tile are read one tile ahead (`pg`), so
    // the read's latency passes under a tile's products instead of
    // stalling the copies; `mapped`: whether every key this thread copied
    // of the last tile it loaded was in range on a mapped page.
    constexpr int COPIES = (BKV * CH + THREADS - 1) / THREADS;
    const int *table = tables + static_cast<i64>(b) * a.max_blocks;
    bool mapped = true;
    auto pages = [&](int s0, int (&pg)[COPIES]) {
#pragma unroll
      for (int i = 0; i < COPIES; ++i) {
        int e = tid + i * THREADS;
        int s = s0 + e / CH;
        pg[i] = e < BKV * CH && s < kHi ? table[s / S::PAGE] : -1;
      }
    };
    auto load = [&](int buf, int s0, const int (&pg)[COPIES]) {
      mapped = true;
#pragma unroll
      for (int i = 0; i < COPIES; ++i) {
        int e = tid + i * THREADS, r = e / CH, c = e % CH;
        if (e >= BKV * CH)
          break;
        i64 at = pageIndex<S::PAGE, S::HKV, D>(a, pg[i], s0 + r, 0, kvh, c * 8);
        bool ok = at >= 0;
        cpAsync16(sK + kAt(buf, r, c * 8), ok ? cache + at : cache, ok ? 16 : 0);
        cpAsync16(sV + (buf * BKV + r) * LD + c * 8, ok ? cache + at + V_OFFSET : cache, ok ? 16 : 0);
        if (c == 0)
          sValid[buf][r] = ok;
        mapped = mapped && ok;
      }
    };
    int pg[COPIES];
    pages(kLo, pg);
    if (nTiles > 0)
      load(0, kLo, pg);
    cpAsyncCommit();
    if (nTiles > 1)
      pages(kLo + BKV, pg);
    for (int j = 0; j < nTiles; ++j) {
      const int buf = j & 1;
      const int s0 = j * BKV; // relative to kLo
      bool landedMapped = mapped; // of tile j (loaded last)
      if (j + 1 < nTiles)
        load(buf ^ 1, kLo + s0 + BKV, pg);
      cpAsyncCommit();
      if (j + 2 < nTiles)
        pages(kLo + s0 + 2 * BKV, pg);
      cpAsyncWait<1>();
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
      if constexpr (WGMMA)
        fenceProxyAsync(); // this thread's copies, before the tensor cores read them
#endif
      // Tile j landed for every thread; whether all its keys are real.
      const bool whole = __syncthreads_and(landedMapped) != 0 && s0 + BKV <= kEnd;
      if (!S::CAUSAL || s0 <= warpLast) {
        float sc[NS][4];
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int q = 0; q < 4; ++q)
            sc[n][q] = 0.0f;
        const T *tV = sV + buf * BKV * LD;
        if constexpr (WGMMA) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
          // The warpgroup's 64 rows of Q against the tile's 64 keys.
          float(&acc)[NS * 4] = *reinterpret_cast<float(*)[NS * 4]>(&sc[0][0]);
          const T *wQ = sQ + (warp / 4) * 64 * 64, *tK = sK + buf * BKV * D;
          fenceOperands(acc);
          wgmmaFence();
#pragma unroll
          for (int kk = 0; kk < DK; ++kk) // k-step kk: chunk kk / 4, 32 bytes a step within its rows
            Wgmma<BKV, T>::mma(acc, smemDescSw128(wQ + (kk / 4) * QROWS * 64) + 2 * (kk % 4),
                               smemDescSw128(tK + (kk / 4) * BKV * 64) + 2 * (kk % 4));
          wgmmaCommit();
          wgmmaWait<0>();
          fenceOperands(acc);
#endif
        } else {
#pragma unroll
          for (int kd = 0; kd < DK; ++kd)
#pragma unroll
            for (int n = 0; n < NS; n += 2) {
              unsigned r[4];
              ldmatrix4(r, sK + kAt(buf, n * 8 + (lane & 7) + ((lane >> 4) << 3), kd * 16 + ((lane >> 3) & 1) * 8));
              mma16816<T>(sc[n], qf[kd], r[0], r[1]);
              mma16816<T>(sc[n + 1], qf[kd], r[2], r[3]);
            }
        }
        // Scores (exp2 domain), masked where a key may be out of range, on
        // an unmapped page, after a row's query or outside its window; the
        // row maxima over the quad that shares a row.
        const bool mask = !whole || (S::CAUSAL && s0 + BKV - 1 > warpFirst) || S::WINDOW > 0;
        float mx[2] = {-kiln::inf(), -kiln::inf()};
#pragma unroll
        for (int n = 0; n < NS; ++n)
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            float x = sc[n][q] * S::SCALE;
            if constexpr (S::SOFTCAP > 0.0f)
              x = S::SOFTCAP * tanhf(x / S::SOFTCAP);
            x *= LOG2E;
            if (mask) {
              int key = n * 8 + 2 * (lane & 3) + (q & 1), s = s0 + key, p = q < 2 ? p0 : p1;
              bool ok = s < kEnd && p >= 0 && sValid[buf][key] && (!S::CAUSAL || s <= p) &&
                        (S::WINDOW <= 0 || p - s < S::WINDOW);
              x = ok ? x : -kiln::inf();
            }
            sc[n][q] = x;
            mx[q >> 1] = fmaxf(mx[q >> 1], x);
          }
        float corr[2];
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
          mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
          float mNew = fmaxf(mRow[hr], mx[hr]);
          corr[hr] = mRow[hr] == -kiln::inf() ? 0.0f : fastExp2(mRow[hr] - mNew);
          mRow[hr] = mNew;
          lRow[hr] *= corr[hr];
        }
#pragma unroll
        for (int n = 0; n < NO; ++n)
#pragma unroll
          for (int q = 0; q < 4; ++q)
            o[n][q] *= corr[q >> 1];
        // P = exp(S - m), summed per thread (the quad's sums meet at the end),
        // as A fragments of 16 keys each.
        // S::EXACT_P: P as its rounded value plus the rounded remainder,
        // both multiplied by V (f32 precision for twice the P V work).
        unsigned pf[BKV / 16][4], pl[S::EXACT_P ? BKV / 16 : 1][4];
#pragma unroll
        for (int n = 0; n < NS; ++n) {
          float e[4];
#pragma unroll
          for (int q = 0; q < 4; ++q) {
            e[q] = mRow[q >> 1] == -kiln::inf() ? 0.0f : fastExp2(sc[n][q] - mRow[q >> 1]);
            lRow[q >> 1] += e[q];
          }
          pf[n / 2][(n & 1) * 2] = pack2<T>(e[0], e[1]);
          pf[n / 2][(n & 1) * 2 + 1] = pack2<T>(e[2], e[3]);
          if constexpr (S::EXACT_P) {
            float h[4];
#pragma unroll
            for (int q = 0; q < 4; ++q)
              h[q] = static_cast<float>(static_cast<T>(e[q]));
            pl[n / 2][(n & 1) * 2] = pack2<T>(e[0] - h[0], e[1] - h[1]);
            pl[n / 2][(n & 1) * 2 + 1] = pack2<T>(e[2] - h[2], e[3] - h[3]);
          }
        }
#pragma unroll
        for (int kk = 0; kk < BKV / 16; ++kk)
#pragma unroll
          for (int n = 0; n < NO; n += 2) {
            unsigned r[4];
            ldmatrix4Trans(r, tV + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + n * 8 + (lane >> 4) * 8);
            mma16816<T>(o[n], pf[kk], r[0], r[1]);
            mma16816<T>(o[n + 1], pf[kk], r[2], r[3]);
            if constexpr (S::EXACT_P) {
              mma16816<T>(o[n], pl[kk], r[0], r[1]);
              mma16816<T>(o[n + 1], pl[kk], r[2], r[3]);
            }
          }
      }
      __syncthreads(); // every warp is done with buffer `buf` before it is refilled
    }
    cpAsyncWait<0>();
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      lRow[hr] += __shfl_xor_sync(0xffffffffu, lRow[hr], 1);
      lRow[hr] += __shfl_xor_sync(0xffffffffu, lRow[hr], 2);
    }
    const i64 h = kvh * G + hg * HB + hw;
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      i64 t = t0 + tw * 16 + (lane >> 2) + hr * 8;
      if (t >= a.tokens)
        continue;
      float inv = lRow[hr] > 0.0f ? 1.0f / lRow[hr] : 0.0f;
#pragma unroll
      for (int n = 0; n < NO; ++n) {
        int d = n * 8 + 2 * (lane & 3);
        S::store(a, b, t, h, d, o[n][hr * 2] * inv);
        S::store(a, b, t, h, d + 1, o[n][hr * 2 + 1] * inv);
      }
    }
  }
}

} // namespace kiln
