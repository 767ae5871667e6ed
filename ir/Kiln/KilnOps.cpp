//===- KilnOps.cpp - shape inference and verifiers of kiln ops ------------===//
//
// The element-wise, matmul, reduction, shape and movement ops; the
// transformer ops (RoPE, attention, the paged KV cache, fused bodies) are
// in TransformerOps.cpp.
//
// Every rule a verifier checks here has an `expected-error` case in
// test/lit/ir/kiln/invalid.mlir.
//
//===----------------------------------------------------------------------===//
#include "ir/Kiln/KilnOps.h"
#include "ir/Kiln/KilnOpsDetail.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallSet.h"

using namespace mlir;
using namespace kiln;
using namespace kiln::detail;

namespace {

LogicalResult checkAxis(std::optional<Location> loc, int64_t axis, int64_t rank,
                        StringRef what) {
  if (axis < 0 || axis >= rank)
    return emitOptionalError(loc, what, " ", axis, " is out of range for rank ",
                             rank);
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Shared inference helpers
//===----------------------------------------------------------------------===//

/// numpy broadcasting of ranked tensor shapes.
static LogicalResult broadcastShapes(std::optional<Location> loc,
                                     ArrayRef<ArrayRef<int64_t>> shapes,
                                     SmallVectorImpl<int64_t> &shape) {
  for (ArrayRef<int64_t> s : shapes) {
    if (s.size() > shape.size())
      shape.insert(shape.begin(), s.size() - shape.size(), 1);
    size_t off = shape.size() - s.size();
    for (size_t i = 0; i < s.size(); ++i) {
      int64_t &o = shape[off + i];
      int64_t d = s[i];
      if (d == 1)
        continue;
      if (o == 1 || (isDyn(o) && !isDyn(d)))
        o = d;
      else if (!isDyn(d) && !isDyn(o) && d != o)
        return emitOptionalError(loc, "operand shapes do not broadcast: dimension ",
                                 dimStr(o), " against ", dimStr(d));
    }
  }
  return success();
}

static LogicalResult rankedOperands(std::optional<Location> loc, ValueRange values,
                                    SmallVectorImpl<RankedTensorType> &types) {
  for (Value v : values) {
    RankedTensorType t = rankedType(v);
    if (!t)
      return emitOptionalError(loc, "expected ranked tensor operands");
    types.push_back(t);
  }
  return success();
}

LogicalResult kiln::inferBroadcastResult(std::optional<Location> loc,
                                         ValueRange operands, Type elementType,
                                         SmallVectorImpl<Type> &inferred) {
  SmallVector<RankedTensorType> types;
  if (failed(rankedOperands(loc, operands, types)))
    return failure();
  for (RankedTensorType t : types)
    if (t.getElementType() != types.front().getElementType())
      return emitOptionalError(loc, "operands differ in element type: ",
                               types.front().getElementType(), " and ",
                               t.getElementType());
  SmallVector<ArrayRef<int64_t>> shapes;
  for (RankedTensorType t : types)
    shapes.push_back(t.getShape());
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(loc, shapes, shape)))
    return failure();
  inferred.push_back(RankedTensorType::get(
      shape, elementType ? elementType : types.front().getElementType()));
  return success();
}

LogicalResult kiln::inferReduceResult(std::optional<Location> loc, Value input,
                                      ArrayRef<int64_t> axes, bool keepDims,
                                      SmallVectorImpl<Type> &inferred) {
  RankedTensorType t = rankedType(input);
  if (!t)
    return emitOptionalError(loc, "expected a ranked tensor operand");
  llvm::SmallSet<int64_t, 4> seen;
  for (int64_t a : axes) {
    if (failed(checkAxis(loc, a, t.getRank(), "reduction axis")))
      return failure();
    if (!seen.insert(a).second)
      return emitOptionalError(loc, "reduction axis ", a, " is repeated");
  }
  SmallVector<int64_t> shape;
  for (int64_t i = 0; i < t.getRank(); ++i) {
    if (!seen.contains(i))
      shape.push_back(t.getDimSize(i));
    else if (keepDims)
      shape.push_back(1);
  }
  inferred.push_back(RankedTensorType::get(shape, t.getElementType()));
  return success();
}

