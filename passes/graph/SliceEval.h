//===- SliceEval.h - evaluate a value's backward slice at compile time -*- C++ -*-===//
//
// Raise patterns recognise what exporters compute by evaluating it: a mask
// or a RoPE table is the backward slice of one value, reading inputs only
// through their shapes (or through values the pattern binds, like the
// positions). The slice is evaluated op by op with the interpreter's kernels
// for chosen sizes.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_PASSES_GRAPH_SLICEEVAL_H
#define KILN_PASSES_GRAPH_SLICEEVAL_H

#include "runtime/kernels/host/Tensor.h"

#include "mlir/IR/Value.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallVector.h"

namespace kiln {

class SliceEvaluator {
public:
  /// `v` takes `t` instead of being computed (and is not collected through).
  void bind(mlir::Value v, host::Tensor t);
  /// Collects the backward slice of `v`; false when it reads an argument, a
  /// weight or an op with regions other than through a shape (kiln.shape_of,
  /// or kiln.arange over one of its dimensions), or exceeds `maxOps`.
  bool collect(mlir::Value v, size_t maxOps = 400);
  /// The constants of the slices collected so far.
  llvm::SmallVector<mlir::Value> constants() const;
  /// Evaluates `v` (collected before). A shape of a value outside the slice
  /// (and an arange over one of its dimensions) comes from its type: dynamic
  /// dimension 0 is `batch`, any other dynamic dimension `length`.
  mlir::FailureOr<host::Tensor> evaluate(mlir::Value v, int64_t length, int64_t batch = 1);

private:
  bool collectQuietly(mlir::Value v, size_t maxOps);

  llvm::DenseMap<mlir::Value, host::Tensor> bound_;
  llvm::SetVector<mlir::Operation *> ops_;
  llvm::DenseSet<mlir::Value> seen_;
  llvm::DenseSet<mlir::Operation *> shapeLeaves_;
};

} // namespace kiln

#endif
