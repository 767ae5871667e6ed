// kiln device library: the decode attention family.
//
// One token per sequence against its context, split over blocks.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

/// Work item `u` of a split decode: the row (b, t) and kv head of
/// `unit`, and the key range [kBegin, kEnd) of its split (causal, within
/// the sliding window). The row's keys take `nsplit` splits this step:
/// ceil(keys / CHUNK), at least 1 and at most SPLITS (the grid's), so a
/// short context is not cut into slivers that a long one needs; splits
/// from nsplit on are not `live` (their blocks do nothing). A padding row
/// (position -1) takes one split with no keys. `appends`: the split that
/// holds the row's own position (the last one when the context ends before
/// it), which appends the new key and value when the kernel does.
struct SplitUnit {
  i64 unit, split, nsplit, kvh, bt, t, b, qpos, kBegin, kEnd;
  bool live, appends;
};
template <class S, int SPLITS, int CHUNK> __device__ __forceinline__ SplitUnit splitUnit(const Args &a, i64 u) {
  static_assert(CHUNK > 0, "a split's keys");
  SplitUnit w;
  w.split = u % SPLITS;
  w.unit = u / SPLITS;
  w.kvh = w.unit % S::HKV;
  w.bt = w.unit / S::HKV;
  w.t = w.bt % a.tokens;
  w.b = w.bt / a.tokens;
  w.qpos = S::position(a, w.b, w.t);
  i64 len = S::contextLen(a, w.b);
  i64 hi = S::CAUSAL && w.qpos + 1 < len ? w.qpos + 1 : len;
  i64 lo = S::WINDOW > 0 && w.qpos - S::WINDOW + 1 > 0 ? w.qpos - S::WINDOW + 1 : 0;
  if (w.qpos < 0 || lo > hi)
    lo = hi;
  i64 keys = hi - lo;
  w.nsplit = w.qpos < 0 ? 1 : (keys + CHUNK - 1) / CHUNK;
  w.nsplit = w.nsplit < 1 ? 1 : w.nsplit > SPLITS ? SPLITS : w.nsplit;
  i64 chunk = (keys + w.nsplit - 1) / w.nsplit;
  w.kBegin = lo + w.split * chunk;
  if (w.kBegin > hi)
    w.kBegin = hi;
  w.kEnd = w.kBegin + chunk < hi ? w.kBegin + chunk : hi;
  w.live = w.split < w.nsplit;
  w.appends = w.live && w.qpos >= 0 &&
              (w.qpos < hi ? w.kBegin <= w.qpos && w.qpos < w.kEnd : w.split == w.nsplit - 1);
  return w;
}

// ---- RoPE and the KV append inside decode attention -------------------------
//
// When S::APPEND, the kernel's group holds the layer's kv_append: the split
// that holds a row's position writes the new key and value (S::storeKV) and
// synchronises before any thread reads the cache. When S::ROPE (1 NeoX, 2
// GPT-J), queries and keys are rotated here from their inputs (S::qIn,
// S::kIn) with a per-row table of cos/sin in shared memory, instead of per
// element through S::q / S::key.