SliceRange kiln::sliceRange(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (start < 0)
    start += dim;
  if (end < 0)
    end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    return {start, end > start ? (end - start + step - 1) / step : 0};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  return {start, start > end ? (start - end - step - 1) / -step : 0};
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

LogicalResult DequantOp::verify() {
  int64_t bits = static_cast<int64_t>(getBits());
  if (bits != 4 && bits != 8)
    return emitOpError("bits must be 4 or 8, got ") << bits;
  bool awq = getPacking() == QuantPacking::Awq;
  if (awq && bits != 4)
    return emitOpError("awq packing holds 4-bit values, got ") << bits;
  auto out = cast<RankedTensorType>(getType());
  if (out.getRank() != 2 || !out.hasStaticShape())
    return emitOpError("result must be a static [K, N] matrix, got ") << out;
  int64_t K = out.getDimSize(0), N = out.getDimSize(1), p = 32 / bits, gs = getGroupSize();
  if (gs != -1 && (gs <= 0 || K % gs))
    return emitOpError("group_size must be -1 or divide K = ") << K << ", got " << gs;
  int64_t G = gs == -1 ? 1 : K / gs;
  // Packed dimension: K for GPTQ's weights, N for AWQ's and every zeros.
  if ((awq ? N : K) % p || (N % p && getZeros()))
    return emitOpError("the packed dimension must be a multiple of ") << p << " (" << bits << "-bit values)";
  auto expect = [&](Value v, ArrayRef<int64_t> shape, const char *what) -> LogicalResult {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getShape() != shape)
      return emitOpError(what) << " must be " << RankedTensorType::get(shape, t.getElementType()) << ", got " << t;
    return success();
  };
  SmallVector<int64_t> qshape = awq ? SmallVector<int64_t>{K, N / p} : SmallVector<int64_t>{K / p, N};
  if (failed(expect(getQweight(), qshape, "qweight")) || failed(expect(getScales(), {G, N}, "scales")))
    return failure();
  if (getZeros() && failed(expect(getZeros(), {G, N / p}, "zeros")))
    return failure();
  if (getGIdx() && failed(expect(getGIdx(), {K}, "g_idx")))
    return failure();
  return success();
}

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError("weight name must not be empty");
  if (!getType().hasStaticShape())
    return emitOpError("weight shape must be static, got ") << getType();
  if (getTransposed() && getType().getRank() != 2)
    return emitOpError("only a 2-D weight can be stored transposed, got ") << getType();
  if (getSources().has_value() != getSourceRows().has_value())
    return emitOpError("sources and source_rows come together");
  if (std::optional<ArrayAttr> sources = getSources()) {
    ArrayRef<int64_t> rows = *getSourceRows();
    if (sources->size() < 2 || sources->size() != rows.size())
      return emitOpError("needs at least two sources, each with its row count");
    int64_t total = 0;
    for (int64_t r : rows) {
      if (r <= 0)
        return emitOpError("source row counts must be positive");
      total += r;
    }
    if (getType().getRank() < 1 || total != getType().getDimSize(0))
      return emitOpError("source rows add up to ") << total << ", not the " << getType()
                                                   << " of the concatenation";
  }
  return success();
}

LogicalResult ConstantOp::inferReturnTypes(MLIRContext *, std::optional<Location>,
                                           Adaptor adaptor,
                                           SmallVectorImpl<Type> &inferred) {
  inferred.push_back(adaptor.getValue().getType());
  return success();
}

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult CompareOp::inferReturnTypes(MLIRContext *ctx,
                                          std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &inferred) {
  return inferBroadcastResult(loc, {adaptor.getLhs(), adaptor.getRhs()},
                              IntegerType::get(ctx, 1), inferred);
}

