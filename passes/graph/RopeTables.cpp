//===- RopeTables.cpp - one table of RoPE angles per step -----------------===//
//
// See Passes.td (ShareRopeTables).
//
//===----------------------------------------------------------------------===//
#include "passes/Passes.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace kiln {
#define GEN_PASS_DEF_SHAREROPETABLES
#include "passes/Passes.h.inc"
} // namespace kiln

using namespace mlir;
using namespace kiln;

namespace {

/// The rotary dim `r` turns, or -1 where the head dim is dynamic.
int64_t rotaryDimOf(RopeOp r) {
  if (std::optional<uint64_t> rd = r.getRotaryDim())
    return static_cast<int64_t>(*rd);
  int64_t d = cast<RankedTensorType>(r.getType()).getDimSize(3);
  return ShapedType::isDynamic(d) ? -1 : d;
}

struct ShareRopeTablesPass : kiln::impl::ShareRopeTablesBase<ShareRopeTablesPass> {
  using ShareRopeTablesBase::ShareRopeTablesBase;

  void runOnOperation() override {
    for (func::FuncOp f : getOperation().getOps<func::FuncOp>()) {
      if (f.isExternal())
        continue;
      SmallVector<RopeCosSinOp> tables;
      for (RopeCosSinOp t : f.getOps<RopeCosSinOp>())
        tables.push_back(t);
      for (RopeOp r : llvm::to_vector(f.getOps<RopeOp>())) {
        int64_t rd = rotaryDimOf(r);
        if (r.getCosSin() || rd < 0)
          continue;
        RopeCosSinOp table;
        for (RopeCosSinOp t : tables)
          if (t.getPositions() == r.getPositions() && static_cast<int64_t>(t.getRotaryDim()) == rd &&
              sameRopeFrequencies(t, r))
            table = t;
        if (!table) {
          // Just after the positions (and the tables already made there).
          Block *block;
          Block::iterator at;
          if (Operation *d = r.getPositions().getDefiningOp()) {
            block = d->getBlock();
            at = std::next(Block::iterator(d));
          } else {
            block = cast<BlockArgument>(r.getPositions()).getOwner();
            at = block->begin();
          }
          while (at != block->end() && isa<RopeCosSinOp>(*at))
            ++at;
          OpBuilder b(block, at);
          table = buildRopeCosSin(b, r, rd);
          tables.push_back(table);
        }
        r.getCosSinMutable().assign(table.getResult());
      }
    }
  }
};

} // namespace
