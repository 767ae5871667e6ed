//===- Pipelines.h - kiln's pass pipelines -------------------------*- C++ -*-===//
#ifndef KILN_PASSES_PIPELINES_H
#define KILN_PASSES_PIPELINES_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

#include <string>

namespace kiln {

struct GraphPipelineOptions : mlir::PassPipelineOptions<GraphPipelineOptions> {
  Option<int64_t> pageSize{*this, "page-size", llvm::cl::desc("tokens per KV page"),
                           llvm::cl::init(16)};
  Option<std::string> target{*this, "target", llvm::cl::desc("target GPU name or .json"),
                             llvm::cl::init("h100-sxm-80gb")};
  Option<int64_t> decodeBatch{*this, "decode-batch",
                              llvm::cl::desc("sequences per decode step"), llvm::cl::init(1)};
  Option<int64_t> prefillTokens{*this, "prefill-tokens",
                                llvm::cl::desc("tokens per prefill step"), llvm::cl::init(512)};
  Option<int64_t> context{*this, "context",
                          llvm::cl::desc("cached tokens a decode step attends to"),
                          llvm::cl::init(1024)};
};

/// raise-patterns, canonicalize, insert-kv-cache, fuse, choose-tiling: from
/// an imported @forward to tiled prefill and decode kernels.
void buildGraphPipeline(mlir::OpPassManager &pm, const GraphPipelineOptions &options);

/// Registers `kiln-graph-pipeline` (kiln-opt --kiln-graph-pipeline).
void registerKilnPipelines();

} // namespace kiln

#endif