/// The partner of element d in its rotation, and the sign of its term.
template <class S> __device__ __forceinline__ int ropePartner(int d) {
  constexpr int HALF = S::ROT / 2;
  if constexpr (S::ROPE == 1)
    return d < HALF ? d + HALF : d - HALF;
  else
    return d ^ 1;
}
/// Element d of a rotated vector whose inputs `in(j)` gives, with the row's
/// table (ROT / 2 cosines, then the sines); dims from S::ROT on pass through.
template <class S, class In> __device__ __forceinline__ float rotated(In in, int d, const float *tab) {
  constexpr int HALF = S::ROT / 2;
  if (d >= S::ROT)
    return in(d);
  int i = S::ROPE == 1 ? (d < HALF ? d : d - HALF) : d / 2;
  float sign = S::ROPE == 1 ? (d < HALF ? -1.0f : 1.0f) : ((d & 1) ? 1.0f : -1.0f);
  return in(d) * tab[i] + sign * in(ropePartner<S>(d)) * tab[HALF + i];
}
/// Fills the table for position `pos` (all threads; synchronises first and
/// after).
template <class S> __device__ __forceinline__ void ropeTable(i64 pos, float *tab) {
  constexpr int HALF = S::ROT / 2;
  __syncthreads();
  for (int i = threadIdx.x; i < HALF; i += blockDim.x) {
    double ang = static_cast<double>(pos) * S::invFreq(i);
    tab[i] = static_cast<float>(cos(ang) * S::ROPE_MAG);
    tab[HALF + i] = static_cast<float>(sin(ang) * S::ROPE_MAG);
  }
  __syncthreads();
}
/// The new key and value of (b, t, kv head) into the cache, by the split
/// that appends; the block then sees them. With a table (`tab`), keys are
/// rotated from S::kIn; without, S::key computes them per element.
template <class S> __device__ __forceinline__ void appendKV(const Args &a, const SplitUnit &w, const float *tab) {
  if constexpr (S::APPEND) {
    if (!w.appends)
      return;
    for (int d = threadIdx.x; d < S::D; d += blockDim.x) {
      float k;
      if constexpr (S::ROPE != 0)
        k = tab ? rotated<S>([&](int j) { return S::kIn(a, w.b, w.t, w.kvh, j); }, d, tab)
                : S::key(a, w.b, w.t, w.kvh, d);
      else
        k = S::key(a, w.b, w.t, w.kvh, d);
      S::storeKV(a, w.b, w.t, w.kvh, d, k, S::value(a, w.b, w.t, w.kvh, d));
    }
    __syncthreads();
  }
}

/// The end of a split decode: every live split of (b, t, kv head) has left
/// its rows' (acc, max, sum) in `part`; the last of the `nsplit` to arrive
/// merges them, writes the output and resets the counter (the workspace
/// stays zeroed).
template <class S, int SPLITS>
__device__ __forceinline__ void combineSplits(const Args &a, const float *part, unsigned *counters, const SplitUnit &w) {
  constexpr int G = S::H / S::HKV, PER = AttnRow<S>::PER, STRIDE = S::D + 2;
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    last = atomicAdd(counters + w.unit, 1u) == w.nsplit - 1;
  __syncthreads();
  if (!last)
    return;
  __threadfence();
  for (int g = warp; g < G; g += warps) {
    i64 h = w.kvh * G + g;
    const float *p = part + (w.bt * S::H + h) * SPLITS * STRIDE;
    float mx = -kiln::inf();
    for (int s = 0; s < w.nsplit; ++s)
      mx = fmaxf(mx, __ldcg(p + s * STRIDE + S::D));
    AttnRow<S> row;
    row.l = 0.0f;
#pragma unroll
    for (int j = 0; j < PER; ++j)
      row.acc[j] = 0.0f;
    for (int s = 0; s < w.nsplit; ++s) {
      float ms = __ldcg(p + s * STRIDE + S::D), ls = __ldcg(p + s * STRIDE + S::D + 1);
      if (ls == 0.0f)
        continue;
      float f = expf(ms - mx);
      row.l += ls * f;
#pragma unroll
      for (int j = 0; j < PER; ++j)
        if (AttnRow<S>::live(lane, j))
          row.acc[j] += __ldcg(p + s * STRIDE + lane * PER + j) * f;
    }
    storeRow<S>(a, w.b, w.t, h, row);
  }
  if (threadIdx.x == 0)
    counters[w.unit] = 0;
  __syncthreads();
}

/// Decode: block (b, t, kv head, split); its warps take the group's query
/// heads. Workspace: partials [B*T*H][SPLITS][D + 2] f32, then counters
/// [B*T*HKV] u32; a row of one split this step writes its output directly.

