// kiln device library: sampling on the GPU.
//
// One block per row of logits draws that row's next token as the host's
// sampler does (runtime/kernels/host/Sampling.cpp): penalties, then
// greedy, or temperature with top-k, top-p and min-p, and one uniform from
// Philox-4x32-10 keyed by the request's seed at the token's position -- so
// a request's draw depends on its own logits, seed and position only. The
// kept tokens are always a prefix of the total order (logit descending,
// lower id first on ties); the cut-offs are found by radix selection over
// the logits' ordered keys (three digits of 11, 11 and 10 bits, a
// 2048-bin histogram of counts or masses per digit), never by sorting the
// vocabulary. The
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

// Digits of the radix selection: 11, 11 and 10 bits of the ordered key
// (2048 bins a level: the top digit spreads a row's logits, sign and
// exponent and 3 bits of mantissa, over enough bins that the block's
// atomics rarely meet).
constexpr int kSampleBins = 2048;
__device__ __forceinline__ int sampleShift(int level) { return level == 0 ? 21 : level == 1 ? 10 : 0; }
__device__ __forceinline__ unsigned sampleFixed(int level) {
  return level == 0 ? 0u : level == 1 ? 0xFFE00000u : 0xFFFFFC00u;
}

/// Masses in fixed point, 2^40 to a token as likely as the most likely
/// (whose mass is 1): sums are exact integers, the same whatever order the
/// block adds them in; a token 2^-41 as likely counts 0 (the host's double
/// keeps it: at 128256 tokens, 6e-8 of the largest token's mass in all).
constexpr double kMassScale = 1099511627776.0; // 2^40
/// Rows up to this many tokens build their mass histograms from 14-bit
/// pieces: a token's mass is at most about 2^40, so each piece's sum over a
/// bin stays under 2^32.
constexpr i64 kPieceRows = i64(1) << 18;

/// The block's shared state while it samples a row.
struct SampleShared {
  union {
    struct {
      unsigned count[kSampleBins];
      u64 mass[kSampleBins];
    } h;
    // A mass histogram as three 14-bit pieces a bin, each added by a native
    // 32-bit shared atomic (a 64-bit atomicAdd on shared memory is a
    // compare-and-swap loop, and a row's logits crowd a few dozen bins):
    // exact for rows of up to 2^18 tokens (kPieceRows).
    unsigned piece[3][kSampleBins];
  };
  u64 warpTotal[32];
  u64 best;
  float red[33];
  unsigned chosenDigit, need, found;
  u64 above;
  int pick;
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

/// The exclusive prefix of `v` in thread order, and the block's total.
__device__ __forceinline__ u64 blockScanU64(u64 v, SampleShared &sh, u64 &total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  u64 incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    u64 x = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o)
      incl += x;
  }
  if (lane == 31)
    sh.warpTotal[warp] = incl;
  __syncthreads();
  u64 before = 0ull, all = 0ull;
  for (int w = 0; w < warps; ++w) {
    u64 t = sh.warpTotal[w];
    before += w < warp ? t : 0ull;
    all += t;
  }
  __syncthreads(); // read by all before the next call writes
  total = all;
  return before + incl - v;
}

__device__ __forceinline__ u64 blockSumU64(u64 v, SampleShared &sh) {
  u64 total;
  blockScanU64(v, sh, total);
  return total;
}

/// Ids a thread reads at once in every pass over a row (consecutive ids,
/// their loads issued before any is used): one block samples a row, and a
/// pass whose loads wait one after another is bound by their latency.
constexpr int kSampleVec = 4;

/// f(i, logit) for every id of the row x[0, n): the block reads
/// blockDim.x * kSampleVec ids at a time, thread t ids t * kSampleVec on.
template <class L, class F> __device__ __forceinline__ void forLogits(const L *x, i64 n, F f) {
  const i64 step = static_cast<i64>(blockDim.x) * kSampleVec;
  for (i64 base = static_cast<i64>(threadIdx.x) * kSampleVec; base < n; base += step) {
    float v[kSampleVec];
#pragma unroll
    for (int j = 0; j < kSampleVec; ++j)
      v[j] = base + j < n ? ldf(x, base + j) : 0.0f;
#pragma unroll
    for (int j = 0; j < kSampleVec; ++j)
      if (base + j < n)
        f(base + j, v[j]);
  }
}

/// Tiles of ids for firstCrossing: at most this many, each a whole number of
/// the block's reads (blockDim.x * kSampleVec ids); sh.mass holds every
/// warp's sum per tile ([warp][tile]).
constexpr int kCrossTiles = kSampleBins / 32;

