// The device library's branch-free reciprocal (kiln::rcpOnePlus, SiLU's and
// sigmoid's 1 / (1 + e^-x)) against __frcp_rn, the correctly rounded one,
// for every float d from 1 to infinity: equal wherever 1 / d is normal
// (d < 2^126), within one subnormal ulp above. Run by test/gpu/run.sh:
//   nvcc -std=c++17 -arch=sm_90a -I codegen/cuda test/gpu/rcp_one_plus.cu && ./a.out
#include "common.cuh"
#include <cstdio>

__global__ void check(unsigned first, unsigned last, unsigned long long *counts) {
  for (unsigned long long b = first + blockIdx.x * static_cast<unsigned long long>(blockDim.x) + threadIdx.x;
       b <= last; b += static_cast<unsigned long long>(gridDim.x) * blockDim.x) {
    const float d = __uint_as_float(static_cast<unsigned>(b));
    const float want = __frcp_rn(d), got = kiln::rcpOnePlus(d);
    const unsigned w = __float_as_uint(want), g = __float_as_uint(got);
    if (w != g) {
      const bool normal = d < 0x1p126f;
      const unsigned diff = w > g ? w - g : g - w;
      atomicAdd(&counts[normal ? 0 : (diff <= 1 ? 1 : 2)], 1ull);
    }
  }
}

int main() {
  unsigned long long *counts;
  cudaMallocManaged(&counts, 3 * sizeof(unsigned long long));
  counts[0] = counts[1] = counts[2] = 0;
  check<<<132 * 16, 256>>>(0x3f800000u, 0x7f800000u, counts);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("FAIL rcpOnePlus: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  bool ok = counts[0] == 0 && counts[2] == 0;
  std::printf("%s rcpOnePlus against __frcp_rn over [1, inf]: %llu differ where 1/d is normal, %llu by one "
              "subnormal ulp, %llu by more\n",
              ok ? "PASS" : "FAIL", counts[0], counts[1], counts[2]);
  return ok ? 0 : 1;
}
