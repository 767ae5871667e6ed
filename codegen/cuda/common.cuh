// kiln device library: what every kernel family shares. The library is
// this file and one file per family (gemv.cuh, sm90.cuh + gemm.cuh + gemm_ws.cuh, norm.cuh,
// pointwise.cuh, attention/{common,prefill,decode}.cuh, argmax.cuh),
// joined in that order by codegen/CMakeLists.txt; codegen/KernelEmitter
// prepends the joined text to each kernel's source, so a kernel's source is
// self-contained (the engine stores it and the runtime can re-JIT it for
// another GPU with NVRTC alone).
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

/// A TMA tensor map (CUtensorMap: 128 opaque bytes) the runtime encodes
/// for a launch from the kernel's manifest entry (docs/engine-format.md:
/// tensor_maps); kernels that take them have a second, __grid_constant__
/// parameter of N maps.
struct __align__(64) TensorMap {
  u64 opaque[16];
};
template <int N> struct TensorMaps {
  TensorMap map[N];
};

/// A kernel that runs in clusters of X blocks (sm_90 and later; elsewhere
/// the kernels compiled from an engine's sources run as lone blocks). The
/// runtime reads the width from the compiled kernel and launches a grid of
/// whole clusters, no more than the GPU holds at once.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define KILN_CLUSTER_DIMS(X) __cluster_dims__(X, 1, 1)
#else
#define KILN_CLUSTER_DIMS(X)
#endif

// ---- programmatic dependent launch ------------------------------------------
//
// On sm_90 the runtime launches a kernel while the previous one finishes.
// Every skeleton calls dependOnPrevious() before it touches any buffer but
// the weights: it returns once the previous kernel has completed and its
// writes are visible. By default no kernel triggers its dependents early
// (griddepcontrol.launch_dependents, KILN_PDL_TRIGGER below): the next
// kernel launches as the blocks of this one exit. Measured on the H100 (1B shape, bench/NOTES.md
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

// An A/B knob (`kiln compile --pdl-trigger 1`, NVRTC's -D): the kernels
// whose successor has something to do before its wait let it launch early
// (griddepcontrol.launch_dependents), each at the point where its own
// demand on memory falls: the norm once its wait returns, a decode GEMM
// once its producer has issued its last load, the decode attention after
// its keys' loop. The successor's blocks then sit beside this kernel's and
// prefetch their weights into L2 (KILN_PDL_PREFETCH) while its tail runs.
// A block triggers once; the grid's successor launches when every block
// has triggered or exited, and its dependOnPrevious still waits for this
// kernel to complete, so where the trigger sits never changes a result.
#ifndef KILN_PDL_TRIGGER
#define KILN_PDL_TRIGGER 0
#endif
// Bytes of its weight tile's K a GEMM block prefetches into L2 before its
// wait (`kiln compile --pdl-prefetch BYTES`; 0: none). Weights are written
// by no kernel, so they may be read before the previous kernel completes.
#ifndef KILN_PDL_PREFETCH
#define KILN_PDL_PREFETCH 0
#endif

// Keys whose K and V rows the tensor-core decode attention prefetches into
// L2 before its wait, from the first of its unit's keys (`kiln compile
// --pdl-prefetch-keys N`; 0: none). The positions, block tables and context
// lengths it reads for them are the step's inputs, written before the
// step's first kernel; the cache rows may be the ones this kernel appends
// to (a prefetch moves nothing into the kernel, and L2 is coherent).
#ifndef KILN_PDL_PREFETCH_KEYS
#define KILN_PDL_PREFETCH_KEYS 0
#endif

