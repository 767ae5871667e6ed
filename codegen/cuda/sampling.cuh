// kiln device library: sampling on the GPU.
//
// One block per row of logits draws that row's next token as the host's
// sampler does (runtime/kernels/host/Sampling.cpp): penalties, then
// greedy, or temperature with top-k, top-p and min-p, and one uniform from
// Philox-4x32-10 keyed by the request's seed at the token's position -- so
// a request's draw depends on its own logits, seed and position only. The
// kept tokens are always a prefix of the total order (logit descending,
// lower id first on ties); the cut-offs are found by radix selection over
// the logits' ordered keys (four 8-bit digits, a 256-bin histogram of
// counts and masses per digit), never by sorting the vocabulary. The
// chosen token's log-probability and the top-N log-probabilities are those
// of the model's own logits (before penalties), as on the host.
//
// The host's arithmetic is double, this kernel's float: a draw within a
// float's rounding of a boundary may differ; test/gpu counts agreement.

namespace kiln {

// ---- sampling ----------------------------------------------------------------

/// A row's parameters (runtime/core/Sampler.h mirrors this layout).
struct SampleRow {
  float temperature, top_p, min_p, repetition, frequency, presence;
  int top_k;     // 0: all
  int pen_begin; // the row's penalty entries: [pen_begin, pen_end)
  int pen_end;
  int top_n;     // top log-probabilities wanted (<= the output's stride)
  u64 seed, position;
  int flags;     // kSampleLogprobs
  int pad;
};
/// A token the row's penalties touch, entries sorted by token within a row.
struct SamplePenalty {
  int token;
  int count; // times in the output (frequency and presence penalties)
  int flags; // kPenaltySeen: in the prompt or output (repetition); kPenaltyBan: -inf
  float value;
};
struct SampleTop {
  i64 token;
  float logprob;
  int pad;
};
constexpr int kSampleLogprobs = 1;
constexpr int kPenaltySeen = 1, kPenaltyBan = 2;

/// Philox-4x32-10 (Salmon et al., SC'11) and the uniform in [0, 1) the host
/// draws from it (host::counterUniform): bit for bit the same.
__device__ __forceinline__ double counterUniform(u64 seed, u64 position) {
  unsigned c0 = static_cast<unsigned>(position), c1 = static_cast<unsigned>(position >> 32), c2 = 0u, c3 = 0u;
  unsigned k0 = static_cast<unsigned>(seed), k1 = static_cast<unsigned>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    unsigned lo0 = 0xD2511F53u * c0, hi0 = __umulhi(0xD2511F53u, c0);
    unsigned lo1 = 0xCD9E8D57u * c2, hi1 = __umulhi(0xCD9E8D57u, c2);
    unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
  }
  u64 bits = (static_cast<u64>(c0) << 32) | c1;
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// The block's shared state while it samples a row.
struct SampleShared {
  unsigned count[256];
  float mass[256];
  float red[33];
  u64 best;
  unsigned chosenDigit, need, found;
  float above;
  int pick;
  unsigned warpCount[32];
  float warpMass[32];
};

__device__ __forceinline__ u64 blockMaxU64(u64 v, SampleShared &sh) {
  for (int o = 16; o > 0; o >>= 1) {
    u64 other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  if (threadIdx.x == 0)
    sh.best = 0ull;
  __syncthreads();
  if ((threadIdx.x & 31) == 0)
    atomicMax(&sh.best, v);
  __syncthreads();
  u64 r = sh.best;
  __syncthreads(); // read by all before the next call clears it
  return r;
}

/// The cut-off of a prefix of the total order (key descending, then id
/// ascending) among the tokens `in` admits: by count, the first `want`
/// tokens; by mass, the fewest whose masses reach `want`. Returns the cut's
/// key and the last id kept at that key (the tokens kept: key > cutKey, or
/// key == cutKey and id <= cutId). False where the tokens admitted hold
/// less than `want` (everything they hold is kept).
template <bool ByMass, class Key, class In, class Mass>
__device__ bool selectPrefix(i64 n, float want, Key key, In in, Mass mass, SampleShared &sh, unsigned &cutKey,
                             i64 &cutId) {
  unsigned prefix = 0u, fixed = 0u;
  float above = 0.0f; // what the tokens above the current prefix hold
  for (int level = 0; level < 4; ++level) {
    const int shift = 24 - 8 * level;
    for (int d = threadIdx.x; d < 256; d += blockDim.x)
      sh.count[d] = 0u, sh.mass[d] = 0.0f;
    __syncthreads();
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
      if (!in(i))
        continue;
      unsigned k = key(i);
      if ((k & fixed) != prefix)
        continue;
      unsigned d = (k >> shift) & 255u;
      if (ByMass)
        atomicAdd(&sh.mass[d], mass(i));
      else
        atomicAdd(&sh.count[d], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      sh.found = 0u;
      for (int d = 255; d >= 0; --d) {
        float here = ByMass ? sh.mass[d] : static_cast<float>(sh.count[d]);
        if (above + here >= want && here > 0.0f) {
          sh.chosenDigit = static_cast<unsigned>(d);
          sh.found = 1u;
          break;
        }
        above += here;
      }
      sh.above = above;
    }
    __syncthreads();
    if (!sh.found)
      return false;
    above = sh.above;
    prefix |= sh.chosenDigit << shift;
    fixed |= 255u << shift;
    __syncthreads();
  }
  cutKey = prefix;
  // The tokens at the cut's key are equal: the lowest ids of them, as many
  // as reach `want`.
  unsigned ties = 0u;
  float each = 0.0f;
  for (i64 i = threadIdx.x; i < n; i += blockDim.x)
    if (in(i) && key(i) == prefix) {
      ++ties;
      if (ByMass)
        each = mass(i);
    }
  // Every tie has the same mass (non-negative: its bits order as it does).
  const float total = blockSum(static_cast<float>(ties), sh.red);
  const float e = ByMass ? __uint_as_float(static_cast<unsigned>(blockMaxU64(__float_as_uint(each), sh))) : 0.0f;
  unsigned need;
  if (ByMass)
    need = e > 0.0f ? static_cast<unsigned>(ceilf((want - above) / e)) : 1u;
  else
    need = static_cast<unsigned>(want - above);
  need = max(1u, min(need, static_cast<unsigned>(total)));
  // The need-th lowest id among the ties, a tile of ids at a time.
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  unsigned seen = 0u;
  for (i64 base = 0; base < n; base += blockDim.x) {
    i64 i = base + threadIdx.x;
    bool tie = i < n && in(i) && key(i) == prefix;
    unsigned votes = __ballot_sync(0xffffffffu, tie);
    if (lane == 0)
      sh.warpCount[warp] = __popc(votes);
    __syncthreads();
    unsigned before = seen;
    for (int w = 0; w < warp; ++w)
      before += sh.warpCount[w];
    before += __popc(votes & ((1u << lane) - 1u));
    if (tie && before + 1u == need)
      sh.pick = static_cast<int>(i);
    unsigned tile = 0u;
    for (int w = 0; w < warps; ++w)
      tile += sh.warpCount[w];
    __syncthreads();
    seen += tile;
    if (seen >= need)
      break;
  }
  __syncthreads();
  cutId = sh.pick;
  return true;
}

/// The rows' next tokens: p[0] logits [rows, n] (L), p[1] SampleRow [rows],
/// p[2] SamplePenalty entries, p[3] tokens [rows] (i64; -1 where the row's
/// logits hold NaN), p[4] log-probabilities [rows] (f32), p[5] SampleTop
/// [rows, a.pages]; a.batch rows, a.tokens = n. Dynamic shared memory: a
/// bitmap of the penalised tokens, n / 8 bytes rounded up to words.
template <class L> __device__ void sampleRows(const Args &a) {
  dependOnPrevious();
  __shared__ SampleShared sh;
  extern __shared__ unsigned penalisedBits[];
  const L *logits = static_cast<const L *>(a.p[0]);
  const SampleRow *rows = static_cast<const SampleRow *>(a.p[1]);
  SamplePenalty *penalties = static_cast<SamplePenalty *>(a.p[2]);
  i64 *tokens = static_cast<i64 *>(a.p[3]);
  float *logprobs = static_cast<float *>(a.p[4]);
  SampleTop *tops = static_cast<SampleTop *>(a.p[5]);
  const i64 n = a.tokens;
  const int words = static_cast<int>((n + 31) / 32);
  for (i64 r = blockIdx.x; r < a.batch; r += gridDim.x) {
    const SampleRow R = rows[r];
    const L *x = logits + r * n;
    const bool penalised = R.pen_end > R.pen_begin;
    // The penalised tokens: a bit each, and their values after penalties.
    if (penalised) {
      for (int w = threadIdx.x; w < words; w += blockDim.x)
        penalisedBits[w] = 0u;
      __syncthreads();
      for (int e = R.pen_begin + threadIdx.x; e < R.pen_end; e += blockDim.x) {
        SamplePenalty &p = penalties[e];
        if (p.token < 0 || p.token >= n)
          continue;
        float l = ldf(x, p.token);
        if (p.flags & kPenaltySeen)
          l = l > 0.0f ? l / R.repetition : l * R.repetition;
        if (p.count > 0)
          l -= R.frequency * static_cast<float>(p.count) + R.presence;
        if (p.flags & kPenaltyBan)
          l = -inf();
        p.value = l;
        atomicOr(&penalisedBits[p.token >> 5], 1u << (p.token & 31));
      }
      __syncthreads();
    }
    auto value = [&](i64 i) -> float {
      if (penalised && (penalisedBits[i >> 5] >> (i & 31) & 1u)) {
        int lo = R.pen_begin, hi = R.pen_end - 1;
        while (lo < hi) {
          int mid = (lo + hi) >> 1;
          if (penalties[mid].token < i)
            lo = mid + 1;
          else
            hi = mid;
        }
        return penalties[lo].value;
      }
      return ldf(x, i);
    };
    // The argmax after penalties, the raw logits' maximum, NaN.
    u64 best = 0ull, rawBest = 0ull;
    bool nan = false;
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
      float raw = ldf(x, i), v = value(i);
      nan |= raw != raw;
      u64 c = packArgmax(v, i), rc = packArgmax(raw, i);
      best = c > best ? c : best;
      rawBest = rc > rawBest ? rc : rawBest;
    }
    if (__syncthreads_or(nan)) {
      if (threadIdx.x == 0)
        tokens[r] = -1;
      continue;
    }
    best = blockMaxU64(best, sh);
    rawBest = blockMaxU64(rawBest, sh);
    const i64 top = unpackArgmaxIndex(best);
    const float rawMax = ldf(x, unpackArgmaxIndex(rawBest));
    i64 token = top;
    if (R.temperature > 0.0f && R.top_k != 1) {
      const float t = R.temperature, m = value(top) / t;
      auto key = [&](i64 i) { return orderedKey(value(i)); };
      auto mass = [&](i64 i) { return expf(value(i) / t - m); };
      // top-k by count, then top-p by mass within it, then min-p.
      unsigned kKey = 0u;
      i64 kId = n;
      if (R.top_k > 0 && R.top_k < n)
        selectPrefix<false>(n, static_cast<float>(R.top_k), key, [](i64) { return true; }, mass, sh, kKey, kId);
      auto inK = [&](i64 i) {
        unsigned k = key(i);
        return k > kKey || (k == kKey && i <= kId);
      };
      float s = 0.0f;
      for (i64 i = threadIdx.x; i < n; i += blockDim.x)
        if (inK(i))
          s += mass(i);
      s = blockSum(s, sh.red);
      unsigned pKey = kKey;
      i64 pId = kId;
      if (R.top_p < 1.0f)
        if (!selectPrefix<true>(n, R.top_p * s, key, inK, mass, sh, pKey, pId))
          pKey = kKey, pId = kId;
      const float minP = R.min_p;
      auto kept = [&](i64 i) {
        unsigned k = key(i);
        if (!(k > pKey || (k == pKey && i <= pId)) || !inK(i))
          return 0.0f;
        float e = mass(i);
        return i == top || e >= minP ? e : 0.0f;
      };
      float total = 0.0f;
      for (i64 i = threadIdx.x; i < n; i += blockDim.x)
        total += kept(i);
      total = blockSum(total, sh.red);
      const float target = static_cast<float>(counterUniform(R.seed, R.position) * static_cast<double>(total));
      // The first id whose running mass (in id order) passes the target;
      // the last one kept where rounding leaves the target above them all.
      const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
      if (threadIdx.x == 0)
        sh.pick = -1;
      float carry = 0.0f;
      i64 last = -1;
      for (i64 base = 0; base < n; base += blockDim.x) {
        i64 i = base + threadIdx.x;
        float w = i < n ? kept(i) : 0.0f;
        if (w > 0.0f)
          last = i;
        float incl = w;
        for (int o = 1; o < 32; o <<= 1) {
          float v = __shfl_up_sync(0xffffffffu, incl, o);
          if (lane >= o)
            incl += v;
        }
        if (lane == 31)
          sh.warpMass[warp] = incl;
        __syncthreads();
        float before = carry;
        for (int w2 = 0; w2 < warp; ++w2)
          before += sh.warpMass[w2];
        float tile = 0.0f;
        for (int w2 = 0; w2 < warps; ++w2)
          tile += sh.warpMass[w2];
        if (w > 0.0f && before + incl > target)
          atomicMin(reinterpret_cast<unsigned *>(&sh.pick), static_cast<unsigned>(i));
        __syncthreads();
        carry += tile;
        if (sh.pick >= 0)
          break;
      }
      if (sh.pick >= 0) {
        token = sh.pick;
      } else {
        u64 l = blockMaxU64(static_cast<u64>(last + 1), sh);
        token = static_cast<i64>(l) - 1;
      }
      __syncthreads();
    }
    float lse = 0.0f;
    if (R.flags & kSampleLogprobs) {
      float z = 0.0f;
      for (i64 i = threadIdx.x; i < n; i += blockDim.x)
        z += expf(ldf(x, i) - rawMax);
      lse = rawMax + logf(blockSum(z, sh.red));
    }
    if (threadIdx.x == 0) {
      tokens[r] = token;
      if (R.flags & kSampleLogprobs)
        logprobs[r] = ldf(x, token) - lse;
    }
    if ((R.flags & kSampleLogprobs) && R.top_n > 0) {
      // The top_n raw logits: the cut by count, then the tokens above it in
      // order (top_n is small: one thread sorts them).
      auto rawKey = [&](i64 i) { return orderedKey(ldf(x, i)); };
      unsigned cKey = 0u;
      i64 cId = n;
      const int want = static_cast<int>(min(static_cast<i64>(R.top_n), n));
      selectPrefix<false>(n, static_cast<float>(want), rawKey, [](i64) { return true; },
                          [](i64) { return 0.0f; }, sh, cKey, cId);
      if (threadIdx.x == 0)
        sh.need = 0u;
      __syncthreads();
      SampleTop *out = tops + r * a.pages;
      for (i64 i = threadIdx.x; i < n; i += blockDim.x) {
        unsigned k = rawKey(i);
        if (k > cKey || (k == cKey && i <= cId)) {
          unsigned slot = atomicAdd(&sh.need, 1u);
          if (slot < static_cast<unsigned>(want))
            out[slot].token = i;
        }
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        for (int j = 0; j < want; ++j) // insertion sort: value descending, id ascending
          for (int k = j; k > 0; --k) {
            u64 a0 = packArgmax(ldf(x, out[k - 1].token), out[k - 1].token);
            u64 a1 = packArgmax(ldf(x, out[k].token), out[k].token);
            if (a1 <= a0)
              break;
            i64 tmp = out[k].token;
            out[k].token = out[k - 1].token;
            out[k - 1].token = tmp;
          }
        for (int j = 0; j < want; ++j)
          out[j].logprob = ldf(x, out[j].token) - lse;
      }
    }
    __syncthreads();
  }
}

} // namespace kiln