/// The first id i, in id order, with w(i) > 0 and (the w of the ids before
/// it) + w(i) > target (compared as doubles), or -1 where no id passes;
/// `total` the sum of w over all ids and `last` the last id with w > 0.
/// w(i, logit) is given the id's logit. One pass over the ids sums w per
/// tile of ids (each warp its own slot, no atomics); the tile holding the
/// crossing is then scanned a block read at a time, each thread's ids in
/// order. `target` may depend on `total`: it is asked for (targetOf(total))
/// once the pass is done.
template <class L, class W, class Target>
__device__ i64 firstCrossing(const L *x, i64 n, W w, Target targetOf, SampleShared &sh, u64 &total, i64 &last) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const i64 chunk = static_cast<i64>(blockDim.x) * kSampleVec, chunks = (n + chunk - 1) / chunk;
  const i64 perTile = (chunks + kCrossTiles - 1) / kCrossTiles;
  const int tiles = static_cast<int>((chunks + perTile - 1) / perTile);
  i64 mineLast = -1;
  // This thread's ids of block read c: their w, and their sum.
  auto group = [&](i64 c, u64 (&e)[kSampleVec]) {
    const i64 base = c * chunk + static_cast<i64>(threadIdx.x) * kSampleVec;
    float v[kSampleVec];
#pragma unroll
    for (int j = 0; j < kSampleVec; ++j)
      v[j] = base + j < n ? ldf(x, base + j) : 0.0f;
    u64 s = 0ull;
#pragma unroll
    for (int j = 0; j < kSampleVec; ++j) {
      e[j] = base + j < n ? w(base + j, v[j]) : 0ull;
      if (e[j] > 0ull)
        mineLast = base + j;
      s += e[j];
    }
    return s;
  };
  for (int t = 0; t < tiles; ++t) {
    u64 acc = 0ull;
    const i64 end = (t + 1) * perTile < chunks ? (t + 1) * perTile : chunks;
    for (i64 c = t * perTile; c < end; ++c) {
      u64 e[kSampleVec];
      acc += group(c, e);
    }
    for (int o = 16; o > 0; o >>= 1)
      acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0)
      sh.h.mass[warp * kCrossTiles + t] = acc;
  }
  __syncthreads();
  u64 tileMass = 0ull;
  if (threadIdx.x < tiles)
    for (int wp = 0; wp < warps; ++wp)
      tileMass += sh.h.mass[wp * kCrossTiles + threadIdx.x];
  u64 tileBefore = blockScanU64(tileMass, sh, total);
  last = static_cast<i64>(blockMaxU64(static_cast<u64>(mineLast + 1), sh)) - 1;
  const double target = targetOf(total);
  if (threadIdx.x == 0)
    sh.pick = -1;
  __syncthreads();
  // The first tile whose running total passes the target (the totals only
  // grow: the crossing id is in it).
  if (threadIdx.x < tiles && tileMass > 0ull && static_cast<double>(tileBefore + tileMass) > target)
    atomicMin(reinterpret_cast<unsigned *>(&sh.pick), static_cast<unsigned>(threadIdx.x));
  __syncthreads();
  const int crossTile = sh.pick;
  __syncthreads();
  if (crossTile < 0)
    return -1;
  if (threadIdx.x == crossTile)
    sh.above = tileBefore;
  if (threadIdx.x == 0)
    sh.pick = -1;
  __syncthreads();
  u64 carry = sh.above;
  const i64 end = (crossTile + 1) * perTile < chunks ? (crossTile + 1) * perTile : chunks;
  for (i64 c = crossTile * perTile; c < end; ++c) {
    u64 e[kSampleVec];
    const u64 s = group(c, e);
    u64 read;
    u64 run = carry + blockScanU64(s, sh, read);
    if (s > 0ull && static_cast<double>(run + s) > target) {
      const i64 base = c * chunk + static_cast<i64>(threadIdx.x) * kSampleVec;
#pragma unroll
      for (int j = 0; j < kSampleVec; ++j) {
        if (e[j] > 0ull && static_cast<double>(run + e[j]) > target) {
          atomicMin(reinterpret_cast<unsigned *>(&sh.pick), static_cast<unsigned>(base + j));
          break;
        }
        run += e[j];
      }
    }
    __syncthreads();
    carry += read;
    if (sh.pick >= 0)
      break;
  }
  const i64 pick = sh.pick;
  __syncthreads();
  return pick;
}

