//===- PassUtils.h - helpers shared by kiln's passes -------------*- C++ -*-===//
#ifndef KILN_PASSES_PASSUTILS_H
#define KILN_PASSES_PASSUTILS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>

namespace kiln {

/// The most rows of A a decode matmul takes through the GEMV (each weight
/// read once, A's rows staged); from one more, the tensor cores. H100
/// (bench/NOTES.md item 30): the 4-row GEMV made the 1B's batch-4 step 1.90
/// ms (its down projection 47 us, A's 4 x 8192 rows past the staging)
/// where the batch-8 step on tensor cores took 1.57, and the 8B's 10.15
/// against 7.25.
constexpr int64_t kGemvMaxRows = 2;

/// A decode function's batch: set by kiln-decode-buckets on @decode and on
/// each of its copies, read as the step's batch by stepShapeOf.
inline constexpr llvm::StringLiteral kDecodeBatchAttr = "kiln.decode_batch";
/// The name of @decode's copy for steps of at most `batch` sequences.
inline std::string bucketFunctionName(int64_t batch) { return "decode_b" + std::to_string(batch); }

/// Re-derives result types in `func` after its argument types became more
/// static (e.g. decode's one token): ops with type inference take the
/// inferred types, ops whose result has their first operand's type (norms,
/// rope, elementwise, the KV-cache ops) follow it, casts keep their element
/// type. The function type is updated to the returned values' types.
mlir::LogicalResult refineTypes(mlir::func::FuncOp func);

/// Whether `op` (directly in a function) runs as a kernel of its own: not
/// weights or constants (bound or folded), reshapes (views of contiguous
/// tensors) or the return. A kiln.fused group is one kernel.
bool isKernel(mlir::Operation *op);

/// The sizes one step of a function is costed at. A function whose first
/// argument is `[?, 1]` (decode) runs `batch` sequences of one token (its
/// `kiln.decode_batch` where it has one); others (prefill, forward) one
/// sequence of `tokens` tokens.
struct StepShape {
  int64_t batch = 1, tokens = 1;
  int64_t context = 1024; // cached tokens per sequence a decode step attends to
  bool decode = false;
};
StepShape stepShapeOf(mlir::func::FuncOp func, int64_t decodeBatch, int64_t prefillTokens,
                      int64_t context);
/// Elements of `type` in that step: a dynamic dimension 0 is the batch, a
/// dynamic dimension 1 the tokens, any other dynamic dimension 1.
int64_t stepElements(mlir::Type type, const StepShape &step);
/// The same in bytes (at least one byte per element).
int64_t stepBytes(mlir::Type type, const StepShape &step);

} // namespace kiln

#endif
