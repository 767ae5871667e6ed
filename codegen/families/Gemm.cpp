//===- Gemm.cpp - the GEMM family ------------------------------------===//
//
// Many rows (prefill, large batches) on tensor cores: cuda/gemm.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

void Emitter::gemmSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t N, int gate, const Shape &lead) {
  int64_t bm = tileInt(kernel_, "block_m", 64) >= 128 ? 128 : 64, bn = 64;
  int64_t wm = bm / 32, wn = 2;
  out.family = "gemm";
  out.threads = wm * wn * 32;
  out.smem = std::max<int64_t>((bm + bn) * (32 + 8) * 2, bm * (bn + 4) * 4);
  int64_t nout = gate ? bn / 2 : bn;
  SizeRule g = ruleOf(lead);
  g.factor *= (N + nout - 1) / nout;
  g.divisor = bm; // approximately ceil(rows / BM) * tilesN; the kernel strides
  out.grid = g;
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                      "kiln::gemm<S, {2}, {3}, {4}, {5}>(a); }\n",
                      out.threads, kernel_.getSymName(), bm, bn, wm, wn);
}

} // namespace kiln::codegen::detail