/// The cut-off of a prefix of the total order (key descending, then id
/// ascending) among the tokens `in` admits: by count, the first `want`
/// tokens; by mass (fixed point), the fewest whose masses reach `want`.
/// Sets the cut's key and the last id kept at that key (the tokens kept:
/// key > cutKey, or key == cutKey and id <= cutId). False where the tokens
/// admitted hold less than `want` (everything they hold is kept). key, in
/// and mass take an id and its logit.
template <bool ByMass, class L, class Key, class In, class Mass>
__device__ bool selectPrefix(const L *x, i64 n, double want, Key key, In in, Mass mass, SampleShared &sh,
                             unsigned &cutKey, i64 &cutId) {
  unsigned prefix = 0u;
  u64 above = 0ull; // what the tokens above the current prefix hold
  const int per = kSampleBins / blockDim.x;
  constexpr int kMaxPer = 8; // bins a thread combines from pieces (blockDim.x >= 256)
  const bool pieces = ByMass && n <= kPieceRows && per <= kMaxPer;
  for (int level = 0; level < 3; ++level) {
    const int shift = sampleShift(level);
    const unsigned fixed = sampleFixed(level);
    for (int d = threadIdx.x; d < kSampleBins; d += blockDim.x) {
      if (pieces)
        sh.piece[0][d] = sh.piece[1][d] = sh.piece[2][d] = 0u;
      else if (ByMass)
        sh.h.mass[d] = 0ull;
      else
        sh.h.count[d] = 0u;
    }
    __syncthreads();
    forLogits(x, n, [&](i64 i, float v) {
      if (!in(i, v))
        return;
      unsigned k = key(i, v);
      if ((k & fixed) != prefix)
        return;
      unsigned d = (k >> shift) & (level == 2 ? 1023u : 2047u);
      if (!ByMass) {
        atomicAdd(&sh.h.count[d], 1u);
      } else if (pieces) {
        const u64 m = mass(i, v);
        const unsigned p0 = static_cast<unsigned>(m & 0x3FFFull), p1 = static_cast<unsigned>((m >> 14) & 0x3FFFull),
                       p2 = static_cast<unsigned>(m >> 28);
        if (p0)
          atomicAdd(&sh.piece[0][d], p0);
        if (p1)
          atomicAdd(&sh.piece[1][d], p1);
        if (p2)
          atomicAdd(&sh.piece[2][d], p2);
      } else {
        atomicAdd(&sh.h.mass[d], mass(i, v));
      }
    });
    __syncthreads();
    if (pieces) {
      // Each thread's bins from their pieces, written back as 64-bit masses
      // once every thread has read (the two layouts share the memory).
      u64 whole[kMaxPer];
      for (int j = 0; j < per; ++j) {
        int d = kSampleBins - 1 - threadIdx.x * per - j;
        whole[j] = static_cast<u64>(sh.piece[0][d]) + (static_cast<u64>(sh.piece[1][d]) << 14) +
                   (static_cast<u64>(sh.piece[2][d]) << 28);
      }
      __syncthreads();
      for (int j = 0; j < per; ++j)
        sh.h.mass[kSampleBins - 1 - threadIdx.x * per - j] = whole[j];
      __syncthreads();
    }
    // Thread t holds `per` bins from the top down; the first whose running
    // total from the top reaches `want` holds the digit.
    u64 mine = 0ull;
    for (int j = 0; j < per; ++j) {
      int d = kSampleBins - 1 - threadIdx.x * per - j;
      mine += ByMass ? sh.h.mass[d] : static_cast<u64>(sh.h.count[d]);
    }
    u64 total;
    u64 before = above + blockScanU64(mine, sh, total);
    if (threadIdx.x == 0)
      sh.found = 0u;
    __syncthreads();
    if (static_cast<double>(before) < want && static_cast<double>(before + mine) >= want) {
      u64 run = before;
      for (int j = 0; j < per; ++j) {
        int d = kSampleBins - 1 - threadIdx.x * per - j;
        u64 here = ByMass ? sh.h.mass[d] : static_cast<u64>(sh.h.count[d]);
        if (here > 0ull && static_cast<double>(run + here) >= want) {
          sh.chosenDigit = static_cast<unsigned>(d);
          sh.above = run;
          sh.found = 1u;
          break;
        }
        run += here;
      }
    }
    __syncthreads();
    if (!sh.found)
      return false;
    above = sh.above;
    prefix |= sh.chosenDigit << shift;
    __syncthreads();
  }
  cutKey = prefix;
  // The tokens at the cut's key are equal: the lowest ids of them, as many
  // as reach `want`.
  u64 ties = 0ull, each = 0ull;
  forLogits(x, n, [&](i64 i, float v) {
    if (in(i, v) && key(i, v) == prefix) {
      ++ties;
      if (ByMass)
        each = mass(i, v);
    }
  });
  ties = blockSumU64(ties, sh);
  if (ByMass)
    each = blockMaxU64(each, sh); // every tie has the same mass
  double rest = want - static_cast<double>(above);
  u64 need = ByMass ? (each > 0ull ? static_cast<u64>(ceil(rest / static_cast<double>(each))) : 1ull)
                    : static_cast<u64>(ceil(rest));
  need = need < 1ull ? 1ull : need > ties ? ties : need;
  // The need-th lowest id among the ties: the first whose running count
  // passes need - 1.
  u64 tieCount;
  i64 lastTie;
  cutId = firstCrossing(
      x, n, [&](i64 i, float v) { return in(i, v) && key(i, v) == prefix ? 1ull : 0ull; },
      [&](u64) { return static_cast<double>(need - 1ull); }, sh, tieCount, lastTie);
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
    // An id's value after penalties, from its logit.
    auto value = [&](i64 i, float raw) -> float {
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
      return raw;
    };
    // The argmax after penalties, the raw logits' maximum, NaN.
    u64 best = 0ull, rawBest = 0ull;
    bool nan = false;
    forLogits(x, n, [&](i64 i, float raw) {
      float v = value(i, raw);
      nan |= raw != raw;
      u64 c = packArgmax(v, i), rc = packArgmax(raw, i);
      best = c > best ? c : best;
      rawBest = rc > rawBest ? rc : rawBest;
    });
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
      // exp(v / t - max / t) as the host's double computes it: the exponent
      // in double, split into a float and its remainder (expf of the float,
      // times 1 + the remainder), in fixed point.
      const double invT = 1.0 / static_cast<double>(R.temperature);
      const double m = static_cast<double>(value(top, ldf(x, top))) * invT;
      auto key = [&](i64 i, float raw) { return orderedKey(value(i, raw)); };
      auto mass = [&](i64 i, float raw) -> u64 {
        double arg = static_cast<double>(value(i, raw)) * invT - m;
        if (!(arg > -200.0)) // below 2^-288 of the largest, banned (-inf)
          return 0ull;
        float hi = static_cast<float>(arg), lo = static_cast<float>(arg - static_cast<double>(hi));
        return static_cast<u64>(static_cast<double>(expf(hi)) * (1.0 + static_cast<double>(lo)) * kMassScale + 0.5);
      };
      // top-k by count, then top-p by mass within it, then min-p.
      unsigned kKey = 0u;
      i64 kId = n;
      if (R.top_k > 0 && R.top_k < n)
        selectPrefix<false>(x, n, static_cast<double>(R.top_k), key, [](i64, float) { return true; }, mass, sh,
                            kKey, kId);
      auto inK = [&](i64 i, float raw) {
        unsigned k = key(i, raw);
        return k > kKey || (k == kKey && i <= kId);
      };
      unsigned pKey = kKey;
      i64 pId = kId;
      if (R.top_p < 1.0f) {
        u64 s = 0ull;
        forLogits(x, n, [&](i64 i, float raw) {
          if (inK(i, raw))
            s += mass(i, raw);
        });
        s = blockSumU64(s, sh);
        selectPrefix<true>(x, n, static_cast<double>(R.top_p) * static_cast<double>(s), key, inK, mass, sh, pKey,
                           pId);
      }
      // min_p of the largest's mass (2^40): the first kept always.
      const u64 minMass = static_cast<u64>(static_cast<double>(R.min_p) * kMassScale);
      auto kept = [&](i64 i, float raw) -> u64 {
        unsigned k = key(i, raw);
        if (!(k > pKey || (k == pKey && i <= pId)) || !inK(i, raw))
          return 0ull;
        u64 e = mass(i, raw);
        return i == top || e >= minMass ? e : 0ull;
      };
      // The first id whose running mass (in id order) passes the uniform
      // times the kept mass; the last one kept where rounding leaves the
      // target above them all.
      u64 total;
      i64 last;
      const i64 pick = firstCrossing(
          x, n, kept, [&](u64 t) { return counterUniform(R.seed, R.position) * static_cast<double>(t); }, sh,
          total, last);
      token = pick >= 0 ? pick : last;
      __syncthreads();
    }
    float lse = 0.0f;
    if (R.flags & kSampleLogprobs) {
      float z = 0.0f;
      forLogits(x, n, [&](i64, float raw) { z += expf(raw - rawMax); });
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
      unsigned cKey = 0u;
      i64 cId = n;
      const int want = static_cast<int>(min(static_cast<i64>(R.top_n), n));
      selectPrefix<false>(x, n, static_cast<double>(want), [](i64, float raw) { return orderedKey(raw); },
                          [](i64, float) { return true; }, [](i64, float) { return 0ull; }, sh, cKey, cId);
      if (threadIdx.x == 0)
        sh.need = 0u;
      __syncthreads();
      SampleTop *out = tops + r * a.pages;
      forLogits(x, n, [&](i64 i, float raw) {
        unsigned k = orderedKey(raw);
        if (k > cKey || (k == cKey && i <= cId)) {
          unsigned slot = atomicAdd(&sh.need, 1u);
          if (slot < static_cast<unsigned>(want))
            out[slot].token = i;
        }
      });
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
