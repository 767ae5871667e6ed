//===- HFImporter.h - Hugging Face directory -> kiln dialect -----*- C++ -*-===//
//
// Builds `func.func @forward(%input_ids: tensor<?x?xi64>) -> tensor<?x?xVxT>`
// (batch and tokens dynamic) from config.json and the safetensors headers.
// No weight data is read: weights are `kiln.weight` ops naming the tensors,
// with the file's dtype, cast to the compute dtype when the two differ.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_HF_HFIMPORTER_H
#define KILN_FRONTEND_HF_HFIMPORTER_H

#include "frontend/hf/HFConfig.h"
#include "runtime/format/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace kiln::hf {

struct ImportOptions {
  /// Element type of activations: "f32", "bf16", "f16", or empty for the
  /// model's own dtype.
  std::string computeDType;
};

/// Imports the model in directory `dir`. On failure returns null and sets
/// `status` to an error naming the file and the problem.
mlir::OwningOpRef<mlir::ModuleOp> importHFModel(mlir::MLIRContext &context,
                                                const std::string &dir,
                                                const ImportOptions &options,
                                                Status &status);

/// The same from a parsed config and tensor index (`source` names them in errors).
mlir::OwningOpRef<mlir::ModuleOp>
importHFModel(mlir::MLIRContext &context, const ModelConfig &config,
              const format::SafetensorsIndex &tensors, const std::string &source,
              const ImportOptions &options, Status &status);

} // namespace kiln::hf

#endif