template <class S, int SPLITS, int CHUNK> __device__ void attentionDecode(const Args &a) {
  dependOnPrevious();
  constexpr int G = S::H / S::HKV, PER = AttnRow<S>::PER, STRIDE = S::D + 2;
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  i64 units = static_cast<i64>(a.batch) * a.tokens * S::HKV;
  float *part = static_cast<float *>(a.ws);
  unsigned *counters = reinterpret_cast<unsigned *>(part + static_cast<i64>(S::MAX_ROWS) * S::H * SPLITS * STRIDE);
  for (i64 u = blockIdx.x; u < units * SPLITS; u += gridDim.x) {
    SplitUnit w = splitUnit<S, SPLITS, CHUNK>(a, u);
    if (!w.live)
      continue;
    appendKV<S>(a, w, nullptr);
    for (int g = warp; g < G; g += warps) {
      i64 h = w.kvh * G + g;
      AttnRow<S> row;
      row.m = -kiln::inf();
      row.l = 0.0f;
#pragma unroll
      for (int j = 0; j < PER; ++j)
        row.acc[j] = 0.0f;
      if (w.qpos >= 0 && w.kBegin < w.kEnd)
        attendRange<S>(a, w.b, w.t, h, w.qpos, w.kBegin, w.kEnd, row);
      if (w.nsplit == 1) {
        storeRow<S>(a, w.b, w.t, h, row);
        continue;
      }
      float *p = part + ((w.bt * S::H + h) * SPLITS + w.split) * STRIDE;
#pragma unroll
      for (int j = 0; j < PER; ++j)
        if (AttnRow<S>::live(lane, j))
          p[lane * PER + j] = row.acc[j];
      if (lane == 0) {
        p[S::D] = row.m;
        p[S::D + 1] = row.l;
      }
    }
    if (w.nsplit > 1)
      combineSplits<S, SPLITS>(a, part, counters, w);
  }
}

