//===- ChooseTiling.cpp - tilings from the cost model; print the costs ----===//
//
// See Passes.td (ChooseTiling, TestPrintCost) and CostModel.h.
//
//===----------------------------------------------------------------------===//
#include "passes/PassUtils.h"
#include "passes/Passes.h"
#include "passes/tiling/CostModel.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

namespace kiln {
#define GEN_PASS_DEF_CHOOSETILING
#define GEN_PASS_DEF_TESTPRINTCOST
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

DictionaryAttr tileAttr(Builder &b, const cost::Tiling &t) {
  SmallVector<NamedAttribute> attrs{b.getNamedAttr("family", b.getStringAttr(t.family)),
                                    b.getNamedAttr("grid", b.getI64IntegerAttr(t.blocks))};
  for (auto &[name, value] : t.params)
    attrs.push_back(b.getNamedAttr(name, b.getI64IntegerAttr(value)));
  return b.getDictionaryAttr(attrs);
}

DictionaryAttr costAttr(Builder &b, const cost::KernelShape &s, const cost::Tiling &t) {
  return b.getDictionaryAttr({
      b.getNamedAttr("bytes", b.getI64IntegerAttr(s.bytes)),
      b.getNamedAttr("weight_bytes", b.getI64IntegerAttr(s.weightBytes)),
      b.getNamedAttr("flops", b.getI64IntegerAttr(s.flops)),
      b.getNamedAttr("time_ns", b.getI64IntegerAttr(static_cast<int64_t>(t.timeUs * 1e3 + 0.5))),
  });
}

LogicalResult loadTarget(ModuleOp m, StringRef name, target::TargetDesc &t) {
  if (Status s = target::findTarget(name.str(), t); !s)
    return m.emitError("kiln: ") << s.message();
  return success();
}

struct ChooseTilingPass : kiln::impl::ChooseTilingBase<ChooseTilingPass> {
  using ChooseTilingBase::ChooseTilingBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    target::TargetDesc t;
    if (failed(loadTarget(m, target, t)))
      return signalPassFailure();
    Builder b(&getContext());
    m->setAttr("kiln.target", b.getStringAttr(t.name));
    for (func::FuncOp f : m.getOps<func::FuncOp>()) {
      if (f.isExternal())
        continue;
      StepShape step = stepShapeOf(f, decodeBatch, prefillTokens, context);
      for (FusedOp k : f.getOps<FusedOp>()) {
        cost::KernelShape s = cost::describe(k, step);
        s.epilogueWarps = epilogueWarps;
        cost::Tiling tl = cost::best(s, t);
        k->setAttr("kiln.tile", tileAttr(b, tl));
        k->setAttr("kiln.cost", costAttr(b, s, tl));
      }
    }
  }
};

/// Whether every use of `w`, directly or through a fused group's argument,
/// gathers rows of it (cost::gathersRows).
bool onlyGathered(Value w) {
  for (OpOperand &use : w.getUses()) {
    Operation *u = use.getOwner();
    if (cost::gathersRows(u, w))
      continue;
    auto f = dyn_cast<FusedOp>(u);
    if (!f || !onlyGathered(f.getBody().front().getArgument(use.getOperandNumber())))
      return false;
  }
  return true;
}

int64_t intOf(DictionaryAttr d, StringRef key) {
  auto a = d ? d.getAs<IntegerAttr>(key) : IntegerAttr();
  return a ? a.getInt() : 0;
}

struct TestPrintCostPass : kiln::impl::TestPrintCostBase<TestPrintCostPass> {
  using TestPrintCostBase::TestPrintCostBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    target::TargetDesc t;
    auto named = m->getAttrOfType<StringAttr>("kiln.target");
    if (failed(loadTarget(m, named ? named.getValue() : StringRef(target), t)))
      return signalPassFailure();
    llvm::raw_ostream &os = llvm::outs();
    for (func::FuncOp f : m.getOps<func::FuncOp>()) {
      if (f.isExternal())
        continue;
      StepShape step = stepShapeOf(f, decodeBatch, prefillTokens, context);
      os << "@" << f.getName() << " on " << t.name << ": " << step.batch << " x "
         << step.tokens << " tokens" << (step.decode ? ", context " + std::to_string(step.context) : "")
         << "\n";
      os << llvm::format("  %-4s %-16s %-16s %14s %14s %16s %10s  %s\n", "#", "kernel", "family",
                         "bytes", "weight bytes", "flops", "time us", "tile");
      int64_t n = 0, bytes = 0, weightRead = 0, flops = 0;
      double us = 0;
      for (Operation &op : f.getBody().front()) {
        if (!isKernel(&op))
          continue;
        cost::KernelShape s = cost::describe(&op, step);
        auto cd = op.getAttrOfType<DictionaryAttr>("kiln.cost");
        auto td = op.getAttrOfType<DictionaryAttr>("kiln.tile");
        double time;
        std::string tile, family = s.family;
        if (cd && td) {
          s.bytes = intOf(cd, "bytes");
          s.weightBytes = intOf(cd, "weight_bytes");
          s.flops = intOf(cd, "flops");
          time = intOf(cd, "time_ns") * 1e-3;
          for (NamedAttribute a : td) {
            if (auto str = dyn_cast<StringAttr>(a.getValue()))
              family = str.getValue().str();
            else if (auto i = dyn_cast<IntegerAttr>(a.getValue()))
              tile += (tile.empty() ? "" : ",") + a.getName().str() + "=" +
                      std::to_string(i.getInt());
          }
        } else {
          time = cost::best(s, t).timeUs;
        }
        std::string kind = isa<FusedOp>(op) ? cast<FusedOp>(op).getKind().str()
                                            : op.getName().stripDialect().str();
        os << llvm::format("  %-4lld %-16s %-16s %14lld %14lld %16lld %10.2f  %s\n",
                           static_cast<long long>(n), kind.c_str(), family.c_str(),
                           static_cast<long long>(s.bytes), static_cast<long long>(s.weightBytes),
                           static_cast<long long>(s.flops), time, tile.c_str());
        ++n;
        bytes += s.bytes;
        weightRead += s.weightBytes;
        flops += s.flops;
        us += time;
      }
      // The weights the function binds, each counted once; a table that is
      // only gathered from (token embeddings) counts the rows a step reads.
      int64_t weights = 0;
      for (WeightOp w : f.getOps<WeightOp>()) {
        auto rt = w.getType();
        weights += onlyGathered(w.getResult())
                       ? step.batch * step.tokens * (rt.getNumElements() / rt.getDimSize(0)) *
                             std::max<int64_t>(1, rt.getElementTypeBitWidth() / 8)
                       : stepBytes(rt, step);
      }
      os << "  kernels " << n << ", bytes " << bytes << ", weights read " << weightRead
         << " of " << weights << " bound ("
         << llvm::format("%.3f", weights ? double(weightRead) / weights : 0.0) << "x), flops "
         << flops << "\n";
      os << "  predicted " << llvm::format("%.1f", us) << " us per step, "
         << llvm::format("%.1f", us > 0 ? 1e6 / us * step.batch * step.tokens : 0.0)
         << " tokens/s, "
         << llvm::format("%.1f", us > 0 ? bytes / us * 1e-3 : 0.0) << " GB/s\n";
    }
  }
};

} // namespace
