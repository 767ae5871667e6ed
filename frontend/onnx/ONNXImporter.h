//===- ONNXImporter.h - ONNX model -> kiln dialect --------------*- C++ -*-===//
//
// Imports an .onnx file (default domain, opsets 13-28) into
// `func.func @forward`. Graph inputs keep their names (`kiln.name`) and
// dynamic dimensions (dim_param) stay dynamic. Large float initializers become
// `kiln.weight` ops named like the initializer (the data stays in the file, or
// its external data file); small ones and every node whose operands are all
// known become `kiln.constant` (folded with the interpreter's kernels).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_ONNX_ONNXIMPORTER_H
#define KILN_FRONTEND_ONNX_ONNXIMPORTER_H

#include "interp/Interpreter.h"
#include "runtime/support/Status.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::onnx_frontend {

/// Imports `path`. On failure returns null and sets `status` to an error that
/// names the file, and the node where there is one.
mlir::OwningOpRef<mlir::ModuleOp> importONNXModel(mlir::MLIRContext &context,
                                                  const std::string &path,
                                                  Status &status);

/// The initializers of `path` as weights for the interpreter.
llvm::FailureOr<interp::WeightProvider> onnxWeights(const std::string &path,
                                                    Status &status);

/// The operators the importer handles (docs/onnx-ops.md lists them too).
const std::vector<std::string> &supportedOps();

} // namespace kiln::onnx_frontend

#endif
