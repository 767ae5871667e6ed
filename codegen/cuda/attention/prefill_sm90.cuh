// kiln device library: the prefill attention family on sm_90a.
//
// attentionPrefillWs: every query of a prompt against the paged cache,
// warp-specialised, both products on warpgroup MMA (FlashAttention-3's
// scheme, with cp.async instead of TMA: the keys come through the block
// table a row at a time).
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

// A block takes BQ consecutive tokens of one sequence for HB query heads
// that share a KV head (ROWS = HB * BQ rows, a multiple of 64), as
// attentionPrefillMma does, with CW = ROWS / 64 consumer warpgroups of 64
// rows each and one producer warpgroup:
// - the producer copies each tile of BKV keys (K and V, through the block
//   table, cp.async) into a ring of STAGES stages and arrives on the
//   stage's `full` barrier once its copies have landed (one tile late, so
//   two tiles' copies are in flight); its first warp also records which
//   keys were real (in range, on a mapped page) and whether all were.
//   Before a unit's tiles it stores the unit's positions, key range and
//   Q (128-byte-swizzled 64-column chunks) into one of two buffers
//   (`qFull`, released by the consumers on `qEmpty` when their unit is
//   done), so the next unit's Q loads under the current unit's products;
// - a consumer warpgroup takes its 64 rows of the unit's Q, then per
//   tile: S = Q K^T (wgmma, both from shared memory),
//   the mask, the online softmax in registers (rows lane / 4 and + 8 of
//   each warp's 16), and O += P V with P from registers (the S
//   accumulators' layout is the A fragment's) and V through the transposed
//   descriptor (V's rows are K's layout). The products overlap the
//   softmax: tile j's S is issued together with tile j - 1's P V, and the
//   softmax of tile j runs while P V does. A stage is released (`empty`,
//   one arrival a consumer warp) once the P V that read it has retired.
// Tiles past a warpgroup's last query are waited for and released
// unread. Units (query tiles) are dealt longest first, back and forth over
// a grid of one wave, as in attentionPrefillMma; producer and consumers
// walk the same units and the ring's position runs on across them.
// Compiled for another architecture it runs attentionPrefill (a warp a
// row) with the same block.

/// Arrives at named barrier `id` (1 and up) and waits for `threads`
/// threads of the block.
__device__ __forceinline__ void namedBarrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

/// Arrives at named barrier `id` without waiting.
__device__ __forceinline__ void namedBarrierArrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

template <int N> __device__ __forceinline__ void fenceRegisters(unsigned (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int q = 0; q < 4; ++q)
      asm volatile("" : "+r"(r[i][q])::"memory");
}

