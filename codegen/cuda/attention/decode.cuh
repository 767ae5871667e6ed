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

} // namespace kiln