LogicalResult WhereOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &inferred) {
  // The values must agree in element type; the i1 condition only broadcasts.
  SmallVector<Type, 1> values;
  if (failed(inferBroadcastResult(loc, {adaptor.getOnTrue(), adaptor.getOnFalse()},
                                  Type(), values)))
    return failure();
  RankedTensorType cond = rankedType(adaptor.getCondition());
  if (!cond)
    return emitOptionalError(loc, "expected ranked tensor operands");
  auto valueType = cast<RankedTensorType>(values[0]);
  SmallVector<int64_t> shape;
  if (failed(broadcastShapes(loc, {cond.getShape(), valueType.getShape()}, shape)))
    return failure();
  inferred.push_back(RankedTensorType::get(shape, valueType.getElementType()));
  return success();
}

LogicalResult CastOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getResult().getType());
  if (in.getShape() != out.getShape())
    return emitOpError("result shape must equal the operand shape, got ")
           << in << " to " << out;
  return success();
}

OpFoldResult CastOp::fold(FoldAdaptor) {
  return getInput().getType() == getType() ? getInput() : Value();
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  RankedTensorType a = rankedType(adaptor.getLhs());
  RankedTensorType b = rankedType(adaptor.getRhs());
  if (!a || !b)
    return emitOptionalError(loc, "expected ranked tensor operands");
  if (a.getRank() < 1 || b.getRank() < 1)
    return emitOptionalError(loc, "matmul operands must have rank >= 1");
  if (a.getElementType() != b.getElementType())
    return emitOptionalError(loc, "matmul operands differ in element type: ",
                             a.getElementType(), " and ", b.getElementType());
  bool tb = adaptor.getTransposeB();
  SmallVector<int64_t> as(a.getShape()), bs(b.getShape());
  bool aVec = as.size() == 1, bVec = bs.size() == 1;
  if (aVec)
    as.insert(as.begin(), 1);
  if (bVec && tb)
    bs.insert(bs.begin(), 1);
  else if (bVec)
    bs.push_back(1);
  int64_t m = as[as.size() - 2], k = as.back();
  int64_t kb = tb ? bs.back() : bs[bs.size() - 2];
  int64_t n = tb ? bs[bs.size() - 2] : bs.back();
  if (failed(mergeDims(k, kb)))
    return emitOptionalError(loc, "matmul contraction dimensions differ: ",
                             dimStr(k), " and ", dimStr(kb));
  // The batch dimensions broadcast like elementwise operands.
  SmallVector<int64_t> shape;
  ArrayRef<int64_t> aBatch(as.data(), as.size() - 2), bBatch(bs.data(), bs.size() - 2);
  if (failed(broadcastShapes(loc, {aBatch, bBatch}, shape)))
    return failure();
  if (!aVec)
    shape.push_back(m);
  if (!bVec)
    shape.push_back(n);
  inferred.push_back(RankedTensorType::get(shape, a.getElementType()));
  return success();
}

LogicalResult ArgmaxOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  SmallVector<Type, 1> reduced;
  int64_t axis = static_cast<int64_t>(adaptor.getAxis());
  if (failed(inferReduceResult(loc, adaptor.getInput(), {axis},
                               adaptor.getKeepDims(), reduced)))
    return failure();
  inferred.push_back(RankedTensorType::get(
      cast<RankedTensorType>(reduced[0]).getShape(), IntegerType::get(ctx, 64)));
  return success();
}

LogicalResult SoftmaxOp::verify() {
  return checkAxis(getLoc(), static_cast<int64_t>(getAxis()),
                   getType().getRank(), "softmax axis");
}

/// The rules RMSNorm and LayerNorm share: a 1-D parameter the size of the
/// last axis, and a non-negative epsilon.
static LogicalResult verifyNormParam(Operation *op, Value input, Value param,
                                     StringRef what) {
  auto x = cast<RankedTensorType>(input.getType());
  auto w = cast<RankedTensorType>(param.getType());
  if (x.getRank() < 1)
    return op->emitOpError("input must have rank >= 1");
  if (w.getRank() != 1)
    return op->emitOpError() << what << " must be 1-D, got " << w;
  if (failed(mergeDims(w.getDimSize(0), x.getShape().back())))
    return op->emitOpError() << what << " size " << w.getDimSize(0)
                             << " does not match the last dimension "
                             << dimStr(x.getShape().back());
  return success();
}

