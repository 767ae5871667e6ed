// kiln device library: the decode attention family.
//
// One token per sequence against its context, split over blocks.
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

/// Work item `u` of a split decode: the row (b, t) and kv head of
/// `unit`, and the key range [kBegin, kEnd) of its split (causal, within
/// the sliding window; empty for a padding row). `appends`: the split that
/// holds the row's own position (the last one when the context ends
/// before it), which appends the new key and value when the kernel does.
struct SplitUnit {
  i64 unit, split, kvh, bt, t, b, qpos, kBegin, kEnd;
  bool appends;
};
template <class S, int SPLITS> __device__ __forceinline__ SplitUnit splitUnit(const Args &a, i64 u) {
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
  i64 chunk = (hi + SPLITS - 1) / SPLITS;
  w.kBegin = w.split * chunk;
  w.kEnd = w.kBegin + chunk < hi ? w.kBegin + chunk : hi;
  if (S::WINDOW > 0 && w.kBegin < w.qpos - S::WINDOW + 1)
    w.kBegin = w.qpos - S::WINDOW + 1;
  w.appends = w.qpos >= 0 && (w.qpos < hi ? w.kBegin <= w.qpos && w.qpos < w.kEnd : w.split == SPLITS - 1);
  if (w.qpos < 0)
    w.kEnd = w.kBegin;
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

/// The end of a split decode: every split of (b, t, kv head) has left its
/// rows' (acc, max, sum) in `part`; the last split to arrive merges them,
/// writes the output and resets the counter (the workspace stays zeroed).
template <class S, int SPLITS>
__device__ __forceinline__ void combineSplits(const Args &a, const float *part, unsigned *counters, i64 unit,
                                              i64 bt, i64 b, i64 t, i64 kvh) {
  constexpr int G = S::H / S::HKV, PER = AttnRow<S>::PER, STRIDE = S::D + 2;
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    last = atomicAdd(counters + unit, 1u) == SPLITS - 1;
  __syncthreads();
  if (!last)
    return;
  __threadfence();
  for (int g = warp; g < G; g += warps) {
    i64 h = kvh * G + g;
    const float *p = part + (bt * S::H + h) * SPLITS * STRIDE;
    float mx = -kiln::inf();
    for (int s = 0; s < SPLITS; ++s)
      mx = fmaxf(mx, __ldcg(p + s * STRIDE + S::D));
    AttnRow<S> row;
    row.l = 0.0f;
#pragma unroll
    for (int j = 0; j < PER; ++j)
      row.acc[j] = 0.0f;
    for (int s = 0; s < SPLITS; ++s) {
      float ms = __ldcg(p + s * STRIDE + S::D), ls = __ldcg(p + s * STRIDE + S::D + 1);
      if (ls == 0.0f)
        continue;
      float w = expf(ms - mx);
      row.l += ls * w;
#pragma unroll
      for (int j = 0; j < PER; ++j)
        if (AttnRow<S>::live(lane, j))
          row.acc[j] += __ldcg(p + s * STRIDE + lane * PER + j) * w;
    }
    storeRow<S>(a, b, t, h, row);
  }
  if (threadIdx.x == 0)
    counters[unit] = 0;
  __syncthreads();
}

/// Decode: block (b, t, kv head, split); its warps take the group's query
/// heads. Workspace: partials [B*T*H][SPLITS][D + 2] f32, then counters
/// [B*T*HKV] u32.

template <class S, int SPLITS> __device__ void attentionDecode(const Args &a) {
  dependOnPrevious();
  constexpr int G = S::H / S::HKV, PER = AttnRow<S>::PER, STRIDE = S::D + 2;
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  i64 units = static_cast<i64>(a.batch) * a.tokens * S::HKV;
  float *part = static_cast<float *>(a.ws);
  unsigned *counters = reinterpret_cast<unsigned *>(part + static_cast<i64>(S::MAX_ROWS) * S::H * SPLITS * STRIDE);
  for (i64 u = blockIdx.x; u < units * SPLITS; u += gridDim.x) {
    SplitUnit w = splitUnit<S, SPLITS>(a, u);
    i64 split = w.split, unit = w.unit, kvh = w.kvh, bt = w.bt, t = w.t, b = w.b, qpos = w.qpos;
    i64 kBegin = w.kBegin, kEnd = w.kEnd;
    appendKV<S>(a, w, nullptr);
    for (int g = warp; g < G; g += warps) {
      i64 h = kvh * G + g;
      AttnRow<S> row;
      row.m = -kiln::inf();
      row.l = 0.0f;
#pragma unroll
      for (int j = 0; j < PER; ++j)
        row.acc[j] = 0.0f;
      if (qpos >= 0 && kBegin < kEnd)
        attendRange<S>(a, b, t, h, qpos, kBegin, kEnd, row);
      if (SPLITS == 1) {
        storeRow<S>(a, b, t, h, row);
        continue;
      }
      float *p = part + ((bt * S::H + h) * SPLITS + split) * STRIDE;
#pragma unroll
      for (int j = 0; j < PER; ++j)
        if (AttnRow<S>::live(lane, j))
          p[lane * PER + j] = row.acc[j];
      if (lane == 0) {
        p[S::D] = row.m;
        p[S::D + 1] = row.l;
      }
    }
    if (SPLITS > 1)
      combineSplits<S, SPLITS>(a, part, counters, unit, bt, b, t, kvh);
  }
}

/// Decode with many keys in flight: block (b, t, kv head, split) of 128
/// threads. TG = D / VEC lanes read one key (16-byte vectors), a warp covers
/// 32 / TG keys and the block KPB of them; each thread loads the K and V of
/// J keys before using any, so a chunk of KPB * J keys costs about one
/// memory round trip. Scores go through shared memory for the softmax (all
/// G query heads of the kv head at once); each thread accumulates P V for
/// its keys and vector, reduced over the keys at the end. Workspace and
/// split merge as in attentionDecode.
template <class S, int SPLITS, int VEC, int J> __device__ void attentionDecodeTiled(const Args &a) {
  typedef typename S::TC TC;
  typedef typename Raw<TC, VEC>::type RC;
  constexpr int THREADS = 128, WARPS = THREADS / 32, G = S::H / S::HKV, TG = S::D / VEC, KPW = 32 / TG;
  constexpr int KPB = WARPS * KPW, CH = KPB * J, STRIDE = S::D + 2;
  static_assert(S::D % VEC == 0 && 32 % TG == 0, "a key must split evenly over a warp's lanes");
  dependOnPrevious();
  __shared__ float sc[G][CH];
  __shared__ float sM[G], sL[G], sCorr[G];
  __shared__ float sRed[WARPS][G * S::D];
  __shared__ float sRope[S::ROPE != 0 ? S::ROT : 1]; // the row's cos, sin
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int piece = lane % TG, slot = warp * KPW + lane / TG;
  i64 units = static_cast<i64>(a.batch) * a.tokens * S::HKV;
  float *part = static_cast<float *>(a.ws);
  unsigned *counters = reinterpret_cast<unsigned *>(part + static_cast<i64>(S::MAX_ROWS) * S::H * SPLITS * STRIDE);
  const TC *cache = S::cache(a);
  const int *tables = S::blockTables(a);
  constexpr i64 V_OFFSET = static_cast<i64>(S::PAGE) * S::HKV * S::D; // K to V within a page
  // A kernel that appends reads what it wrote: through L2, not the
  // non-coherent path.
  auto loadCache = [&](i64 i) {
    if constexpr (S::APPEND)
      return loadRawCoherent<TC, VEC>(cache, i);
    else
      return loadRaw<TC, VEC>(cache, i);
  };
  for (i64 u = blockIdx.x; u < units * SPLITS; u += gridDim.x) {
    SplitUnit w = splitUnit<S, SPLITS>(a, u);
    i64 split = w.split, unit = w.unit, kvh = w.kvh, bt = w.bt, t = w.t, b = w.b, qpos = w.qpos;
    i64 kBegin = w.kBegin, kEnd = w.kEnd;
    if constexpr (S::ROPE != 0)
      if (qpos >= 0)
        ropeTable<S>(qpos, sRope);
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
    if (threadIdx.x < G) {
      sM[threadIdx.x] = -kiln::inf();
      sL[threadIdx.x] = 0.0f;
    }
    __syncthreads();
    for (i64 c0 = kBegin; c0 < kEnd; c0 += CH) {
      RC kr[J], vr[J];
      bool ok[J];
#pragma unroll
      for (int j = 0; j < J; ++j) {
        i64 s = c0 + slot + j * KPB;
        i64 at = s < kEnd ? cacheIndex<S::PAGE, S::HKV, S::D>(a, tables, b, s, 0, kvh, piece * VEC) : -1;
        ok[j] = at >= 0;
        if (ok[j]) {
          kr[j] = loadCache(at);
          vr[j] = loadCache(at + V_OFFSET);
        }
      }
#pragma unroll
      for (int j = 0; j < J; ++j) {
        float kf[VEC];
        if (ok[j])
          unpackRaw<TC, VEC>(kr[j], kf);
#pragma unroll
        for (int g = 0; g < G; ++g) {
          float dot = 0.0f;
          if (ok[j])
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
            sc[g][slot + j * KPB] = ok[j] ? x : -kiln::inf();
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
        if (!ok[j])
          continue;
        float vf[VEC];
        unpackRaw<TC, VEC>(vr[j], vf);
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
    // Sum over the keys: the warp's key slots by shuffles, then the warps.
#pragma unroll
    for (int g = 0; g < G; ++g)
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
#pragma unroll
        for (int o = TG; o < 32; o <<= 1)
          acc[g][v] += __shfl_xor_sync(0xffffffffu, acc[g][v], o);
        if (lane < TG)
          sRed[warp][g * S::D + piece * VEC + v] = acc[g][v];
      }
    __syncthreads();
    for (int e = threadIdx.x; e < G * S::D; e += THREADS) {
      float o = 0.0f;
#pragma unroll
      for (int w = 0; w < WARPS; ++w)
        o += sRed[w][e];
      int g = e / S::D, d = e % S::D;
      i64 h = kvh * G + g;
      if (SPLITS == 1) {
        S::store(a, b, t, h, d, sL[g] > 0.0f ? o / sL[g] : 0.0f);
      } else {
        float *p = part + ((bt * S::H + h) * SPLITS + split) * STRIDE;
        p[d] = o;
        if (d == 0) {
          p[S::D] = sM[g];
          p[S::D + 1] = sL[g];
        }
      }
    }
    if (SPLITS > 1)
      combineSplits<S, SPLITS>(a, part, counters, unit, bt, b, t, kvh);
    __syncthreads();
  }
}

} // namespace kiln
