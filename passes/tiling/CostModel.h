//===- CostModel.h - analytic kernel cost on a target ------------*- C++ -*-===//
//
// Predicts, for one kernel (a kiln.fused group, or a lone op before fusion),
// the device-memory bytes it moves, the FLOPs it does, and its time on a
// target for each candidate tiling; `choose-tiling` keeps the fastest. The
// model is a roofline with two corrections that decide decode speed:
//
//   * bytes in flight: a streaming kernel reaches the target's streaming
//     bandwidth only with bandwidth x latency bytes outstanding; with fewer
//     resident blocks it gets that fraction of it;
//   * waves: tiles are spread over SMs in whole waves.
//
// plus a fixed launch overhead per kernel (a CUDA-graph node).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_TILING_COSTMODEL_H
#define KILN_PASSES_TILING_COSTMODEL_H

#include "passes/PassUtils.h"
#include "runtime/target/Target.h"

#include "mlir/IR/Operation.h"

#include <string>
#include <vector>

namespace kiln::cost {

/// What a kernel computes, read from its ops.
struct KernelShape {
  std::string family;          // gemv, gemm, paged_attention, flash_attention,
                               // rope_kv_append, norm, elementwise, embedding, ...
  int64_t m = 0, n = 0, k = 0; // matmul rows (tokens), columns, reduction
  int64_t elementBytes = 2;
  int64_t heads = 0, kvHeads = 0, headDim = 0; // attention
  int64_t contextTokens = 0;   // keys each query sees (on average for prefill)
  int64_t sequences = 0;       // batch of an attention
  int64_t bytes = 0;           // device memory read + written
  int64_t weightBytes = 0;     // the part of `bytes` that is weights
  int64_t flops = 0;
  bool epilogueLoads = false;  // a matmul whose epilogue reads an activation (a residual)
  bool epilogueWarps = true;   // the GEMM may run its epilogue in warps of its own (choose-tiling's option)
  bool decode = false;         // a decode step's kernel (split-K GEMMs: their workspace is per row tile of a batch)
};

struct Tiling {
  std::string family;
  std::vector<std::pair<std::string, int64_t>> params; // e.g. rows_per_block = 4
  double timeUs = 0;
  int64_t blocks = 0;
};

/// Whether `user` reads only rows of `table` by gathering them, directly or
/// through a cast (f32 compute over bf16 weights) only gathered from.
bool gathersRows(mlir::Operation *user, mlir::Value table);
/// Reads the shape of `kernel` (a FusedOp or a single op) for `step`.
KernelShape describe(mlir::Operation *kernel, const StepShape &step);
/// Every candidate tiling of `shape` on `t`, with its predicted time.
std::vector<Tiling> candidates(const KernelShape &shape, const target::TargetDesc &t);
/// The fastest candidate (the first of equals).
Tiling best(const KernelShape &shape, const target::TargetDesc &t);

} // namespace kiln::cost

#endif
