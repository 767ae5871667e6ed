// kiln device library: the kernel skeletons every generated kernel
// specialises. codegen/KernelEmitter prepends this file to each kernel's
// source, so a kernel's source is self-contained (the engine stores it and
// the runtime can re-JIT it for another GPU with NVRTC alone).
//
// A generated kernel defines `struct S` (shapes as constants, pointers and
// the fused body's element functions) and calls one skeleton:
//
//   extern "C" __global__ void NAME(kiln::Args a) { kiln::gemv<S, ...>(a); }
//
// Every skeleton is correct for any grid (grid-stride loops), so the runtime
// may size grids for the actual step. Arithmetic is in f32 (f64 for rope
// angles), loads and stores in the buffers' dtypes, as the host kernels do.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

namespace kiln {

typedef long long i64;
typedef unsigned long long u64;

__device__ __forceinline__ float inf() { return __int_as_float(0x7f800000); }

/// The one kernel parameter. `p` holds the launch's buffers in operand
/// order (inputs, then outputs); `ws` a zeroed workspace that kernels leave
/// zeroed; the rest are the step's dynamic sizes and the launch's KV layer.
struct Args {
  void *p[16];
  void *ws;
  int batch, tokens, pages, max_blocks, layer, pad0;
};

// ---- programmatic dependent launch ------------------------------------------
//
// On sm_90 the runtime launches a kernel while the previous one finishes.
// Every skeleton calls dependOnPrevious() before it touches any buffer but
// the weights: it returns once the previous kernel has completed and its
// writes are visible. No kernel triggers its dependents early
// (griddepcontrol.launch_dependents): the next kernel launches as the
// blocks of this one exit. Measured on the H100 (1B shape, bench/NOTES.md
// item 14): a trigger right after the wait made the step 3% slower than
// no overlap at all (the waiting blocks of the next kernel sit on the SMs
// the GEMV streams with), a trigger after each GEMV's main loop was even
// with it, and none was 1.5% faster. Without the launch attribute the wait
// is a no-op.

__device__ __forceinline__ void dependOnPrevious() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// ---- element access -------------------------------------------------------

__device__ __forceinline__ float ldf(const float *p, i64 i) { return p[i]; }
__device__ __forceinline__ float ldf(const __nv_bfloat16 *p, i64 i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ float ldf(const __half *p, i64 i) { return __half2float(p[i]); }
__device__ __forceinline__ float ldf(const double *p, i64 i) { return static_cast<float>(p[i]); }
__device__ __forceinline__ i64 ldi(const i64 *p, i64 i) { return p[i]; }
__device__ __forceinline__ i64 ldi(const int *p, i64 i) { return p[i]; }
__device__ __forceinline__ i64 ldi(const signed char *p, i64 i) { return p[i]; }
__device__ __forceinline__ i64 ldi(const bool *p, i64 i) { return p[i] ? 1 : 0; }

__device__ __forceinline__ void stv(float *p, i64 i, float v) { p[i] = v; }
__device__ __forceinline__ void stv(__nv_bfloat16 *p, i64 i, float v) { p[i] = __float2bfloat16(v); }
__device__ __forceinline__ void stv(__half *p, i64 i, float v) { p[i] = __float2half(v); }
__device__ __forceinline__ void stv(double *p, i64 i, float v) { p[i] = v; }
__device__ __forceinline__ void stv(i64 *p, i64 i, i64 v) { p[i] = v; }
__device__ __forceinline__ void stv(int *p, i64 i, i64 v) { p[i] = static_cast<int>(v); }
__device__ __forceinline__ void stv(signed char *p, i64 i, i64 v) { p[i] = static_cast<signed char>(v); }
__device__ __forceinline__ void stv(bool *p, i64 i, i64 v) { p[i] = v != 0; }

/// `v` rounded to storage type T and back: what a tensor of T would hold.
template <typename T> __device__ __forceinline__ float roundTo(float v) { return v; }
template <> __device__ __forceinline__ float roundTo<__nv_bfloat16>(float v) {
  return __bfloat162float(__float2bfloat16(v));
}
template <> __device__ __forceinline__ float roundTo<__half>(float v) {
  return __half2float(__float2half(v));
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float geluTanh(float x) {
  return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- reductions -----------------------------------------------------------

__device__ __forceinline__ float warpSum(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warpMax(float v) {
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
/// Sum over the block; every thread gets it. `red` holds 33 floats.
__device__ __forceinline__ float blockSum(float v, float *red) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0)
    red[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float s = lane < warps ? red[lane] : 0.0f;
    s = warpSum(s);
    if (lane == 0)
      red[32] = s;
  }
  __syncthreads();
  return red[32];
}

/// A float as an unsigned key that orders as the floats do.
__device__ __forceinline__ unsigned orderedKey(float f) {
  unsigned u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
/// (value, index) packed so that a larger pack is a larger value, or the
/// same value at a smaller index: the first maximum wins, as in argmax.
__device__ __forceinline__ u64 packArgmax(float v, i64 idx) {
  return (static_cast<u64>(orderedKey(v)) << 32) | (0xffffffffull - static_cast<u64>(idx));
}
__device__ __forceinline__ i64 unpackArgmaxIndex(u64 p) {
  return static_cast<i64>(0xffffffffull - (p & 0xffffffffull));
}

/// The grid-wide argmax finish: each block has folded its candidates into
/// `best[m]` (atomicMax); the last block to arrive writes the indices and
/// resets `best` and the counter to zero, so the workspace stays zeroed
/// (and CUDA graphs can replay the launch).
__device__ __forceinline__ void finishArgmax(u64 *best, unsigned *counter, i64 rows, i64 *out) {
  __shared__ bool last;
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0)
    last = atomicAdd(counter, 1u) == gridDim.x * gridDim.y * gridDim.z - 1;
  __syncthreads();
  if (!last)
    return;
  __threadfence();
  for (i64 m = threadIdx.x; m < rows; m += blockDim.x)
    out[m] = unpackArgmaxIndex(atomicExch(best + m, 0ull));
  if (threadIdx.x == 0)
    *counter = 0;
}

// ---- vector loads ---------------------------------------------------------

template <int BYTES> struct VecOf;
template <> struct VecOf<16> { typedef uint4 type; };
template <> struct VecOf<8> { typedef uint2 type; };
template <> struct VecOf<4> { typedef unsigned type; };
template <> struct VecOf<2> { typedef unsigned short type; };
template <> struct VecOf<1> { typedef unsigned char type; };

/// Elements of T in one load of at most 16 bytes, of VEC wanted.
template <typename T, int VEC> struct Piece {
  static constexpr int value = VEC * sizeof(T) > 16 ? static_cast<int>(16 / sizeof(T)) : VEC;
};

/// VEC consecutive elements of T at p[i] (aligned), converted to float; in
/// 16-byte loads when they span more (f32 activations beside bf16 weights).
template <typename T, int VEC>
__device__ __forceinline__ void loadVec(const T *p, i64 i, float (&out)[VEC]) {
  constexpr int PER = Piece<T, VEC>::value;
  typedef typename VecOf<PER * sizeof(T)>::type V;
#pragma unroll
  for (int c = 0; c < VEC; c += PER) {
    V raw = __ldg(reinterpret_cast<const V *>(p + i + c));
    const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
    for (int j = 0; j < PER; ++j)
      out[c + j] = ldf(e, j);
  }
}
template <>
__device__ __forceinline__ void loadVec<__nv_bfloat16, 1>(const __nv_bfloat16 *p, i64 i, float (&out)[1]) {
  out[0] = __bfloat162float(p[i]);
}
template <>
__device__ __forceinline__ void loadVec<__half, 1>(const __half *p, i64 i, float (&out)[1]) {
  out[0] = __half2float(p[i]);
}
template <>
__device__ __forceinline__ void loadVec<float, 1>(const float *p, i64 i, float (&out)[1]) {
  out[0] = p[i];
}

// ---- row norms (prologues and the norm family) -----------------------------

/// Mean (layer norm only) and 1/sqrt(var + eps) of row `m` of S's input,
/// computed by the whole block.
template <class S>
__device__ __forceinline__ void rowStats(const Args &a, i64 m, float *red, float &mean, float &rs) {
  float s = 0.0f;
  mean = 0.0f;
  if (S::NORM == 2) {
    for (i64 k = threadIdx.x; k < S::K; k += blockDim.x)
      s += S::x(a, m, k);
    mean = blockSum(s, red) / static_cast<float>(S::K);
    s = 0.0f;
  }
  for (i64 k = threadIdx.x; k < S::K; k += blockDim.x) {
    float v = S::x(a, m, k) - mean;
    s += v * v;
  }
  rs = rsqrtf(blockSum(s, red) / static_cast<float>(S::K) + S::EPS);
}

/// Row `m`, element `k` after the norm, rounded to the activation dtype as
/// the unfused norm would store it.
template <class S>
__device__ __forceinline__ float normed(const Args &a, i64 m, i64 k, float mean, float rs) {
  float v = (S::x(a, m, k) - mean) * rs * S::gamma(a, k);
  if (S::NORM == 2)
    v += S::beta(a, k);
  return roundTo<typename S::TA>(v);
}

/// The norm family: one block per row (grid-stride), out = S::epi(norm(x)).
template <class S> __device__ void normRows(const Args &a) {
  __shared__ float red[33];
  dependOnPrevious();
  i64 rows = S::rows(a);
  for (i64 m = blockIdx.x; m < rows; m += gridDim.x) {
    float mean, rs;
    rowStats<S>(a, m, red, mean, rs);
    for (i64 k = threadIdx.x; k < S::K; k += blockDim.x)
      S::store(a, m, k, normed<S>(a, m, k, mean, rs));
  }
}

// ---- GEMV: decode projections ---------------------------------------------
//
// y[m, n] = epi(m, n, sum_k A'[m, k] W[n, k]) for the few rows m of a decode
// step, W [NMM, K] row-major (the weight's [N, K] form). A' is A after the
// optional norm prologue, staged in shared memory as the activation dtype.
//
// The weights are streamed once, so the kernel is bound by how many of their
// bytes are in flight: each warp owns one output column (or, with SPLITK,
// one K slice of a column shared by SPLITK warps of the block); its lanes
// read 16-byte vectors of consecutive K and issue UNROLL of them before the
// first multiply. Before the prologue each warp asks L2 for its first
// column's leading bytes, so the norm and the staging overlap the first
// weight fetch. GATE: output item n reads the two W rows S::row(n, 0) and
// S::row(n, 1): n and n + N (SwiGLU/GeGLU over merged halves), or d and
// d + D/2 of a head (RoPE's pairs: the epilogue rotates them and stores
// queries and the KV cache). ARGMAX: the argmax over n of the stored y[m, :] goes
// to S::argmaxOut.

/// The raw bits of VEC consecutive T (VEC * sizeof(T) bytes, aligned).
template <typename T, int VEC> struct Raw {
  typedef typename VecOf<VEC * sizeof(T)>::type type;
};
template <typename T, int VEC>
__device__ __forceinline__ typename Raw<T, VEC>::type loadRaw(const T *p, i64 i) {
  return __ldg(reinterpret_cast<const typename Raw<T, VEC>::type *>(p + i));
}
/// As loadRaw, through L2 only (ld.global.cg): for data the kernel itself
/// may have written (the decode attention's own appended keys), which the
/// non-coherent path of loadRaw must not read.
template <typename T, int VEC>
__device__ __forceinline__ typename Raw<T, VEC>::type loadRawCoherent(const T *p, i64 i) {
  return __ldcg(reinterpret_cast<const typename Raw<T, VEC>::type *>(p + i));
}
template <typename T, int VEC>
__device__ __forceinline__ void unpackRaw(const typename Raw<T, VEC>::type &raw, float (&out)[VEC]) {
  const T *e = reinterpret_cast<const T *>(&raw);
#pragma unroll
  for (int j = 0; j < VEC; ++j)
    out[j] = ldf(e, j);
}
/// VEC consecutive elements of T at p[i] in shared memory, as floats.
template <typename T, int VEC>
__device__ __forceinline__ void loadShared(const T *p, i64 i, float (&out)[VEC]) {
  constexpr int PER = Piece<T, VEC>::value;
#pragma unroll
  for (int c = 0; c < VEC; c += PER) {
    // One vector load into a register first: unpacking through the
    // pointer would read the elements one by one.
    typename Raw<T, PER>::type raw = *reinterpret_cast<const typename Raw<T, PER>::type *>(p + i + c);
    float part[PER];
    unpackRaw<T, PER>(raw, part);
#pragma unroll
    for (int j = 0; j < PER; ++j)
      out[c + j] = part[j];
  }
}

__device__ __forceinline__ void prefetchL2(const void *p) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/// Rows m0 .. m0 + mc of A, normalised when S::NORM, into sA (S::MC x S::K
/// of the activation dtype). The copy moves 16-byte vectors with eight per
/// thread in flight; the norm then reads shared memory, so the prologue
/// costs a few memory round trips however long K is.
template <class S, int THREADS>
__device__ __forceinline__ void stageRows(const Args &a, i64 m0, int mc, typename S::TA *sA, float *red,
                                          float *sMean, float *sRs) {
  typedef typename S::TA TA;
  constexpr int AV = S::K % (16 / sizeof(TA)) == 0 ? static_cast<int>(16 / sizeof(TA)) : 1;
  typedef typename Raw<TA, AV>::type RA;
  constexpr i64 NV = S::K / AV;
  const TA *A = S::A(a);
  for (int r = 0; r < mc; ++r)
    for (i64 v0 = threadIdx.x; v0 < NV; v0 += THREADS * 8) {
      RA buf[8];
#pragma unroll
      for (int u = 0; u < 8; ++u)
        if (v0 + u * THREADS < NV)
          buf[u] = loadRaw<TA, AV>(A, (m0 + r) * S::K + (v0 + u * THREADS) * AV);
#pragma unroll
      for (int u = 0; u < 8; ++u)
        if (v0 + u * THREADS < NV)
          *reinterpret_cast<RA *>(sA + r * S::K + (v0 + u * THREADS) * AV) = buf[u];
    }
  __syncthreads();
  for (int r = 0; r < mc; ++r) {
    float mean = 0.0f, rs = 1.0f;
    if constexpr (S::NORM != 0) {
      TA *row = sA + r * S::K;
      float sum = 0.0f;
      if (S::NORM == 2) {
        for (i64 k = threadIdx.x; k < S::K; k += THREADS)
          sum += ldf(row, k);
        mean = blockSum(sum, red) / static_cast<float>(S::K);
        sum = 0.0f;
      }
      for (i64 k = threadIdx.x; k < S::K; k += THREADS) {
        float v = ldf(row, k) - mean;
        sum += v * v;
      }
      rs = rsqrtf(blockSum(sum, red) / static_cast<float>(S::K) + S::EPS);
#pragma unroll 8
      for (i64 k = threadIdx.x; k < S::K; k += THREADS) {
        float v = (ldf(row, k) - mean) * rs * S::gamma(a, k);
        if (S::NORM == 2)
          v += S::beta(a, k);
        row[k] = static_cast<TA>(roundTo<TA>(v));
      }
    }
    if (threadIdx.x == 0) {
      sMean[r] = mean;
      sRs[r] = rs;
    }
  }
}

template <class S, int THREADS, int SPLITK, int VEC, int UNROLL>
__device__ void gemv(const Args &a) {
  constexpr int WARPS = THREADS / 32;
  constexpr int GROUPS = WARPS / SPLITK;      // columns in flight per block
  constexpr int NM = S::GATE ? 2 : 1;         // W rows per output column
  constexpr i64 CHUNK = 32 * VEC;             // K elements per warp-wide load
  constexpr i64 KS = ((S::K + SPLITK - 1) / SPLITK + VEC - 1) / VEC * VEC; // K per split
  constexpr int ITERS = static_cast<int>((KS + CHUNK - 1) / CHUNK);
  typedef typename S::TA TA;
  typedef typename S::TW TW;
  typedef typename Raw<TW, VEC>::type RW;
  __shared__ __align__(16) TA sA[S::STAGE ? S::MC * S::K : 8];
  __shared__ float sMean[S::MC], sRs[S::MC];
  __shared__ float red[33];
  __shared__ float part[SPLITK > 1 ? WARPS * S::MC * NM : 1];
  __shared__ u64 best[S::ARGMAX ? S::MC : 1];
  const TA *A = S::A(a);
  const TW *W = S::W(a);
  i64 rows = S::rows(a);
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  int group = warp / SPLITK, slice = warp % SPLITK;
  const i64 kBegin = slice * KS, kEnd = kBegin + KS < S::K ? kBegin + KS : S::K;
  {
    i64 n = static_cast<i64>(blockIdx.x) * GROUPS + group;
    if (n < S::N)
#pragma unroll
      for (int u = 0; u < UNROLL && u < ITERS; ++u) {
        i64 k = kBegin + u * CHUNK + lane * VEC;
        if (k < kEnd)
#pragma unroll
          for (int j = 0; j < NM; ++j)
            prefetchL2(W + S::row(n, j) * S::K + k);
      }
  }
  dependOnPrevious();
  for (i64 m0 = 0; m0 < rows; m0 += S::MC) {
    int mc = static_cast<int>(rows - m0 < S::MC ? rows - m0 : S::MC);
    // Stage A' (normalised) for rows m0 .. m0 + mc, or only its norm
    // statistics when it does not fit.
    if constexpr (S::STAGE != 0) {
      stageRows<S, THREADS>(a, m0, mc, sA, red, sMean, sRs);
    } else {
      for (int r = 0; r < mc; ++r) {
        float mean = 0.0f, rs = 1.0f;
        if constexpr (S::NORM != 0)
          rowStats<S>(a, m0 + r, red, mean, rs);
        if (threadIdx.x == 0) {
          sMean[r] = mean;
          sRs[r] = rs;
        }
      }
    }
    if (S::ARGMAX && threadIdx.x < S::MC)
      best[threadIdx.x] = 0ull;
    __syncthreads();
    for (i64 n0 = static_cast<i64>(blockIdx.x) * GROUPS; n0 < S::N;
         n0 += static_cast<i64>(gridDim.x) * GROUPS) {
      i64 n = n0 + group;
      bool live = n < S::N;
      float acc[S::MC][NM];
#pragma unroll
      for (int r = 0; r < S::MC; ++r)
#pragma unroll
        for (int j = 0; j < NM; ++j)
          acc[r][j] = 0.0f;
      if (live) {
        for (int it0 = 0; it0 < ITERS; it0 += UNROLL) {
          // All UNROLL x NM loads first, then the arithmetic.
          RW raw[UNROLL][NM];
#pragma unroll
          for (int u = 0; u < UNROLL; ++u) {
            i64 k = kBegin + (it0 + u) * CHUNK + lane * VEC;
#pragma unroll
            for (int j = 0; j < NM; ++j)
              if (it0 + u < ITERS && k < kEnd)
                raw[u][j] = loadRaw<TW, VEC>(W, S::row(n, j) * S::K + k);
          }
#pragma unroll
          for (int u = 0; u < UNROLL; ++u) {
            i64 k = kBegin + (it0 + u) * CHUNK + lane * VEC;
            if (it0 + u >= ITERS || k >= kEnd)
              continue;
            float w[NM][VEC];
#pragma unroll
            for (int j = 0; j < NM; ++j)
              unpackRaw<TW, VEC>(raw[u][j], w[j]);
#pragma unroll
            for (int r = 0; r < S::MC; ++r) {
              if (r >= mc)
                break;
              float x[VEC];
              if constexpr (S::STAGE != 0) {
                loadShared<TA, VEC>(sA, r * S::K + k, x);
              } else if constexpr (S::NORM != 0) {
#pragma unroll
                for (int v = 0; v < VEC; ++v)
                  x[v] = normed<S>(a, m0 + r, k + v, sMean[r], sRs[r]);
              } else {
                loadVec<TA, VEC>(A, (m0 + r) * S::K + k, x);
              }
#pragma unroll
              for (int j = 0; j < NM; ++j)
#pragma unroll
                for (int v = 0; v < VEC; ++v)
                  acc[r][j] += x[v] * w[j][v];
            }
          }
        }
      }
#pragma unroll
      for (int r = 0; r < S::MC; ++r)
#pragma unroll
        for (int j = 0; j < NM; ++j)
          acc[r][j] = warpSum(acc[r][j]);
      if (SPLITK > 1) {
        if (lane == 0)
          for (int r = 0; r < S::MC; ++r)
            for (int j = 0; j < NM; ++j)
              part[(warp * S::MC + r) * NM + j] = acc[r][j];
        __syncthreads();
        if (slice == 0)
          for (int r = 0; r < S::MC; ++r)
            for (int j = 0; j < NM; ++j) {
              float s = 0.0f;
              for (int q = 0; q < SPLITK; ++q)
                s += part[((group * SPLITK + q) * S::MC + r) * NM + j];
              acc[r][j] = s;
            }
        __syncthreads();
      }
      if (live && slice == 0 && lane == 0)
        for (int r = 0; r < mc; ++r) {
          float y = S::epi(a, m0 + r, n, acc[r][0], NM > 1 ? acc[r][NM - 1] : 0.0f);
          if (S::ARGMAX)
            atomicMax(&best[r], packArgmax(y, n));
        }
    }
    if (S::ARGMAX) {
      __syncthreads();
      if (threadIdx.x < mc)
        atomicMax(S::argmaxBest(a) + m0 + threadIdx.x, best[threadIdx.x]);
    }
    __syncthreads();
  }
  if (S::ARGMAX)
    finishArgmax(S::argmaxBest(a), S::argmaxCounter(a), rows, S::argmaxOut(a));
}

// ---- GEMM: prefill projections (tensor cores through WMMA) ------------------
//
// Block tile BM x BN over (rows, matmul columns), BK = 32 deep, 4 or 8 warps
// each holding a (BM / WM) x (BN / WN) patch of 16x16 accumulators. The norm
// prologue is applied while staging A. The epilogue goes through a BM x BN
// f32 tile in shared memory (reusing the staging space), so GATE pairs
// column j with j + BN/2 of the same tile (W rows S::row(item, 0 or 1)).

template <class S, int BM, int BN, int WM, int WN>
__device__ void gemm(const Args &a) {
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

// ---- pointwise: elementwise groups, embeddings, rope + KV append ------------

/// out_i = S::value(i) over S::count(a) elements, grid-stride; S::run does
/// the per-element work (one or more outputs, KV-cache stores).

template <class S> __device__ void pointwise(const Args &a) {
  dependOnPrevious();
  i64 n = S::count(a);
  for (i64 i = static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<i64>(gridDim.x) * blockDim.x)
    S::run(a, i);
}

/// Address of element (token slot, kv head h, dim d) of K (kv = 0) or V
/// (kv = 1) at position `pos` of sequence b, in the cache
/// [L, P, 2, PAGE, HKV, D] at layer a.layer; -1 when the page is not mapped.
template <int PAGE, int HKV, int D>
__device__ __forceinline__ i64 cacheIndex(const Args &a, const int *blockTables, i64 b, i64 pos,
                                          int kv, i64 h, i64 d) {
  i64 page = blockTables[b * a.max_blocks + pos / PAGE];
  if (page < 0 || page >= a.pages)
    return -1;
  i64 slot = pos % PAGE;
  return ((((static_cast<i64>(a.layer) * a.pages + page) * 2 + kv) * PAGE + slot) * HKV + h) * D + d;
}

// ---- paged attention --------------------------------------------------------
//
// One warp per (sequence, token, query head) row and key range: lanes split
// the head dim (D / 32 each, or one for D < 32), keys stream through the page
// table with an online softmax. Prefill (SPLITS = 1) writes the output; decode
// splits the keys of each row over SPLITS blocks, which leave (max, sum,
// acc) in the workspace; the last split of a row combines them.

template <class S> struct AttnRow {
  static constexpr int PER = S::D >= 32 ? S::D / 32 : 1;
  float m, l, acc[PER];
};

template <class S>
__device__ __forceinline__ void attendRange(const Args &a, i64 b, i64 t, i64 h, i64 qpos, i64 kBegin,
                                            i64 kEnd, AttnRow<S> &row) {
  constexpr int PER = AttnRow<S>::PER;
  int lane = threadIdx.x & 31;
  bool laneLive = S::D >= 32 || lane < S::D;
  float q[PER];
#pragma unroll
  for (int j = 0; j < PER; ++j)
    q[j] = laneLive ? S::q(a, b, t, h, lane * PER + j) : 0.0f;
  row.m = -kiln::inf();
  row.l = 0.0f;
#pragma unroll
  for (int j = 0; j < PER; ++j)
    row.acc[j] = 0.0f;
  const typename S::TC *cache = S::cache(a);
  const int *bt = S::blockTables(a);
  i64 kh = h / (S::H / S::HKV);
  if (S::WINDOW > 0 && kBegin < qpos - S::WINDOW + 1)
    kBegin = qpos - S::WINDOW + 1;
  for (i64 s = kBegin; s < kEnd; ++s) {
    if (S::CAUSAL && s > qpos)
      break;
    if (S::WINDOW > 0 && qpos - s >= S::WINDOW)
      continue;
    i64 ko = cacheIndex<S::PAGE, S::HKV, S::D>(a, bt, b, s, 0, kh, 0);
    i64 vo = cacheIndex<S::PAGE, S::HKV, S::D>(a, bt, b, s, 1, kh, 0);
    if (ko < 0)
      continue;
    float dot = 0.0f;
#pragma unroll
    for (int j = 0; j < PER; ++j)
      dot += laneLive ? q[j] * ldf(cache, ko + lane * PER + j) : 0.0f;
    dot = warpSum(dot);
    float x = dot * S::SCALE;
    if constexpr (S::SOFTCAP > 0.0f)
      x = S::SOFTCAP * tanhf(x / S::SOFTCAP);
    float mNew = fmaxf(row.m, x);
    float corr = expf(row.m - mNew), p = expf(x - mNew);
    row.l = row.l * corr + p;
#pragma unroll
    for (int j = 0; j < PER; ++j)
      row.acc[j] = row.acc[j] * corr + (laneLive ? p * ldf(cache, vo + lane * PER + j) : 0.0f);
    row.m = mNew;
  }
}

template <class S>
__device__ __forceinline__ void storeRow(const Args &a, i64 b, i64 t, i64 h, const AttnRow<S> &row) {
  constexpr int PER = AttnRow<S>::PER;
  int lane = threadIdx.x & 31;
  if (S::D < 32 && lane >= S::D)
    return;
  float inv = row.l > 0.0f ? 1.0f / row.l : 0.0f;
#pragma unroll
  for (int j = 0; j < PER; ++j)
    S::store(a, b, t, h, lane * PER + j, row.acc[j] * inv);
}

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
      if (S::D >= 32 || lane < S::D)
#pragma unroll
        for (int j = 0; j < PER; ++j)
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
      if (S::D >= 32 || lane < S::D)
#pragma unroll
        for (int j = 0; j < PER; ++j)
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

// ---- row reductions (argmax over an axis) -----------------------------------

/// out[r] = argmax_k S::x(a, r, k) for k < S::len(a): one warp per row.

template <class S> __device__ void argmaxRows(const Args &a) {
  dependOnPrevious();
  int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  i64 rows = S::rows(a), len = S::len(a);
  for (i64 r = static_cast<i64>(blockIdx.x) * warps + warp; r < rows;
       r += static_cast<i64>(gridDim.x) * warps) {
    u64 best = 0ull;
    for (i64 k = lane; k < len; k += 32) {
      u64 c = packArgmax(S::x(a, r, k), k);
      best = c > best ? c : best;
    }
    for (int o = 16; o > 0; o >>= 1) {
      u64 other = __shfl_xor_sync(0xffffffffu, best, o);
      best = other > best ? other : best;
    }
    if (lane == 0)
      S::store(a, r, unpackArgmaxIndex(best));
  }
}

} // namespace kiln
