//===- Gemm.cpp - the GEMM family ------------------------------------===//
//
// Many rows (prefill, large batches) on tensor cores: cuda/gemm.cuh (gemmMma,
// gemm) and cuda/gemm_ws.cuh (gemmWs, sm_90a).
//
//===----------------------------------------------------------------------===//
#include "codegen/Emitter.h"

namespace kiln::codegen::detail {

namespace {

/// Shared memory a ping-pong gemmWs fills with stages (and the most a
/// cooperative one's stages and staged products take): the H100's 227 KB a
/// block, less 1 KB for its static barriers and 1 KB to align the stages.
constexpr int64_t kPingpongStageSmem = 227 * 1024 - 2048;

/// choose-tiling's block_m, block_n, block_k and stages; a tile gemmMma
/// does not take (an older engine's plan) becomes the nearest it does.
target::GemmTileShape gemmTile(ex::KernelOp kernel) {
  auto pick = [](int64_t v, std::initializer_list<int64_t> allowed) {
    int64_t best = *allowed.begin();
    for (int64_t a : allowed)
      if (a <= v)
        best = a;
    return best;
  };
  target::GemmTileShape t;
  t.bm = pick(tileInt(kernel, "block_m", 128), {64, 128, 256});
  t.bn = pick(tileInt(kernel, "block_n", 128), {64, 128, 256});
  if (t.bm == 256 && t.bn == 256)
    t.bn = 128;
  t.bk = pick(tileInt(kernel, "block_k", 64), {32, 64});
  t.stages = std::clamp<int64_t>(tileInt(kernel, "stages", 3), 2, 4);
  return t;
}

/// Cluster split-K's parts for `units` tiles of K in `kTiles` 64-wide
/// k-tiles: the largest of 2 and 4 (else 1) whose blocks fit `slots`
/// (SMs x blocks an SM holds), each part at least four k-tiles.
int64_t clusterSplitParts(int64_t units, int64_t kTiles, int64_t slots) {
  int64_t c = 1;
  while (c < 4 && units * c * 2 <= slots && kTiles >= c * 8)
    c *= 2;
  return c;
}

} // namespace

void Emitter::gemmSkeleton(llvm::raw_ostream &os, EmittedKernel &out, int64_t K, int64_t N, int gate,
                           bool plain, const Shape &lead, const GemmOperands &g) {
  out.family = "gemm";
  int64_t bm, bn, split = 1, clusterParts = 1; // clusterParts: gemmWs's CSPLIT, a block each
  if (K % 8 == 0) {
    // Pipelined tensor cores (gemmMma) with choose-tiling's tile (cp.async
    // moves 16-byte pieces of rows of K).
    target::GemmTileShape t = gemmTile(kernel_);
    bool tokens = llvm::any_of(lead, [](const Dim &d) { return d.sym == Sym::Tokens; });
    // Decode (rows of sequences): the ring's depth as asked, where shared
    // memory holds it.
    if (!tokens && options_.decodeGemmStages) {
      t.stages = options_.decodeGemmStages;
      while (t.stages > 2 && t.smemBytes() + 1024 > kPingpongStageSmem)
        --t.stages;
    }
    bm = t.bm, bn = t.bn;
    // A decode step's most rows: its bucket's batch (choose-tiling's
    // decode_rows; a kernel is one bucket's), else the engine's.
    const int64_t stepRows = tileInt(kernel_, "decode_rows", maxProduct(lead, options_));
    // Split-K (choose-tiling's split_k): each tile's K in parts that are
    // units of work of their own, for steps of few row tiles (decode).
    // Decode only: the workspace is sized per row tile of the largest batch.
    split = g.argmax || tokens ? 1 : std::clamp<int64_t>(tileInt(kernel_, "split_k", 1), 1, 16);
    out.threads = t.threads();
    // wgmma's swizzled stages start on 1024-byte boundaries: room to align.
    bool wg = options_.wgmma && t.bk == 64 && t.threads() % 128 == 0;
    out.smem = t.smemBytes() + (wg ? 1024 : 0);
    if (wg && plain && g.itemOrder && options_.warpSpecialize) {
      // Warp-specialised (gemmWs): consumer warpgroups and a producer warp
      // moving A and W by TMA, through the two maps the runtime encodes
      // per launch. Cooperative: choose-tiling's tile, its rows split over
      // BM / 64 warpgroups. Ping-pong: two warpgroups taking whole tiles
      // of 128 accumulators a thread (64 x 256, or 128 x BN), as many
      // stages as shared memory holds (up to 8).
      target::GemmTileShape w = t;
      bool pingpong = options_.warpSpecialize == 2;
      // Decode (rows of sequences in 64-row tiles) with fewer tiles than
      // half the SMs: each tile's K over a cluster of `csplit` blocks (2 or
      // 4, each part at least four k-tiles) reduced through distributed
      // shared memory, 64 x 128 tiles where their parts fill 3/4 of the SMs,
      // else 64 x 64. Clusters of 8 are not taken: the H100 runs 15 at once
      // (its GPCs' SMs), so 16 tiles' parts took two rounds (2026-12-07).
      int64_t csplit = 1;
      if (!tokens && !pingpong && options_.decodeClusterSplit && t.bm == 64) {
        const int64_t rowTiles = (stepRows + 63) / 64, kTiles = (K + 63) / 64;
        auto parts = [&](int64_t bn, int64_t &units) {
          units = (N + (gate ? bn / 2 : bn) - 1) / (gate ? bn / 2 : bn) * rowTiles;
          return clusterSplitParts(units, kTiles, options_.sms);
        };
        int64_t units128, units64;
        int64_t c128 = parts(128, units128), c64 = parts(64, units64);
        if (c128 > 1 && units128 * c128 * 4 >= options_.sms * 3)
          csplit = c128, w.bn = 128;
        else if (c64 > 1 && units64 * c64 > units128 * c128)
          csplit = c64, w.bn = 64;
        else if (c128 > 1)
          csplit = c128, w.bn = 128;
        if (csplit > 1)
          w.bk = 64, w.stages = 4, split = 1;
      }
      // Decode's gated GEMM (gate/up) in 64 x 128 tiles (64 items each),
      // where it is not split over a cluster: where a step has at most 32
      // rows, or where the wide tiles still fill a wave. H100 (bench/NOTES.md
      // item 29), 64- against 128-wide: the 1B's batch 8 1.680 -> 1.580 ms,
      // the 8B's batch 8/32/64 5.5/4.5/3.0% faster; the 1B's batch 64 (128
      // wide tiles on 132 SMs) 1.967 against 1.986, so it keeps 64.
      if (!tokens && !pingpong && gate && csplit == 1 && split == 1 && t.bm == 64 && w.bn == 64 &&
          options_.decodeGateTileN != 64) {
        const int64_t units128 = (N + 63) / 64 * ((stepRows + 63) / 64);
        if (options_.decodeGateTileN == 128 || stepRows <= 32 || units128 >= options_.sms) {
          w.bn = 128;
          while (w.stages > 2 && w.smemBytes() + 1024 > kPingpongStageSmem)
            --w.stages;
        }
      }
      if (pingpong) {
        w.bm = t.bn == 256 ? 64 : 128;
        w.stages = std::min<int64_t>(8, kPingpongStageSmem / ((w.bm + w.bn) * w.bk * 2));
      }
      // Cooperative blocks go in pairs that share one operand's tiles by
      // multicast (the maps' boxes then half a tile's rows).
      int cluster = options_.cluster && !pingpong && w.bm >= 128 && split == 1 && csplit == 1 ? 2 : 1;
      // The epilogue in warps of its own (cooperative, up to 128 rows,
      // products in A's dtype, N a multiple of 8), where choose-tiling
      // chose it: the products' staging (BM rows of BN + 8) takes shared
      // memory from the ring, down to the stages that still fit.
      bool epiwg = (options_.epilogueWarpgroup == 2 ||
                    (options_.epilogueWarpgroup == 1 && tileInt(kernel_, "epilogue_warps", 0) == 1)) &&
                   !pingpong && w.bm <= 128 && g.stageable && N % 8 == 0 && split == 1 && csplit == 1;
      int64_t staging = epiwg ? w.stagingBytes() : 0;
      while (epiwg && w.stages > 2 && w.smemBytes() + staging + 1024 > kPingpongStageSmem)
        --w.stages;
      if (epiwg && w.smemBytes() + staging + 1024 > kPingpongStageSmem)
        epiwg = false, staging = 0, w.stages = t.stages;
      bm = w.bm, bn = w.bn;
      if (pingpong)
        split = 1;
      out.threads = w.wsThreads(pingpong, epiwg);
      out.smem = w.smemBytes() + staging + 1024;
      out.tensorMaps = {TensorMapSpec{g.aSlot, ruleOf(lead), K, w.bm / cluster, 64, g.dtype},
                        TensorMapSpec{g.wSlot, SizeRule{g.wRows, {}, 1, 0}, K,
                                      gate || cluster > 1 ? w.bn / 2 : w.bn, 64, g.dtype}};
      std::string extra = epiwg        ? ", true"
                          : split > 1  ? ", false, " + std::to_string(split)
                          : csplit > 1 ? ", false, 1, " + std::to_string(csplit)
                                       : "";
      std::string dims = cluster > 1 ? "KILN_CLUSTER_DIMS(2) "
                         : csplit > 1 ? "KILN_CLUSTER_DIMS(" + std::to_string(csplit) + ") "
                                      : "";
      os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}, 1) {6}{1}(kiln::Args a, "
                          "const __grid_constant__ kiln::TensorMaps<2> maps) {{ "
                          "kiln::gemmWs<S, {2}, {3}, {4}, {5}, {7}{8}>(a, maps); }\n",
                          out.threads, kernel_.getSymName(), w.bm, w.bn, w.stages, pingpong ? "true" : "false",
                          dims, cluster, extra);
      clusterParts = csplit;
    } else {
      // Decode's wgmma GEMMs with no prologue (the RoPE-paired QKV
      // projection): split-K's parts in clusters instead, as gemmWs's
      // CSPLIT, as many as two blocks an SM hold (64 x 64 tiles, 65 KB).
      int64_t csplit = 1;
      if (!tokens && wg && plain && options_.decodeClusterSplit && t.bm == 64 && t.bn == 64 && t.bk == 64) {
        const int64_t units = (N + (gate ? 32 : 64) - 1) / (gate ? 32 : 64) * ((stepRows + 63) / 64);
        csplit = clusterSplitParts(units, (K + 63) / 64, 2 * options_.sms);
        if (csplit > 1)
          split = 1, clusterParts = csplit;
      }
      std::string extra = split > 1    ? ", " + std::to_string(split)
                          : csplit > 1 ? ", 1, " + std::to_string(csplit)
                                       : "";
      os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}, 1) {10}{1}(kiln::Args a) {{ "
                          "kiln::gemmMma<S, {2}, {3}, {4}, {5}, {6}, {7}, {8}{9}>(a); }\n",
                          out.threads, kernel_.getSymName(), t.bm, t.bn, t.bk, t.stages, t.wm(), t.wn(),
                          wg ? "true" : "false", extra,
                          csplit > 1 ? "KILN_CLUSTER_DIMS(" + std::to_string(csplit) + ") " : "");
    }
  } else {
    // WMMA without cp.async.
    bm = tileInt(kernel_, "block_m", 64) >= 128 ? 128 : 64, bn = 64;
    int64_t wm = bm / 32, wn = 2;
    out.threads = wm * wn * 32;
    out.smem = std::max<int64_t>((bm + bn) * (32 + 8) * 2, bm * (bn + 4) * 4);
    os << llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) {1}(kiln::Args a) {{ "
                        "kiln::gemm<S, {2}, {3}, {4}, {5}>(a); }\n",
                        out.threads, kernel_.getSymName(), bm, bn, wm, wn);
  }
  const int64_t tilesN = (N + (gate ? bn / 2 : bn) - 1) / (gate ? bn / 2 : bn); // BN / 2 items a gated tile
  if (split > 1) {
    // A ticket per tile (256-byte aligned), then each tile's split
    // partial BM x BN f32 tiles (gemm.cuh, splitKReduce).
    SizeRule ws = ruleOf(lead);
    ws.factor = ws.factor * tilesN * (4 + split * bm * bn * 4) + 256;
    ws.divisor = bm;
    ws.tiles = true;
    out.workspace = ws;
  }
  out.grid = ruleOf(lead);
  out.grid.tiles = out.grid.factor == 1; // tilesN * ceil(rows / BM) where rows are the step's alone
  out.grid.factor *= tilesN * split * clusterParts;
  out.grid.divisor = bm; // else about that: the kernel strides
}

} // namespace kiln::codegen::detail