LogicalResult RmsNormOp::verify() {
  if (getEpsilon().isNegative())
    return emitOpError("epsilon must not be negative");
  return verifyNormParam(*this, getInput(), getWeight(), "weight");
}

LogicalResult LayerNormOp::verify() {
  if (getEpsilon().isNegative())
    return emitOpError("epsilon must not be negative");
  if (failed(verifyNormParam(*this, getInput(), getWeight(), "weight")))
    return failure();
  return getBias() ? verifyNormParam(*this, getInput(), getBias(), "bias")
                   : success();
}

LogicalResult GatherOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  RankedTensorType d = rankedType(adaptor.getData());
  RankedTensorType i = rankedType(adaptor.getIndices());
  if (!d || !i)
    return emitOptionalError(loc, "expected ranked tensor operands");
  int64_t axis = static_cast<int64_t>(adaptor.getAxis());
  if (failed(checkAxis(loc, axis, d.getRank(), "gather axis")))
    return failure();
  SmallVector<int64_t> shape(d.getShape().take_front(axis));
  llvm::append_range(shape, i.getShape());
  llvm::append_range(shape, d.getShape().drop_front(axis + 1));
  inferred.push_back(RankedTensorType::get(shape, d.getElementType()));
  return success();
}

FailureOr<SmallVector<int64_t>> kiln::reshapeResult(ArrayRef<int64_t> input,
                                                   ArrayRef<int64_t> pattern,
                                                   std::string &error) {
  SmallVector<int64_t> shape(pattern);
  int64_t inferIdx = -1;
  for (auto [i, d] : llvm::enumerate(pattern)) {
    if (d == -1) {
      if (inferIdx >= 0) {
        error = "reshape shape may have only one -1";
        return failure();
      }
      inferIdx = static_cast<int64_t>(i);
    } else if (d == 0) {
      if (i >= input.size()) {
        error = "reshape entry 0 at index " + std::to_string(i) +
                " has no input dimension to copy";
        return failure();
      }
      shape[i] = input[i];
    } else if (d < 0) {
      error = "reshape dimension " + std::to_string(d) + " is negative";
      return failure();
    }
  }
  // Element counts: of the input, and of the pattern's known entries.
  bool inputStatic = llvm::none_of(input, ShapedType::isDynamic);
  int64_t total = 1, known = 1;
  for (int64_t d : input)
    total *= inputStatic ? d : 1;
  bool knownStatic = true;
  for (auto [i, d] : llvm::enumerate(shape)) {
    if (static_cast<int64_t>(i) == inferIdx)
      continue;
    if (ShapedType::isDynamic(d))
      knownStatic = false;
    else
      known *= d;
  }
  if (inferIdx >= 0) {
    if (inputStatic && knownStatic) {
      if (known == 0 || total % known) {
        error = "cannot reshape " + std::to_string(total) +
                " elements with shape pattern of " + std::to_string(known);
        return failure();
      }
      shape[inferIdx] = total / known;
    } else {
      shape[inferIdx] = ShapedType::kDynamic;
    }
  } else if (inputStatic && knownStatic && known != total) {
    error = "reshape changes the element count from " + std::to_string(total) +
            " to " + std::to_string(known);
    return failure();
  }
  return shape;
}

