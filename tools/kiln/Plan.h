//===- Plan.h - kiln plan -------------------------------------------*- C++ -*-===//
#ifndef KILN_TOOLS_KILN_PLAN_H
#define KILN_TOOLS_KILN_PLAN_H

#include "runtime/support/Status.h"
#include "runtime/target/Target.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::tool {

/// What `kiln plan` and `kiln compile` build: the model and the limits the
/// plan is made for.
struct BuildOptions {
  std::string model; // a Hugging Face directory or an .onnx file
  std::string gpu = "h100-sxm-80gb";
  int64_t maxBatch = 1, maxSeq = 4096, maxNumTokens = 512, pageSize = 16;
  bool maxSeqGiven = false; // --max-seq given (else defaultMaxSeq may shorten it)
  std::string dtype; // activations: f32, bf16, f16; empty: the model's own
  bool appendInAttention = false; // decode's RoPE and KV append inside the attention kernel
  bool wgmma = true;              // GEMMs on sm_90a through warpgroup MMA (--no-wgmma: mma.sync)
  int warpSpecialize = 1;         // plain wgmma GEMMs fed by a TMA producer: 1 cooperative (default),
                                  // 2 ping-pong, 0 gemmMma (--[no-]warp-specialize[=cooperative|pingpong])
  bool exactAttention = false;    // prefill attention's P V in two parts (--exact-attention)
  int attentionWs = 1;            // sm_90a prefill attention warp-specialised: 1, 2 ping-pong, 0 one role
                                  // (--attention-ws[=pingpong] | --no-attention-ws)
  int64_t attentionBlockKv = 0;   // the prefill attention's key tile (--attention-block-kv N; 0: the cost model's)
  int64_t decodeGemmStages = 0;   // decode GEMMs' ring depth (--decode-gemm-stages N, 2-8; 0: the cost model's)
  bool decodeAttentionMma = true; // decode attention on tensor cores where it applies (--decode-attention=mma|tiled)
  bool decodeClusterSplit = true; // decode GEMMs' K over a cluster (--no-decode-cluster-split: split-K in memory)
  int64_t decodeGateTileN = 0;    // decode's gate/up column tile (--decode-gate-tile 64|128; 0: chosen)
  int64_t pdlPrefetch = -1;       // bytes of W a GEMM block prefetches into L2 before it waits on the
                                  // previous kernel (--pdl-prefetch BYTES; -1: the library's default)
  int64_t pdlPrefetchKeys = -1;   // keys' K/V rows the decode attention prefetches into L2 before its
                                  // wait (--pdl-prefetch-keys N; -1: the library's default)
  int64_t pdlTrigger = -1;        // kernels let the next one launch before they end (--pdl-trigger 0|1;
                                  // -1: the library's default)
  bool ropeTables = true;         // one table of RoPE cosines and sines per step (--no-rope-tables: each
                                  // rotation computes its own angles)
  bool cluster = false;           // cooperative gemmWs in block pairs sharing an operand (--cluster)
  int epilogueWarpgroup = 1;      // gemmWs's epilogue in warps of its own: 1 where the cost model says,
                                  // 2 always (--epilogue-warpgroup), 0 never (--no-epilogue-warpgroup)
  /// Decode batch buckets (--decode-buckets 1,8,64): each smaller than
  /// maxBatch gets its own decode function; empty: the powers of two below
  /// maxBatch (--decode-buckets none: @decode alone).
  std::vector<int64_t> decodeBuckets;
  bool noDecodeBuckets = false;
  /// --quantize int8|int4: float projections rounded by the loader to 8 or
  /// 4 bits in groups of --group-size input features (kiln-quantize-weights);
  /// 0: kept as they are.
  int64_t quantizeBits = 0, groupSize = 128;
  bool groupSizeGiven = false, quantizeLmHead = false;
};

/// The decode functions' batch sizes, ascending, the last maxBatch.
std::vector<int64_t> decodeBucketsOf(const BuildOptions &options);

enum class Stage { Graph, Fused, Exec };

/// A context with kiln's dialects loaded (kiln, kiln_exec, func).
std::unique_ptr<mlir::MLIRContext> makeContext();

/// Imports the model (headers only) and runs the pipelines up to `stage`:
/// the imported graph, the fused and tiled graph, or the planned kiln_exec
/// module. `weightBytes` counts each weight tensor the graph binds once.
/// Without --max-seq: the default (4096), or a Hugging Face model's own
/// context (max_position_embeddings, GPT-2's n_positions) where that is
/// shorter -- so that `kiln run` on a model of 1024 positions just works.
void defaultMaxSeq(BuildOptions &options);

Status buildModule(mlir::MLIRContext &ctx, const BuildOptions &options, Stage stage,
                   mlir::OwningOpRef<mlir::ModuleOp> &module, target::TargetDesc &gpu,
                   int64_t &weightBytes);

/// Where every byte lives on the GPU (see Plan.cpp).
struct MemoryPlan {
  std::string target;
  int64_t gpuBytes = 0, weights = 0, arenaPrefill = 0, arenaDecode = 0;
  int64_t arenaLowerBound = 0, kvPerToken = 0, pageSize = 0, pagesPerSeq = 0, kvPool = 0;
  int64_t workspace = 0, graphs = 0, total = 0, launchesDecode = 0, buckets = 0;
  int64_t maxBatchAtSeq = 0, kvTokensFree = 0, contextReserve = 0;
  int64_t arena() const { return std::max(arenaPrefill, arenaDecode); }
};

/// The memory plan of a planned module; `workspace` is the largest kernel
/// workspace the code generator reported.
Status planMemory(mlir::ModuleOp module, const BuildOptions &options, const target::TargetDesc &gpu,
                  int64_t weightBytes, int64_t workspace, MemoryPlan &out);

struct PlanOptions {
  BuildOptions build;
  bool json = false;
  std::string svg; // draw buffer lifetimes here when set
};

/// `kiln plan`: prints the memory manifest; returns the exit code.
int plan(const PlanOptions &options);

} // namespace kiln::tool

#endif
