//===- AttentionPrefill.cpp - prefill attention ----------------------===//
//
// Every query of a prompt: cuda/attention/prefill.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

void Emitter::attentionPrefillSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t H) {
  out.family = "attention_prefill";
  out.grid = SizeRule{H, {Sym::Batch, Sym::Tokens}, 4, 0};
  os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                      "kiln::attentionPrefill<S>(a); }\n",
                      kernel_.getSymName());
}

} // namespace kiln::codegen::detail