/// Decode with many keys in flight: block (b, t, kv head, split) of 128
/// threads. TG = D / VEC lanes read one key (16-byte vectors), a warp covers
/// 32 / TG keys and the block KPB of them; a chunk is J such groups (CH =
/// KPB * J keys). Each thread copies the K and V pieces it will use itself
/// into a ring of STAGES chunks in shared memory (cp.async), STAGES - 1
/// chunks ahead of the one it computes, so a block keeps that many chunks
/// in flight whatever the occupancy (a partial last wave streams as a full
/// one does), and no barrier guards the ring: a thread reads only what it
/// copied. Scores go through shared memory for the softmax (all G query
/// heads of the kv head at once); each thread accumulates P V for its keys
/// and vector, reduced over the keys at the end (through the ring's memory).
/// Dynamic shared memory: decodeTiledSmem. Workspace and split merge as in
/// attentionDecode.
template <class S, int VEC, int J, int STAGES> struct DecodeTiled {
  typedef typename Raw<typename S::TC, VEC>::type RC;
  static constexpr int THREADS = 128, WARPS = THREADS / 32, G = S::H / S::HKV, TG = S::D / VEC, KPW = 32 / TG;
  static constexpr int KPB = WARPS * KPW, CH = KPB * J;
  static constexpr int RING = STAGES * J * 2 * THREADS * 16, REDUCE = WARPS * G * S::D * 4;
  static constexpr int SMEM = RING > REDUCE ? RING : REDUCE;
};
template <class S, int SPLITS, int CHUNK, int VEC, int J, int STAGES>
__device__ void attentionDecodeTiled(const Args &a) {
  typedef DecodeTiled<S, VEC, J, STAGES> T;
  typedef typename S::TC TC;
  typedef typename T::RC RC;
  constexpr int THREADS = T::THREADS, WARPS = T::WARPS, G = T::G, TG = T::TG, KPW = T::KPW;
  constexpr int KPB = T::KPB, CH = T::CH, STRIDE = S::D + 2;
  static_assert(S::D % VEC == 0 && 32 % TG == 0, "a key must split evenly over a warp's lanes");
  static_assert(sizeof(RC) == 16, "a piece of a key is one 16-byte copy");
  static_assert(STAGES >= 2 && STAGES * J <= 32, "the ring's bits of which pieces exist");
  dependOnPrevious();
  extern __shared__ __align__(128) unsigned char smemRaw[];
  RC *ring = reinterpret_cast<RC *>(smemRaw);         // [STAGES][J][K, V][THREADS]
  float *sRed = reinterpret_cast<float *>(smemRaw);   // after the keys: [WARPS][G * D]
  __shared__ float sc[G][CH];
  __shared__ float sM[G], sL[G], sCorr[G];
  __shared__ float sRope[S::ROPE != 0 ? S::ROT : 1]; // the row's cos, sin
  int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  int piece = lane % TG, slot = warp * KPW + lane / TG;
  i64 units = static_cast<i64>(a.batch) * a.tokens * S::HKV;
  float *part = static_cast<float *>(a.ws);
  unsigned *counters = reinterpret_cast<unsigned *>(part + static_cast<i64>(S::MAX_ROWS) * S::H * SPLITS * STRIDE);
  const TC *cache = S::cache(a);
  const int *tables = S::blockTables(a);
  constexpr i64 V_OFFSET = static_cast<i64>(S::PAGE) * S::HKV * S::D; // K to V within a page
  for (i64 u = blockIdx.x; u < units * SPLITS; u += gridDim.x) {
    SplitUnit w = splitUnit<S, SPLITS, CHUNK>(a, u);
    if (!w.live)
      continue;
    i64 kvh = w.kvh, t = w.t, b = w.b, qpos = w.qpos, kBegin = w.kBegin, kEnd = w.kEnd;
    if constexpr (S::ROPE != 0)
      if (qpos >= 0)
        ropeTable<S>(qpos, sRope);
    // The append's store and its barrier come before any copy of this
    // row's keys (cp.async.cg reads through L2, where the store went).
    appendKV<S>(a, w, S::ROPE != 0 ? sRope : nullptr);
    float q[G][VEC], acc[G][VEC];
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        int d = piece * VEC + v;
        i64 h = kvh * G + g;
        if (qpos < 0)
          q[g][v] = 0.0f;
        else if constexpr (S::ROPE != 0)
          q[g][v] = S::roundQ(rotated<S>([&](int j) { return S::qIn(a, b, t, h, j); }, d, sRope));
        else
          q[g][v] = S::q(a, b, t, h, d);
        acc[g][v] = 0.0f;
      }
    if (tid < G) {
      sM[tid] = -kiln::inf();
      sL[tid] = 0.0f;
    }
    __syncthreads();
    // Chunk c into ring stage c % STAGES: this thread's J keys' K and V
    // pieces; bit (stage * J + j) of `have` says key j exists there.
    int chunks = static_cast<int>((kEnd - kBegin + CH - 1) / CH);
    unsigned have = 0;
    auto issue = [&](int c) {
      int st = c % STAGES;
      unsigned bits = 0;
      if (c < chunks)
#pragma unroll
        for (int j = 0; j < J; ++j) {
          i64 s = kBegin + static_cast<i64>(c) * CH + slot + j * KPB;
          i64 at = s < kEnd ? cacheIndex<S::PAGE, S::HKV, S::D>(a, tables, b, s, 0, kvh, piece * VEC) : -1;
          if (at >= 0) {
            cpAsync16(ring + ((st * J + j) * 2) * THREADS + tid, cache + at, 16);
            cpAsync16(ring + ((st * J + j) * 2 + 1) * THREADS + tid, cache + at + V_OFFSET, 16);
            bits |= 1u << j;
          }
        }
      constexpr unsigned MASK = (1u << J) - 1;
      have = (have & ~(MASK << (st * J))) | (bits << (st * J));
      cpAsyncCommit();
    };
#pragma unroll
    for (int c = 0; c < STAGES - 1; ++c)
      issue(c);
    for (int c = 0; c < chunks; ++c) {
      issue(c + STAGES - 1);
      cpAsyncWait<STAGES - 1>();
      int st = c % STAGES;
#pragma unroll
      for (int j = 0; j < J; ++j) {
        bool ok = (have >> (st * J + j)) & 1u;
        float kf[VEC];
        if (ok)
          unpackRaw<TC, VEC>(ring[((st * J + j) * 2) * THREADS + tid], kf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float dot = 0.0f;
          if (ok)
#pragma unroll
            for (int v = 0; v < VEC; ++v)
              dot += q[g][v] * kf[v];
#pragma unroll
          for (int o = TG / 2; o > 0; o >>= 1)
            dot += __shfl_xor_sync(0xffffffffu, dot, o);
          float x = dot * S::SCALE;
          if constexpr (S::SOFTCAP > 0.0f)
            x = S::SOFTCAP * tanhf(x / S::SOFTCAP);
          if (piece == 0)
            sc[g][slot + j * KPB] = ok ? x : -kiln::inf();
        }
      }
      __syncthreads();
      for (int g = warp; g < G; g += WARPS) {
        float mx = -kiln::inf();
        for (int i = lane; i < CH; i += 32)
          mx = fmaxf(mx, sc[g][i]);
        mx = warpMax(mx);
        float mOld = sM[g], mNew = fmaxf(mOld, mx), sum = 0.0f;
        for (int i = lane; i < CH; i += 32) {
          float p = mNew == -kiln::inf() ? 0.0f : expf(sc[g][i] - mNew);
          sc[g][i] = p;
          sum += p;
        }
        sum = warpSum(sum);
        if (lane == 0) {
          float corr = mOld == -kiln::inf() ? 0.0f : expf(mOld - mNew);
          sCorr[g] = corr;
          sL[g] = sL[g] * corr + sum;
          sM[g] = mNew;
        }
      }
      __syncthreads();
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float corr = sCorr[g];
#pragma unroll
        for (int v = 0; v < VEC; ++v)
          acc[g][v] *= corr;
      }
#pragma unroll
      for (int j = 0; j < J; ++j) {
        if (!((have >> (st * J + j)) & 1u))
          continue;
        float vf[VEC];
        unpackRaw<TC, VEC>(ring[((st * J + j) * 2 + 1) * THREADS + tid], vf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float p = sc[g][slot + j * KPB];
#pragma unroll
          for (int v = 0; v < VEC; ++v)
            acc[g][v] += p * vf[v];
        }
      }
      __syncthreads();
    }
    // Every copy landed (the trailing groups are empty) before the ring's
    // memory holds the sums.
    cpAsyncWait<0>();
    __syncthreads();
    // Sum over the keys: the warp's key slots by shuffles, then the warps.
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
#pragma unroll
        for (int o = TG; o < 32; o <<= 1)
          acc[g][v] += __shfl_xor_sync(0xffffffffu, acc[g][v], o);
        if (lane < TG)
          sRed[warp * G * S::D + g * S::D + piece * VEC + v] = acc[g][v];
      }
    __syncthreads();
    for (int e = tid; e < G * S::D; e += THREADS) {
      float o = 0.0f;
#pragma unroll
      for (int r = 0; r < WARPS; ++r)
        o += sRed[r * G * S::D + e];
      int g = e / S::D, d = e % S::D;
      i64 h = kvh * G + g;
      if (w.nsplit == 1) {
        S::store(a, b, t, h, d, sL[g] > 0.0f ? o / sL[g] : 0.0f);
      } else {
        float *p = part + ((w.bt * S::H + h) * SPLITS + w.split) * STRIDE;
        p[d] = o;
        if (d == 0) {
          p[S::D] = sM[g];
          p[S::D + 1] = sL[g];
        }
      }
    }
    if (w.nsplit > 1)
      combineSplits<S, SPLITS>(a, part, counters, w);
    __syncthreads();
  }
}

