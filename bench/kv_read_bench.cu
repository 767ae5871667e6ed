// How fast decode attention can read a paged KV cache, by layout alone:
// the loads of attentionDecodeTiled (codegen/cuda/attention/decode.cuh) --
// a block of 128 threads per (sequence, kv head), 16-byte cp.async pieces of
// J keys' K and V a thread, a ring of STAGES chunks -- with the arithmetic
// replaced by a sum, over two page layouts:
//   token-major [pages, 2, PAGE, HKV, D] (the engine's today): a kv head's
//     row of a token is D elements, HKV * D apart from the next token's;
//   head-major  [pages, 2, HKV, PAGE, D]: a kv head's page is one run of
//     PAGE * D elements.
// and a plain copy-speed read of the same bytes for the ceiling.
//
//   nvcc -arch=sm_90a -O3 -std=c++17 -o /tmp/kv_read_bench bench/kv_read_bench.cu
//   /tmp/kv_read_bench [batch=64] [context=576] [page=16]
//
// Prints GB/s of cache bytes read (median of 20 launches after 3 warm-up)
// per shape (the 1B's 8 kv heads x 64, the 8B's 8 x 128) and layout, with
// each sequence's pages in order and shuffled over the pool.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#define CHECK(x)                                                                                                   \
  do {                                                                                                             \
    cudaError_t e = (x);                                                                                           \
    if (e != cudaSuccess) {                                                                                        \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e));                                                \
      std::exit(1);                                                                                                \
    }                                                                                                              \
  } while (0)

typedef long long i64;

__device__ __forceinline__ void cpAsync16(void *dst, const void *src) {
  unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d), "l"(src) : "memory");
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/// Element (kv, token slot, head, d) of page `page`.
template <bool HEAD_MAJOR, int PAGE, int HKV, int D>
__device__ __forceinline__ i64 at(i64 page, int kv, i64 slot, int h, int d) {
  if (HEAD_MAJOR)
    return (((page * 2 + kv) * HKV + h) * PAGE + slot) * D + d;
  return (((page * 2 + kv) * PAGE + slot) * HKV + h) * D + d;
}

