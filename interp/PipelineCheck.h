//===- PipelineCheck.h - check that passes preserve numbers ------*- C++ -*-===//
//
// The interpreter as the oracle of every pass: evaluate a function before and
// after a transformation on the same random inputs and weights, and compare.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERP_PIPELINECHECK_H
#define KILN_INTERP_PIPELINECHECK_H

#include "mlir/IR/BuiltinOps.h"

#include <functional>
#include <string>

namespace kiln::interp {

struct CheckOptions {
  std::string entry;         // empty: every function with a body
  uint64_t seed = 0;         // inputs and weights
  int64_t dynamicSize = 7;   // size given to dynamic input dimensions
  int64_t intRange = 16;     // integer inputs are in [0, intRange)
  double tolerance = 1e-5;   // |a-b| <= tol * (|a| + rms(a)), scaled by dtype
  int trials = 2;            // seeds seed, seed+1, ...
};

/// Evaluates the functions of `module` before and after `transform` (applied
/// to a clone) and compares every result. `report` says what differed, or
/// what was compared when everything agreed.
mlir::LogicalResult
checkTransformPreservesOutputs(mlir::ModuleOp module,
                               const std::function<mlir::LogicalResult(mlir::ModuleOp)> &transform,
                               const CheckOptions &options, std::string &report);

/// The same with a textual pass pipeline, e.g. "builtin.module(canonicalize)".
mlir::LogicalResult checkPipelinePreservesOutputs(mlir::ModuleOp module,
                                                  llvm::StringRef pipeline,
                                                  const CheckOptions &options,
                                                  std::string &report);

} // namespace kiln::interp

#endif
