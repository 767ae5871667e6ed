//===- AttentionDecode.cpp - decode attention ------------------------===//
//
// One token per sequence, split over blocks: cuda/attention/decode.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

void Emitter::attentionDecodeSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t H, int64_t hkv, int64_t D,
                                      int64_t splits, int64_t chunk, int64_t maxRows, Type cacheType,
                                      bool tableRope, bool queriesInCacheType) {
  out.family = "attention_decode";
  out.grid = SizeRule{hkv * splits, {Sym::Batch, Sym::Tokens}, 1, 0};
  out.workspace = SizeRule{splits > 1 ? maxRows * H * splits * (D + 2) * 4 + maxRows * hkv * 4 : 0, {}, 1, 0};
  // Many keys in flight (attentionDecodeTiled) when a key splits into
  // 16-byte vectors over a power-of-two number of lanes and the scores fit
  // in shared memory; otherwise a warp per query head. The tiled kernel's
  // ring: STAGES chunks of J key groups, 16 KB a chunk (J x K and V x 128
  // threads x 16 bytes), two ahead of the one computed.
  int64_t cbytes = std::max<int64_t>(1, cacheType.getIntOrFloatBitWidth() / 8);
  // Tensor cores (attentionDecodeMma): the group's query heads as the rows
  // of an m16 tile, warps of tiles of 16 keys. Four warps, two stages, up to
  // D = 64 (four to five blocks an SM); two warps beyond (D + 8 padded rows
  // of 16 keys, K and V, 8.7 KB a stage at D = 128). Not for steps of one or
  // two sequences at D > 64, where the tiled kernel measured faster (H100,
  // the 8B's step at batch 1 5.80 against 5.92-5.95 ms, batch 2 7.09
  // against 7.15; from batch 8 the tensor cores: 7.25 against 7.38, and
  // the 1B's at every batch: bench/NOTES.md item 30).
  const int64_t stepRows = tileInt(kernel_, "decode_rows", maxRows);
  if (options_.decodeAttentionMma && !(D > 64 && stepRows <= 2) && cbytes == 2 && (cacheType.isBF16() || cacheType.isF16()) &&
      queriesInCacheType && D % 16 == 0 && D <= 128 && H % hkv == 0 && H / hkv <= 16) {
    const int64_t warps = D <= 64 ? 4 : 2, stages = 2;
    out.threads = warps * 32;
    out.smem = (warps * stages * 2 * 16 * (D + 8) + 16 * (D + 8)) * 2;
    // Four blocks an SM at D <= 64 (128 registers a thread): a batch-64
    // step's 512 blocks in one wave (166 registers left three, H100 run).
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}, {6}) {1}(kiln::Args a) {{ "
                        "kiln::attentionDecodeMma<S, {2}, {3}, {4}, {5}>(a); }\n",
                        out.threads, kernel_.getSymName(), splits, chunk, warps, stages, warps == 4 ? 4 : 5);
    return;
  }
  int64_t vec = 16 / cbytes;
  bool fits = 16 % cbytes == 0 && D % vec == 0 && D / vec <= 32 && llvm::isPowerOf2_64(D / vec);
  const int64_t J = 4, stages = 3, G = H / hkv, threads = 128, warps = threads / 32;
  int64_t keysPerChunk = fits ? warps * (32 / (D / vec)) * J : 0;
  int64_t staticBytes = 4 * (G * keysPerChunk + 3 * G + (tableRope ? D : 0));
  int64_t dynamicBytes = std::max(stages * J * 2 * threads * 16, warps * G * D * 4);
  if (fits && H % hkv == 0 && staticBytes <= 16 * 1024 && dynamicBytes <= 96 * 1024) {
    out.smem = dynamicBytes;
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                        "kiln::attentionDecodeTiled<S, {1}, {2}, {3}, {4}, {5}>(a); }\n",
                        kernel_.getSymName(), splits, chunk, vec, J, stages);
  } else {
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                        "kiln::attentionDecode<S, {1}, {2}>(a); }\n",
                        kernel_.getSymName(), splits, chunk);
  }
}

} // namespace kiln::codegen::detail