template <bool HEAD_MAJOR, int PAGE, int HKV, int D, int J = 4, int STAGES = 3>
__global__ void __launch_bounds__(128) readKV(const __nv_bfloat16 *cache, const int *tables, int maxBlocks,
                                              int context, float *out) {
  constexpr int THREADS = 128, VEC = 8, TG = D / VEC, KPW = 32 / TG, KPB = 4 * KPW, CH = KPB * J;
  __shared__ uint4 ring[STAGES * J * 2 * THREADS];
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, piece = lane % TG, slot = warp * KPW + lane / TG;
  const int b = blockIdx.x / HKV, h = blockIdx.x % HKV;
  const int chunks = (context + CH - 1) / CH;
  unsigned have = 0;
  auto issue = [&](int c) {
    int st = c % STAGES;
    unsigned bits = 0;
    if (c < chunks)
#pragma unroll
      for (int j = 0; j < J; ++j) {
        int s = c * CH + slot + j * KPB;
        if (s < context) {
          i64 page = tables[b * maxBlocks + s / PAGE];
          i64 k = at<HEAD_MAJOR, PAGE, HKV, D>(page, 0, s % PAGE, h, piece * VEC);
          i64 v = at<HEAD_MAJOR, PAGE, HKV, D>(page, 1, s % PAGE, h, piece * VEC);
          cpAsync16(ring + ((st * J + j) * 2) * THREADS + tid, cache + k);
          cpAsync16(ring + ((st * J + j) * 2 + 1) * THREADS + tid, cache + v);
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
  float sum = 0.0f;
  for (int c = 0; c < chunks; ++c) {
    issue(c + STAGES - 1);
    cpAsyncWait<STAGES - 1>();
    int st = c % STAGES;
#pragma unroll
    for (int j = 0; j < J; ++j)
      if ((have >> (st * J + j)) & 1u) {
        uint4 k = ring[((st * J + j) * 2) * THREADS + tid], v = ring[((st * J + j) * 2 + 1) * THREADS + tid];
        sum += __uint_as_float(k.x ^ v.y) + __uint_as_float(k.z ^ v.w);
      }
  }
  cpAsyncWait<0>();
  if (sum == 12345.0f)
    out[blockIdx.x] = sum;
}

/// The same bytes read as one contiguous stream (the ceiling).
__global__ void __launch_bounds__(256) stream(const uint4 *p, i64 n, float *out) {
  float sum = 0.0f;
  for (i64 i = blockIdx.x * 256ll + threadIdx.x; i < n; i += static_cast<i64>(gridDim.x) * 256) {
    uint4 v = p[i];
    sum += __uint_as_float(v.x ^ v.w);
  }
  if (sum == 12345.0f)
    out[0] = sum;
}

template <class F> float medianMs(F launch) {
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  std::vector<float> t;
  for (int i = 0; i < 23; ++i) {
    CHECK(cudaEventRecord(e0));
    launch();
    CHECK(cudaEventRecord(e1));
    CHECK(cudaEventSynchronize(e1));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (i >= 3)
      t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <int HKV, int D, int PAGE>
void run(const char *shape, int batch, int context, const __nv_bfloat16 *cache, i64 poolPages, float *out) {
  int maxBlocks = (context + PAGE - 1) / PAGE;
  double bytes = 2.0 * batch * context * HKV * D * 2;
  for (int shuffled = 0; shuffled < 2; ++shuffled) {
    std::vector<int> pages(static_cast<size_t>(poolPages));
    std::iota(pages.begin(), pages.end(), 0);
    if (shuffled)
      std::shuffle(pages.begin(), pages.end(), std::mt19937(7));
    std::vector<int> tables(static_cast<size_t>(batch) * maxBlocks);
    for (size_t i = 0; i < tables.size(); ++i)
      tables[i] = pages[i];
    int *dt;
    CHECK(cudaMalloc(&dt, tables.size() * sizeof(int)));
    CHECK(cudaMemcpy(dt, tables.data(), tables.size() * sizeof(int), cudaMemcpyHostToDevice));
    float tm = medianMs([&] { readKV<false, PAGE, HKV, D><<<batch * HKV, 128>>>(cache, dt, maxBlocks, context, out); });
    float hm = medianMs([&] { readKV<true, PAGE, HKV, D><<<batch * HKV, 128>>>(cache, dt, maxBlocks, context, out); });
    CHECK(cudaGetLastError());
    std::printf("%s batch %d context %d page %d, pages %s: token-major %.1f us %.0f GB/s, head-major %.1f us %.0f "
                "GB/s\n",
                shape, batch, context, PAGE, shuffled ? "shuffled" : "in order", tm * 1e3, bytes / tm / 1e6,
                hm * 1e3, bytes / hm / 1e6);
    CHECK(cudaFree(dt));
  }
  float sm = medianMs([&] { stream<<<132 * 8, 256>>>(reinterpret_cast<const uint4 *>(cache), static_cast<i64>(bytes / 16), out); });
  std::printf("%s the same bytes as one stream: %.1f us %.0f GB/s\n", shape, sm * 1e3, bytes / sm / 1e6);
}

int main(int argc, char **argv) {
  int batch = argc > 1 ? std::atoi(argv[1]) : 64, context = argc > 2 ? std::atoi(argv[2]) : 576;
  int page = argc > 3 ? std::atoi(argv[3]) : 16;
  if (page != 16 && page != 32) {
    std::fprintf(stderr, "page: 16 or 32\n");
    return 2;
  }
  // A pool of 4x the pages the batch needs (the bytes the 8B needs: 8 x 128 a token).
  i64 poolPages = 4ll * batch * ((context + page - 1) / page);
  size_t poolBytes = static_cast<size_t>(poolPages) * 2 * page * 8 * 128 * 2;
  __nv_bfloat16 *cache;
  float *out;
  CHECK(cudaMalloc(&cache, poolBytes));
  CHECK(cudaMemset(cache, 0x3c, poolBytes));
  CHECK(cudaMalloc(&out, 1 << 20));
  if (page == 16) {
    run<8, 64, 16>("1B (8 x 64)", batch, context, cache, poolPages, out);
    run<8, 128, 16>("8B (8 x 128)", batch, context, cache, poolPages, out);
  } else {
    run<8, 64, 32>("1B (8 x 64)", batch, context, cache, poolPages, out);
    run<8, 128, 32>("8B (8 x 128)", batch, context, cache, poolPages, out);
  }
  return 0;
}