/// Decode on tensor cores: block (b, t, kv head, split) of WARPS warps; the
/// group's G <= 16 query heads are the rows of one m16 tile (rows from G on
/// are zero). Warp w owns tiles w, w + WARPS, ... of 16 keys of the split's
/// range and streams them through a ring of its own (STAGES tiles of K and
/// V, rows padded to D + 8 elements so that ldmatrix phases take distinct
/// banks) by cp.async, STAGES - 1 tiles ahead; no barrier of the block in
/// the loop, the warps run apart. Per tile S = Q K^T (m16n8k16, f32),
/// scale, softcap and the mask of keys past the split or on unmapped pages,
/// an online softmax per row in the exp2 domain (a thread holds rows lane/4
/// and lane/4 + 8), then P V with P as its rounded value plus the rounded
/// remainder (P to f32 precision: the f32 kernels' weights, for PV work the
/// bandwidth hides). The warps' (max, sum, acc) merge through shared memory
/// (each warp's own ring); the output, or the split's partial for
/// combineSplits, as attentionDecodeTiled writes them. The emitter takes it
/// where queries are in the 16-bit cache dtype (Q in bf16/f16 is exact).
/// Dynamic shared memory: DecodeMma<...>::SMEM.
template <class S, int WARPS, int STAGES> struct DecodeMma {
  static constexpr int LD = S::D + 8, TILE = 16 * LD;
  static constexpr int SMEM = (WARPS * STAGES * 2 * TILE + 16 * LD) * 2;
};
template <class S, int SPLITS, int CHUNK, int WARPS, int STAGES> __device__ void attentionDecodeMma(const Args &a) {
  typedef typename S::TC T;
  typedef DecodeMma<S, WARPS, STAGES> M;
  constexpr int D = S::D, G = S::H / S::HKV, LD = M::LD, TILE = M::TILE, CH = D / 8, DK = D / 16, NO = D / 8;
  constexpr int THREADS = WARPS * 32, COPIES = 16 * CH / 32, STRIDE = D + 2;
  constexpr float LOG2E = 1.4426950408889634f;
  static_assert(sizeof(T) == 2 && D % 16 == 0 && G >= 1 && G <= 16 && S::H % S::HKV == 0,
                "tensor-core decode: a 16-bit cache, D a multiple of 16, up to 16 query heads a kv head");
  static_assert(STAGES >= 2 && STAGES <= 4, "a ring of 2 to 4 tiles (16 bits of each in `have`)");
  static_assert(STAGES * 2 * TILE * 2 >= 16 * D * 4, "a warp's ring holds its 16 x D f32 sums for the merge");
  constexpr i64 V_OFFSET = static_cast<i64>(S::PAGE) * S::HKV * D; // K to V within a page
  extern __shared__ __align__(128) unsigned char smemRaw[];
  T *ring = reinterpret_cast<T *>(smemRaw); // [WARPS][STAGES][K, V][16][LD]
  T *sQ = ring + WARPS * STAGES * 2 * TILE; // [16][LD]
  __shared__ float sM[WARPS][16], sL[WARPS][16];
  __shared__ float sRope[S::ROPE != 0 ? S::ROT : 1];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const i64 units = static_cast<i64>(a.batch) * a.tokens * S::HKV;
  if constexpr (KILN_PDL_PREFETCH_KEYS > 0) {
    // Before the wait: the first unit's first keys' K and V rows into L2.
    if (static_cast<i64>(blockIdx.x) < units * SPLITS) {
      SplitUnit w = splitUnit<S, SPLITS, CHUNK>(a, blockIdx.x);
      const i64 end = w.kBegin + KILN_PDL_PREFETCH_KEYS < w.kEnd ? w.kBegin + KILN_PDL_PREFETCH_KEYS : w.kEnd;
      const int *table = S::blockTables(a) + w.b * a.max_blocks;
      if (w.live && w.qpos >= 0)
        for (i64 s = w.kBegin + tid; s < end; s += THREADS) {
          const i64 at = pageIndex<S::PAGE, S::HKV, D>(a, table[s / S::PAGE], s, 0, w.kvh, 0);
          if (at >= 0) {
            prefetchBulkL2(S::cache(a) + at, D * sizeof(T));
            prefetchBulkL2(S::cache(a) + at + V_OFFSET, D * sizeof(T));
          }
        }
    }
  }
  dependOnPrevious();
  float *part = static_cast<float *>(a.ws);
  unsigned *counters = reinterpret_cast<unsigned *>(part + static_cast<i64>(S::MAX_ROWS) * S::H * SPLITS * STRIDE);
  const T *cache = S::cache(a);
  T *wRing = ring + warp * STAGES * 2 * TILE;
  float *wSum = reinterpret_cast<float *>(wRing); // after the loop: [16][D]
  for (i64 u = blockIdx.x; u < units * SPLITS; u += gridDim.x) {
    SplitUnit w = splitUnit<S, SPLITS, CHUNK>(a, u);
    if (!w.live)
      continue;
    const i64 kvh = w.kvh, t = w.t, b = w.b, qpos = w.qpos, kBegin = w.kBegin, kEnd = w.kEnd;
    if constexpr (S::ROPE != 0)
      if (qpos >= 0)
        ropeTable<S>(qpos, sRope);
    appendKV<S>(a, w, S::ROPE != 0 ? sRope : nullptr);
    for (int e = tid; e < 16 * D; e += THREADS) {
      const int r = e / D, d = e % D;
      float v = 0.0f;
      if (r < G && qpos >= 0) {
        const i64 h = kvh * G + r;
        if constexpr (S::ROPE != 0)
          v = S::roundQ(rotated<S>([&](int j) { return S::qIn(a, b, t, h, j); }, d, sRope));
        else
          v = S::q(a, b, t, h, d);
      }
      sQ[r * LD + d] = static_cast<T>(v);
    }
    __syncthreads();
    unsigned qf[DK][4];
#pragma unroll
    for (int kd = 0; kd < DK; ++kd)
      ldmatrix4(qf[kd], sQ + (lane & 15) * LD + kd * 16 + (lane >> 4) * 8);
    const int *table = S::blockTables(a) + b * a.max_blocks;
    const int tiles = qpos >= 0 && kEnd > kBegin ? static_cast<int>((kEnd - kBegin + 15) / 16) : 0;
    const int mine = tiles > warp ? (tiles - warp + WARPS - 1) / WARPS : 0;
    // Bits st * 16 + r: key r of the tile in stage st is in range on a mapped page.
    unsigned long long have = 0;
    auto issue = [&](int c) {
      const int st = c % STAGES;
      unsigned rows = 0;
      if (c < mine) {
        const i64 s0 = kBegin + static_cast<i64>(warp + c * WARPS) * 16;
        T *dK = wRing + st * 2 * TILE, *dV = dK + TILE;
#pragma unroll
        for (int i = 0; i < COPIES; ++i) {
          const int e = lane + 32 * i, r = e / CH, col = e % CH;
          const i64 s = s0 + r;
          const i64 at = s < kEnd ? pageIndex<S::PAGE, S::HKV, D>(a, table[s / S::PAGE], s, 0, kvh, col * 8) : -1;
          const bool ok = at >= 0;
          cpAsync16(dK + r * LD + col * 8, ok ? cache + at : cache, ok ? 16 : 0);
          cpAsync16(dV + r * LD + col * 8, ok ? cache + at + V_OFFSET : cache, ok ? 16 : 0);
          // Which rows exist: the lanes that copy a row's first piece say.
          const unsigned vote = __ballot_sync(0xffffffffu, ok && col == 0);
#pragma unroll
          for (int l = 0; l < 32; ++l)
            if ((l + 32 * i) % CH == 0 && ((vote >> l) & 1u))
              rows |= 1u << ((l + 32 * i) / CH);
        }
      }
      have = (have & ~(0xffffull << (st * 16))) | (static_cast<unsigned long long>(rows) << (st * 16));
      cpAsyncCommit();
    };
    float o[NO][4], mRow[2] = {-kiln::inf(), -kiln::inf()}, lRow[2] = {0.0f, 0.0f};
#pragma unroll
    for (int n = 0; n < NO; ++n)
#pragma unroll
      for (int q = 0; q < 4; ++q)
        o[n][q] = 0.0f;
#pragma unroll
    for (int c = 0; c < STAGES - 1; ++c)
      issue(c);
    for (int c = 0; c < mine; ++c) {
      issue(c + STAGES - 1);
      cpAsyncWait<STAGES - 1>();
      __syncwarp();
      const int st = c % STAGES;
      const T *tK = wRing + st * 2 * TILE, *tV = tK + TILE;
      const unsigned rows = static_cast<unsigned>(have >> (st * 16)) & 0xffffu;
      float sc[2][4];
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int q = 0; q < 4; ++q)
          sc[n][q] = 0.0f;
#pragma unroll
      for (int kd = 0; kd < DK; ++kd) {
        unsigned r[4];
        ldmatrix4(r, tK + ((lane & 7) + ((lane >> 4) << 3)) * LD + kd * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(sc[0], qf[kd], r[0], r[1]);
        mma16816<T>(sc[1], qf[kd], r[2], r[3]);
      }
      float mx[2] = {-kiln::inf(), -kiln::inf()};
#pragma unroll
      for (int n = 0; n < 2; ++n)
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          float x = sc[n][q] * S::SCALE;
          if constexpr (S::SOFTCAP > 0.0f)
            x = S::SOFTCAP * tanhf(x / S::SOFTCAP);
          const int key = n * 8 + 2 * (lane & 3) + (q & 1);
          x = (rows >> key) & 1u ? x * LOG2E : -kiln::inf();
          sc[n][q] = x;
          mx[q >> 1] = fmaxf(mx[q >> 1], x);
        }
      float corr[2];
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
        mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
        const float mNew = fmaxf(mRow[hr], mx[hr]);
        corr[hr] = mRow[hr] == -kiln::inf() ? 0.0f : fastExp2(mRow[hr] - mNew);
        mRow[hr] = mNew;
        lRow[hr] *= corr[hr];
      }
#pragma unroll
      for (int n = 0; n < NO; ++n)
#pragma unroll
        for (int q = 0; q < 4; ++q)
          o[n][q] *= corr[q >> 1];
      // P as A fragments (16 keys): its rounded value and the remainder.
      unsigned pf[4], pl[4];
#pragma unroll
      for (int n = 0; n < 2; ++n) {
        float e[4], h[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          e[q] = mRow[q >> 1] == -kiln::inf() ? 0.0f : fastExp2(sc[n][q] - mRow[q >> 1]);
          lRow[q >> 1] += e[q];
          h[q] = static_cast<float>(static_cast<T>(e[q]));
        }
        pf[n * 2] = pack2<T>(e[0], e[1]);
        pf[n * 2 + 1] = pack2<T>(e[2], e[3]);
        pl[n * 2] = pack2<T>(e[0] - h[0], e[1] - h[1]);
        pl[n * 2 + 1] = pack2<T>(e[2] - h[2], e[3] - h[3]);
      }
#pragma unroll
      for (int n = 0; n < NO; n += 2) {
        unsigned r[4];
        ldmatrix4Trans(r, tV + ((lane & 7) + ((lane >> 3) & 1) * 8) * LD + n * 8 + (lane >> 4) * 8);
        mma16816<T>(o[n], pf, r[0], r[1]);
        mma16816<T>(o[n + 1], pf, r[2], r[3]);
        mma16816<T>(o[n], pl, r[0], r[1]);
        mma16816<T>(o[n + 1], pl, r[2], r[3]);
      }
      __syncwarp(); // every lane is done with stage st before it is refilled
    }
    triggerDependents(); // the keys read: the merge and the stores are left
    cpAsyncWait<0>();
    __syncwarp();
    // The warp's rows into its own ring: sums, then max and sum per row.
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      lRow[hr] += __shfl_xor_sync(0xffffffffu, lRow[hr], 1);
      lRow[hr] += __shfl_xor_sync(0xffffffffu, lRow[hr], 2);
    }
