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

bool isKernel(Operation *op) {
  return !isa<WeightOp, ConstantOp, ReshapeOp, func::ReturnOp>(op);
}

StepShape stepShapeOf(func::FuncOp func, int64_t decodeBatch, int64_t prefillTokens,
                      int64_t context) {
  StepShape s;
  s.context = context;
  auto ids = func.getNumArguments() ? dyn_cast<RankedTensorType>(func.getArgumentTypes()[0])
                                    : RankedTensorType();
  s.decode = ids && ids.getRank() == 2 && ids.getDimSize(1) == 1;
  if (auto own = func->getAttrOfType<IntegerAttr>(kDecodeBatchAttr); own && s.decode)
    decodeBatch = own.getInt();
  s.batch = s.decode ? decodeBatch : 1;
  s.tokens = s.decode ? 1 : prefillTokens;
  return s;
}

int64_t stepElements(Type type, const StepShape &step) {
  auto rt = dyn_cast<RankedTensorType>(type);
  if (!rt)
    return 0;
  int64_t n = 1;
  for (int64_t i = 0; i < rt.getRank(); ++i) {
    int64_t d = rt.getDimSize(i);
    if (ShapedType::isDynamic(d))
      d = i == 0 ? step.batch : i == 1 ? step.tokens : 1;
    n *= d;
  }
  return n;
}

int64_t stepBytes(Type type, const StepShape &step) {
  auto rt = dyn_cast<RankedTensorType>(type);
  if (!rt)
    return 0;
  return stepElements(type, step) * std::max<int64_t>(1, rt.getElementTypeBitWidth() / 8);
}

} // namespace kiln
