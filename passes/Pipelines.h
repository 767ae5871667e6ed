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
  Option<bool> appendInAttention{*this, "append-in-attention",
                                 llvm::cl::desc("in decode, RoPE and the KV append join the attention kernel"),
                                 llvm::cl::init(false)};
  ListOption<int64_t> decodeBuckets{*this, "decode-buckets",
                                    llvm::cl::desc("decode batch sizes, each its own @decode copy (the largest "
                                                   "@decode's own; none: @decode at decode-batch alone)")};
  Option<bool> ropeTables{*this, "rope-tables",
                           llvm::cl::desc("every RoPE reads its step's one table of cosines and sines "
                                          "(share-rope-tables)"),
                           llvm::cl::init(true)};
  Option<bool> epilogueWarps{*this, "epilogue-warps",
                             llvm::cl::desc("GEMM tiles may run their epilogue in warps of their own"),
                             llvm::cl::init(true)};
  Option<int64_t> quantizeBits{*this, "quantize-bits",
                               llvm::cl::desc("float projections rounded by the loader to 4 or 8 bits "
                                              "(kiln-quantize-weights); 0: kept"),
                               llvm::cl::init(0)};
  Option<int64_t> groupSize{*this, "group-size", llvm::cl::desc("input features per quantization scale"),
                            llvm::cl::init(128)};
  Option<bool> quantizeLmHead{*this, "quantize-lm-head", llvm::cl::desc("quantize the LM head too"),
                              llvm::cl::init(false)};
};

struct MemoryPipelineOptions : mlir::PassPipelineOptions<MemoryPipelineOptions> {
  Option<int64_t> maxBatch{*this, "max-batch", llvm::cl::desc("sequences per decode step"),
                           llvm::cl::init(1)};
  Option<int64_t> maxTokens{*this, "max-tokens", llvm::cl::desc("tokens per prefill step"),
                            llvm::cl::init(512)};
};

/// lower-to-exec, schedule-memory, plan-arena: from the tiled graph to
/// launches over planned arenas.
void buildMemoryPipeline(mlir::OpPassManager &pm, const MemoryPipelineOptions &options);

/// dequant-at-load, quantize-weights (with quantize-bits), raise-patterns,
/// canonicalize, insert-kv-cache, canonicalize,
/// decode-buckets (with decode-buckets), share-rope-tables (with
/// rope-tables), fuse, choose-tiling: from
/// an imported @forward to tiled prefill and decode kernels.
void buildGraphPipeline(mlir::OpPassManager &pm, const GraphPipelineOptions &options);

/// Registers `kiln-graph-pipeline` and `kiln-memory-pipeline`.
void registerKilnPipelines();

} // namespace kiln

#endif
