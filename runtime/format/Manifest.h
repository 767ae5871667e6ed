//===- Manifest.h - the engine's manifest section ---------------*- C++ -*-===//
//
// The manifest is the JSON document in an engine's `manifest` section
// (docs/engine-format.md lists every field). `readManifest` parses it with
// the strict JSON reader and then checks its schema and its meaning: every
// field present with its type, sizes positive, every kernel's source and
// binaries inside their sections, every launch naming a kernel, arguments,
// weights and arena ranges that exist. An error names the engine file and
// the field ("kernels[3].binaries.sm_90a.cubin lies outside section
// 'cubin.sm_90a'"). No MLIR: the runtime and `kiln inspect` share it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_FORMAT_MANIFEST_H
#define KILN_RUNTIME_FORMAT_MANIFEST_H

#include "runtime/format/DequantWeights.h"
#include "runtime/format/Engine.h"
#include "runtime/format/Json.h"
#include "runtime/kernels/host/HostOp.h"
#include "runtime/support/Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::format {

constexpr int64_t kManifestVersion = 1;

/// A byte range of a section.
struct ByteRange {
  uint64_t offset = 0, size = 0;
};

/// blocks or bytes = ceil(factor * product(step sizes named) / divisor),
/// capped at `max` when positive. Names: batch, tokens, pages, max_blocks.
/// ceil(factor * product(symbols) / divisor), or with `tiles` factor *
/// ceil(product / divisor) (a grid of tiles: factor across, the step's rows
/// in tiles of `divisor` down); at most `max` where max > 0.
struct SizeRuleDesc {
  int64_t factor = 1, divisor = 1, max = 0;
  bool tiles = false;
  std::vector<std::string> symbols;
  int64_t eval(int64_t batch, int64_t tokens, int64_t pages, int64_t maxBlocks) const;
};

struct KernelBinaryDesc {
  std::string target; // "sm_90a"
  ByteRange cubin, ptx;
};

/// A kernel's fused body for the host device: its operands' types (each
/// dimension a size or a step-size name), ops over numbered values (the
/// operands first, then each op's results) and the values it yields.
struct HostProgramDesc {
  struct Arg {
    std::string dtype;
    std::vector<int64_t> sizes;        // -1 where `symbols` names the dimension
    std::vector<std::string> symbols;  // "" for a fixed size
  };
  struct Op {
    host::HostOp op;
    std::vector<int64_t> operands;
  };
  std::vector<Arg> args;
  std::vector<Op> ops;
  std::vector<int64_t> yields;
};

/// A TMA tensor map the CUDA device encodes for each launch of a kernel
/// (its second parameter, the maps in order): buffer p[operand] as a
/// row-major [rows, cols] matrix of 16-bit dtype, boxes of box[0] rows x
/// box[1] columns, `swizzle`-byte swizzled (128), zeros past the bounds.
struct TensorMapDesc {
  int64_t operand = 0, cols = 0, boxRows = 0, boxCols = 0, swizzle = 128;
  SizeRuleDesc rows;
  std::string dtype; // bf16 or f16
};

struct KernelDesc {
  std::string name, family;
  int64_t threads = 0, smem = 0;
  /// Bytes and FLOPs at the step the compiler planned (0: not recorded).
  int64_t bytes = 0, flops = 0;
  /// The kernel orders itself after the previous one (programmatic
  /// dependent launch); absent: false.
  bool dependentLaunch = false;
  SizeRuleDesc grid, workspace;
  ByteRange source; // its part of `cuda_source` (the device library is bytes [0, library))
  std::vector<KernelBinaryDesc> binaries;
  HostProgramDesc host;
  std::vector<TensorMapDesc> tensorMaps; // absent: none
};

struct WeightDesc {
  std::string name, dtype, layout; // layout: identity, transpose, concat_rows, transpose_concat_rows
  std::vector<int64_t> shape;
  std::vector<std::string> sources;
  std::vector<int64_t> sourceRows;
  int64_t bytes = 0;
  std::optional<ByteRange> embedded; // in the `weights` section
};

