//===- Pipelines.cpp - kiln's pass pipelines ------------------------------===//
#include "passes/Pipelines.h"

#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace kiln {

void buildGraphPipeline(mlir::OpPassManager &pm, const GraphPipelineOptions &o) {
  pm.addPass(createRaisePatterns());
  pm.addPass(mlir::createCanonicalizerPass());
  pm.addPass(createInsertKvCache(InsertKvCacheOptions{o.pageSize, "forward"}));
  FuseOptions fuse;
  fuse.decodeTokens = o.decodeBatch;
  fuse.prefillTokens = o.prefillTokens;
  pm.addPass(createFuse(fuse));
  pm.addPass(createChooseTiling(
      ChooseTilingOptions{o.target, o.decodeBatch, o.prefillTokens, o.context}));
}

void registerKilnPipelines() {
  mlir::PassPipelineRegistration<GraphPipelineOptions>(
      "kiln-graph-pipeline",
      "raise-patterns, canonicalize, insert-kv-cache, fuse and choose-tiling",
      buildGraphPipeline);
}

} // namespace kiln
