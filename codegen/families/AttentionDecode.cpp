//===- AttentionDecode.cpp - decode attention ------------------------===//
//
// One token per sequence, split over blocks: cuda/attention/decode.cuh.
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

void Emitter::attentionDecodeSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t H, int64_t hkv, int64_t D,
                                      int64_t splits, int64_t maxRows, Type cacheType, bool tableRope) {
  out.family = "attention_decode";
  out.grid = SizeRule{hkv * splits, {Sym::Batch, Sym::Tokens}, 1, 0};
  out.workspace = SizeRule{splits > 1 ? maxRows * H * splits * (D + 2) * 4 + maxRows * hkv * 4 : 0, {}, 1, 0};
  // Many keys in flight (attentionDecodeTiled) when a key splits into
  // 16-byte vectors over a power-of-two number of lanes and the scores and
  // partial sums fit in shared memory; otherwise a warp per query head.
  int64_t cbytes = std::max<int64_t>(1, cacheType.getIntOrFloatBitWidth() / 8);
  int64_t vec = std::max<int64_t>(1, 16 / cbytes);
  auto fits = [&](int64_t v) { return D % v == 0 && D / v <= 32 && llvm::isPowerOf2_64(D / v); };
  while (vec > 1 && !fits(vec))
    vec /= 2;
  const int64_t keysPerThread = 4, G = H / hkv;
  int64_t chunk = fits(vec) ? 4 * (32 / (D / vec)) * keysPerThread : 0;
  int64_t sharedBytes = 4 * (G * chunk + 3 * G + 4 * G * D + (tableRope ? D : 0));
  if (fits(vec) && H % hkv == 0 && sharedBytes <= 40 * 1024)
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                        "kiln::attentionDecodeTiled<S, {1}, {2}, {3}>(a); }\n",
                        kernel_.getSymName(), splits, vec, keysPerThread);
  else
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__(128) {0}(kiln::Args a) {{ "
                        "kiln::attentionDecode<S, {1}>(a); }\n",
                        kernel_.getSymName(), splits);
}

} // namespace kiln::codegen::detail
