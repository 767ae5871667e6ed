//===- Pipelines.cpp - kiln's pass pipelines ------------------------------===//
#include "passes/Pipelines.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace kiln {

void buildGraphPipeline(mlir::OpPassManager &pm, const GraphPipelineOptions &o) {
  pm.addPass(createDequantAtLoad());
  if (o.quantizeBits != 0)
    pm.addPass(createQuantizeWeights(QuantizeWeightsOptions{o.quantizeBits, o.groupSize, o.quantizeLmHead}));
  pm.addPass(createRaisePatterns());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(createInsertKvCache(InsertKvCacheOptions{o.pageSize, "forward", "last"}));
  pm.addPass(mlir::createCanonicalizerPass()); // transposes around appended keys cancel
  if (!o.decodeBuckets.empty()) {
    DecodeBucketsOptions buckets;
    buckets.buckets = llvm::to_vector(o.decodeBuckets);
    pm.addPass(createDecodeBuckets(buckets));
  }
  if (o.ropeTables)
    pm.addPass(createShareRopeTables());
  FuseOptions fuse;
  fuse.decodeTokens = o.decodeBatch;
  fuse.prefillTokens = o.prefillTokens;
  fuse.appendInAttention = o.appendInAttention;
  pm.addPass(createFuse(fuse));
  pm.addPass(createChooseTiling(
      ChooseTilingOptions{o.target, o.decodeBatch, o.prefillTokens, o.context, o.epilogueWarps}));
}

void buildMemoryPipeline(mlir::OpPassManager &pm, const MemoryPipelineOptions &o) {
  pm.addPass(createLowerToExec(LowerToExecOptions{o.maxBatch, o.maxTokens}));
  pm.addPass(createScheduleMemory());
  pm.addPass(createPlanArena());
}

void registerKilnPipelines() {
  mlir::PassPipelineRegistration<MemoryPipelineOptions>(
      "kiln-memory-pipeline", "lower-to-exec, schedule-memory and plan-arena",
      buildMemoryPipeline);
  mlir::PassPipelineRegistration<GraphPipelineOptions>(
      "kiln-graph-pipeline",
      "dequant-at-load, raise-patterns, canonicalize, insert-kv-cache, decode-buckets, share-rope-tables, fuse and choose-tiling",
      buildGraphPipeline);
}

} // namespace kiln