template <class S, int HB, int BQ, int BKV, int STAGES, bool PINGPONG = false>
__device__ void attentionPrefillWs(const Args &a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  typedef typename S::TC T;
  constexpr int D = S::D, G = S::H / S::HKV, ROWS = HB * BQ, CW = ROWS / 64, CH = D / 8, DK = D / 16;
  constexpr int KS = BKV / 16; // P's k-steps
  static_assert(sizeof(T) == 2 && (D == 64 || D == 128) && (BKV == 64 || BKV == 128) && ROWS % 64 == 0 &&
                    G % HB == 0 && STAGES >= 3 && !S::EXACT_P && (!PINGPONG || CW == 2),
                "warp-specialised attention: 16-bit cache, D 64 or 128, 64- or 128-key tiles, whole warpgroups");
  constexpr i64 V_OFFSET = static_cast<i64>(S::PAGE) * S::HKV * D; // K to V within a page
  extern __shared__ __align__(128) unsigned char smemRaw[];
  unsigned char *smem = smemRaw + (1024 - smemAddr(smemRaw) % 1024) % 1024;
  T *sQ = reinterpret_cast<T *>(smem); // [2][D / 64][ROWS][64]
  T *sK = sQ + 2 * ROWS * D;           // [STAGES][D / 64][BKV][64]
  T *sV = sK + STAGES * BKV * D;       // [STAGES][D / 64][BKV][64]
  __shared__ __align__(8) u64 full[STAGES], empty[STAGES], qFull[2], qEmpty[2];
  __shared__ int sPos[2][BQ], sRange[2][2]; // a unit's positions and keys [kLo, kHi), with its Q
  __shared__ bool sValid[STAGES][BKV];
  __shared__ bool sWhole[STAGES];
  // The warp index read from lane 0: uniform across the warp as far as the
  // compiler can tell, so that the consumers' MMAs are not in a divergent
  // path (ptxas serialises them there, C7520).
  const int tid = threadIdx.x, warp = __shfl_sync(0xffffffffu, tid >> 5, 0), lane = tid & 31;
  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbarInit(&full[s], 128);    // the producer's threads, their copies landed
      mbarInit(&empty[s], CW * 4); // every consumer warp, its products retired
    }
    for (int q = 0; q < 2; ++q) {
      mbarInit(&qFull[q], 128);    // the producer's threads, their rows of Q stored
      mbarInit(&qEmpty[q], CW * 4); // every consumer warp, its unit done
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  dependOnPrevious();
  const T *cache = S::cache(a);
  const int *tables = S::blockTables(a);
  const int qTiles = (a.tokens + BQ - 1) / BQ, groups = G / HB;
  const int perTile = a.batch * S::HKV * groups, units = perTile * qTiles;
  // Unit of round `round` (see attentionPrefillMma), or -1 past the last.
  auto unitOf = [&](int round) {
    int u = round * static_cast<int>(gridDim.x) + ((round & 1) ? gridDim.x - 1 - blockIdx.x : blockIdx.x);
    return u < units ? u : -1;
  };
  struct Unit {
    int b, kvh, hg, t0;
  };
  auto decode = [&](int u) {
    Unit x;
    int qt = qTiles - 1 - u / perTile, rest = u % perTile;
    x.hg = rest % groups;
    rest /= groups;
    x.kvh = rest % S::HKV;
    x.b = rest / S::HKV;
    x.t0 = qt * BQ;
    return x;
  };
  // Position of token t of sequence b, or -1 past the prompt.
  auto posOf = [&](int b, int t) -> int { return t < a.tokens ? static_cast<int>(S::position(a, b, t)) : -1; };
  if (warp >= CW * 4) {
    // ---- producer ----
    const int ptid = tid - CW * 128;
    unsigned it = 0;
    // The barrier of the last copies committed, arrived on once they have
    // landed, after the next group is committed (two groups in flight).
    u64 *pending = nullptr;
    auto committed = [&](u64 *bar) {
      cpAsyncCommit();
      if (pending) {
        cpAsyncWait<1>();
        fenceProxyAsync(); // this thread's copies, before the tensor cores read them
        mbarArrive(pending);
      }
      pending = bar;
    };
    auto flush = [&]() { // the last copies committed, landed and arrived on
      if (pending) {
        cpAsyncWait<0>();
        fenceProxyAsync();
        mbarArrive(pending);
        pending = nullptr;
      }
    };
    for (int round = 0;; ++round) {
      const int u = unitOf(round);
      if (u < 0)
        break;
      const Unit x = decode(u);
      // The unit's positions, key range and Q (every row; zeros past the
      // prompt) into buffer round % 2 once the consumers are done with the
      // unit before last: loaded under the previous unit's products.
      const int qb = round & 1;
      // The previous unit's last tile first (the consumers are a few tiles
      // behind), then the positions' loads.
      flush();
      mbarWait(&qEmpty[qb], ((round >> 1) & 1) ^ 1);
      if (ptid < BQ)
        sPos[qb][ptid] = posOf(x.b, x.t0 + ptid);
      namedBarrier(1, 128);
      // Keys [kLo, kHi): up to the last query (causal) within the context,
      // from the first query's window, kLo on a tile boundary.
      int lo = 0x7fffffff, hi = 0;
      for (int i = lane; i < BQ; i += 32) {
        const int pos = sPos[qb][i];
        if (pos >= 0) {
          lo = min(lo, pos);
          hi = max(hi, pos + 1);
        }
      }
      lo = __reduce_min_sync(0xffffffffu, lo);
      hi = __reduce_max_sync(0xffffffffu, hi);
      const int len = static_cast<int>(S::contextLen(a, x.b));
      const int kHi = !S::CAUSAL || hi > len ? len : hi;
      const int kLo =
          S::WINDOW > 0 && lo != 0x7fffffff && lo - S::WINDOW + 1 > 0 ? (lo - S::WINDOW + 1) / BKV * BKV : 0;
      if (ptid == 0) {
        sRange[qb][0] = kLo;
        sRange[qb][1] = kHi;
      }
      T *dQ = sQ + qb * ROWS * D;
      if constexpr (S::Q_ROWS) {
        // Rows of Q as they are stored: 16-byte copies (zeros past the prompt).
#pragma unroll 4
        for (int e = ptid; e < ROWS * CH; e += 128) {
          const int r = e / CH, c = e % CH, i = r % BQ, pos = sPos[qb][i];
          const T *src = S::qRow(a, x.b, pos >= 0 ? x.t0 + i : 0, x.kvh * G + x.hg * HB + r / BQ) + c * 8;
          cpAsync16(dQ + (c / 8) * (ROWS * 64) + swz<8>(r, c % 8), src, pos >= 0 ? 16 : 0);
        }
        committed(&qFull[qb]);
      } else {
        // Element by element (S::q: queries computed in this kernel), eight
        // adjacent elements a 16-byte store.
        for (int e = ptid; e < ROWS * CH; e += 128) {
          const int r = e / CH, c = e % CH, i = r % BQ, pos = sPos[qb][i];
          const int h = x.kvh * G + x.hg * HB + r / BQ;
          unsigned w[4];
#pragma unroll
          for (int k = 0; k < 4; ++k)
            w[k] = pos >= 0 ? pack2<T>(S::q(a, x.b, x.t0 + i, h, c * 8 + 2 * k), S::q(a, x.b, x.t0 + i, h, c * 8 + 2 * k + 1))
                            : 0u;
          *reinterpret_cast<uint4 *>(dQ + (c / 8) * (ROWS * 64) + swz<8>(r, c % 8)) = make_uint4(w[0], w[1], w[2], w[3]);
        }
        fenceProxyAsync(); // Q's stores, before the tensor cores read them
        mbarArrive(&qFull[qb]);
      }
      const int nTiles = kHi > kLo ? (kHi - kLo + BKV - 1) / BKV : 0;
      const int *table = tables + static_cast<i64>(x.b) * a.max_blocks;
      for (int j = 0; j < nTiles; ++j, ++it) {
        const int s = it % STAGES, k0 = kLo + j * BKV;
        mbarWait(&empty[s], ((it / STAGES) & 1) ^ 1);
        T *dK = sK + s * BKV * D, *dV = sV + s * BKV * D;
#pragma unroll
        for (int i = 0; i < BKV * CH / 128; ++i) {
          const int e = ptid + i * 128, r = e / CH, c = e % CH, key = k0 + r;
          const i64 at = pageIndex<S::PAGE, S::HKV, D>(a, key < kHi ? table[key / S::PAGE] : -1, key, 0, x.kvh, c * 8);
          const bool ok = at >= 0;
          const int off = (c / 8) * (BKV * 64) + swz<8>(r, c % 8);
          cpAsync16(dK + off, ok ? cache + at : cache, ok ? 16 : 0);
          cpAsync16(dV + off, ok ? cache + at + V_OFFSET : cache, ok ? 16 : 0);
        }
        if (ptid < 32) {
          // Which keys are real, and whether all are (ordered before the
          // consumers' reads by the arrival on full[s]).
          bool all = true;
#pragma unroll
          for (int h = 0; h < BKV / 32; ++h) {
            const int r = lane + 32 * h, key = k0 + r;
            const int page = key < kHi ? table[key / S::PAGE] : -1;
            const bool ok = page >= 0 && page < a.pages;
            sValid[s][r] = ok;
            all = all && ok;
          }
          all = __all_sync(0xffffffffu, all);
          if (lane == 0)
            sWhole[s] = all;
        }
        committed(&full[s]);
      }
    }
    flush();
    return;
  }
  // ---- consumer warpgroup wg: rows wg * 64 .. wg * 64 + 63 ----
  const int wg = warp / 4;
  // The tokens of the warpgroup's rows (row r: head r / BQ, token r % BQ).
  constexpr int WG_TOKENS = BQ < 64 ? BQ : 64;
  const int wgToken0 = BQ < 64 ? 0 : (wg * 64) % BQ;
  const int r0 = wg * 64 + (warp % 4) * 16 + (lane >> 2); // this thread's rows r0 and r0 + 8
  constexpr float LOG2E = 1.4426950408889634f;
  unsigned it = 0;
  float o[D / 2], sc[BKV / 2];
  unsigned pf[KS][4];
#pragma unroll
  for (int i = 0; i < BKV / 2; ++i)
    sc[i] = 0.0f;
#pragma unroll
  for (int i = 0; i < KS; ++i)
    pf[i][0] = pf[i][1] = pf[i][2] = pf[i][3] = 0u;
  auto release = [&](int s) {
    if (lane == 0)
      mbarArrive(&empty[s]);
  };
  if (PINGPONG && wg == 1)
    namedBarrierArrive(3, 256); // warpgroup 0 takes the first turn
  for (int round = 0;; ++round) {
    const int u = unitOf(round);
    if (u < 0)
      break;
    const Unit x = decode(u);
    const int qb = round & 1;
    mbarWait(&qFull[qb], (round >> 1) & 1);
    const int kLo = sRange[qb][0], kHi = sRange[qb][1];
    const int nTiles = kHi > kLo ? (kHi - kLo + BKV - 1) / BKV : 0, kEnd = kHi - kLo;
    const T *wQ = sQ + qb * ROWS * D + wg * 64 * 64;
    // The warpgroup's last query, relative to kLo: its MMAs are collective,
    // so it skips tiles together.
    int last = -1;
    for (int i = lane; i < WG_TOKENS; i += 32)
      last = max(last, sPos[qb][wgToken0 + i]);
    last = __reduce_max_sync(0xffffffffu, last);
    const int nMine = !S::CAUSAL ? nTiles : last >= kLo ? min(nTiles, (last - kLo) / BKV + 1) : 0;
    int p[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int pos = sPos[qb][(r0 + 8 * hr) % BQ];
      p[hr] = pos >= 0 ? pos - kLo : -1;
    }
    float mRow[2] = {-kiln::inf(), -kiln::inf()}, lRow[2] = {0.0f, 0.0f};
#pragma unroll
    for (int i = 0; i < D / 2; ++i)
      o[i] = 0.0f;
    // The registers the MMAs in flight own (S's and O's accumulators, P's
    // fragments) are pinned before a batch is issued and after it is
    // issued and retired, so that the compiler moves no other access to
    // them across (ptxas serialises every wgmma otherwise, C7514/C7519).
    auto pin = [&]() {
      fenceOperands(sc);
      fenceOperands(o);
      fenceRegisters(pf);
    };
    auto issueS = [&](int s) { // S = Q K^T (the first k-step overwrites)
      const T *tK = sK + s * BKV * D;
#pragma unroll
      for (int kk = 0; kk < DK; ++kk) // k-step kk: chunk kk / 4, 32 bytes a step within its rows
        Wgmma<BKV, T>::mma(sc, smemDescSw128(wQ + (kk / 4) * ROWS * 64) + 2 * (kk % 4),
                           smemDescSw128(tK + (kk / 4) * BKV * 64) + 2 * (kk % 4), kk > 0);
    };
    auto issuePV = [&](int s) {
      const T *tV = sV + s * BKV * D;
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) // 16 keys a step: two 8-row groups
        WgmmaRs<D, T>::mma(o, pf[kk], smemDescSw128Mn(tV + kk * 16 * 64, BKV * 128));
    };
    // Tile j's scores into exponentials relative to the new row maxima;
    // returns the old maxima's correction in corr. The maxima are kept in
    // score units (scaled by SCALE only through C), so each exponential is
    // one FMA and one ex2: exp(x SCALE - m SCALE) = 2^(x C - m C).
    constexpr float C = S::SOFTCAP > 0.0f ? LOG2E : S::SCALE * LOG2E;
    auto softmax = [&](int j, int s, float (&corr)[2]) {
      const int s0 = j * BKV;
      const bool mask = !sWhole[s] || s0 + BKV > kEnd || p[0] < 0 || p[1] < 0 ||
                        (S::CAUSAL && s0 + BKV - 1 > min(p[0], p[1])) || S::WINDOW > 0;
      float mx[2] = {-kiln::inf(), -kiln::inf()};
#pragma unroll
      for (int i = 0; i < BKV / 2; ++i) {
        float v = sc[i];
        if constexpr (S::SOFTCAP > 0.0f)
          v = S::SOFTCAP * tanhf(v * (S::SCALE / S::SOFTCAP));
        if (mask) {
          const int key = (i >> 2) * 8 + 2 * (lane & 3) + (i & 1), k = s0 + key, pq = p[(i >> 1) & 1];
          const bool ok = k < kEnd && pq >= 0 && sValid[s][key] && (!S::CAUSAL || k <= pq) &&
                          (S::WINDOW <= 0 || pq - k < S::WINDOW);
          v = ok ? v : -kiln::inf();
        }
        sc[i] = v;
        mx[(i >> 1) & 1] = fmaxf(mx[(i >> 1) & 1], v);
      }
      float mC[2];
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
        const float mNew = fmaxf(mRow[hr], mx[hr]);
        corr[hr] = mRow[hr] == -kiln::inf() ? 0.0f : fastExp2((mRow[hr] - mNew) * C);
        mRow[hr] = mNew;
        lRow[hr] *= corr[hr];
        mC[hr] = mNew == -kiln::inf() ? 0.0f : mNew * C; // a row with no key yet: every score -inf, each 2^-inf = 0
      }
#pragma unroll
      for (int i = 0; i < BKV / 2; ++i) {
        const int hr = (i >> 1) & 1;
        const float e = fastExp2(fmaf(sc[i], C, -mC[hr]));
        lRow[hr] += e;
        sc[i] = e;
      }
    };
    // P as A fragments of 16 keys: n-tiles 2 kk and 2 kk + 1.
    auto packP = [&]() {
#pragma unroll
      for (int n = 0; n < BKV / 8; ++n) {
        pf[n / 2][(n & 1) * 2] = pack2<T>(sc[n * 4], sc[n * 4 + 1]);
        pf[n / 2][(n & 1) * 2 + 1] = pack2<T>(sc[n * 4 + 2], sc[n * 4 + 3]);
      }
    };
    auto stageOf = [&](int j) { return static_cast<int>((it + j) % STAGES); };
    auto parityOf = [&](int j) { return ((it + j) / STAGES) & 1; };
    // Turn j: tile j's S = Q K^T (j < nMine) and tile j - 1's P V (0 < j <=
    // nMine) issued together, then tile j's softmax while P V runs; tiles
    // from nMine on are waited for and released unread. PINGPONG: the two
    // warpgroups issue their turns' MMAs alternately (named barriers 3 and
    // 4), so one's softmax runs under the other's products; each takes
    // nTiles + 1 turns a unit, the ones past its own MMAs empty. (The
    // turns are written out, not one loop with the products under
    // conditions: ptxas serialises wgmma in divergent paths, C7520.)
    auto turnWait = [&]() {
      if constexpr (PINGPONG)
        namedBarrier(3 + wg, 256);
    };
    auto turnPass = [&]() {
      if constexpr (PINGPONG)
        namedBarrierArrive(3 + (wg ^ 1), 256);
    };
    if (nMine > 0) {
      const int s = stageOf(0);
      mbarWait(&full[s], parityOf(0));
      turnWait();
      pin();
      wgmmaFence();
      issueS(s);
      wgmmaCommit();
      pin();
      turnPass();
      wgmmaWait<0>();
      pin();
      float corr[2];
      softmax(0, s, corr);
      packP();
    }
    for (int j = 1; j < nMine; ++j) {
      const int s = stageOf(j), prev = stageOf(j - 1);
      mbarWait(&full[s], parityOf(j));
      turnWait();
      pin();
      wgmmaFence();
      issueS(s);
      wgmmaCommit();
      issuePV(prev);
      wgmmaCommit();
      pin();
      turnPass();
      wgmmaWait<1>(); // S of tile j
      fenceOperands(sc);
      float corr[2];
      softmax(j, s, corr);
      fenceOperands(sc);
      wgmmaWait<0>(); // P V of tile j - 1
      pin();
      release(prev);
#pragma unroll
      for (int i = 0; i < D / 2; ++i)
        o[i] *= corr[(i >> 1) & 1];
      packP();
    }
    if (nMine > 0) {
      turnWait();
      pin();
      wgmmaFence();
      issuePV(stageOf(nMine - 1));
      wgmmaCommit();
      pin();
      turnPass();
      wgmmaWait<0>();
      pin();
      release(stageOf(nMine - 1));
    }
    for (int j = nMine; j < nTiles; ++j) {
      mbarWait(&full[stageOf(j)], parityOf(j));
      release(stageOf(j));
    }
    if constexpr (PINGPONG)
      for (int j = nMine > 0 ? nMine + 1 : 0; j <= nTiles; ++j) {
        turnWait();
        turnPass();
      }
    it += static_cast<unsigned>(nTiles);
    if (lane == 0)
      mbarArrive(&qEmpty[qb]); // every MMA that read this Q has retired
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      lRow[hr] += __shfl_xor_sync(0xffffffffu, lRow[hr], 1);
      lRow[hr] += __shfl_xor_sync(0xffffffffu, lRow[hr], 2);
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int r = r0 + 8 * hr, t = x.t0 + r % BQ;
      if (t >= a.tokens)
        continue;
      const i64 h = x.kvh * G + x.hg * HB + r / BQ;
      const float inv = lRow[hr] > 0.0f ? 1.0f / lRow[hr] : 0.0f;
#pragma unroll
      for (int n = 0; n < D / 8; ++n) {
        const int d = n * 8 + 2 * (lane & 3);
        S::store(a, x.b, t, h, d, o[n * 4 + hr * 2] * inv);
        S::store(a, x.b, t, h, d + 1, o[n * 4 + hr * 2 + 1] * inv);
      }
    }
  }
  if (PINGPONG && wg == 0)
    namedBarrier(3, 256); // warpgroup 1's arrival after its last turn
#else
  // Compiled for a GPU without wgmma (the runtime re-compiling an sm_90a
  // engine's sources for another architecture; the emitter chooses this
  // kernel only for sm_90a targets): a warp a row.
  attentionPrefill<S>(a);
#endif
}

} // namespace kiln
