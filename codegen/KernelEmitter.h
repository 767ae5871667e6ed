//===- KernelEmitter.h - kiln_exec kernels -> CUDA C++ ----------*- C++ -*-===//
//
// Each `kiln_exec.kernel` becomes one self-contained CUDA C++ source: the
// device library (codegen/cuda/*.cuh) followed by a generated
// `struct S` that specialises one skeleton with the kernel's shapes,
// constants and fused body, and an `extern "C" __global__` entry taking
// `kiln::Args` (docs/codegen.md). Which skeleton follows from the body: a
// matmul (GEMV for decode, GEMM with tensor cores for prefill) with its norm
// prologue and elementwise/gated/argmax epilogues, paged attention (decode
// split-KV or prefill), a row norm, a row argmax, or a pointwise group
// (elementwise ops, gathers, rope, KV-cache appends) evaluated per element.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_KERNELEMITTER_H
#define KILN_CODEGEN_KERNELEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::codegen {

/// The step sizes a kernel's dynamic dimensions are bound to at launch.
enum class Sym { Batch, Tokens, Pages, MaxBlocks };
const char *symName(Sym s); // "batch", "tokens", "pages", "max_blocks"

/// blocks or bytes = ceil(factor * product(symbols) / divisor), at least 1
/// (blocks) and at most `max` when `max` > 0.
struct SizeRule {
  int64_t factor = 1;
  std::vector<Sym> symbols;
  int64_t divisor = 1;
  int64_t max = 0;
  bool tiles = false; // factor * ceil(product / divisor): whole tiles of rows
};

/// A TMA tensor map the runtime encodes for each launch of a kernel (the
/// kernel's second parameter, in list order): buffer p[operand] as a
/// row-major [rows, cols] matrix of 16-bit `dtype`, boxes of boxRows x
/// boxCols elements, 128-byte swizzled, zeros past the bounds.
struct TensorMapSpec {
  int64_t operand = 0;
  SizeRule rows;
  int64_t cols = 0, boxRows = 0, boxCols = 0;
  std::string dtype;
};

struct EmittedKernel {
  std::string name;     // the entry point, = the kernel's symbol
  std::string family;   // the skeleton: gemv, gemm, pointwise, norm, ...
  std::string source;   // complete CUDA C++ (library + specialisation)
  std::string specialisation; // the generated part alone (golden tests)
  int64_t threads = 128;
  int64_t smem = 0;     // dynamic shared memory bytes
  SizeRule grid;        // blocks per launch
  SizeRule workspace;   // zeroed scratch bytes
  /// The fused body for the host device, as JSON (docs/engine-format.md:
  /// host programs): operand types with step-size dims, the ops as
  /// host::HostOp (name, attributes, result types, operands), the yields.
  std::string hostProgram;
  /// Bytes moved and FLOPs at the step the cost model planned (choose-tiling).
  int64_t bytes = 0, flops = 0;
  /// The kernel waits for the previous one itself (dependOnPrevious in the
  /// device library), so the runtime may launch it while that one finishes.
  bool dependentLaunch = true;
  /// TMA maps the kernel takes as its second parameter (none: one parameter).
  std::vector<TensorMapSpec> tensorMaps;
};