__device__ __forceinline__ void triggerDependents() {
#if KILN_PDL_TRIGGER && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/// `bytes` (a multiple of 16, from a 16-byte aligned `p`) into L2, no
/// registers or shared memory held (sm_90's bulk prefetch; elsewhere a
/// no-op).
__device__ __forceinline__ void prefetchBulkL2(const void *p, unsigned bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if (bytes)
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#endif
}

/// The weight rows `row(0) .. row(n - 1)`, K elements of T each, columns
/// k0 .. k1 - 1, into L2 before the wait: KILN_PDL_PREFETCH bytes in all
/// for the block, spread over its threads a row each, every piece 16-byte
/// aligned (K % 8 == 0, k0 % 8 == 0 for 16-bit T).
template <class T, class Row>
__device__ __forceinline__ void prefetchWeightRows(const T *W, i64 K, int n, Row row, i64 k0, i64 k1) {
  if constexpr (KILN_PDL_PREFETCH > 0) {
    if (k1 <= k0 || n <= 0)
      return;
    i64 per = static_cast<i64>(KILN_PDL_PREFETCH) / n / 16 * 16;
    i64 bytes = (k1 - k0) * static_cast<i64>(sizeof(T));
    bytes = (bytes < per ? bytes : per) / 16 * 16;
    for (int r = threadIdx.x; r < n; r += blockDim.x) {
      i64 wr = row(r);
      if (wr >= 0)
        prefetchBulkL2(W + wr * K + k0, static_cast<unsigned>(bytes));
    }
  }
}

/// rem % d, leaving rem / d in rem (an index over a dimension of runtime
/// size d). Through 32-bit division where both fit: a 64-bit one is a
/// subroutine of ~70 instructions, paid per element by the pointwise
/// kernels' index arithmetic.
__device__ __forceinline__ i64 divStep(i64 &rem, i64 d) {
  i64 q;
  if (((rem | d) >> 32) == 0)
    q = static_cast<unsigned>(rem) / static_cast<unsigned>(d);
  else
    q = rem / d;
  i64 r = rem - q * d;
  rem = q;
  return r;
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
/// Elements i and i + 1 in one store: i even and p's buffer aligned to
/// twice the element (the arena's buffers are 256-byte aligned).
__device__ __forceinline__ void stv2(float *p, i64 i, float v0, float v1) {
  *reinterpret_cast<float2 *>(p + i) = make_float2(v0, v1);
}
__device__ __forceinline__ void stv2(__nv_bfloat16 *p, i64 i, float v0, float v1) {
  *reinterpret_cast<__nv_bfloat162 *>(p + i) = __floats2bfloat162_rn(v0, v1);
}
__device__ __forceinline__ void stv2(__half *p, i64 i, float v0, float v1) {
  *reinterpret_cast<__half2 *>(p + i) = __floats2half2_rn(v0, v1);
}
/// Elements i .. i + 7 in one 16-byte store (two for f32): i a multiple of
/// 8 and the buffer aligned to 16 bytes.
__device__ __forceinline__ void stv8(float *p, i64 i, const float (&v)[8]) {
  reinterpret_cast<float4 *>(p + i)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4 *>(p + i)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
/// (16-bit: one st.global.v4, written out: the compiler split a uint4
/// store into four in gemmStoreStaged. p in global memory.)
template <class T, class Pack> __device__ __forceinline__ void stv8As(T *p, i64 i, const float (&v)[8], Pack pack) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(p + i), "r"(pack(v[0], v[1])), "r"(pack(v[2], v[3])),
               "r"(pack(v[4], v[5])), "r"(pack(v[6], v[7]))
               : "memory");
}
__device__ __forceinline__ void stv8(__nv_bfloat16 *p, i64 i, const float (&v)[8]) {
  stv8As(p, i, v, [](float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<unsigned *>(&h);
  });
}
__device__ __forceinline__ void stv8(__half *p, i64 i, const float (&v)[8]) {
  stv8As(p, i, v, [](float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<unsigned *>(&h);
  });
}

/// `v` rounded to storage type T and back: what a tensor of T would hold.
template <typename T> __device__ __forceinline__ float roundTo(float v) { return v; }
/// bf16 rounds to nearest even by integer arithmetic (what
/// __float2bfloat16 computes, through a conversion unit of a quarter of the
/// ALU's rate, and epilogues round several times an element); NaN stays NaN.
template <> __device__ __forceinline__ float roundTo<__nv_bfloat16>(float v) {
  unsigned u = __float_as_uint(v);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return v;
  u += 0x7fffu + ((u >> 16) & 1u);
  return __uint_as_float(u & 0xffff0000u);
}
template <> __device__ __forceinline__ float roundTo<__half>(float v) {
  return __half2float(__float2half(v));
}

/// 1 / d for d = 1 + e^-x (at least 1, or NaN), correctly rounded as
/// __frcp_rn computes it (the approximation and one Newton step, its
/// path for these exponents) but without its branch to a slow path, so
/// that the compiler interleaves the element functions of several
/// outputs. From d = 2^126 (x below -87.3) the reciprocal is subnormal:
/// computed for d / 2^126 and scaled, one rounding more (at most one
/// subnormal ulp, on a SiLU below 1e-36 in magnitude); 1 / inf is 0.
__device__ __forceinline__ float rcpOnePlus(float d) {
  const bool big = d >= 0x1p126f;
  const float s = big ? d * 0x1p-126f : d;
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(s));
  r = fmaf(r, fmaf(-s, r, 1.0f), r);
  r = big ? r * 0x1p-126f : r;
  return d == __int_as_float(0x7f800000) ? 0.0f : r;
}

