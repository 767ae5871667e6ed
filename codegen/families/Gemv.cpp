//===- Gemv.cpp - the GEMV family ------------------------------------===//
//
// A few rows against a streamed weight (decode): cuda/gemv.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

void Emitter::gemvSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t K, int64_t N, int gate, int64_t mc,
                           Type ta, Type tw) {
  int64_t threads = pow2Floor(std::clamp<int64_t>(tileInt(kernel_, "threads", 256), 64, 512));
  int64_t vecBytes = 16, ebytes = std::max<int64_t>(1, tw.getIntOrFloatBitWidth() / 8);
  int64_t vec = vecBytes / ebytes;
  while (vec > 1 && K % vec)
    vec /= 2;
  // Weights in 16-byte loads; the activation's VEC elements follow in as
  // many 16-byte loads as they take (two of f32 beside bf16 weights).
  auto vectorisable = [](Type t) { return t.isBF16() || t.isF16() || t.isF32(); };
  if (!vectorisable(ta) || !vectorisable(tw))
    vec = 1;
  int64_t warps = threads / 32;
  int64_t splitK = std::min<int64_t>(warps, pow2Floor(std::max<int64_t>(1, tileInt(kernel_, "split_k", 1))));
  int64_t chunk = 32 * vec, iters = ((K + splitK - 1) / splitK + chunk - 1) / chunk;
  int64_t unroll = 1;
  while (unroll < std::min<int64_t>(8, iters))
    unroll *= 2;
  unroll = std::min<int64_t>(unroll, pow2Floor(std::max<int64_t>(1, tileInt(kernel_, "unroll", unroll))));
  // Fewer loads in flight per lane when several rows or the gate's second
  // half multiply the accumulators and the registers holding them.
  if (mc * (gate ? 2 : 1) > 4)
    unroll = std::min<int64_t>(unroll, 4);
  int64_t cols = warps / splitK;
  out.family = "gemv";
  out.threads = threads;
  out.smem = 0;
  out.grid = SizeRule{(N + cols - 1) / cols, {}, 1, 0};
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                      "kiln::gemv<S, {0}, {2}, {3}, {4}>(a); }\n",
                      threads, kernel_.getSymName(), splitK, vec, unroll);
}

} // namespace kiln::codegen::detail