LogicalResult ReshapeOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &inferred) {
  RankedTensorType t = rankedType(adaptor.getInput());
  if (!t)
    return emitOptionalError(loc, "expected a ranked tensor operand");
  std::string error;
  FailureOr<SmallVector<int64_t>> shape =
      reshapeResult(t.getShape(), adaptor.getShape(), error);
  if (failed(shape))
    return emitOptionalError(loc, error);
  inferred.push_back(RankedTensorType::get(*shape, t.getElementType()));
  return success();
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &inferred) {
  RankedTensorType t = rankedType(adaptor.getInput());
  if (!t)
    return emitOptionalError(loc, "expected a ranked tensor operand");
  ArrayRef<int64_t> perm = adaptor.getPermutation();
  if (static_cast<int64_t>(perm.size()) != t.getRank())
    return emitOptionalError(loc, "permutation has ", perm.size(),
                             " entries for rank ", t.getRank());
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t p : perm) {
    if (p < 0 || p >= t.getRank() || seen[p])
      return emitOptionalError(loc, "permutation is not a permutation of [0, ",
                               t.getRank(), ")");
    seen[p] = true;
    shape.push_back(t.getDimSize(p));
  }
  inferred.push_back(RankedTensorType::get(shape, t.getElementType()));
  return success();
}

/// A reshape back to the type of the reshape's source (through one more
/// reshape) is the source, when at most one dimension is dynamic (then equal
/// types mean equal shapes).
OpFoldResult ReshapeOp::fold(FoldAdaptor) {
  auto type = cast<RankedTensorType>(getType());
  if (type.getNumDynamicDims() > 1)
    return {};
  Value src = getInput();
  if (src.getType() == type)
    return src;
  if (auto inner = src.getDefiningOp<ReshapeOp>(); inner && inner.getInput().getType() == type)
    return inner.getInput();
  return {};
}

OpFoldResult TransposeOp::fold(FoldAdaptor) {
  ArrayRef<int64_t> perm = getPermutation();
  auto identity = [](ArrayRef<int64_t> p) {
    for (auto [i, v] : llvm::enumerate(p))
      if (static_cast<int64_t>(i) != v)
        return false;
    return true;
  };
  if (identity(perm) && getInput().getType() == getType())
    return getInput();
  // transpose(transpose(x, p), q) is x when applying p then q is identity.
  if (auto inner = getInput().getDefiningOp<TransposeOp>()) {
    ArrayRef<int64_t> p = inner.getPermutation();
    SmallVector<int64_t> composed;
    for (int64_t q : perm)
      composed.push_back(p[q]);
    if (identity(composed) && inner.getInput().getType() == getType())
      return inner.getInput();
  }
  return {};
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  ValueRange inputs = adaptor.getInputs();
  if (inputs.empty())
    return emitOptionalError(loc, "concat needs at least one operand");
  RankedTensorType first = rankedType(inputs.front());
  if (!first)
    return emitOptionalError(loc, "expected ranked tensor operands");
  int64_t axis = static_cast<int64_t>(adaptor.getAxis());
  if (failed(checkAxis(loc, axis, first.getRank(), "concat axis")))
    return failure();
  SmallVector<int64_t> shape(first.getShape());
  shape[axis] = 0;
  for (Value v : inputs) {
    RankedTensorType t = rankedType(v);
    if (!t || t.getRank() != first.getRank() ||
        t.getElementType() != first.getElementType())
      return emitOptionalError(loc, "concat operands must share rank and element type");
    for (int64_t d = 0; d < t.getRank(); ++d) {
      int64_t s = t.getDimSize(d);
      if (d == axis) {
        shape[d] = isDyn(shape[d]) || isDyn(s) ? kDynamic : shape[d] + s;
        continue;
      }
      FailureOr<int64_t> m = mergeDims(shape[d], s);
      if (failed(m))
        return emitOptionalError(loc, "concat operands differ in dimension ", d,
                                 ": ", dimStr(shape[d]), " and ", dimStr(s));
      shape[d] = *m;
    }
  }
  inferred.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &inferred) {
  RankedTensorType t = rankedType(adaptor.getInput());
  if (!t)
    return emitOptionalError(loc, "expected a ranked tensor operand");
  ArrayRef<int64_t> starts = adaptor.getStarts(), ends = adaptor.getEnds(),
                    steps = adaptor.getSteps();
  int64_t r = t.getRank();
  if (static_cast<int64_t>(starts.size()) != r ||
      static_cast<int64_t>(ends.size()) != r ||
      static_cast<int64_t>(steps.size()) != r)
    return emitOptionalError(loc, "slice starts, ends and steps need ", r,
                             " entries each");
  SmallVector<int64_t> shape;
  for (int64_t d = 0; d < r; ++d) {
    if (steps[d] == 0)
      return emitOptionalError(loc, "slice step on dimension ", d, " is zero");
    int64_t n = t.getDimSize(d);
    shape.push_back(isDyn(n) ? kDynamic : sliceRange(n, starts[d], ends[d], steps[d]).length);
  }
  inferred.push_back(RankedTensorType::get(shape, t.getElementType()));
  return success();
}

