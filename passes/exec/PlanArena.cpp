//===- PlanArena.cpp - offsets for activation buffers; print liveness -----===//
//
// See Passes.td (PlanArena, TestPrintLiveness).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"
#include "passes/exec/BufferLiveness.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <numeric>

namespace kiln {
#define GEN_PASS_DEF_PLANARENA
#define GEN_PASS_DEF_TESTPRINTLIVENESS
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;
using namespace kiln::exec;

namespace {

using Interval = BufferLiveness::Interval;

/// Places intervals in `order`, each at the lowest offset where it overlaps
/// no placed interval live at the same time. Returns the peak.
int64_t place(const std::vector<Interval> &ivs, const std::vector<size_t> &order,
              std::vector<int64_t> &offsets) {
  offsets.assign(ivs.size(), -1);
  std::vector<size_t> placed;
  int64_t peak = 0;
  for (size_t i : order) {
    // Occupied ranges of time-overlapping placed buffers, sorted by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed)
      if (BufferLiveness::overlap(ivs[i], ivs[j]))
        busy.push_back({offsets[j], offsets[j] + ivs[j].bytes});
    std::sort(busy.begin(), busy.end());
    // Best fit: the smallest gap that holds it, else after the last.
    int64_t at = 0, bestGap = -1, best = -1;
    for (auto [lo, hi] : busy) {
      if (lo - at >= ivs[i].bytes && (bestGap < 0 || lo - at < bestGap)) {
        bestGap = lo - at;
        best = at;
      }
      at = std::max(at, hi);
    }
    offsets[i] = best >= 0 ? best : at;
    placed.push_back(i);
    peak = std::max(peak, offsets[i] + ivs[i].bytes);
  }
  return peak;
}

struct PlanArenaPass : kiln::impl::PlanArenaBase<PlanArenaPass> {
  using PlanArenaBase::PlanArenaBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    if (alignment <= 0 || (alignment & (alignment - 1))) {
      m.emitError("kiln-plan-arena: alignment must be a power of two, got ")
          << static_cast<int64_t>(alignment);
      return signalPassFailure();
    }
    for (func::FuncOp f : llvm::to_vector(m.getOps<func::FuncOp>())) {
      if (f.isExternal() || f.getOps<AllocOp>().empty())
        continue;
      BufferLiveness live(f, alignment);
      const std::vector<Interval> &ivs = live.intervals();
      std::vector<size_t> bySize(ivs.size()), byStart(ivs.size());
      std::iota(bySize.begin(), bySize.end(), 0);
      std::iota(byStart.begin(), byStart.end(), 0);
      std::stable_sort(bySize.begin(), bySize.end(),
                       [&](size_t a, size_t b) { return ivs[a].bytes > ivs[b].bytes; });
      std::stable_sort(byStart.begin(), byStart.end(),
                       [&](size_t a, size_t b) { return ivs[a].start < ivs[b].start; });
      std::vector<int64_t> offSize, offStart;
      int64_t peakSize = place(ivs, bySize, offSize);
      int64_t peakStart = place(ivs, byStart, offStart);
      bool sizeWins = peakSize <= peakStart;
      const std::vector<int64_t> &offsets = sizeWins ? offSize : offStart;
      int64_t peak = sizeWins ? peakSize : peakStart;

      OpBuilder b(f);
      std::string name = (f.getName() + ".arena").str();
      auto arena = ArenaOp::create(b, f.getLoc(), b.getStringAttr(name),
                                   b.getI64IntegerAttr(peak), b.getI64IntegerAttr(alignment));
      arena->setAttr("total_bytes", b.getI64IntegerAttr(live.totalBytes()));
      arena->setAttr("lower_bound", b.getI64IntegerAttr(live.lowerBound()));
      arena->setAttr("strategy", b.getStringAttr(sizeWins ? "largest_first" : "earliest_first"));
      for (auto [iv, off] : llvm::zip(ivs, offsets)) {
        auto a = dyn_cast<AllocOp>(iv.op);
        if (!a)
          continue; // placed before
        b.setInsertionPoint(a);
        auto slice = BufferSliceOp::create(b, a.getLoc(), a.getType(),
                                           FlatSymbolRefAttr::get(arena.getSymNameAttr()),
                                           b.getI64IntegerAttr(off), b.getI64IntegerAttr(iv.bytes));
        a.getResult().replaceAllUsesWith(slice.getResult());
        a.erase();
      }
    }
  }
};

struct TestPrintLivenessPass : kiln::impl::TestPrintLivenessBase<TestPrintLivenessPass> {
  void runOnOperation() override {
    llvm::raw_ostream &os = llvm::outs();
    for (func::FuncOp f : getOperation().getOps<func::FuncOp>()) {
      if (f.isExternal())
        continue;
      BufferLiveness live(f);
      os << "@" << f.getName() << ": " << live.numLaunches() << " launches, "
         << live.intervals().size() << " buffers\n";
      for (auto [i, iv] : llvm::enumerate(live.intervals()))
        os << "  buffer " << i << ": " << iv.bytes << " bytes, live [" << iv.start << ", "
           << iv.end << "]\n";
      os << "  total " << live.totalBytes() << " bytes, lower bound " << live.lowerBound()
         << " bytes\n";
    }
  }
};

} // namespace
