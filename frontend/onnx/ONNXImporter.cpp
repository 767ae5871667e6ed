//===- ONNXImporter.cpp - ONNX model -> kiln dialect ----------------------===//
#include "frontend/onnx/ONNXImporter.h"

#include "ir/Kiln/KilnOps.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Verifier.h"

#include "frontend/onnx/ONNXGraph.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>

using namespace mlir;
using kiln::host::DType;
using kiln::host::Shape;
using kiln::host::Tensor;
namespace fs = std::filesystem;

namespace kiln::onnx_frontend {
namespace {

using namespace detail;

/// Initializers with more elements than this become kiln.weight (data left in
/// the file); smaller ones are constants in the IR.
constexpr int64_t kWeightThreshold = 64;
bool foldable(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (ShapedType::isDynamic(d) || __builtin_mul_overflow(n, d, &n) || n > kMaxFoldElements)
      return false;
  return true;
}

Type mlirType(Builder &b, DType dt) {
  switch (dt) {
  case DType::F32: return b.getF32Type();
  case DType::F16: return b.getF16Type();
  case DType::BF16: return b.getBF16Type();
  case DType::F64: return b.getF64Type();
  case DType::I64: return b.getI64Type();
  case DType::I32: return b.getI32Type();
  case DType::I8: return b.getI8Type();
  case DType::Bool: return b.getI1Type();
  }
  return {};
}

/// The host dtype of a float element type (f32 where it is none of them).
DType floatDType(Type t) {
  if (t.isF16())
    return DType::F16;
  if (t.isBF16())
    return DType::BF16;
  if (t.isF64())
    return DType::F64;
  return DType::F32;
}

DenseElementsAttr toAttr(const Tensor &t, RankedTensorType type) {
  Type elt = type.getElementType();
  if (auto ft = dyn_cast<FloatType>(elt)) {
    SmallVector<APFloat> vals;
    for (int64_t i = 0; i < t.numel(); ++i) {
      APFloat v(t.get(i));
      bool lost;
      v.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
      vals.push_back(v);
    }
    return DenseElementsAttr::get(type, vals);
  }
  unsigned bits = elt.getIntOrFloatBitWidth();
  SmallVector<APInt> vals;
  for (int64_t i = 0; i < t.numel(); ++i)
    vals.push_back(APInt(bits, static_cast<uint64_t>(t.getInt(i)),
                         /*isSigned=*/true, /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, vals);
}


} // namespace

namespace detail {

int64_t attrInt(const onnx::NodeProto &n, const char *name, int64_t dflt) {
  for (const auto &a : n.attribute())
    if (a.name() == name)
      return a.i();
  return dflt;
}

float attrFloat(const onnx::NodeProto &n, const char *name, float dflt) {
  for (const auto &a : n.attribute())
    if (a.name() == name)
      return a.f();
  return dflt;
}

const onnx::AttributeProto *attr(const onnx::NodeProto &n, const char *name) {
  for (const auto &a : n.attribute())
    if (a.name() == name)
      return &a;
  return nullptr;
}

int64_t rankOf(Value v) { return cast<RankedTensorType>(v.getType()).getRank(); }

int64_t normAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }


Value GraphImporter::constant(const Tensor &t, Location loc) {
  auto type = RankedTensorType::get(t.shape(), mlirType(b_, t.dtype()));
  Value v = kiln::ConstantOp::create(b_, loc, toAttr(t, type));
  constants_[v.getAsOpaquePointer()] = t;
  return v;
}

Status GraphImporter::addInitializer(const onnx::TensorProto &t) {
  Tensor value;
  DType dt;
  if (!dtypeOfOnnx(t.data_type(), dt))
    return Status::error(path_ + ": initializer '" + t.name() + "': data type " +
                         std::to_string(t.data_type()) + " is not supported");
  Shape shape(t.dims().begin(), t.dims().end());
  Location loc = NameLoc::get(b_.getStringAttr(t.name()));
  if (host::isFloat(dt) && (!foldable(shape) || host::numElements(shape) > kWeightThreshold)) {
    // A weight: only its name and type go into the IR, once its size has
    // been checked against the data the file holds.
    KILN_RETURN_IF_ERROR(readTensor(t, path_, value, /*readData=*/false));
    values_[t.name()] = kiln::WeightOp::create(
        b_, loc, RankedTensorType::get(shape, mlirType(b_, dt)), t.name());
    return Status::ok();
  }
  KILN_RETURN_IF_ERROR(readTensor(t, path_, value));
  values_[t.name()] = constant(value, loc);
  return Status::ok();
}

Status GraphImporter::knownInts(const onnx::NodeProto &n, int i, std::vector<int64_t> &out,
                                const char *what) {
  const Tensor *t = known(n, i);
  if (!t)
    return error(n, std::string(what) + " must be known when importing (a constant)");
  out.clear();
  for (int64_t j = 0; j < t->numel(); ++j)
    out.push_back(t->getInt(j));
  return Status::ok();
}

FailureOr<Value> GraphImporter::finish(Operation *op, const onnx::NodeProto &n,
                                       Status &status) {
  bool allKnown = op->getNumOperands() > 0;
  std::vector<Tensor> operands;
  for (Value v : op->getOperands()) {
    auto it = constants_.find(v.getAsOpaquePointer());
    allKnown &= it != constants_.end();
    if (it != constants_.end())
      operands.push_back(it->second);
  }
  if (failed(verify(op))) {
    status = error(n, "the node's operands do not fit the operation");
    return failure();
  }
  auto rt = dyn_cast<RankedTensorType>(op->getResult(0).getType());
  if (!allKnown || !rt || !foldable(rt.getShape()))
    return op->getResult(0);
  std::vector<Tensor> results;
  if (failed(interp::evaluateOp(op, operands, interp::randomWeights(0), results))) {
    status = error(n, "folding a node of known operands failed");
    return failure();
  }
  b_.setInsertionPoint(op);
  Value c = constant(results[0], op->getLoc());
  b_.setInsertionPointAfter(op);
  op->getResult(0).replaceAllUsesWith(c);
  op->erase();
  b_.setInsertionPointAfterValue(c);
  return c;
}

Status GraphImporter::convertNode(const onnx::NodeProto &n) {
  if (!n.domain().empty() && n.domain() != "ai.onnx")
    return error(n, "domain '" + n.domain() + "' is not supported (opset " +
                        std::to_string(opset_) + ")");
  Location loc = locOf(n);
  const std::string &op = n.op_type();
  Status status = Status::ok();
  Value result;
  auto done = [&](Operation *o) -> Status {
    if (!o)
      return status; // make() failed and said why
    FailureOr<Value> v = finish(o, n, status);
    if (failed(v))
      return status;
    result = *v;
    return Status::ok();
  };
  auto unary = [&](auto tag) {
    using OpT = decltype(tag);
    return done(OpT::create(b_, loc, input(n, 0)));
  };
  auto binary = [&](auto tag) -> Status {
    using OpT = decltype(tag);
    return done(make<OpT>(n, status, input(n, 0), input(n, 1)));
  };
  auto compare = [&](ComparePredicate p) {
    return done(make<kiln::CompareOp>(n, status, p, input(n, 0), input(n, 1)));
  };

  if (op == "Identity") {
    result = input(n, 0);
  } else if (op == "Constant") {
    Tensor t;
    if (const auto *a = attr(n, "value")) {
      KILN_RETURN_IF_ERROR(readTensor(a->t(), path_, t));
    } else if (const auto *a = attr(n, "value_float")) {
      t = Tensor(DType::F32, {});
      t.set(0, a->f());
    } else if (const auto *a = attr(n, "value_int")) {
      t = Tensor(DType::I64, {});
      t.set(0, static_cast<double>(a->i()));
    } else if (const auto *a = attr(n, "value_ints")) {
      t = Tensor(DType::I64, {a->ints_size()});
      for (int i = 0; i < a->ints_size(); ++i)
        t.as<int64_t>()[i] = a->ints(i);
    } else if (const auto *a = attr(n, "value_floats")) {
      t = Tensor(DType::F32, {a->floats_size()});
      for (int i = 0; i < a->floats_size(); ++i)
        t.set(i, a->floats(i));
    } else {
      return error(n, "Constant without a supported value attribute");
    }
    result = constant(t, loc);
  } else if (op == "Add") { KILN_RETURN_IF_ERROR(binary(kiln::AddOp()));
  } else if (op == "Sub") { KILN_RETURN_IF_ERROR(binary(kiln::SubOp()));
  } else if (op == "Mul") { KILN_RETURN_IF_ERROR(binary(kiln::MulOp()));
  } else if (op == "Div") { KILN_RETURN_IF_ERROR(binary(kiln::DivOp()));
  } else if (op == "And") { KILN_RETURN_IF_ERROR(binary(kiln::AndOp()));
  } else if (op == "Or") { KILN_RETURN_IF_ERROR(binary(kiln::OrOp()));
  } else if (op == "Pow") {
    // ONNX lets the exponent have another type: bring it to the base's.
    Value base = input(n, 0), ex = input(n, 1);
    auto bt = cast<RankedTensorType>(base.getType());
    auto et = cast<RankedTensorType>(ex.getType());
    if (isa<IntegerType>(bt.getElementType())) {
      // An integer base: the power in f64 (exact for integer results up to
      // 2^53), truncated back to the base's type, as ONNX's reference
      // computes np.power(a, b).astype(a.dtype).
      Type f64 = b_.getF64Type();
      Value wideBase, wideEx;
      KILN_RETURN_IF_ERROR(done(kiln::CastOp::create(b_, loc, bt.clone(f64), base)));
      wideBase = result;
      KILN_RETURN_IF_ERROR(done(kiln::CastOp::create(b_, loc, et.clone(f64), ex)));
      wideEx = result;
      KILN_RETURN_IF_ERROR(done(make<kiln::PowOp>(n, status, wideBase, wideEx)));
      auto rt = cast<RankedTensorType>(result.getType());
      KILN_RETURN_IF_ERROR(done(kiln::CastOp::create(b_, loc, rt.clone(bt.getElementType()), result)));
    } else if (et.getElementType() != bt.getElementType()) {
      auto c = kiln::CastOp::create(b_, loc, et.clone(bt.getElementType()), ex);
      KILN_RETURN_IF_ERROR(done(c));
      ex = result;
      KILN_RETURN_IF_ERROR(done(make<kiln::PowOp>(n, status, base, ex)));
    } else {
      KILN_RETURN_IF_ERROR(done(make<kiln::PowOp>(n, status, base, ex)));
    }
  } else if (op == "Max" || op == "Min") {
    result = input(n, 0);
    for (int i = 1; i < n.input_size(); ++i) {
      Operation *o = op == "Max"
                         ? make<kiln::MaxOp>(n, status, result, input(n, i))
                         : make<kiln::MinOp>(n, status, result, input(n, i));
      KILN_RETURN_IF_ERROR(done(o));
    }
  } else if (op == "Equal") { KILN_RETURN_IF_ERROR(compare(ComparePredicate::eq));
  } else if (op == "Less") { KILN_RETURN_IF_ERROR(compare(ComparePredicate::lt));
  } else if (op == "LessOrEqual") { KILN_RETURN_IF_ERROR(compare(ComparePredicate::le));
  } else if (op == "Greater") { KILN_RETURN_IF_ERROR(compare(ComparePredicate::gt));
  } else if (op == "GreaterOrEqual") { KILN_RETURN_IF_ERROR(compare(ComparePredicate::ge));
  } else if (op == "Not") { KILN_RETURN_IF_ERROR(unary(kiln::NotOp()));
  } else if (op == "IsNaN") {
    // x != x: true exactly for NaN (IEEE comparison on every device).
    if (!isa<FloatType>(cast<RankedTensorType>(input(n, 0).getType()).getElementType()))
      return error(n, "IsNaN of a non-float tensor");
    KILN_RETURN_IF_ERROR(
        done(make<kiln::CompareOp>(n, status, ComparePredicate::ne, input(n, 0), input(n, 0))));
  } else if (op == "Split") {
    return convertSplit(n);
  } else if (op == "Neg") { KILN_RETURN_IF_ERROR(unary(kiln::NegOp()));
  } else if (op == "Abs") { KILN_RETURN_IF_ERROR(unary(kiln::AbsOp()));
  } else if (op == "Exp") { KILN_RETURN_IF_ERROR(unary(kiln::ExpOp()));
  } else if (op == "Log") { KILN_RETURN_IF_ERROR(unary(kiln::LogOp()));
  } else if (op == "Sqrt") { KILN_RETURN_IF_ERROR(unary(kiln::SqrtOp()));
  } else if (op == "Reciprocal") { KILN_RETURN_IF_ERROR(unary(kiln::ReciprocalOp()));
  } else if (op == "Tanh") { KILN_RETURN_IF_ERROR(unary(kiln::TanhOp()));
  } else if (op == "Sigmoid") { KILN_RETURN_IF_ERROR(unary(kiln::SigmoidOp()));
  } else if (op == "Erf") { KILN_RETURN_IF_ERROR(unary(kiln::ErfOp()));
  } else if (op == "Sin") { KILN_RETURN_IF_ERROR(unary(kiln::SinOp()));
  } else if (op == "Cos") { KILN_RETURN_IF_ERROR(unary(kiln::CosOp()));
  } else if (op == "Relu") { KILN_RETURN_IF_ERROR(unary(kiln::ReluOp()));
  } else if (op == "Gelu") {
    bool tanh = attr(n, "approximate") && attr(n, "approximate")->s() == "tanh";
    KILN_RETURN_IF_ERROR(done(kiln::GeluOp::create(b_, loc, input(n, 0), tanh)));
  } else if (op == "Where") {
    KILN_RETURN_IF_ERROR(
        done(make<kiln::WhereOp>(n, status, input(n, 0), input(n, 1), input(n, 2))));
  } else if (op == "Cast") {
    DType dt;
    if (!dtypeOfOnnx(static_cast<int>(attrInt(n, "to", 0)), dt))
      return error(n, "cast to data type " + std::to_string(attrInt(n, "to", 0)) +
                          " is not supported");
    auto in = cast<RankedTensorType>(input(n, 0).getType());
    KILN_RETURN_IF_ERROR(
        done(kiln::CastOp::create(b_, loc, in.clone(mlirType(b_, dt)), input(n, 0))));
  } else if (op == "Softmax") {
    Value x = input(n, 0);
    int64_t axis = normAxis(attrInt(n, "axis", -1), rankOf(x));
    KILN_RETURN_IF_ERROR(done(kiln::SoftmaxOp::create(b_, loc, x, axis)));
  } else if (op == "MatMul") {
    KILN_RETURN_IF_ERROR(
        done(make<kiln::MatmulOp>(n, status, input(n, 0), input(n, 1), false)));
  } else if (op == "Gemm") {
    // alpha * A' B' + beta * C: A' = A^T with transA, B' = B^T with transB.
    Value a = input(n, 0);
    if (rankOf(a) != 2 || rankOf(input(n, 1)) != 2)
      return error(n, "Gemm takes 2-D A and B");
    if (attrInt(n, "transA", 0)) {
      KILN_RETURN_IF_ERROR(done(make<kiln::TransposeOp>(n, status, a, ArrayRef<int64_t>{1, 0})));
      a = result;
    }
    KILN_RETURN_IF_ERROR(done(make<kiln::MatmulOp>(n, status, a, input(n, 1), attrInt(n, "transB", 0) != 0)));
    auto scaled = [&](Value v, float k) -> FailureOr<Value> {
      if (k == 1.0f)
        return v;
      Tensor kt(floatDType(cast<RankedTensorType>(v.getType()).getElementType()), {});
      kt.set(0, k);
      if (!done(make<kiln::MulOp>(n, status, v, constant(kt, loc))))
        return failure();
      return result;
    };
    FailureOr<Value> ab = scaled(result, attrFloat(n, "alpha", 1.0f));
    if (failed(ab))
      return status;
    result = *ab;
    if (Value c = input(n, 2)) {
      FailureOr<Value> bc = scaled(c, attrFloat(n, "beta", 1.0f));
      if (failed(bc))
        return status;
      KILN_RETURN_IF_ERROR(done(make<kiln::AddOp>(n, status, *ab, *bc)));
    }
  } else if (op == "Gather") {
    Value data = input(n, 0);
    int64_t axis = normAxis(attrInt(n, "axis", 0), rankOf(data));
    KILN_RETURN_IF_ERROR(done(make<kiln::GatherOp>(n, status, data, input(n, 1), axis)));
  } else if (op == "Reshape") {
    std::vector<int64_t> shape;
    if (!known(n, 1)) { // computed at run time (a 0 there copies, as without allowzero)
      KILN_RETURN_IF_ERROR(done(make<kiln::ReshapeToOp>(n, status, input(n, 0), input(n, 1))));
    } else {
      KILN_RETURN_IF_ERROR(knownInts(n, 1, shape, "the target shape"));
      if (attrInt(n, "allowzero", 0) && llvm::is_contained(shape, 0))
        return error(n, "allowzero with a zero in the shape is not supported");
      KILN_RETURN_IF_ERROR(done(make<kiln::ReshapeOp>(n, status, input(n, 0), shape)));
    }
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    Value x = input(n, 0);
    auto xt = cast<RankedTensorType>(x.getType());
    std::vector<int64_t> axes;
    if (n.input_size() > 1)
      KILN_RETURN_IF_ERROR(knownInts(n, 1, axes, "axes"));
    else if (const auto *a = attr(n, "axes"))
      axes.assign(a->ints().begin(), a->ints().end());
    bool unsq = op == "Unsqueeze";
    int64_t outRank = unsq ? xt.getRank() + static_cast<int64_t>(axes.size())
                           : xt.getRank() - static_cast<int64_t>(axes.size());
    if (!unsq && axes.empty()) // squeeze every static 1
      for (int64_t d = 0; d < xt.getRank(); ++d)
        if (xt.getDimSize(d) == 1)
          axes.push_back(d), --outRank;
    std::set<int64_t> ax;
    for (int64_t a : axes)
      ax.insert(normAxis(a, unsq ? outRank : xt.getRank()));
    // Output dims: 1 where inserted; else the input's, as a literal when
    // static, 0 (copy) when it keeps its index, or the one -1.
    std::vector<int64_t> pattern;
    int64_t in = 0, inferred = 0;
    for (int64_t o = 0; o < outRank; ++o, ++in) {
      if (unsq && ax.count(o)) {
        pattern.push_back(1);
        --in;
        continue;
      }
      while (!unsq && ax.count(in))
        ++in;
      int64_t d = xt.getDimSize(in);
      if (!ShapedType::isDynamic(d))
        pattern.push_back(d);
      else if (in == o)
        pattern.push_back(0);
      else
        pattern.push_back(-1), ++inferred;
    }
    if (inferred > 1)
      return error(n, "moves more than one dynamic dimension (not supported yet)");
    KILN_RETURN_IF_ERROR(done(make<kiln::ReshapeOp>(n, status, x, pattern)));
  } else if (op == "RotaryEmbedding") {
    return convertRotary(n);
  } else if (op == "Attention") {
    return convertAttention(n);
  } else if (op == "Transpose") {
    Value x = input(n, 0);
    std::vector<int64_t> perm;
    if (const auto *a = attr(n, "perm"))
      perm.assign(a->ints().begin(), a->ints().end());
    else
      for (int64_t d = rankOf(x) - 1; d >= 0; --d)
        perm.push_back(d);
    KILN_RETURN_IF_ERROR(done(make<kiln::TransposeOp>(n, status, x, perm)));
  } else if (op == "Concat") {
    SmallVector<Value> ins;
    for (int i = 0; i < n.input_size(); ++i)
      ins.push_back(input(n, i));
    int64_t axis = normAxis(attrInt(n, "axis", 0), rankOf(ins.front()));
    KILN_RETURN_IF_ERROR(done(make<kiln::ConcatOp>(n, status, ins, axis)));
  } else if (op == "Slice") {
    Value x = input(n, 0);
    int64_t r = rankOf(x);
    std::vector<int64_t> st, en, axes, steps;
    int64_t count = cast<RankedTensorType>(input(n, 1).getType()).getNumElements();
    if (input(n, 3))
      KILN_RETURN_IF_ERROR(knownInts(n, 3, axes, "axes"));
    else
      for (int64_t i = 0; i < count; ++i)
        axes.push_back(i);
    if (input(n, 4))
      KILN_RETURN_IF_ERROR(knownInts(n, 4, steps, "steps"));
    else
      steps.assign(axes.size(), 1);
    for (int64_t &a : axes)
      a = normAxis(a, r);
    if (!known(n, 1) || !known(n, 2)) { // bounds computed at run time
      Value b = input(n, 1), e = input(n, 2);
      auto vec = [&](Value v) -> Value { // 0-D or 1-D int bounds as 1-D i64
        auto t = cast<RankedTensorType>(v.getType());
        if (!t.getElementType().isInteger(64))
          v = kiln::CastOp::create(b_, loc, t.clone(b_.getI64Type()), v);
        if (t.getRank() != 1)
          v = kiln::ReshapeOp::create(b_, loc, v, ArrayRef<int64_t>{-1});
        return v;
      };
      KILN_RETURN_IF_ERROR(
          done(make<kiln::SliceToOp>(n, status, x, vec(b), vec(e), axes, steps)));
      values_[n.output(0)] = result;
      return Status::ok();
    }
    KILN_RETURN_IF_ERROR(knownInts(n, 1, st, "starts"));
    KILN_RETURN_IF_ERROR(knownInts(n, 2, en, "ends"));
    if (en.size() != st.size() || axes.size() != st.size() || steps.size() != st.size())
      return error(n, "starts, ends, axes and steps differ in length");
    std::vector<int64_t> fs(r, 0), fe(r, std::numeric_limits<int64_t>::max()), fst(r, 1);
    for (size_t i = 0; i < st.size(); ++i) {
      int64_t a = axes[i]; // normalised above
      if (a < 0 || a >= r)
        return error(n, "slice axis " + std::to_string(axes[i]) + " out of range");
      fs[a] = st[i];
      fe[a] = en[i];
      fst[a] = steps[i];
    }
    KILN_RETURN_IF_ERROR(done(make<kiln::SliceOp>(n, status, x, fs, fe, fst)));
  } else if (op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin") {
    Value x = input(n, 0);
    std::vector<int64_t> axes;
    // Axes moved from an attribute to an input (ReduceSum at 13, the rest at 18).
    if (input(n, 1))
      KILN_RETURN_IF_ERROR(knownInts(n, 1, axes, "axes"));
    else if (const auto *a = attr(n, "axes"))
      axes.assign(a->ints().begin(), a->ints().end());
    if (axes.empty()) {
      if (attrInt(n, "noop_with_empty_axes", 0)) {
        result = x;
        values_[n.output(0)] = result;
        return Status::ok();
      }
      for (int64_t d = 0; d < rankOf(x); ++d)
        axes.push_back(d);
    }
    for (int64_t &a : axes)
      a = normAxis(a, rankOf(x));
    bool keep = attrInt(n, "keepdims", 1) != 0;
    Operation *o;
    if (op == "ReduceMean")
      o = make<kiln::ReduceMeanOp>(n, status, x, axes, keep);
    else if (op == "ReduceSum")
      o = make<kiln::ReduceSumOp>(n, status, x, axes, keep);
    else if (op == "ReduceMax")
      o = make<kiln::ReduceMaxOp>(n, status, x, axes, keep);
    else
      o = make<kiln::ReduceMinOp>(n, status, x, axes, keep);
    KILN_RETURN_IF_ERROR(done(o));
  } else if (op == "Expand" && !known(n, 1)) {
    KILN_RETURN_IF_ERROR(done(make<kiln::ExpandOp>(n, status, input(n, 0), input(n, 1))));
  } else if (op == "Expand") {
    Value x = input(n, 0);
    std::vector<int64_t> shape;
    KILN_RETURN_IF_ERROR(knownInts(n, 1, shape, "the target shape"));
    auto xt = cast<RankedTensorType>(x.getType());
    Shape target;
    if (Status s = host::broadcastShapes(Shape(xt.getShape().begin(), xt.getShape().end()),
                                         Shape(shape.begin(), shape.end()), target);
        !s)
      return error(n, s.message());
    KILN_RETURN_IF_ERROR(done(kiln::BroadcastToOp::create(
        b_, loc, RankedTensorType::get(target, xt.getElementType()), x)));
  } else if (op == "Range") {
    return convertRange(n);
  } else if (op == "Shape") {
    auto xt = cast<RankedTensorType>(input(n, 0).getType());
    int64_t r = xt.getRank();
    int64_t start = std::clamp<int64_t>(normAxis(attrInt(n, "start", 0), r), 0, r);
    int64_t end = std::clamp<int64_t>(normAxis(attrInt(n, "end", r), r), 0, r);
    if (!xt.hasStaticShape()) { // read at run time, then cut to [start, end)
      Value sh = kiln::ShapeOfOp::create(b_, loc, input(n, 0));
      if (start != 0 || end != r)
        sh = kiln::SliceOp::create(b_, loc, sh, ArrayRef<int64_t>{start},
                                   ArrayRef<int64_t>{end}, ArrayRef<int64_t>{1});
      values_[n.output(0)] = result = sh;
      return Status::ok();
    }
    Tensor t(DType::I64, {std::max<int64_t>(0, end - start)});
    for (int64_t i = start; i < end; ++i)
      t.as<int64_t>()[i - start] = xt.getDimSize(i);
    result = constant(t, loc);
  } else if (op == "ConstantOfShape") {
    std::vector<int64_t> shape;
    Tensor value(DType::F32, {1});
    if (const auto *a = attr(n, "value"))
      KILN_RETURN_IF_ERROR(readTensor(a->t(), path_, value));
    std::vector<int64_t> dims;
    bool small = known(n, 0) && knownInts(n, 0, dims, "the shape") &&
                 llvm::all_of(dims, [](int64_t d) { return d >= 0; }) && foldable(dims);
    if (!small) { // a run-time shape, or too large to fold
      Type elt = mlirType(b_, value.dtype());
      TypedAttr v = isa<FloatType>(elt)
                        ? TypedAttr(b_.getFloatAttr(elt, value.get(0)))
                        : TypedAttr(b_.getIntegerAttr(elt, value.getInt(0)));
      int64_t rank = cast<RankedTensorType>(input(n, 0).getType()).getDimSize(0);
      auto type = RankedTensorType::get(SmallVector<int64_t>(rank, kDyn), elt);
      KILN_RETURN_IF_ERROR(done(kiln::FillOp::create(b_, loc, type, input(n, 0), v)));
      values_[n.output(0)] = result;
      return Status::ok();
    }
    KILN_RETURN_IF_ERROR(knownInts(n, 0, shape, "the shape"));
    Tensor t(value.dtype(), Shape(shape.begin(), shape.end()));
    t.fill(value.get(0));
    result = constant(t, loc);
  } else if (op == "CumSum") {
    std::vector<int64_t> axis;
    KILN_RETURN_IF_ERROR(knownInts(n, 1, axis, "the axis"));
    Value x = input(n, 0);
    KILN_RETURN_IF_ERROR(done(kiln::CumsumOp::create(b_, loc, x, normAxis(axis.at(0), rankOf(x)),
                                                     attrInt(n, "exclusive", 0) != 0,
                                                     attrInt(n, "reverse", 0) != 0)));
  } else if (op == "GatherND") {
    if (attrInt(n, "batch_dims", 0) != 0)
      return error(n, "GatherND with batch_dims other than 0 is not supported");
    KILN_RETURN_IF_ERROR(done(make<kiln::GatherNdOp>(n, status, input(n, 0), input(n, 1))));
  } else if (op == "LayerNormalization" || op == "RMSNormalization") {
    return convertNorm(n);
  } else {
    return error(n, "operator " + op + " (domain '" + n.domain() + "', opset " +
                        std::to_string(opset_) + ") is not supported");
  }
  if (n.output_size() != 1)
    return error(n, "nodes with " + std::to_string(n.output_size()) +
                        " outputs are not supported");
  values_[n.output(0)] = result;
  return Status::ok();
}

OwningOpRef<ModuleOp> GraphImporter::run(Status &status) {
  MLIRContext *ctx = b_.getContext();
  Location loc = FileLineColLoc::get(ctx, path_, 0, 0);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b_.setInsertionPointToEnd(module->getBody());

  std::set<std::string> inits;
  for (const auto &t : graph_.initializer())
    inits.insert(t.name());
  SmallVector<Type> argTypes, resultTypes;
  std::vector<const onnx::ValueInfoProto *> args;
  auto typeOf = [&](const onnx::ValueInfoProto &v, Type &t) -> Status {
    const auto &tt = v.type().tensor_type();
    DType dt;
    if (!v.type().has_tensor_type() || !dtypeOfOnnx(tt.elem_type(), dt))
      return Status::error(path_ + ": graph value '" + v.name() +
                           "' is not a tensor of a supported type");
    if (!tt.has_shape())
      return Status::error(path_ + ": graph value '" + v.name() + "' has no shape");
    SmallVector<int64_t> shape;
    for (const auto &d : tt.shape().dim())
      shape.push_back(d.has_dim_value() ? d.dim_value() : kDyn);
    t = RankedTensorType::get(shape, mlirType(b_, dt));
    return Status::ok();
  };
  for (const auto &in : graph_.input()) {
    if (inits.count(in.name()))
      continue; // an initializer listed as an input (older exporters)
    Type t;
    if (status = typeOf(in, t); !status)
      return nullptr;
    argTypes.push_back(t);
    args.push_back(&in);
  }
  auto fn = func::FuncOp::create(b_, loc, "forward", FunctionType::get(ctx, argTypes, {}));
  b_.setInsertionPointToEnd(fn.addEntryBlock());
  for (auto [i, in] : llvm::enumerate(args)) {
    fn.setArgAttr(i, "kiln.name", b_.getStringAttr(in->name()));
    values_[in->name()] = fn.getArgument(i);
  }
  for (const auto &t : graph_.initializer())
    if (status = addInitializer(t); !status)
      return nullptr;
  std::vector<const onnx::NodeProto *> order;
  if (status = sortNodes(graph_, path_, order); !status)
    return nullptr;
  for (const onnx::NodeProto *n : order)
    if (status = convertNode(*n); !status)
      return nullptr;
  SmallVector<Value> outs;
  for (const auto &o : graph_.output()) {
    auto it = values_.find(o.name());
    if (it == values_.end()) {
      status = Status::error(path_ + ": graph output '" + o.name() + "' is never computed");
      return nullptr;
    }
    outs.push_back(it->second);
    resultTypes.push_back(it->second.getType());
  }
  func::ReturnOp::create(b_, loc, outs);
  fn.setType(FunctionType::get(ctx, argTypes, resultTypes));
  if (failed(verify(*module))) {
    status = Status::error(path_ + ": the imported graph does not verify (a kiln importer bug)");
    return nullptr;
  }
  return module;
}

} // namespace detail

const std::vector<std::string> &supportedOps() {
  static const std::vector<std::string> ops = {
      "Abs", "Add", "And", "Attention", "Cast", "Concat", "Constant", "ConstantOfShape", "Cos",
      "CumSum", "Div", "Equal", "Erf", "Exp", "Expand", "Gather", "GatherND", "Gelu", "Gemm", "Greater",
      "GreaterOrEqual", "Identity", "IsNaN", "LayerNormalization", "Less", "LessOrEqual", "Log",
      "MatMul", "Max", "Min", "Mul", "Neg", "Not", "Or", "Pow", "Range", "Reciprocal",
      "RMSNormalization", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "RotaryEmbedding",
      "Shape",
      "Sigmoid", "Sin", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh",
      "Transpose", "Unsqueeze", "Where"};
  return ops;
}

OwningOpRef<ModuleOp> importONNXModel(MLIRContext &context, const std::string &path,
                                      Status &status) {
  context.getOrLoadDialect<kiln::KilnDialect>();
  context.getOrLoadDialect<func::FuncDialect>();
  onnx::ModelProto model;
  if (status = loadModel(path, model); !status)
    return nullptr;
  return detail::GraphImporter(context, model, path).run(status);
}

FailureOr<interp::WeightProvider> onnxWeights(const std::string &path, Status &status) {
  onnx::ModelProto model;
  if (status = loadModel(path, model); !status)
    return failure();
  auto weights = std::make_shared<std::map<std::string, Tensor>>();
  for (const auto &t : model.graph().initializer()) {
    Tensor value;
    if (status = readTensor(t, path, value); !status)
      return failure();
    (*weights)[t.name()] = std::move(value);
  }
  return interp::WeightProvider([weights, path](llvm::StringRef name, Tensor &out) {
    auto it = weights->find(name.str());
    if (it == weights->end())
      return Status::error(path + ": no initializer '" + name.str() + "'");
    return host::cast(it->second, out);
  });
}

} // namespace kiln::onnx_frontend
