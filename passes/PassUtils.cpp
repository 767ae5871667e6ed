//===- PassUtils.cpp - helpers shared by kiln's passes --------------------===//
#include "passes/PassUtils.h"

#include "ir/Kiln/KilnOps.h"

#include "mlir/Interfaces/InferTypeOpInterface.h"

using namespace mlir;

namespace kiln {

/// Ops whose single result has the type of their first operand.
static bool followsFirstOperand(Operation *op) {
  return op->hasTrait<OpTrait::SameOperandsAndResultType>() ||
         isa<RmsNormOp, LayerNormOp, RopeOp, KvAppendOp, PagedAttentionOp>(op);
}

LogicalResult refineTypes(func::FuncOp func) {
  WalkResult walk = func.walk([&](Operation *op) -> WalkResult {
    if (op->getNumResults() == 0 || op->getParentOp() != func)
      return WalkResult::advance();
    SmallVector<Type> types;
    if (auto infer = dyn_cast<InferTypeOpInterface>(op)) {
      if (failed(infer.inferReturnTypes(op->getContext(), op->getLoc(), op->getOperands(),
                                        op->getRawDictionaryAttrs(),
                                        op->getPropertiesStorage(), op->getRegions(),
                                        types)))
        return WalkResult::interrupt();
    } else if (followsFirstOperand(op)) {
      types.push_back(op->getOperand(0).getType());
    } else if (auto c = dyn_cast<CastOp>(op)) {
      auto in = cast<RankedTensorType>(c.getInput().getType());
      types.push_back(in.clone(cast<RankedTensorType>(c.getType()).getElementType()));
    } else {
      return WalkResult::advance();
    }
    for (auto [r, t] : llvm::zip(op->getResults(), types))
      r.setType(t);
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  func.setFunctionType(FunctionType::get(func.getContext(),
                                         func.getBody().front().getArgumentTypes(),
                                         ret.getOperandTypes()));
  return success();
}

} // namespace kiln