#pragma unroll
    for (int n = 0; n < NO; ++n)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr)
        *reinterpret_cast<float2 *>(wSum + ((lane >> 2) + hr * 8) * D + n * 8 + 2 * (lane & 3)) =
            make_float2(o[n][hr * 2], o[n][hr * 2 + 1]);
    if ((lane & 3) == 0)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        sM[warp][(lane >> 2) + hr * 8] = mRow[hr];
        sL[warp][(lane >> 2) + hr * 8] = lRow[hr];
      }
    __syncthreads();
    for (int e = tid; e < G * D; e += THREADS) {
      const int g = e / D, d = e % D;
      float mx = -kiln::inf();
#pragma unroll
      for (int v = 0; v < WARPS; ++v)
        mx = fmaxf(mx, sM[v][g]);
      float acc = 0.0f, l = 0.0f;
#pragma unroll
      for (int v = 0; v < WARPS; ++v) {
        const float f = sM[v][g] == -kiln::inf() ? 0.0f : fastExp2(sM[v][g] - mx);
        acc += reinterpret_cast<const float *>(ring + v * STAGES * 2 * TILE)[g * D + d] * f;
        l += sL[v][g] * f;
      }
      const i64 h = kvh * G + g;
      if (w.nsplit == 1) {
        S::store(a, b, t, h, d, l > 0.0f ? acc / l : 0.0f);
      } else {
        float *p = part + ((w.bt * S::H + h) * SPLITS + w.split) * STRIDE;
        p[d] = acc;
        if (d == 0) {
          p[S::D] = mx == -kiln::inf() ? mx : mx / LOG2E; // the natural max, as combineSplits reads it
          p[S::D + 1] = l;
        }
      }
    }
    if (w.nsplit > 1)
      combineSplits<S, SPLITS>(a, part, counters, w);
    __syncthreads();
  }
}

} // namespace kiln
