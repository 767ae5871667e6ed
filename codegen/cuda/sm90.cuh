// kiln device library: sm_90a's asynchronous machinery, for the GEMM
// family's wgmma kernels (gemm.cuh, gemm_ws.cuh).
//
// Warpgroup MMA (wgmma) from shared-memory descriptors, mbarriers, TMA
// copies (2-D tiles, multicast to a cluster) and cluster barriers: the
// building blocks of gemmMma's wgmma main loop and of gemmWs. Compiled
// only where the architecture has them (__CUDA_ARCH_FEAT_SM90_ALL).
// codegen/CMakeLists.txt joins the device library's files in order after
// common.cuh into the one text every kernel's source begins with; no
// file includes another (NVRTC compiles the joined text alone).

namespace kiln {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// ---- warpgroup MMA (sm_90a) ----------------------------------------------------

/// d (m64 x N, f32) += A (m64 x k16) B (N x k16)^T, both K-major in shared
/// memory with the 128-byte swizzle, through their descriptors; d = A B^T
/// where `accumulate` is 0.
template <int N, typename T> struct Wgmma;

// One instruction per tile width; the 16-bit element type is a parameter of
// the macro (the asm text names it).
#define KILN_WGMMA_64(T, PTX)                                                                        \
  template <> struct Wgmma<64, T> {                                                                        \
    __device__ static __forceinline__ void mma(float (&d)[32], u64 descA, u64 descB, int accumulate = 1) {                       \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                             \
                   "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n" \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])                                                                            \
                   : "l"(descA), "l"(descB), "r"(accumulate));                                                \
    }                                                                                                \
  };
KILN_WGMMA_64(__nv_bfloat16, "bf16")
KILN_WGMMA_64(__half, "f16")
#undef KILN_WGMMA_64
#define KILN_WGMMA_128(T, PTX)                                                                        \
  template <> struct Wgmma<128, T> {                                                                        \
    __device__ static __forceinline__ void mma(float (&d)[64], u64 descA, u64 descB, int accumulate = 1) {                       \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                             \
                   "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n" \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])                                                                            \
                   : "l"(descA), "l"(descB), "r"(accumulate));                                                \
    }                                                                                                \
  };
KILN_WGMMA_128(__nv_bfloat16, "bf16")
KILN_WGMMA_128(__half, "f16")
#undef KILN_WGMMA_128
#define KILN_WGMMA_256(T, PTX)                                                                        \
  template <> struct Wgmma<256, T> {                                                                        \
    __device__ static __forceinline__ void mma(float (&d)[128], u64 descA, u64 descB, int accumulate = 1) {                       \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"                                             \
                   "wgmma.mma_async.sync.aligned.m64n256k16.f32." PTX "." PTX " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, 0;\n}\n" \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])                                                                            \
                   : "l"(descA), "l"(descB), "r"(accumulate));                                                \
    }                                                                                                \
  };
KILN_WGMMA_256(__nv_bfloat16, "bf16")
KILN_WGMMA_256(__half, "f16")
#undef KILN_WGMMA_256

/// d (m64 x N, f32) += A (m64 x k16, registers: the mma.sync A fragment of
/// each warp's 16 rows) B (k16 x N), B N-major in shared memory (rows of
/// N contiguous elements, 64-column chunks with the 128-byte swizzle, as
/// K's tiles are laid out) through a transposed descriptor
/// (smemDescSw128Mn).
template <int N, typename T> struct WgmmaRs;
#define KILN_WGMMA_RS_64(T, PTX)                                                                        \
  template <> struct WgmmaRs<64, T> {                                                                        \
    __device__ static __forceinline__ void mma(float (&d)[32], const unsigned (&a)[4], u64 descB) {           \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                                     \
                   "wgmma.mma_async.sync.aligned.m64n64k16.f32." PTX "." PTX " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n}\n" \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]) \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "r"(1));                \
    }                                                                                                \
  };
KILN_WGMMA_RS_64(__nv_bfloat16, "bf16")
KILN_WGMMA_RS_64(__half, "f16")
#undef KILN_WGMMA_RS_64
#define KILN_WGMMA_RS_128(T, PTX)                                                                        \
  template <> struct WgmmaRs<128, T> {                                                                        \
    __device__ static __forceinline__ void mma(float (&d)[64], const unsigned (&a)[4], u64 descB) {           \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                                     \
                   "wgmma.mma_async.sync.aligned.m64n128k16.f32." PTX "." PTX " {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n" \
                   : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]) \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "r"(1));                \
    }                                                                                                \
  };
KILN_WGMMA_RS_128(__nv_bfloat16, "bf16")
KILN_WGMMA_RS_128(__half, "f16")
#undef KILN_WGMMA_RS_128

