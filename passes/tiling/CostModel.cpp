//===- CostModel.cpp - analytic kernel cost on a target -------------------===//
#include "passes/tiling/CostModel.h"

#include "ir/Kiln/KilnOps.h"

#include <algorithm>
#include <cmath>
#include <functional>

using namespace mlir;

namespace kiln::cost {

namespace {

int64_t elemBytes(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  return rt ? std::max<int64_t>(1, rt.getElementTypeBitWidth() / 8) : 0;
}

bool isCache(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  return rt && rt.getRank() == 6;
}

/// Bytes of one token's K and V of one layer in the cache.
int64_t kvTokenBytes(Type cache) {
  auto rt = cast<RankedTensorType>(cache);
  return 2 * rt.getDimSize(4) * rt.getDimSize(5) * elemBytes(cache);
}

/// The ops of a kernel: a fused body or the op itself.
SmallVector<Operation *> opsOf(Operation *kernel) {
  SmallVector<Operation *> ops;
  if (auto f = dyn_cast<FusedOp>(kernel)) {
    for (Operation &op : f.getBody().front().without_terminator())
      ops.push_back(&op);
  } else {
    ops.push_back(kernel);
  }
  return ops;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace

bool gathersRows(Operation *user, Value table) {
  if (auto c = dyn_cast<CastOp>(user))
    return !c->use_empty() &&
           llvm::all_of(c->getUsers(), [&](Operation *u) { return gathersRows(u, c.getResult()); });
  auto g = dyn_cast<GatherOp>(user);
  return g && g.getData() == table;
}

KernelShape describe(Operation *kernel, const StepShape &step) {
  KernelShape s;
  s.decode = step.decode;
  SmallVector<Operation *> ops = opsOf(kernel);
  auto fused = dyn_cast<FusedOp>(kernel);
  // The value inside the kernel that stands for an input (a block argument of
  // a fused body, or the operand itself).
  auto inner = [&](unsigned i) -> Value {
    return fused ? fused.getBody().front().getArgument(i) : kernel->getOperand(i);
  };
  int64_t tokens = step.batch * step.tokens;

  // Inputs: weights whole (gathered tables: the rows read), the cache's
  // attended tokens, activations whole.
  int64_t activations = 0;
  for (unsigned i = 0; i < kernel->getNumOperands(); ++i) {
    Value outer = kernel->getOperand(i);
    Value in = inner(i);
    Type t = outer.getType();
    if (isCache(t)) {
      // Read by an attention in the kernel, directly or after an append.
      std::function<bool(Value)> attended = [&](Value c) {
        return llvm::any_of(c.getUsers(), [&](Operation *u) {
          auto kv = dyn_cast<KvAppendOp>(u);
          return isa<PagedAttentionOp>(u) || (kv && attended(kv.getResult()));
        });
      };
      if (attended(in))
        s.bytes += step.batch * (step.decode ? step.context : step.tokens) * kvTokenBytes(t);
      continue;
    }
    int64_t b = stepBytes(t, step);
    if (outer.getDefiningOp<WeightOp>()) {
      // A table the kernel only gathers rows from (token embeddings; a tied
      // LM head in another kernel reads it whole there).
      SmallVector<Operation *> users;
      for (Operation *u : in.getUsers())
        if (llvm::is_contained(ops, u))
          users.push_back(u);
      bool gathered = !users.empty() && llvm::all_of(users, [&](Operation *u) { return gathersRows(u, in); });
      if (gathered) {
        auto rt = cast<RankedTensorType>(t);
        b = tokens * (rt.getNumElements() / rt.getDimSize(0)) * elemBytes(t);
      }
      s.weightBytes += b;
    } else {
      ++activations;
    }
    s.bytes += b;
  }
  // Outputs: the cache's new tokens, activations whole.
  for (Value r : kernel->getResults())
    s.bytes += isCache(r.getType()) ? tokens * kvTokenBytes(r.getType()) : stepBytes(r.getType(), step);

  // The family and FLOPs, from the anchor op.
  s.family = "elementwise";
  for (Operation *op : ops) {
    if (isa<CastOp>(op) && isa<BlockArgument>(op->getOperand(0)))
      continue; // converts an operand as it loads
    if (auto m = dyn_cast<MatmulOp>(op)) {
      auto a = cast<RankedTensorType>(m.getLhs().getType());
      auto b = cast<RankedTensorType>(m.getRhs().getType());
      s.k = a.getShape().back();
      s.n = m.getTransposeB() ? b.getDimSize(b.getRank() - 2) : b.getShape().back();
      s.m = stepElements(a, step) / std::max<int64_t>(1, s.k);
      // The bytes the weight streams: through a widening cast, its own.
      Value stored = m.getRhs();
      if (auto c = stored.getDefiningOp<CastOp>(); c && isa<BlockArgument>(c.getInput()))
        stored = c.getInput();
      s.elementBytes = elemBytes(stored.getType());
      s.flops += 2 * s.m * s.n * s.k;
      // Up to kGemvMaxRows rows the GEMV (each weight read once, A's rows
      // staged); past them the tensor cores, split over K where the tiles
      // are few (H100 2026-12-06: the 8B shape's batch-8 step took 18.3 ms
      // through 8-row GEMVs, its batch-32 step 12.5 ms through split-K
      // tiles; 2026-12-07: batch 4 10.15 ms through 4-row GEMVs, batch 8
      // 7.25 through tiles).
      s.family = s.m <= kGemvMaxRows ? "gemv" : "gemm";
      // The product's input, and any other activation the epilogue reads.
      s.epilogueLoads = activations > 1;
    } else if (auto p = dyn_cast<PagedAttentionOp>(op)) {
      auto q = cast<RankedTensorType>(p.getQuery().getType());
      auto c = cast<RankedTensorType>(p.getCache().getType());
      s.heads = q.getDimSize(2);
      s.kvHeads = c.getDimSize(4);
      s.headDim = c.getDimSize(5);
      s.sequences = step.batch;
      s.contextTokens = step.decode ? step.context : (step.tokens + 1) / 2;
      s.elementBytes = elemBytes(q);
      s.flops += 4 * stepElements(q, step) / s.headDim * s.contextTokens * s.headDim;
      s.family = step.decode ? "paged_attention" : "flash_attention";
    } else if (auto a = dyn_cast<AttentionOp>(op)) {
      auto q = cast<RankedTensorType>(a.getQuery().getType());
      auto k = cast<RankedTensorType>(a.getKey().getType());
      s.heads = q.getDimSize(2);
      s.kvHeads = k.getDimSize(2);
      s.headDim = q.getDimSize(3);
      s.sequences = step.batch;
      s.contextTokens = (step.tokens + 1) / 2;
      s.elementBytes = elemBytes(q);
      s.flops += 4 * stepElements(q, step) * s.contextTokens;
      s.family = "flash_attention";
    } else if (s.family == "elementwise" || s.family == "norm") {
      if (isa<KvAppendOp>(op))
        s.family = "rope_kv_append";
      else if (isa<RmsNormOp, LayerNormOp>(op))
        s.family = "norm";
      else if (isa<GatherOp>(op))
        s.family = "embedding";
      else if (isa<ArgmaxOp, SoftmaxOp, ReduceSumOp, ReduceMeanOp, ReduceMaxOp, ReduceMinOp>(op))
        s.family = "reduction";
      for (Value r : op->getResults())
        s.flops += stepElements(r.getType(), step);
    } else {
      for (Value r : op->getResults())
        s.flops += stepElements(r.getType(), step);
    }
  }
  if (s.family == "rope_kv_append" && llvm::none_of(ops, [](Operation *o) { return isa<RopeOp>(o); }))
    s.family = "kv_append";
  return s;
}

namespace {

/// The fraction of streaming bandwidth `blocks` blocks reach when each keeps
/// `inflight` bytes outstanding and an SM holds at most `perSm` of them.
double streamEfficiency(const target::TargetDesc &t, int64_t blocks, int64_t inflight,
                        int64_t perSm) {
  double needed = t.streamBytesPerSecond() * t.memoryLatencyNs * 1e-9;
  double resident = static_cast<double>(std::min(blocks, t.smCount * perSm));
  return std::min(1.0, resident * static_cast<double>(inflight) / needed);
}

double launchUs(const target::TargetDesc &t) { return t.graphLaunchOverheadUs; }

Tiling streaming(const KernelShape &s, const target::TargetDesc &t, int64_t threads,
                 int64_t vector, int64_t elementsPerThread, std::string family) {
  Tiling tl;
  tl.family = std::move(family);
  int64_t elements = std::max<int64_t>(1, s.bytes / std::max<int64_t>(1, s.elementBytes));
  tl.blocks = std::max<int64_t>(1, ceilDiv(elements, threads * elementsPerThread));
  int64_t inflight = threads * vector * s.elementBytes;
  double eff = streamEfficiency(t, tl.blocks, inflight, t.maxThreadsPerSm / threads);
  tl.timeUs = static_cast<double>(s.bytes) / (t.streamBytesPerSecond() * eff) * 1e6 + launchUs(t);
  tl.params = {{"threads", threads}, {"vector_width", vector}};
  return tl;
}

/// Widest vector (16 bytes at most) that divides `k`.
int64_t vectorWidth(int64_t k, int64_t elementBytes) {
  int64_t v = std::max<int64_t>(1, 16 / std::max<int64_t>(1, elementBytes));
  while (v > 1 && k % v)
    v /= 2;
  return v;
}

std::vector<Tiling> gemvCandidates(const KernelShape &s, const target::TargetDesc &t) {
  // The kernel (codegen/cuda/gemv.cuh): a 256-thread block of
  // 8 warps (measured on the H100: 3-5% faster than 4 on the 1B shape); each warp streams one weight row (a column of the output) over
  // K / split_k with `unroll` 16-byte loads per lane in flight; split_k
  // warps of a block share a column. Every block stages all of A. A pass
  // over the weights serves `rows` rows of A (at most 8: the accumulators
  // are registers), so a step of m rows reads them ceil(m / rows) times.
  std::vector<Tiling> out;
  const int64_t threads = 256, warps = threads / 32;
  const int64_t rows = std::clamp<int64_t>(s.m, 1, 8), passes = ceilDiv(std::max<int64_t>(1, s.m), rows);
  int64_t v = vectorWidth(s.k, s.elementBytes);
  for (int64_t splitK : {1, 2, 4}) {
    int64_t chunk = 32 * v;
    if (splitK > 1 && s.k / splitK < chunk)
      continue;
    int64_t iters = ceilDiv(ceilDiv(s.k, splitK), chunk);
    int64_t unroll = 1;
    while (unroll < 8 && unroll < iters)
      unroll *= 2;
    Tiling tl;
    tl.family = "gemv";
    tl.blocks = ceilDiv(s.n * splitK, warps);
    int64_t inflight = threads * v * s.elementBytes * unroll;
    int64_t perSm = std::min<int64_t>(t.maxBlocksPerSm, t.maxThreadsPerSm / threads);
    double eff = streamEfficiency(t, tl.blocks, inflight, perSm);
    // Every block reads all of the activations, mostly from L2.
    double l2 = static_cast<double>(tl.blocks) * s.m * s.k * s.elementBytes / (t.l2BandwidthGBps * 1e9);
    double bytes = static_cast<double>(s.bytes) + static_cast<double>(passes - 1) * s.weightBytes;
    tl.timeUs = (bytes / eff / t.streamBytesPerSecond() + l2 * passes) * 1e6 + launchUs(t);
    tl.params = {{"rows", rows}, {"split_k", splitK}, {"threads", threads}, {"unroll", unroll}, {"vector_width", v}};
    out.push_back(std::move(tl));
  }
  return out;
}

std::vector<Tiling> gemmCandidates(const KernelShape &s, const target::TargetDesc &t) {
  // The kernels (codegen/cuda/gemm_ws.cuh: gemmWs on sm_90a; gemm.cuh: gemmMma
  // elsewhere) and the tiles they take (target::GemmTileShape). Their
  // rates, measured on the H100 (bench/PREFILL.md items 2-3 and 19,
  // bench/cost_calibration.py): the TMA-fed wgmma main loop (sm_90a,
  // BK = 64) streams a 128 x 256 tile at 0.825 of the dense peak (the
  // measured matmul peak), the mma.sync one at 0.33; smaller warp tiles
  // and shallow rings lose more. Each tile's epilogue, during which the
  // tensor cores idle, costs about 0.26 ns per accumulator (its element
  // functions, one block's threads), 0.74 ns when it also loads an
  // activation (a residual). Blocks run in waves of the SMs times the
  // blocks an SM holds (shared memory, registers: about 200 per thread).
  //
  // Few tiles (a decode step's rows in one or two row tiles) leave SMs
  // idle: an SM streams about its share of the bandwidth and no more
  // (H100, 8B decode at 64 rows: 64 blocks of 64 x 64 moved the down
  // projection at 53% of the copy bandwidth, 448 blocks gate/up at 82%).
  // Split-K (`split_k`) cuts each tile's K into parts run as units of their
  // own, which store f32 partials (through L2) for the tile's last part to
  // sum.
  std::vector<Tiling> out;
  bool hopper = t.arch.rfind("sm_90", 0) == 0;
  for (int64_t split : {1, 2, 4, 8})
  for (int64_t bm : {64, 128, 256})
    for (int64_t bn : {64, 128, 256})
      for (int64_t bk : {64, 32})          // 64 and deep rings first: ties (memory-bound
        for (int64_t stages : {4, 3, 2}) { // tiles) go to the faster main loop
          target::GemmTileShape g{bm, bn, bk, stages};
          int64_t smem = g.smemBytes(s.elementBytes) + (hopper && bk == 64 ? 1024 : 0);
          if (!g.supported() || smem > t.smemPerBlockBytes)
            continue;
          double peak = t.bf16DenseTflops * 1e12 * (hopper ? (bk == 64 ? 0.825 : 0.33) : 0.6);
          Tiling tl;
          tl.family = "gemm";
          int64_t tiles = ceilDiv(s.m, bm) * ceilDiv(s.n, bn);
          int64_t perSm = std::max<int64_t>(1, std::min({t.smemPerSmBytes / std::max<int64_t>(1, smem),
                                                          t.registersPerSm / (g.threads() * 200),
                                                          t.maxBlocksPerSm}));
          // A split only where the tiles leave SMs idle, each part at
          // least four k-tiles.
          if (split > 1 && (!s.decode || s.m > bm || tiles * split > 2 * t.smCount * perSm ||
                            ceilDiv(s.k, bk) < 4 * split))
            continue;
          int64_t units = tiles * split;
          tl.blocks = units;
          int64_t waves = ceilDiv(units, t.smCount * perSm);
          double warpTile = static_cast<double>(bm / g.wm()) * static_cast<double>(bn / g.wn());
          double tileEff = (warpTile >= 64 * 64 ? 1.0 : warpTile >= 64 * 32 ? 0.85 : 0.7) *
                           (stages >= 4 ? 1.0 : stages == 3 ? 0.95 : 0.75);
          // perSm blocks share an SM's tensor cores: a wave of them takes
          // perSm tiles' time.
          double perTile = 2.0 * bm * bn * s.k * perSm / (peak / t.smCount * tileEff) +
                           (s.epilogueLoads ? 0.74e-9 : 0.26e-9) * static_cast<double>(bm * bn) * perSm;
          double compute = waves * perTile / static_cast<double>(split);
          // Operands from memory once (the grouped tile order keeps a
          // wave's rows and columns in L2); each tile re-reads its A rows
          // and W columns from L2.
          double once = (static_cast<double>(s.m) * s.k + static_cast<double>(s.n) * s.k +
                         static_cast<double>(s.m) * s.n) * s.elementBytes;
          double reread = (static_cast<double>(s.m) * s.k * ceilDiv(s.n, bn) +
                           static_cast<double>(s.n) * s.k * ceilDiv(s.m, bm)) * s.elementBytes;
          // The SMs that have a unit stream, each about its share.
          double busy = std::min(1.0, 1.1 * static_cast<double>(std::min(units, t.smCount)) / t.smCount);
          // Split-K's partials: written and read once more through L2,
          // and the tile's last part waits for them.
          double partials = split > 1 ? 2.0 * units * bm * bn * 4 / (t.l2BandwidthGBps * 1e9) + 1e-6 : 0.0;
          double memory = std::max(once / (t.streamBytesPerSecond() * busy), reread / (t.l2BandwidthGBps * 1e9)) +
                          partials;
          tl.timeUs = std::max(compute, memory) * 1e6 + launchUs(t);
          tl.params = {{"block_m", bm}, {"block_n", bn}, {"block_k", bk}, {"stages", stages},
                       {"smem", smem}};
          if (split > 1)
            tl.params.push_back({"split_k", split});
          // A decode step's rows (a bucket's batch): the emitter's cluster
          // split and gate/up column tile follow them, and kernels of
          // buckets with other rows are not merged into one.
          if (s.decode)
            tl.params.push_back({"decode_rows", s.m});
          out.push_back(tl);
          // The epilogue in warps of its own (gemmWs's EPIWG: sm_90a, BK =
          // 64, up to 128 rows, one block an SM), offered beside each
          // four-stage tile: its products' staging (BM rows of BN + 8)
          // leaves room for the deepest ring that still fits. Priced from
          // the H100's runs 11-12 (bench/PREFILL.md item 21), not from a
          // model of its overlap: 7% off the tile's time where a block
          // takes enough tiles for the overlap to pay (2.5 waves with a
          // residual to load, 8 without; 8B 4096-token prefill: the O and
          // down projections 5-14% faster, gate/up 3%), none where it
          // takes fewer (512-token chunks: 3-8% slower, and the 8B's
          // default engine 1.5% slower with a 6.8-wave gate/up).
          int64_t staged = g.stagingBytes(s.elementBytes);
          double minWaves = s.epilogueLoads ? 2.5 : 8.0;
          if (split == 1 && s.epilogueWarps && hopper && bk == 64 && bm <= 128 && stages == 4 && perSm == 1 &&
              static_cast<double>(tiles) >= minWaves * t.smCount) {
            target::GemmTileShape ring = g;
            while (ring.stages > 2 && ring.smemBytes(s.elementBytes) + 1024 + staged > t.smemPerBlockBytes)
              --ring.stages;
            int64_t ewSmem = ring.smemBytes(s.elementBytes) + 1024 + staged;
            if (ewSmem <= t.smemPerBlockBytes) {
              Tiling ew = tl;
              ew.timeUs = std::max(compute * 0.93, memory) * 1e6 + launchUs(t);
              ew.params = {{"block_m", bm},          {"block_n", bn},   {"block_k", bk},
                           {"stages", ring.stages}, {"smem", ewSmem}, {"epilogue_warps", 1}};
              out.push_back(std::move(ew));
            }
          }
        }
  return out;
}

std::vector<Tiling> pagedAttentionCandidates(const KernelShape &s, const target::TargetDesc &t) {
  std::vector<Tiling> out;
  const int64_t threads = 128;
  for (int64_t chunk : {64, 128, 256, 512, 1024, 2048, 4096, 8192}) {
    int64_t splits = ceilDiv(std::max<int64_t>(1, s.contextTokens), chunk);
    if (splits > 1 && chunk > s.contextTokens)
      continue;
    Tiling tl;
    tl.family = "paged_attention";
    tl.blocks = std::max<int64_t>(1, s.sequences) * s.kvHeads * splits;
    // attentionDecodeTiled: two 16 KB chunks of keys in flight a block,
    // its 48 KB ring and ~126 registers a thread allow four blocks an SM.
    int64_t inflight = 2 * 16 * 1024;
    int64_t perSm = std::max<int64_t>(1, std::min({t.maxThreadsPerSm / threads, t.smemPerSmBytes / (48 * 1024 + 1024),
                                                   int64_t(4)}));
    double eff = streamEfficiency(t, tl.blocks, inflight, perSm);
    // Partial outputs with their max and sum, combined by a second pass.
    double partial = splits > 1 ? 2.0 * s.sequences * s.heads * splits * (s.headDim + 2) * 4 : 0;
    tl.timeUs = (static_cast<double>(s.bytes) / eff + partial) / t.streamBytesPerSecond() * 1e6 +
                launchUs(t) * (splits > 1 ? 2 : 1);
    tl.params = {{"kv_chunk", chunk}, {"splits", splits}, {"threads", threads}};
    // The step's sequences: the emitter's kernel choice follows them.
    tl.params.push_back({"decode_rows", std::max<int64_t>(1, s.sequences)});
    out.push_back(std::move(tl));
  }
  return out;
}

std::vector<Tiling> flashAttentionCandidates(const KernelShape &s, const target::TargetDesc &t) {
  // The kernel (codegen/cuda/attention/prefill.cuh, attentionPrefillMma):
  // its query tile follows from the GQA group (target::AttentionTileShape);
  // the key tile is the choice. Measured on the H100 at 4096 tokens
  // (bench/PREFILL.md, run 9): 0.17 of the dense peak counted as the
  // model counts it (1B and 8B within 3%); with one candidate above
  // D = 64 the factor only ranks 64 against 128 keys.
  //
  // On sm_90a at head dims 64 and 128 the warp-specialised kernel runs
  // (prefill_sm90.cuh, attentionPrefillWs): 0.19 (D = 64) and 0.30 (D =
  // 128) of the peak on the H100 at 4096 tokens (bench/results/2026-12-06/
  // run24, cost_calibration.py: 377 and 561 us a layer on the 1B and 8B,
  // where 0.17 predicted 422 and 993).
  std::vector<Tiling> out;
  const bool ws = t.arch.rfind("sm_90", 0) == 0 && (s.headDim == 64 || s.headDim == 128);
  double peak = t.bf16DenseTflops * 1e12 * (!ws ? 0.17 : s.headDim == 128 ? 0.30 : 0.19);
  int64_t queries = std::max<int64_t>(1, s.m ? s.m : s.contextTokens * 2);
  int64_t g = s.kvHeads > 0 && s.heads % s.kvHeads == 0 ? s.heads / s.kvHeads : 1;
  std::vector<int64_t> tried;
  for (int64_t asked : {64, 128}) {
    target::AttentionTileShape a = target::AttentionTileShape::of(g, s.headDim, asked);
    if (llvm::is_contained(tried, a.bkv))
      continue;
    tried.push_back(a.bkv);
    Tiling tl;
    tl.family = "flash_attention";
    tl.blocks = std::max<int64_t>(1, s.sequences) * s.kvHeads * (g / a.hb) * ceilDiv(queries, a.bq);
    int64_t waves = ceilDiv(tl.blocks, t.smCount);
    double eff = a.bkv >= 64 ? 1.0 : 0.85;
    double perBlock = 4.0 * a.rows() * s.contextTokens * s.headDim / (peak / t.smCount * eff);
    tl.timeUs = std::max(waves * perBlock, s.bytes / t.streamBytesPerSecond()) * 1e6 + launchUs(t);
    tl.params = {{"block_q", a.rows()}, {"block_kv", a.bkv}, {"smem", a.smemBytes()}};
    out.push_back(std::move(tl));
  }
  return out;
}

} // namespace

std::vector<Tiling> candidates(const KernelShape &s, const target::TargetDesc &t) {
  if (s.family == "gemv")
    return gemvCandidates(s, t);
  if (s.family == "gemm")
    return gemmCandidates(s, t);
  if (s.family == "paged_attention")
    return pagedAttentionCandidates(s, t);
  if (s.family == "flash_attention")
    return flashAttentionCandidates(s, t);
  std::vector<Tiling> out;
  int64_t v = std::max<int64_t>(1, 16 / std::max<int64_t>(1, s.elementBytes));
  for (int64_t threads : {128, 256, 512})
    out.push_back(streaming(s, t, threads, v, v * 4, s.family));
  // A norm reads its row twice (statistics, then the scaled values) and
  // streams at about 0.64 of the copy rate: the H100's prefill norms of
  // 4096 rows took 16.8 (1B) and 35 us (8B) less launch, where the bytes at
  // the copy rate give 10.8 and 22 (bench/results/2026-12-06/run24).
  if (s.family == "norm")
    for (Tiling &tl : out)
      tl.timeUs = launchUs(t) + (tl.timeUs - launchUs(t)) / 0.64;
  return out;
}

Tiling best(const KernelShape &s, const target::TargetDesc &t) {
  std::vector<Tiling> all = candidates(s, t);
  size_t pick = 0;
  for (size_t i = 1; i < all.size(); ++i)
    if (all[i].timeUs < all[pick].timeUs * (1 - 1e-9))
      pick = i;
  return all[pick];
}

} // namespace kiln::cost
