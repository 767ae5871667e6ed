// The GPU sampler (codegen/cuda/sampling.cuh) alone, per configuration, on
// rows of random logits: where a sampled decode step's extra time goes.
//
//   nvcc -arch=sm_90a -O3 -std=c++17 -o /tmp/sampler_bench bench/sampler_bench.cu
//   /tmp/sampler_bench [vocab=128256] [rows=1,32]
//
// Prints the median time of one launch (20 timed after 3 warm-up) for
// greedy, temperature alone, top-k 50, top-p 0.95, and top-p with
// log-probabilities and the top 5. The library files are included in the
// order codegen/CMakeLists.txt joins them.
#include "../codegen/cuda/common.cuh"
#include "../codegen/cuda/norm.cuh"
#include "../codegen/cuda/gemv.cuh"
#include "../codegen/cuda/sm90.cuh"
#include "../codegen/cuda/gemm.cuh"
#include "../codegen/cuda/gemm_ws.cuh"
#include "../codegen/cuda/pointwise.cuh"
#include "../codegen/cuda/attention/common.cuh"
#include "../codegen/cuda/attention/prefill.cuh"
#include "../codegen/cuda/attention/prefill_sm90.cuh"
#include "../codegen/cuda/attention/decode.cuh"
#include "../codegen/cuda/argmax.cuh"
#include "../codegen/cuda/sampling.cuh"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" __global__ void __launch_bounds__(1024) kiln_sample(kiln::Args a) { kiln::sampleRows<__nv_bfloat16>(a); }

#define CHECK(x)                                                                                                   \
  do {                                                                                                             \
    cudaError_t e = (x);                                                                                           \
    if (e != cudaSuccess) {                                                                                        \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e));                                                \
      std::exit(1);                                                                                                \
    }                                                                                                              \
  } while (0)

struct Config {
  const char *name;
  float temperature, top_p, min_p;
  int top_k, top_n, flags;
};

int main(int argc, char **argv) {
  const long long n = argc > 1 ? std::atoll(argv[1]) : 128256;
  std::vector<int> rowCounts = {1, 32};
  if (argc > 2) {
    rowCounts.clear();
    for (char *s = std::strtok(argv[2], ","); s; s = std::strtok(nullptr, ","))
      rowCounts.push_back(std::atoi(s));
  }
  const int maxRows = *std::max_element(rowCounts.begin(), rowCounts.end()), pages = 8;
  // Logits like a language model's: a bulk about N(0, 2) (sum of uniforms)
  // and a few large ones, different per row.
  std::vector<__nv_bfloat16> logits(static_cast<size_t>(n) * maxRows);
  unsigned long long s = 88172645463325252ull;
  auto next = [&] {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  };
  for (size_t i = 0; i < logits.size(); ++i) {
    double v = (next() + next() + next() + next() - 2.0) * 2.45;
    if (next() < 1e-4)
      v += 8.0;
    logits[i] = __float2bfloat16(static_cast<float>(v));
  }
  __nv_bfloat16 *dLogits;
  kiln::SampleRow *dRows;
  long long *dTokens;
  float *dLogprobs;
  kiln::SampleTop *dTops;
  CHECK(cudaMalloc(&dLogits, logits.size() * sizeof(__nv_bfloat16)));
  CHECK(cudaMemcpy(dLogits, logits.data(), logits.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
  CHECK(cudaMalloc(&dRows, maxRows * sizeof(kiln::SampleRow)));
  CHECK(cudaMalloc(&dTokens, maxRows * sizeof(long long)));
  CHECK(cudaMalloc(&dLogprobs, maxRows * sizeof(float)));
  CHECK(cudaMalloc(&dTops, maxRows * pages * sizeof(kiln::SampleTop)));
  const int smem = static_cast<int>((n + 31) / 32 * 4);
  CHECK(cudaFuncSetAttribute(kiln_sample, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const Config configs[] = {
      {"greedy", 0.0f, 1.0f, 0.0f, 0, 0, 0},
      {"temperature 0.8", 0.8f, 1.0f, 0.0f, 0, 0, 0},
      {"top-k 50", 0.8f, 1.0f, 0.0f, 50, 0, 0},
      {"top-p 0.95", 0.8f, 0.95f, 0.0f, 0, 0, 0},
      {"top-p 0.95 + logprobs, top 5", 0.8f, 0.95f, 0.0f, 0, 5, kiln::kSampleLogprobs},
  };
  cudaEvent_t t0, t1;
  CHECK(cudaEventCreate(&t0));
  CHECK(cudaEventCreate(&t1));
  std::printf("sampler: %lld logits (bf16) a row, 1024 threads a block, one block a row\n", n);
  for (int rows : rowCounts) {
    for (const Config &c : configs) {
      std::vector<kiln::SampleRow> R(rows);
      for (int r = 0; r < rows; ++r) {
        std::memset(&R[r], 0, sizeof(R[r]));
        R[r].temperature = c.temperature, R[r].top_p = c.top_p, R[r].min_p = c.min_p;
        R[r].repetition = 1.0f, R[r].top_k = c.top_k, R[r].top_n = c.top_n, R[r].flags = c.flags;
        R[r].seed = 1234 + r, R[r].position = 77;
      }
      CHECK(cudaMemcpy(dRows, R.data(), rows * sizeof(kiln::SampleRow), cudaMemcpyHostToDevice));
      kiln::Args a{};
      a.p[0] = dLogits, a.p[1] = dRows, a.p[2] = nullptr, a.p[3] = dTokens, a.p[4] = dLogprobs, a.p[5] = dTops;
      a.batch = rows, a.tokens = static_cast<int>(n), a.pages = pages;
      std::vector<float> us;
      for (int it = 0; it < 23; ++it) {
        CHECK(cudaEventRecord(t0));
        kiln_sample<<<rows, 1024, smem>>>(a);
        CHECK(cudaEventRecord(t1));
        CHECK(cudaEventSynchronize(t1));
        float ms = 0.0f;
        CHECK(cudaEventElapsedTime(&ms, t0, t1));
        if (it >= 3)
          us.push_back(ms * 1000.0f);
      }
      CHECK(cudaGetLastError());
      std::sort(us.begin(), us.end());
      long long tok = -1;
      CHECK(cudaMemcpy(&tok, dTokens, sizeof tok, cudaMemcpyDeviceToHost));
      std::printf("rows %3d  %-30s %8.1f us  (row 0 drew %lld)\n", rows, c.name, us[us.size() / 2], tok);
    }
  }
  return 0;
}