// x times 1 / (1 + e^-x), as the host kernels compute it (a correctly
// rounded reciprocal, not a division: bench/PREFILL.md item 19).
__device__ __forceinline__ float silu(float x) { return x * rcpOnePlus(1.0f + expf(-x)); }
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float geluTanh(float x) {
  return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float sigmoid(float x) { return rcpOnePlus(1.0f + expf(-x)); }

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
/// by the threads first, first + step, ... whose partial sums `sum` adds up
/// (blockSum for a whole block, warpSum for a warp).
template <class S, class Sum>
__device__ __forceinline__ void rowStatsBy(const Args &a, i64 m, int first, int step, Sum sum, float &mean,
                                           float &rs) {
  float s = 0.0f;
  mean = 0.0f;
  if (S::NORM == 2) {
    for (i64 k = first; k < S::K; k += step)
      s += S::x(a, m, k);
    mean = sum(s) / static_cast<float>(S::K);
    s = 0.0f;
  }
  for (i64 k = first; k < S::K; k += step) {
    float v = S::x(a, m, k) - mean;
    s += v * v;
  }
  rs = rsqrtf(sum(s) / static_cast<float>(S::K) + S::EPS);
}
/// The same computed by the whole block.
template <class S>
__device__ __forceinline__ void rowStats(const Args &a, i64 m, float *red, float &mean, float &rs) {
  rowStatsBy<S>(a, m, threadIdx.x, blockDim.x, [red](float v) { return blockSum(v, red); }, mean, rs);
}

/// Input value `x` after the norm with its column's gamma and beta (layer
/// norm only), rounded to the activation dtype as the unfused norm would
/// store it.
template <class S> __device__ __forceinline__ float normWith(float x, float g, float b, float mean, float rs) {
  float v = (x - mean) * rs * g;
  if (S::NORM == 2)
    v += b;
  return roundTo<typename S::TA>(v);
}
/// The same for column `k`, its gamma and beta loaded here.
template <class S>
__device__ __forceinline__ float normValue(const Args &a, float x, i64 k, float mean, float rs) {
  return normWith<S>(x, S::gamma(a, k), S::NORM == 2 ? S::beta(a, k) : 0.0f, mean, rs);
}
/// Row `m`, element `k` after the norm.
template <class S>
__device__ __forceinline__ float normed(const Args &a, i64 m, i64 k, float mean, float rs) {
  return normValue<S>(a, S::x(a, m, k), k, mean, rs);
}


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

// ---- tensor-core primitives (sm_80 and later) -------------------------------

/// 16 bytes from global to shared memory, asynchronously; `bytes` < 16
/// zero-fills the rest (0: all zeros, nothing read).
__device__ __forceinline__ void cpAsync16(void *smem, const void *gmem, int bytes) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(bytes));
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cpAsyncWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix4(unsigned (&r)[4], const void *smem) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

/// d = a b + d for one m16n8k16 tile, f32 accumulators.
template <typename T> __device__ __forceinline__ void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                                               unsigned b1);
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const unsigned (&a)[4], unsigned b0,
                                                        unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
               "{%8, %9}, {%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
/// ldmatrix with each 8x8 matrix transposed: thread l holds rows 2(l%4) and
/// 2(l%4)+1 of column l/4 (a B fragment from a [k][n] tile).
__device__ __forceinline__ void ldmatrix4Trans(unsigned (&r)[4], const void *smem) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
/// Two floats as the 16-bit pair of an mma fragment register (lo first).
template <typename T> __device__ __forceinline__ unsigned pack2(float lo, float hi);
template <> __device__ __forceinline__ unsigned pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<unsigned *>(&v);
}
template <> __device__ __forceinline__ unsigned pack2<__half>(float lo, float hi) {
  __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<unsigned *>(&v);
}

// ---- the paged KV cache ------------------------------------------------------

/// Address of element (token slot, kv head h, dim d) of K (kv = 0) or V
/// (kv = 1) at position `pos` on cache page `page`, in the cache
/// [L, P, 2, PAGE, HKV, D] at layer a.layer; -1 when the page is not one
/// of the pool's (unmapped: negative).
template <int PAGE, int HKV, int D>
__device__ __forceinline__ i64 pageIndex(const Args &a, i64 page, i64 pos, int kv, i64 h, i64 d) {
  if (page < 0 || page >= a.pages)
    return -1;
  i64 slot = pos % PAGE;
  return ((((static_cast<i64>(a.layer) * a.pages + page) * 2 + kv) * PAGE + slot) * HKV + h) * D + d;
}

/// The same at position `pos` of sequence b, through its block table.
template <int PAGE, int HKV, int D>
__device__ __forceinline__ i64 cacheIndex(const Args &a, const int *blockTables, i64 b, i64 pos,
                                          int kv, i64 h, i64 d) {
  return pageIndex<PAGE, HKV, D>(a, blockTables[b * a.max_blocks + pos / PAGE], pos, kv, h, d);
}

} // namespace kiln
