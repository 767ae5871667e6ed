//===- Sampling.cpp - the engine's sampling kernel -------------------===//
//
// Every engine carries one kernel that samples the next tokens of a step's
// logits on the GPU (cuda/sampling.cuh): not part of any function's plan,
// the runtime launches it on the logits a step leaves (runtime/core/
// Sampler.cpp). Its host program is empty: on the host device the runtime
// samples with the host kernels, the reference this kernel follows.
//
//===----------------------------------------------------------------------===//
#include "codegen/KernelEmitter.h"

#include "llvm/Support/FormatVariadic.h"

namespace kiln::codegen {

const char *const kSamplingKernel = "kiln_sample";

mlir::FailureOr<EmittedKernel> emitSamplingKernel(llvm::StringRef logitsDtype, int64_t vocab) {
  const char *type = logitsDtype == "f32"    ? "float"
                     : logitsDtype == "bf16" ? "__nv_bfloat16"
                     : logitsDtype == "f16"  ? "__half"
                                             : nullptr;
  if (!type || vocab <= 0 || vocab > (int64_t(1) << 31) - 1)
    return mlir::failure();
  EmittedKernel k;
  k.name = kSamplingKernel;
  k.family = "sample";
  k.threads = 1024;
  // The bitmap of penalised tokens: a bit per token, in whole words.
  k.smem = (vocab + 31) / 32 * 4;
  k.grid.symbols = {Sym::Batch};
  k.workspace.factor = 0;
  k.dependentLaunch = false;
  k.specialisation = llvm::formatv("// ---- {2} (sample) ----\n// the step's sampler over {0} logits of {1}\n"
                                   "extern \"C\" __global__ void __launch_bounds__(1024) {2}(kiln::Args a) {{ "
                                   "kiln::sampleRows<{3}>(a); }\n",
                                   vocab, logitsDtype, kSamplingKernel, type)
                         .str();
  k.source = kernelSource(k.specialisation);
  k.hostProgram = R"({"args":[],"ops":[],"yields":[]})";
  return k;
}

} // namespace kiln::codegen
