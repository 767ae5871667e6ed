//===- SliceEval.cpp - evaluate a value's backward slice at compile time --===//
#include "passes/graph/SliceEval.h"

#include "interp/Interpreter.h"
#include "ir/Kiln/KilnOps.h"

using namespace mlir;
using kiln::host::DType;
using kiln::host::Tensor;

namespace kiln {

void SliceEvaluator::bind(Value v, Tensor t) { bound_[v] = std::move(t); }

bool SliceEvaluator::collect(Value v, size_t maxOps) {
  if (bound_.count(v) || seen_.contains(v))
    return true;
  seen_.insert(v);
  Operation *d = v.getDefiningOp();
  if (!d || d->getNumRegions() || isa<WeightOp>(d) || ops_.size() > maxOps)
    return false;
  if (auto s = dyn_cast<ShapeOfOp>(d)) {
    // A shape of something outside the slice is known from its type.
    if (!collectQuietly(s.getInput(), maxOps))
      shapeLeaves_.insert(d);
    ops_.insert(d);
    return true;
  }
  if (auto a = dyn_cast<ArangeOp>(d)) {
    // So does an arange over a dimension of something outside it.
    if (!collectQuietly(a.getReference(), maxOps))
      shapeLeaves_.insert(d);
    ops_.insert(d);
    return true;
  }
  for (Value o : d->getOperands())
    if (!collect(o, maxOps))
      return false;
  ops_.insert(d);
  return true;
}

bool SliceEvaluator::collectQuietly(Value v, size_t maxOps) {
  auto ops = ops_;
  auto seen = seen_;
  auto leaves = shapeLeaves_;
  if (collect(v, maxOps))
    return true;
  ops_ = std::move(ops);
  seen_ = std::move(seen);
  shapeLeaves_ = std::move(leaves);
  return false;
}

SmallVector<Value> SliceEvaluator::constants() const {
  SmallVector<Value> out;
  for (Operation *op : ops_)
    if (auto c = dyn_cast<ConstantOp>(op))
      out.push_back(c.getResult());
  return out;
}

FailureOr<Tensor> SliceEvaluator::evaluate(Value v, int64_t length, int64_t batch) {
  if (auto it = bound_.find(v); it != bound_.end())
    return it->second;
  SmallVector<Operation *> order(ops_.begin(), ops_.end());
  llvm::sort(order, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  DenseMap<Value, Tensor> values(bound_.begin(), bound_.end());
  for (Operation *op : order) {
    if (shapeLeaves_.contains(op)) {
      auto type = cast<RankedTensorType>(op->getOperand(0).getType());
      auto dim = [&](int64_t i) { return type.isDynamicDim(i) ? (i == 0 ? batch : length) : type.getDimSize(i); };
      if (auto a = dyn_cast<ArangeOp>(op)) {
        int64_t axis = static_cast<int64_t>(a.getAxis());
        if (axis < 0 || axis >= type.getRank())
          return failure();
        Tensor seq(DType::I64, {dim(axis)});
        for (int64_t i = 0; i < dim(axis); ++i)
          seq.setInt(i, static_cast<int64_t>(a.getStart()) + i);
        values[op->getResult(0)] = std::move(seq);
        continue;
      }
      Tensor shape(DType::I64, {type.getRank()});
      for (int64_t i = 0; i < type.getRank(); ++i)
        shape.setInt(i, dim(i));
      values[op->getResult(0)] = std::move(shape);
      continue;
    }
    std::vector<Tensor> operands, results;
    for (Value o : op->getOperands()) {
      auto it = values.find(o);
      if (it == values.end())
        return failure();
      operands.push_back(it->second);
    }
    // Diagnostics of a failed trial evaluation are not the user's business.
    ScopedDiagnosticHandler quiet(op->getContext(), [](Diagnostic &) { return success(); });
    if (failed(interp::evaluateOp(op, operands, interp::randomWeights(0), results)))
      return failure();
    for (auto [r, x] : llvm::zip(op->getResults(), results))
      values[r] = std::move(x);
  }
  auto it = values.find(v);
  if (it == values.end())
    return failure();
  return it->second;
}

} // namespace kiln