struct OperandDesc {
  enum class Kind { Arg, Arena, Weight } kind = Kind::Arg;
  int64_t index = 0; // Arg, Weight
  ByteRange arena;   // Arena
};

struct LaunchDesc {
  int64_t kernel = 0, outputs = 0, kvLayer = 0;
  int64_t bytes = -1, flops = -1; // planned for this launch's step; -1: the kernel's
  std::vector<OperandDesc> operands;
};

struct TensorDesc {
  std::string name, dtype;
  std::vector<int64_t> shape; // -1: dynamic
};

struct FunctionDesc {
  std::string name;
  int64_t arenaBytes = 0;
  /// A decode function's batch: the most sequences its kernels were chosen
  /// for ("decode": max_batch; "decode_b<N>": N, one of the engine's
  /// smaller buckets); 0 for prefill.
  int64_t batch = 0;
  std::vector<TensorDesc> args;
  std::vector<LaunchDesc> launches;
  std::vector<OperandDesc> results;
  std::vector<TensorDesc> resultTypes; // as planned: the largest step's shape
};

struct EngineManifest {
  int64_t version = 0;
  std::string compiler, nvrtc, gpu;
  std::string modelSource, architecture;
  std::optional<std::string> tokenizer;
  /// The model's tokenizer.json: `tokenizer` in the weights directory
  /// (`weightsDir`, else the directory the model was compiled from), or
  /// nothing when the model came without one.
  std::optional<std::string> tokenizerPath(const std::string &weightsDir) const {
    if (!tokenizer)
      return std::nullopt;
    return (weightsDir.empty() ? modelSource : weightsDir) + "/" + *tokenizer;
  }
  bool weightsEmbedded = false;
  JsonValue config; // the model's config.json, or null
  std::vector<std::string> targets;
  int64_t maxBatch = 0, maxSeq = 0, maxNumTokens = 0, pageSize = 0;
  struct {
    int64_t layers = 0, pageSize = 0, kvHeads = 0, headDim = 0, bytesPerToken = 0;
    std::string dtype;
  } kv;
  struct {
    int64_t weights = 0, arenaPrefill = 0, arenaDecode = 0, kvPool = 0, workspace = 0, graphs = 0,
            total = 0;
  } memory;
  std::vector<WeightDesc> weights;
  /// Weights the loader computes from packed tensors (GPTQ, AWQ): a source
  /// of `weights` named here is not read from the files but dequantized.
  std::vector<DequantWeightDesc> dequantWeights;
  std::vector<KernelDesc> kernels;
  std::vector<FunctionDesc> functions;

  const FunctionDesc *function(const std::string &name) const;
  /// The decode function for a step of `batch` sequences: the smallest
  /// bucket that holds it ("decode" beyond every smaller one); null past
  /// max_batch.
  const FunctionDesc *decodeFor(int64_t batch) const;
  /// The decode functions, smallest batch first ("decode" last).
  std::vector<const FunctionDesc *> decodeBuckets() const;
  /// Their indices in `functions`, in that order (readManifest sets it).
  std::vector<size_t> decodeOrder;
};

/// Parses and checks the manifest of a verified engine; `source` names the
/// file in errors.
Status readManifest(const EngineFile &engine, std::string_view source, EngineManifest &out);

/// The engine's target whose cubins run on a GPU of architecture `gpuArch`
/// ("sm_90", "sm_90a", "sm_80", ...): the same architecture, or an earlier
/// one of the same major version for targets without the `a` suffix.
/// Otherwise an error saying what the engine holds and how to get a
/// matching one.
Status selectTarget(const EngineManifest &m, std::string_view source, const std::string &gpuArch,
                    std::string &target);

} // namespace kiln::format

#endif
