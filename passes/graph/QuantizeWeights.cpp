//===- QuantizeWeights.cpp - float projections rounded by the loader ------===//
//
// See Passes.td (QuantizeWeights).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace kiln {
#define GEN_PASS_DEF_QUANTIZEWEIGHTS
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The last dimension of the values `f` returns (its logits' vocabulary),
/// or -1.
int64_t returnedColumns(func::FuncOp f) {
  int64_t cols = -1;
  for (Type t : f.getResultTypes())
    if (auto r = dyn_cast<RankedTensorType>(t); r && r.getRank() > 0 && !r.isDynamicDim(r.getRank() - 1))
      cols = r.getShape().back();
  return cols;
}

struct QuantizeWeightsPass : kiln::impl::QuantizeWeightsBase<QuantizeWeightsPass> {
  using QuantizeWeightsBase::QuantizeWeightsBase;

  void runOnOperation() override {
    ModuleOp m = getOperation();
    MLIRContext *ctx = m.getContext();
    if (bits != 4 && bits != 8) {
      m.emitError("kiln-quantize-weights: bits must be 4 or 8, not ") << static_cast<int64_t>(bits);
      return signalPassFailure();
    }
    if (groupSize == 0 || groupSize < -1) {
      m.emitError("kiln-quantize-weights: group-size must be -1 or positive, not ") << static_cast<int64_t>(groupSize);
      return signalPassFailure();
    }
    llvm::StringMap<DictionaryAttr> table;
    if (auto old = m->getAttrOfType<DictionaryAttr>(kDequantWeightsAttr)) {
      for (NamedAttribute a : old) {
        auto d = dyn_cast<DictionaryAttr>(a.getValue());
        if (d && d.get("qweight")) {
          m.emitError("the model is already quantized ('") << a.getName().getValue()
              << "' is dequantized from packed weights): --quantize applies to float checkpoints";
          return signalPassFailure();
        }
        if (d)
          table[a.getName()] = d;
      }
    }
    Builder b(ctx);
    bool failed = false;
    int64_t quantized = 0;
    SmallVector<WeightOp> weights;
    m.walk([&](WeightOp w) { weights.push_back(w); });
    for (WeightOp w : weights) {
      auto type = dyn_cast<RankedTensorType>(w.getType());
      if (failed || !type || type.getRank() != 2 || !isa<FloatType>(type.getElementType()) || w.getSources() ||
          w.getTransposed() || w->use_empty() || table.count(w.getName()))
        continue;
      // Every use the right operand of a matmul (directly, or through a cast
      // to the compute dtype), all with one layout; the LM head's columns
      // are its function's returned ones.
      std::optional<bool> transposeB;
      bool lmHeadUse = false, projection = true, direct = false;
      SmallVector<CastOp> casts;
      Type castTo;
      SmallVector<OpOperand *> uses;
      for (OpOperand &use : w->getUses()) {
        auto c = dyn_cast<CastOp>(use.getOwner());
        if (!c) {
          direct = true;
          uses.push_back(&use);
          continue;
        }
        auto to = dyn_cast<RankedTensorType>(c.getType());
        projection &= to && isa<FloatType>(to.getElementType()) && (!castTo || castTo == to);
        castTo = to;
        casts.push_back(c);
        for (OpOperand &u : c->getUses())
          uses.push_back(&u);
      }
      projection &= !(direct && !casts.empty()); // some uses cast, some not
      for (OpOperand *use : uses) {
        auto mm = dyn_cast<MatmulOp>(use->getOwner());
        if (!mm || use->getOperandNumber() != 1 || (transposeB && *transposeB != mm.getTransposeB())) {
          projection = false; // an embedding (a gather), a tied head, or something else
          break;
        }
        transposeB = mm.getTransposeB();
        auto out = dyn_cast<RankedTensorType>(mm.getType());
        auto f = mm->getParentOfType<func::FuncOp>();
        if (out && f && !out.isDynamicDim(out.getRank() - 1) && out.getShape().back() == returnedColumns(f))
          lmHeadUse = true;
      }
      if (!projection || !transposeB || (lmHeadUse && !lmHead))
        continue;
      const int kAxis = *transposeB ? 1 : 0;
      const int64_t K = type.getDimSize(kAxis);
      if (groupSize != -1 && K % groupSize) {
        w.emitError("--group-size ") << static_cast<int64_t>(groupSize) << " does not divide the " << K
                                     << " input features of '" << w.getName()
                                     << "' (--group-size -1 takes each output's whole row)";
        failed = true;
        continue;
      }
      // Cast at load: the loader gives the rounded values in the compute
      // dtype itself (a stored bf16 weight computed in f32 is not rounded to
      // bf16 on the way).
      if (!casts.empty()) {
        OpBuilder ob(w);
        auto nw = WeightOp::create(ob, w.getLoc(), castTo, w.getName());
        for (CastOp c : casts) {
          c.getResult().replaceAllUsesWith(nw.getResult());
          c.erase();
        }
        w.erase();
        w = nw;
      }
      table[w.getName()] = b.getDictionaryAttr(
          {b.getNamedAttr("packing", b.getStringAttr("rtn")), b.getNamedAttr("source", w.getNameAttr()),
           b.getNamedAttr("bits", b.getI64IntegerAttr(bits)),
           b.getNamedAttr("group_size", b.getI64IntegerAttr(groupSize)),
           b.getNamedAttr("k_axis", b.getI64IntegerAttr(kAxis))});
      ++quantized;
    }
    if (failed)
      return signalPassFailure();
    if (quantized == 0) {
      m.emitError("--quantize found no float projection weight to quantize");
      return signalPassFailure();
    }
    SmallVector<NamedAttribute> entries;
    for (auto &e : table)
      entries.push_back(NamedAttribute(StringAttr::get(ctx, e.getKey()), e.getValue()));
    m->setAttr(kDequantWeightsAttr, DictionaryAttr::get(ctx, entries));
  }
};

} // namespace
