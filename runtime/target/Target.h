//===- Target.h - GPU target descriptions ------------------------*- C++ -*-===//
//
// What the cost model, the memory planner and `kiln bench` know about a GPU:
// SMs, memory and its bandwidth, caches, shared memory, registers, clocks,
// tensor-core throughput and launch overheads. Descriptions are JSON files
// under targets/ (built into the binary, and loadable from a path), so
// compiling for a GPU needs no GPU.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_TARGET_TARGET_H
#define KILN_RUNTIME_TARGET_TARGET_H

#include "runtime/support/Status.h"

#include <cstdint>
#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::target {

struct TargetDesc {
  std::string name, description, arch; // arch: "sm_90a"
  std::vector<std::string> aliases;
  int64_t smCount = 0;
  double boostClockMhz = 0;
  int64_t memoryBytes = 0;
  double hbmBandwidthGBps = 0;  // peak, 1e9 bytes/s
  double copyEfficiency = 0;    // the fraction a streaming kernel reaches
  int64_t l2Bytes = 0;
  double l2BandwidthGBps = 0;
  int64_t smemPerSmBytes = 0;
  int64_t smemPerBlockBytes = 0;
  int64_t registersPerSm = 0;
  int64_t maxThreadsPerSm = 0;
  int64_t maxBlocksPerSm = 0;
  double bf16DenseTflops = 0;
  double memoryLatencyNs = 0;
  double launchOverheadUs = 0;      // one stream launch
  double graphLaunchOverheadUs = 0; // one kernel node of a CUDA graph

  /// Bytes per second a well-shaped streaming kernel moves.
  double streamBytesPerSecond() const { return hbmBandwidthGBps * 1e9 * copyEfficiency; }
};

/// Parses one description; `source` names it in errors.
Status parseTarget(std::string_view json, std::string_view source, TargetDesc &out);
/// The built-in descriptions (targets/*.json), in name order.
const std::vector<TargetDesc> &builtinTargets();
/// A built-in target by name or alias, or a description file by path.
Status findTarget(std::string_view nameOrPath, TargetDesc &out);

/// The tensor-core GEMM's tiles (codegen/cuda/gemm.cuh, gemmMma), shared by
/// the cost model that picks them and the emitter that builds them: a BM x
/// BN block tile, BK deep, in STAGES shared-memory stages, over WM x WN
/// warps (two or four along M, then up to eight in all; warp tiles of 32 or
/// 64 each way).
struct GemmTileShape {
  int64_t bm = 128, bn = 128, bk = 64, stages = 3;
  int64_t wm() const { return bm >= 256 ? 4 : 2; }
  int64_t wn() const { return std::min<int64_t>(bn / 32, 8 / wm()); }
  int64_t threads() const { return wm() * wn() * 32; }
  /// gemmWs's block: consumer warpgroups (BM / 64 cooperative, two
  /// ping-pong) and one producer warp, or with epilogue warps the
  /// producer's whole warpgroup (its first warp and three epilogue warps).
  int64_t wsThreads(bool pingpong, bool epilogueWarps = false) const {
    return (pingpong ? 2 : bm / 64) * 128 + (epilogueWarps ? 128 : 32);
  }
  int64_t smemBytes(int64_t elementBytes = 2) const { return stages * (bm + bn) * bk * elementBytes; }
  /// gemmWs's staged products with epilogue warps: BM rows of BN + 8 (16
  /// bytes of padding a row keep both sides' accesses conflict-free).
  int64_t stagingBytes(int64_t elementBytes = 2) const { return bm * (bn + 8) * elementBytes; }
  /// BM, BN in {64, 128, 256} but not both 256 (the accumulators would
  /// spill), BK 32 or 64, 2 to 4 stages.
  bool supported() const {
    auto in = [](int64_t v, std::initializer_list<int64_t> set) {
      for (int64_t x : set)
        if (v == x)
          return true;
      return false;
    };
    return in(bm, {64, 128, 256}) && in(bn, {64, 128, 256}) && !(bm == 256 && bn == 256) && in(bk, {32, 64}) &&
           stages >= 2 && stages <= 4;
  }
};

/// The tensor-core prefill attention's tiles (codegen/cuda/attention/
/// prefill.cuh, attentionPrefillMma) for G query heads per KV head and head
/// dim D (a multiple of 16 up to 256): hb query heads per block (the largest
/// divisor of G up to 8), bq tokens (16 per warp, up to 8 warps), bkv keys
/// per tile (128 where D <= 64 and asked for, 32 above D = 64, else 64:
/// what the registers hold), and two blocks per SM up to D = 128 (the
/// registers capped at 128 a thread: one block's softmax runs under the
/// other's products).
///
/// On sm_90a engines the warp-specialised kernel (prefill_sm90.cuh,
/// attentionPrefillWs, `ws` below) takes head dims 64 and 128 whose rows
/// are whole warpgroups; without it (`kiln compile --no-attention-ws`),
/// wgmma (D = 64): attentionPrefillMma's S = Q K^T by warpgroup MMA with Q
/// and K in 128-byte-swizzled chunks (unpadded) and 64-key tiles; 1 KB
/// more to align the chunks (5% faster than mma.sync at D = 64, slower at
/// D = 128: bench/PREFILL.md item 22).
struct AttentionTileShape {
  int64_t hb = 1, bq = 128, bkv = 64, d = 128;
  bool wgmma = false;
  /// attentionPrefillWs (sm_90a, D = 64 or 128, rows a multiple of 64):
  /// rows / 64 consumer warpgroups and a producer warpgroup, one block an
  /// SM, 64-key tiles through a ring of `stages` (the consumers hold two
  /// at once: tile j's K and tile j - 1's V); 128-key tiles at D = 64
  /// (H100, 1B shape at 4096 tokens: 371-387 us against 394-397 with 64;
  /// bench/results/2026-12-06/run21), 64 at D = 128 (the registers), or
  /// `forcedBkv` (64 or 128 at D = 64).
  bool ws = false;
  int64_t stages = 4;
  static AttentionTileShape of(int64_t g, int64_t d, int64_t bkvAsked, bool wgmma = false, bool ws = false,
                               int64_t forcedBkv = 0) {
    AttentionTileShape t;
    t.d = d;
    for (int64_t x = 1; x <= std::min<int64_t>(g, 8); ++x)
      if (g % x == 0)
        t.hb = x;
    t.bq = 16 * std::max<int64_t>(1, 8 / t.hb);
    t.ws = wgmma && ws && (d == 64 || d == 128) && t.rows() % 64 == 0;
    t.wgmma = !t.ws && wgmma && d == 64 && t.threads() % 128 == 0;
    if (forcedBkv)
      bkvAsked = forcedBkv;
    t.bkv = t.ws ? (d == 64 && forcedBkv != 64 ? 128 : 64) : t.wgmma ? 64 : d > 64 ? 32 : bkvAsked >= 128 ? 128 : 64;
    return t;
  }
  int64_t minBlocks() const { return ws ? 1 : d <= 128 ? 2 : 1; }
  int64_t threads() const { return ws ? (rows() / 64 + 1) * 128 : hb * bq / 16 * 32; }
  int64_t rows() const { return hb * bq; }
  int64_t smemBytes() const {
    if (ws) // Q twice (the next unit's loads under this one's products), the ring
      return (2 * rows() * d + 2 * stages * bkv * d) * 2 + 1024;
    if (wgmma)
      return (rows() * d + 2 * bkv * d + 2 * bkv * (d + 8)) * 2 + 1024;
    return (hb * bq + 4 * bkv) * (d + 8) * 2;
  }
};

} // namespace kiln::target

#endif