struct EmitOptions {
  /// The largest step: bounds the workspace and the GEMV's row staging.
  int64_t maxBatch = 1, maxTokens = 1;
  /// GEMMs on sm_90a run warpgroup MMA (wgmma) main loops where the tile
  /// allows (BK = 64); off: mma.sync everywhere.
  bool wgmma = true;
  /// Plain GEMMs (no norm prologue, no argmax) take the warp-specialised
  /// wgmma kernel (gemmWs, TMA) where the tile allows (bench/PREFILL.md
  /// items 13-16): 1 cooperative (the tile's rows split over the consumer
  /// warpgroups; the default), 2 ping-pong (consumer warpgroups take whole
  /// tiles in turn: `kiln compile --warp-specialize=pingpong`), 0 gemmMma
  /// (`--no-warp-specialize`). Only for engines whose
  /// every target is sm_90a: its fallback for other architectures (the
  /// runtime re-compiling the sources) is correct but slow.
  int warpSpecialize = 1;
  /// Cooperative gemmWs runs in clusters of two blocks that share one
  /// operand's tiles by TMA multicast (`kiln compile --cluster`). Off by
  /// default: on the H100 the pairs were even with lone blocks, each
  /// faster in the call where it was timed second (bench/PREFILL.md items
  /// 17-18).
  bool cluster = false;
  /// Cooperative gemmWs (up to 128-row tiles) runs each tile's epilogue in
  /// warps of its own from the products staged in shared memory, while the
  /// consumers start the next tile (gemm_ws.cuh's EPIWG): 1 where
  /// choose-tiling's cost model chose it (`epilogue_warps`, the default),
  /// 2 wherever the kernel allows (`kiln compile --epilogue-warpgroup`), 0
  /// never (`--no-epilogue-warpgroup`, which also keeps choose-tiling from
  /// pricing them: its `epilogue-warps=false`).
  int epilogueWarpgroup = 1;
  /// The tensor-core prefill attention multiplies V by P as two bf16/f16
  /// parts (P rounded, then the remainder): P V to f32 precision, as the
  /// host computes it, for twice the P V work. Off: P rounded to the cache
  /// dtype, as FlashAttention does.
  bool exactAttention = false;
  /// On engines whose every target is sm_90a (warpSpecialize), prefill
  /// attention at head dims 64 and 128 runs attentionPrefillWs (a producer
  /// warpgroup, both products on wgmma); off (`kiln compile
  /// --no-attention-ws`): attentionPrefillMma. 2: its two consumer
  /// warpgroups take turns issuing their products (`--attention-ws=pingpong`).
  int attentionWs = 1;
  /// The prefill attention's key tile instead of choose-tiling's
  /// (`--attention-block-kv N`; 0: choose-tiling's).
  int64_t attentionBlockKv = 0;
  /// The ring depth of decode's GEMMs (rows of sequences, not tokens)
  /// instead of choose-tiling's (`--decode-gemm-stages N`, 2 to 8, as far
  /// as shared memory holds them; 0: choose-tiling's). For A/B runs.
  int64_t decodeGemmStages = 0;
  /// Decode attention on tensor cores (attentionDecodeMma) where it applies:
  /// a 16-bit cache, queries in its dtype, D a multiple of 16 up to 128, up
  /// to 16 query heads a kv head; off (`kiln compile --decode-attention=tiled`):
  /// attentionDecodeTiled, CUDA cores, wherever that applies.
  bool decodeAttentionMma = true;
  /// Decode's plain GEMMs (TMA-fed gemmWs) whose 64-row tiles are fewer
  /// than half of `sms`: each tile's K over a cluster of 2 or 4 blocks,
  /// reduced through distributed shared memory (gemm_ws.cuh's CSPLIT); off
  /// (`kiln compile --no-decode-cluster-split`): choose-tiling's tile with
  /// split-K through the workspace.
  bool decodeClusterSplit = true;
  /// The column tile of decode's gated GEMMs (gate/up, gemmWs, 64-row tiles
  /// not split over clusters): 0 chooses (128 where a step has at most 32
  /// rows or the 128-wide tiles fill a wave of `sms`, else choose-tiling's),
  /// 64 or 128 force it (`kiln compile --decode-gate-tile N`). For A/B runs.
  int64_t decodeGateTileN = 0;
  /// The target's SM count (its description's sm_count).
  int64_t sms = 132;
};

/// Folds kernels that came out identical but for their names (a decode
/// bucket's GEMM whose rows chose the same tile as another bucket's: the
/// 1B's buckets 8, 16 and 32) into the first of them, in place. Returns
/// each folded kernel's name -> the name of the kernel its launches call.
std::map<std::string, std::string> mergeIdenticalKernels(std::vector<EmittedKernel> &kernels);

/// A rule's value for the given step sizes.
int64_t evalSize(const SizeRule &rule, int64_t batch, int64_t tokens, int64_t pages,
                 int64_t maxBlocks, bool atLeastOne);
/// The workspace of all `kernels`: each its own 256-byte aligned region, in
/// kernel order (docs/codegen.md).
int64_t totalWorkspace(const std::vector<EmittedKernel> &kernels, const EmitOptions &options);

/// The device library every kernel source starts with.
const std::string &deviceLibrary();
/// A kernel's complete source: the library, a newline, the specialisation.
std::string kernelSource(const std::string &specialisation);

/// Emits every kernel of `module` (lowered and planned: kiln_exec.kernel
/// ops with launches). Errors are reported on the offending op.
mlir::LogicalResult emitKernels(mlir::ModuleOp module, const EmitOptions &options,
                                std::vector<EmittedKernel> &out);

/// The kernel every engine carries to sample a step's next tokens on the
/// GPU (cuda/sampling.cuh): logits of `logitsDtype` (f32, bf16, f16) over a
/// vocabulary of `vocab`. Fails for any other dtype.
mlir::FailureOr<EmittedKernel> emitSamplingKernel(llvm::StringRef logitsDtype, int64_t vocab);
/// Its symbol.
extern const char *const kSamplingKernel;

} // namespace kiln::codegen

#endif
