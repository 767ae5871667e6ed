//===- DequantAtLoad.cpp - packed weights dequantized by the loader -------===//
//
// See Passes.td (DequantAtLoad).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace kiln {
#define GEN_PASS_DEF_DEQUANTATLOAD
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The stored weight `v` names, or "" where `v` is not a plain weight.
StringRef plainWeightName(Value v) {
  auto w = v ? v.getDefiningOp<WeightOp>() : WeightOp();
  return w && !w.getSources() && !w.getTransposed() ? w.getName() : StringRef();
}

struct DequantAtLoadPass : kiln::impl::DequantAtLoadBase<DequantAtLoadPass> {
  using DequantAtLoadBase::DequantAtLoadBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    MLIRContext *ctx = m.getContext();
    llvm::StringMap<DictionaryAttr> table;
    if (auto old = m->getAttrOfType<DictionaryAttr>(kDequantWeightsAttr))
      for (NamedAttribute a : old)
        if (auto d = dyn_cast<DictionaryAttr>(a.getValue()))
          table[a.getName()] = d;
    bool failed = false;
    SmallVector<DequantOp> dequants;
    m.walk([&](DequantOp d) { dequants.push_back(d); });
    for (DequantOp d : dequants) {
      StringRef q = plainWeightName(d.getQweight()), s = plainWeightName(d.getScales());
      StringRef z = plainWeightName(d.getZeros()), g = plainWeightName(d.getGIdx());
      if (q.empty() || s.empty() || (d.getZeros() && z.empty()) || (d.getGIdx() && g.empty()))
        continue;
      std::string name = q.ends_with(".qweight") ? (q.drop_back(8) + ".weight").str() : (q + ".dequant").str();
      Builder b(ctx);
      SmallVector<NamedAttribute> fields{
          b.getNamedAttr("qweight", b.getStringAttr(q)), b.getNamedAttr("scales", b.getStringAttr(s)),
          b.getNamedAttr("packing", d.getPackingAttr()), b.getNamedAttr("bits", d.getBitsAttr()),
          b.getNamedAttr("group_size", d.getGroupSizeAttr())};
      if (!z.empty())
        fields.push_back(b.getNamedAttr("zeros", b.getStringAttr(z)));
      if (!g.empty())
        fields.push_back(b.getNamedAttr("g_idx", b.getStringAttr(g)));
      DictionaryAttr entry = b.getDictionaryAttr(fields);
      auto [it, fresh] = table.try_emplace(name, entry);
      if (!fresh && it->second != entry) {
        d.emitOpError("dequantizes into '") << name << "', which another dequant of different parts defines";
        failed = true;
        continue;
      }
      OpBuilder ob(d);
      auto w = WeightOp::create(ob, d.getLoc(), d.getType(), name);
      d.getResult().replaceAllUsesWith(w.getResult());
      SmallVector<Operation *> parts;
      for (Value v : d->getOperands())
        parts.push_back(v.getDefiningOp());
      d.erase();
      for (Operation *p : parts)
        if (p->use_empty())
          p->erase();
    }
    if (failed)
      return signalPassFailure();
    if (table.empty())
      return;
    SmallVector<NamedAttribute> entries;
    for (auto &e : table)
      entries.push_back(NamedAttribute(StringAttr::get(ctx, e.getKey()), e.getValue()));
    m->setAttr(kDequantWeightsAttr, DictionaryAttr::get(ctx, entries));
  }
};

} // namespace