__device__ __forceinline__ void wgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// mbarriers in shared memory: init with the arrivals a phase takes; a
// phase completes when they have all arrived; wait(parity) returns once
// the phase of that parity has completed (at once for parity 1 on a new
// barrier: "the phase before the first").
__device__ __forceinline__ unsigned smemAddr(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbarInit(u64 *bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smemAddr(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarArrive(u64 *bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smemAddr(bar)) : "memory");
}
/// Arrives and adds `bytes` to the transactions the current phase waits for.
__device__ __forceinline__ void mbarArriveExpectTx(u64 *bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smemAddr(bar)), "r"(bytes)
               : "memory");
}
/// TMA: the box of `map` at (inner, outer) element coordinates into shared
/// memory at `dst` (laid out and swizzled as the map says; zeros past the
/// tensor's bounds), completing its bytes on `bar`.
__device__ __forceinline__ void tmaLoad2d(void *dst, const TensorMap &map, int inner, int outer, u64 *bar) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
               "[%4];\n" ::"r"(smemAddr(dst)),
               "l"(reinterpret_cast<u64>(&map)), "r"(inner), "r"(outer), "r"(smemAddr(bar))
               : "memory");
}
/// tmaLoad2d into the same offset of every block of the cluster in `mask`
/// (bit r: rank r), completing the bytes on each one's barrier at `bar`'s
/// offset.
__device__ __forceinline__ void tmaLoad2dMulticast(void *dst, const TensorMap &map, int inner, int outer, u64 *bar,
                                                   unsigned short mask) {
  asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
               "[%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(smemAddr(dst)),
               "l"(reinterpret_cast<u64>(&map)), "r"(inner), "r"(outer), "r"(smemAddr(bar)), "h"(mask)
               : "memory");
}
/// Arrives on the barrier at `bar`'s offset in the cluster's block `rank`
/// (this block's own included). Release at the block's scope, as a local
/// arrival: what it orders is this thread's wgmma reads of its own stage,
/// retired (wgmma.wait_group) before the peer's copy may refill it. A
/// cluster-scope release here (a fence per arrival, two per k-tile) made
/// the paired kernel twice as slow as lone blocks (H100, 2026-12-06 run 6).
__device__ __forceinline__ void mbarArriveCluster(u64 *bar, unsigned rank) {
  asm volatile("{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
               "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(smemAddr(bar)),
               "r"(rank)
               : "memory");
}
/// Every thread of every block of the cluster arrives; returns once all have.
__device__ __forceinline__ void clusterSync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
/// The f32 at `p` in the shared memory of block `rank` of the cluster.
__device__ __forceinline__ float ldClusterF32(const float *p, unsigned rank) {
  float v;
  asm volatile("{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %1, %2;\n"
               "ld.shared::cluster.f32 %0, [remote];\n}\n"
               : "=f"(v)
               : "r"(smemAddr(p)), "r"(rank)
               : "memory");
  return v;
}
__device__ __forceinline__ unsigned clusterRank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void tmaPrefetch(const TensorMap &map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<u64>(&map)) : "memory");
}
__device__ __forceinline__ void mbarWait(u64 *bar, unsigned parity) {
  asm volatile("{\n.reg .pred done;\nWAIT:\n"
               "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
               "@!done bra WAIT;\n}\n" ::"r"(smemAddr(bar)),
               "r"(parity)
               : "memory");
}
/// Keeps the compiler from moving reads or writes of the accumulators
/// across the asynchronous MMAs that own them.
template <int N> __device__ __forceinline__ void fenceOperands(float (&acc)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
    asm volatile("" : "+f"(acc[i])::"memory");
}
/// Orders this thread's generic-proxy shared-memory writes (cp.async, stores)
/// before the tensor cores' (async proxy) reads that follow a barrier.
__device__ __forceinline__ void fenceProxyAsync() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
/// Cluster split-K's sum (gemmMma's and gemmWs's CSPLIT, sm_90): each of
/// the block's THREADS threads stages its ACC f32 products in `staged`
/// ([ACC][THREADS] in shared memory that nothing else writes now), the
/// cluster synchronises, and every accumulator i this block finishes
/// (`mine(i)`) becomes the sum of the CS parts' in part order -- the same
/// sum on any block -- the peers' read from their shared memory. The
/// caller runs those accumulators' epilogue, then clusterSync() before
/// `staged` is written again or the block leaves (its peers read it).
template <int CS, int THREADS, int ACC, class Mine>
__device__ __forceinline__ void clusterSplitSum(float (&acc)[ACC], float *staged, int tid, int part, const Mine &mine) {
#pragma unroll
  for (int i = 0; i < ACC; ++i)
    staged[i * THREADS + tid] = acc[i];
  fenceProxyAsync(); // the stores before any copy engine write that refills this memory for a next tile
  clusterSync();
#pragma unroll
  for (int i = 0; i < ACC; ++i)
    if (mine(i)) {
      float v[CS];
#pragma unroll
      for (int p = 0; p < CS; ++p)
        v[p] = p == part ? acc[i] : ldClusterF32(staged + i * THREADS + tid, static_cast<unsigned>(p));
      float sum = 0.0f;
#pragma unroll
      for (int p = 0; p < CS; ++p)
        sum += v[p];
      acc[i] = sum;
    }
}
/// The descriptor of a K-major tile of 128-byte rows (64 16-bit elements)
/// with the 128-byte swizzle, 8-row groups 1024 bytes apart; `p` 1024-byte
/// aligned, or advanced by k * 32 bytes within a row for k-step k.
__device__ __forceinline__ u64 smemDescSw128(const void *p) {
  u64 addr = static_cast<u64>(__cvta_generic_to_shared(p));
  return ((addr & 0x3FFFFull) >> 4) | (1ull << 16) | (static_cast<u64>(1024 >> 4) << 32) | (1ull << 62);
}
/// The transposed (N-major) descriptor of such a tile: rows of 64 16-bit
/// elements along N, 128-byte swizzled, 8-row groups (of k) 1024 bytes
/// apart and 64-column chunks (of N) `chunkBytes` apart; `p` 1024-byte
/// aligned, advanced by whole 8-row groups for later k-steps.
__device__ __forceinline__ u64 smemDescSw128Mn(const void *p, unsigned chunkBytes) {
  u64 addr = static_cast<u64>(__cvta_generic_to_shared(p));
  return ((addr & 0x3FFFFull) >> 4) | (static_cast<u64>(chunkBytes >> 4) << 16) |
         (static_cast<u64>(1024 >> 4) << 32) | (1ull << 62);
}
#endif

} // namespace kiln