LogicalResult BroadcastToOp::verify() {
  auto in = cast<RankedTensorType>(getInput().getType());
  auto out = cast<RankedTensorType>(getResult().getType());
  if (in.getElementType() != out.getElementType())
    return emitOpError("result element type must equal the operand's");
  if (out.getRank() < in.getRank())
    return emitOpError("result rank ") << out.getRank()
                                       << " is below the operand rank "
                                       << in.getRank();
  int64_t off = out.getRank() - in.getRank();
  for (int64_t i = 0; i < out.getRank(); ++i) {
    int64_t o = out.getDimSize(i);
    int64_t d = i < off ? 1 : in.getDimSize(i - off);
    if (d == 1) {
      if (isDyn(o))
        return emitOpError("dimension ") << i << " stretches from 1 and must be static";
    } else if (d != o) {
      return emitOpError("dimension ") << i << " is " << dimStr(o)
                                       << " but the operand has " << dimStr(d);
    }
  }
  return success();
}

LogicalResult ArangeOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &inferred) {
  RankedTensorType t = rankedType(adaptor.getReference());
  if (!t)
    return emitOptionalError(loc, "expected a ranked tensor operand");
  int64_t axis = static_cast<int64_t>(adaptor.getAxis());
  if (failed(checkAxis(loc, axis, t.getRank(), "arange axis")))
    return failure();
  inferred.push_back(
      RankedTensorType::get({t.getDimSize(axis)}, IntegerType::get(ctx, 64)));
  return success();
}

//===----------------------------------------------------------------------===//
// Run-time shapes
//===----------------------------------------------------------------------===//

LogicalResult ShapeOfOp::inferReturnTypes(MLIRContext *ctx, std::optional<Location> loc,
                                          Adaptor adaptor, SmallVectorImpl<Type> &inferred) {
  RankedTensorType t = rankedType(adaptor.getInput());
  if (!t)
    return emitOptionalError(loc, "expected a ranked tensor operand");
  inferred.push_back(RankedTensorType::get({t.getRank()}, IntegerType::get(ctx, 64)));
  return success();
}

LogicalResult RangeOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                        Adaptor adaptor, SmallVectorImpl<Type> &inferred) {
  RankedTensorType s = rankedType(adaptor.getStart());
  RankedTensorType l = rankedType(adaptor.getLimit());
  RankedTensorType d = rankedType(adaptor.getDelta());
  if (!s || !l || !d)
    return emitOptionalError(loc, "expected ranked tensor operands");
  if (s.getElementType() != l.getElementType() || s.getElementType() != d.getElementType())
    return emitOptionalError(loc, "start, limit and delta must share an element type");
  inferred.push_back(RankedTensorType::get({kDynamic}, s.getElementType()));
  return success();
}

/// The static length of a 1-D shape operand.
static FailureOr<int64_t> shapeLength(std::optional<Location> loc, Value shape) {
  RankedTensorType t = rankedType(shape);
  if (!t || t.getRank() != 1 || t.isDynamicDim(0))
    return emitOptionalError(loc, "the shape operand must be 1-D with a static length");
  return t.getDimSize(0);
}

