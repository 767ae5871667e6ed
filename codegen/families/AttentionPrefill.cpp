//===- AttentionPrefill.cpp - prefill attention ----------------------===//
//
// Every query of a prompt: cuda/attention/prefill.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

void Emitter::attentionPrefillSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t H, int64_t hkv,
                                       int64_t D, Type cacheType) {
  out.family = "attention_prefill";
  int64_t G = hkv > 0 && H % hkv == 0 ? H / hkv : 0;
  if ((cacheType.isBF16() || cacheType.isF16()) && D % 16 == 0 && D <= 256 && G > 0) {
    // Tensor cores (attentionPrefillMma): the largest divisor of the group
    // up to 8 query heads per block, 16-token warp tiles up to 8 warps;
    // choose-tiling's key tile where the registers hold it.
    // On sm_90a-only engines (gemmWs's condition), head dims 64 and 128
    // whose block rows are whole warpgroups: attentionPrefillWs (a producer
    // warpgroup, both products on wgmma; --attention-ws=pingpong: its two
    // consumer warpgroups take turns); without it (--no-attention-ws), S =
    // Q K^T by warpgroup MMA where that was measured faster (D = 64).
    // --exact-attention keeps attentionPrefillMma (P V in two parts).
    target::AttentionTileShape t =
        target::AttentionTileShape::of(G, D, tileInt(kernel_, "block_kv", 64), options_.wgmma && options_.warpSpecialize,
                                       options_.attentionWs != 0 && !options_.exactAttention,
                                       options_.attentionBlockKv);
    int64_t hb = t.hb, bq = t.bq, bkv = t.bkv;
    out.threads = t.threads();
    out.smem = t.smemBytes();
    out.grid = SizeRule{hkv * (G / hb), {Sym::Batch, Sym::Tokens}, bq, 0};
    if (t.ws)
      os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}, 1) {1}(kiln::Args a) {{ "
                          "kiln::attentionPrefillWs<S, {2}, {3}, {4}, {5}{6}>(a); }\n",
                          out.threads, kernel_.getSymName(), hb, bq, bkv, t.stages,
                          options_.attentionWs == 2 && t.rows() == 128 ? ", true" : "");
    else
      os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}, {5}) {1}(kiln::Args a) {{ "
                          "kiln::attentionPrefillMma<S, {2}, {3}, {4}{6}>(a); }\n",
                          out.threads, kernel_.getSymName(), hb, bq, bkv, t.minBlocks(), t.wgmma ? ", true" : "");
    return;
  }
  out.grid = SizeRule{H, {Sym::Batch, Sym::Tokens}, 4, 0};
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                      "kiln::attentionPrefill<S>(a); }\n",
                      kernel_.getSymName());
}

} // namespace kiln::codegen::detail
