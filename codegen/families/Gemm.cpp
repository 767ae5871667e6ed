//===- Gemm.cpp - the GEMM family ------------------------------------===//
//
// Many rows (prefill, large batches) on tensor cores: cuda/gemm.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

GemmTile gemmTile(ex::KernelOp kernel, int64_t K) {
  // choose-tiling's tile; one gemmMma does not take (an older engine's
  // plan) becomes the nearest it does.
  auto pick = [](int64_t v, std::initializer_list<int64_t> allowed) {
    int64_t best = *allowed.begin();
    for (int64_t a : allowed)
      if (a <= v)
        best = a;
    return best;
  };
  GemmTile t;
  t.shape.bm = pick(tileInt(kernel, "block_m", 128), {64, 128, 256});
  t.shape.bn = pick(tileInt(kernel, "block_n", 128), {64, 128, 256});
  if (t.shape.bm == 256 && t.shape.bn == 256)
    t.shape.bn = 128;
  t.shape.bk = pick(tileInt(kernel, "block_k", 64), {32, 64});
  t.shape.stages = std::clamp<int64_t>(tileInt(kernel, "stages", 3), 2, 4);
  t.mma = K % 8 == 0;
  return t;
}

void Emitter::gemmSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t K, int64_t N, int gate,
                           const Shape &lead) {
  GemmTile g0 = gemmTile(kernel_, K);
  const target::GemmTileShape &t = g0.shape;
  out.family = "gemm";
  SizeRule g = ruleOf(lead);
  if (g0.mma) {
    // Pipelined tensor cores (gemmMma) with choose-tiling's tile.
    out.threads = t.threads();
    // wgmma's swizzled stages start on 1024-byte boundaries: room to align.
    bool wg = options_.wgmma && t.bk == 64 && t.threads() % 128 == 0;
    out.smem = t.smemBytes() + (wg ? 1024 : 0);
    int64_t nout = gate ? t.bn / 2 : t.bn;
    g.factor *= (N + nout - 1) / nout;
    g.divisor = t.bm; // approximately ceil(rows / BM) * tilesN; the kernel strides
    out.grid = g;
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}, 1) {1}(kiln::Args a) {{ "
                        "kiln::gemmMma<S, {2}, {3}, {4}, {5}, {6}, {7}, {8}>(a); }\n",
                        out.threads, kernel_.getSymName(), t.bm, t.bn, t.bk, t.stages, t.wm(), t.wn(),
                        wg ? "true" : "false");
    return;
  }
  // K not a multiple of 8: WMMA without cp.async.
  int64_t bm = tileInt(kernel_, "block_m", 64) >= 128 ? 128 : 64, bn = 64;
  int64_t wm = bm / 32, wn = 2;
  out.threads = wm * wn * 32;
  out.smem = std::max<int64_t>((bm + bn) * (32 + 8) * 2, bm * (bn + 4) * 4);
  int64_t nout = gate ? bn / 2 : bn;
  g.factor *= (N + nout - 1) / nout;
  g.divisor = bm; // approximately ceil(rows / BM) * tilesN; the kernel strides
  out.grid = g;
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                      "kiln::gemm<S, {2}, {3}, {4}, {5}>(a); }\n",
                      out.threads, kernel_.getSymName(), bm, bn, wm, wn);
}

} // namespace kiln::codegen::detail