LogicalResult ExpandOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                         Adaptor adaptor, SmallVectorImpl<Type> &inferred) {
  RankedTensorType x = rankedType(adaptor.getInput());
  FailureOr<int64_t> n = shapeLength(loc, adaptor.getShape());
  if (!x || failed(n))
    return failure();
  int64_t rank = std::max(x.getRank(), *n), off = rank - x.getRank();
  SmallVector<int64_t> shape(rank, kDynamic);
  for (int64_t i = off; i < rank; ++i) {
    int64_t d = x.getDimSize(i - off);
    if (!isDyn(d) && d > 1)
      shape[i] = d; // the target must be 1 or d there
  }
  inferred.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

LogicalResult FillOp::verify() {
  FailureOr<int64_t> n = shapeLength(getLoc(), getShape());
  if (failed(n))
    return failure();
  if (getType().getRank() != *n)
    return emitOpError("result rank ") << getType().getRank()
                                       << " differs from the shape's length " << *n;
  if (getValue().getType() != getType().getElementType())
    return emitOpError("value type ") << getValue().getType()
                                      << " differs from the result element type";
  return success();
}

LogicalResult ReshapeToOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                            Adaptor adaptor, SmallVectorImpl<Type> &inferred) {
  RankedTensorType x = rankedType(adaptor.getInput());
  FailureOr<int64_t> n = shapeLength(loc, adaptor.getShape());
  if (!x || failed(n))
    return failure();
  inferred.push_back(
      RankedTensorType::get(SmallVector<int64_t>(*n, kDynamic), x.getElementType()));
  return success();
}

LogicalResult SliceToOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                          Adaptor adaptor, SmallVectorImpl<Type> &inferred) {
  RankedTensorType x = rankedType(adaptor.getInput());
  FailureOr<int64_t> ns = shapeLength(loc, adaptor.getStarts());
  FailureOr<int64_t> ne = shapeLength(loc, adaptor.getEnds());
  if (!x || failed(ns) || failed(ne))
    return failure();
  ArrayRef<int64_t> axes = adaptor.getAxes(), steps = adaptor.getSteps();
  if (*ns != static_cast<int64_t>(axes.size()) || *ne != *ns ||
      steps.size() != axes.size())
    return emitOptionalError(loc, "starts, ends, axes and steps need one entry per axis");
  SmallVector<int64_t> shape(x.getShape());
  llvm::SmallSet<int64_t, 4> seen;
  for (auto [a, st] : llvm::zip(axes, steps)) {
    if (failed(checkAxis(loc, a, x.getRank(), "slice axis")))
      return failure();
    if (!seen.insert(a).second)
      return emitOptionalError(loc, "slice axis ", a, " is repeated");
    if (st == 0)
      return emitOptionalError(loc, "slice step on axis ", a, " is zero");
    shape[a] = kDynamic;
  }
  inferred.push_back(RankedTensorType::get(shape, x.getElementType()));
  return success();
}

LogicalResult CumsumOp::verify() {
  return checkAxis(getLoc(), static_cast<int64_t>(getAxis()), getType().getRank(),
                   "cumsum axis");
}

LogicalResult GatherNdOp::inferReturnTypes(MLIRContext *, std::optional<Location> loc,
                                           Adaptor adaptor, SmallVectorImpl<Type> &inferred) {
  RankedTensorType d = rankedType(adaptor.getData());
  RankedTensorType i = rankedType(adaptor.getIndices());
  if (!d || !i)
    return emitOptionalError(loc, "expected ranked tensor operands");
  if (i.getRank() < 1 || i.isDynamicDim(i.getRank() - 1))
    return emitOptionalError(loc, "the last dimension of the indices must be static");
  int64_t k = i.getShape().back();
  if (k < 1 || k > d.getRank())
    return emitOptionalError(loc, "index tuples of length ", k,
                             " do not fit data of rank ", d.getRank());
  SmallVector<int64_t> shape(i.getShape().drop_back());
  llvm::append_range(shape, d.getShape().drop_front(k));
  inferred.push_back(RankedTensorType::get(shape, d.getElementType()));
  return success();
}

#define GET_OP_CLASSES
#include "ir/Kiln/KilnOps.cpp.inc"
