//===- PipelineCheck.h - check that passes preserve numbers ------*- C++ -*-===//
//
// The interpreter as the oracle of every pass: evaluate a function before and
// after a transformation on the same random inputs and weights, and compare.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERP_PIPELINECHECK_H
#define KILN_INTERP_PIPELINECHECK_H

#include "mlir/IR/BuiltinOps.h"

#include "interp/Interpreter.h"

#include <functional>
#include <vector>
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


struct KvCheckOptions {
  uint64_t seed = 0;                        // token ids and page assignment
  std::vector<int64_t> promptLengths = {5, 11, 2}; // one sequence each, one batch
  int decodeSteps = 16;
  int64_t prefillChunk = 0;                 // tokens per prefill call; 0: whole prompts
  double tolerance = 1e-5;                  // as CheckOptions, scaled by dtype
};

/// Checks a KV-cache transformation: `module`'s `@forward(input_ids)` is the
/// reference; `transform` (on a clone) must produce `@prefill` and `@decode`
/// over a paged cache (see kiln-insert-kv-cache). A batch of sequences of
/// different prompt lengths is prefilled in one call (padded, pages assigned
/// in shuffled order, the cache poisoned with NaN beforehand), then decoded
/// `decodeSteps` steps together; every logit row is compared with @forward's
/// on the whole sequence. A @forward with a static batch of 1 is checked on
/// the longest prompt alone; one with explicit past keys and values
/// (input_ids, position_ids, past...) is called with an empty past.
mlir::LogicalResult
checkKvCacheMatchesForward(mlir::ModuleOp module,
                           const std::function<mlir::LogicalResult(mlir::ModuleOp)> &transform,
                           const WeightProvider &weights, const KvCheckOptions &options,
                           std::string &report);

/// Runs a textual pass pipeline on `m`; `error` gets the parse error.
mlir::LogicalResult runPipeline(mlir::ModuleOp m, llvm::StringRef pipeline, std::string &error);

} // namespace kiln::interp

#endif
