//===- Interpreter.cpp - evaluate kiln functions on host tensors ----------===//
#include "interp/Interpreter.h"

#include "interp/Npy.h"
#include "ir/Kiln/KilnOps.h"
#include "runtime/format/Safetensors.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/TypeSwitch.h"

#include <unordered_map>

using namespace mlir;
using kiln::host::DType;
using kiln::host::Shape;
using kiln::host::Status;
using kiln::host::Tensor;

namespace kiln::interp {

FailureOr<DType> dtypeOf(Type t) {
  if (t.isF32()) return DType::F32;
  if (t.isF16()) return DType::F16;
  if (t.isBF16()) return DType::BF16;
  if (t.isF64()) return DType::F64;
  if (t.isInteger(64)) return DType::I64;
  if (t.isInteger(32)) return DType::I32;
  if (t.isInteger(8)) return DType::I8;
  if (t.isInteger(1)) return DType::Bool;
  return failure();
}

FailureOr<DType> tensorDType(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  if (!rt)
    return failure();
  return dtypeOf(rt.getElementType());
}

static uint64_t fnv1a(llvm::StringRef s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s)
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

WeightProvider randomWeights(uint64_t seed, double scale) {
  return [seed, scale](llvm::StringRef name, Tensor &out) {
    host::Rng rng(seed ^ fnv1a(name));
    for (int64_t i = 0; i < out.numel(); ++i)
      out.set(i, (2 * rng.uniform() - 1) * scale);
    return Status::ok();
  };
}

WeightProvider npyWeights(std::string dir) {
  return [dir](llvm::StringRef name, Tensor &out) {
    Tensor t;
    KILN_RETURN_IF_ERROR(readNpy(dir + "/" + name.str() + ".npy", t));
    if (t.shape() != out.shape())
      return Status::error("weight '" + name.str() + "' has shape " +
                           host::shapeToString(t.shape()) + " in " + dir +
                           ", the IR declares " + host::shapeToString(out.shape()));
    return host::cast(t, out);
  };
}

FailureOr<WeightProvider> safetensorsWeights(const std::string &dir, std::string &error) {
  auto index = std::make_shared<format::SafetensorsIndex>();
  if (Status s = format::readSafetensorsDir(dir, *index); !s) {
    error = s.message();
    return failure();
  }
  return WeightProvider([index](llvm::StringRef name, Tensor &out) {
    const format::SafetensorsTensor *t = index->find(name.str());
    if (!t)
      return Status::error("no tensor '" + name.str() + "' in " + index->files.front());
    DType dt = t->dtype == "BF16"  ? DType::BF16
               : t->dtype == "F16" ? DType::F16
               : t->dtype == "F32" ? DType::F32
               : t->dtype == "I64" ? DType::I64
                                   : out.dtype();
    Tensor raw(dt, Shape(t->shape.begin(), t->shape.end()));
    if (raw.byteSize() != t->size || raw.shape() != out.shape())
      return Status::error("tensor '" + name.str() + "' is " + t->dtype +
                           host::shapeToString(raw.shape()) + ", the IR declares " +
                           host::dtypeName(out.dtype()) + host::shapeToString(out.shape()));
    KILN_RETURN_IF_ERROR(format::readTensorData(*t, raw.data()));
    return host::cast(raw, out);
  });
}

std::vector<Tensor> randomInputs(func::FuncOp func, uint64_t seed,
                                 int64_t dynamicSize, int64_t intRange) {
  host::Rng rng(seed);
  std::vector<Tensor> inputs;
  for (Type t : func.getArgumentTypes()) {
    FailureOr<DType> dt = tensorDType(t);
    if (failed(dt)) {
      inputs.emplace_back();
      continue;
    }
    auto rt = cast<RankedTensorType>(t);
    Shape shape;
    for (int64_t d : rt.getShape())
      shape.push_back(ShapedType::isDynamic(d) ? dynamicSize : d);
    Tensor x(*dt, shape);
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (host::isFloat(*dt))
        x.set(i, 2 * rng.uniform() - 1);
      else if (*dt == DType::Bool)
        x.set(i, rng.next() & 1);
      else
        x.set(i, static_cast<double>(rng.next() % static_cast<uint64_t>(intRange)));
    }
    inputs.push_back(std::move(x));
  }
  return inputs;
}

namespace {

/// Evaluates the ops of one block in order, keeping the values it computed.
class Evaluator {
public:
  explicit Evaluator(const WeightProvider &weights) : weights_(weights) {}
  void setKvLayerBase(int64_t base) { kvLayerBase_ = base; }

  LogicalResult runBlock(Block &block, llvm::ArrayRef<Tensor> args,
                         std::vector<Tensor> &results);
  /// Evaluates `op` alone on the given operand values.
  LogicalResult runOp(Operation *op, const std::vector<Tensor> &operands,
                      std::vector<Tensor> &results) {
    for (auto [v, t] : llvm::zip(op->getOperands(), operands))
      values_[v] = t;
    if (failed(evalOp(op)))
      return failure();
    results.clear();
    for (Value r : op->getResults())
      results.push_back(get(r));
    return success();
  }

private:
  const Tensor &get(Value v) { return values_.find(v)->second; }
  LogicalResult fail(Operation *op, const Status &s) {
    return op->emitError("evaluation failed: ") << s.message();
  }
  /// Allocates the result of `op` with its element type and a concrete shape,
  /// checked against the static dimensions of its type.
  FailureOr<Tensor *> result(Operation *op, const Shape &shape, unsigned i = 0);
  LogicalResult evalOp(Operation *op);

  LogicalResult evalUnary(Operation *op, host::UnaryOp kind);
  LogicalResult evalBinary(Operation *op, host::BinaryOp kind);
  LogicalResult evalReduce(Operation *op, host::ReduceOp kind,
                           llvm::ArrayRef<int64_t> axes, bool keepDims);
  LogicalResult evalConstant(ConstantOp op);
  LogicalResult evalFused(FusedOp op);

  struct ValueHash {
    size_t operator()(Value v) const { return hash_value(v); }
  };
  const WeightProvider &weights_;
  int64_t kvLayerBase_ = 0;
  // std::unordered_map: references to computed tensors stay valid while later
  // results are inserted.
  std::unordered_map<Value, Tensor, ValueHash> values_;
};

FailureOr<Tensor *> Evaluator::result(Operation *op, const Shape &shape, unsigned i) {
  auto type = cast<RankedTensorType>(op->getResult(i).getType());
  FailureOr<DType> dt = dtypeOf(type.getElementType());
  if (failed(dt))
    return op->emitError("interpreter does not support element type ")
           << type.getElementType();
  if (static_cast<int64_t>(shape.size()) != type.getRank())
    return op->emitError("evaluated result has rank ") << shape.size()
                                                      << ", the IR says " << type;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (!type.isDynamicDim(d) && type.getDimSize(d) != shape[d])
      return op->emitError("evaluated result shape ")
             << host::shapeToString(shape) << " contradicts " << type;
  // Sizes computed from data can be anything: refuse what cannot be held.
  int64_t elements = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(elements, d, &elements) || elements > (int64_t(1) << 34))
      return op->emitError("evaluated result shape ")
             << host::shapeToString(shape) << " is too large to hold";
  Tensor &t = values_[op->getResult(i)];
  t = Tensor(*dt, shape);
  return &t;
}

LogicalResult Evaluator::runBlock(Block &block, llvm::ArrayRef<Tensor> args,
                                  std::vector<Tensor> &results) {
  for (auto [arg, t] : llvm::zip(block.getArguments(), args))
    values_[arg] = t;
  for (Operation &op : block) {
    if (op.hasTrait<OpTrait::IsTerminator>()) {
      results.clear();
      for (Value v : op.getOperands())
        results.push_back(get(v));
      return success();
    }
    if (failed(evalOp(&op)))
      return failure();
  }
  // A block without a terminator yields nothing.
  results.clear();
  return success();
}

LogicalResult Evaluator::evalUnary(Operation *op, host::UnaryOp kind) {
  const Tensor &x = get(op->getOperand(0));
  FailureOr<Tensor *> out = result(op, x.shape());
  if (failed(out))
    return failure();
  Status s = host::unary(kind, x, **out);
  return s ? success() : fail(op, s);
}

LogicalResult Evaluator::evalBinary(Operation *op, host::BinaryOp kind) {
  const Tensor &a = get(op->getOperand(0)), &b = get(op->getOperand(1));
  Shape shape;
  Status s = host::broadcastShapes(a.shape(), b.shape(), shape);
  if (!s)
    return fail(op, s);
  FailureOr<Tensor *> out = result(op, shape);
  if (failed(out))
    return failure();
  s = host::binary(kind, a, b, **out);
  return s ? success() : fail(op, s);
}

LogicalResult Evaluator::evalReduce(Operation *op, host::ReduceOp kind,
                                    llvm::ArrayRef<int64_t> axes, bool keepDims) {
  const Tensor &x = get(op->getOperand(0));
  Shape shape;
  for (int64_t d = 0; d < x.rank(); ++d) {
    bool reduced = llvm::is_contained(axes, d);
    if (!reduced || keepDims)
      shape.push_back(reduced ? 1 : x.dim(d));
  }
  FailureOr<Tensor *> out = result(op, shape);
  if (failed(out))
    return failure();
  Status s = host::reduce(kind, x, std::vector<int64_t>(axes.begin(), axes.end()),
                          keepDims, **out);
  return s ? success() : fail(op, s);
}

LogicalResult Evaluator::evalConstant(ConstantOp op) {
  auto attr = dyn_cast<DenseElementsAttr>(op.getValue());
  if (!attr)
    return op.emitError("interpreter supports dense constants only");
  Shape shape(attr.getType().getShape().begin(), attr.getType().getShape().end());
  FailureOr<Tensor *> out = result(op, shape);
  if (failed(out))
    return failure();
  int64_t i = 0;
  if (isa<FloatType>(attr.getElementType())) {
    for (APFloat v : attr.getValues<APFloat>())
      (*out)->set(i++, v.convertToDouble());
  } else {
    bool isBool = attr.getElementType().isInteger(1);
    for (APInt v : attr.getValues<APInt>())
      (*out)->setInt(i++, isBool ? static_cast<int64_t>(v.getBoolValue()) : v.getSExtValue());
  }
  return success();
}

LogicalResult Evaluator::evalFused(FusedOp op) {
  std::vector<Tensor> args, results;
  for (Value v : op.getInputs())
    args.push_back(get(v));
  Evaluator inner(weights_);
  inner.setKvLayerBase(kvLayerBase_);
  if (failed(inner.runBlock(op.getBody().front(), args, results)))
    return failure();
  for (auto [i, t] : llvm::enumerate(results))
    values_[op->getResult(i)] = std::move(t);
  return success();
}

/// The masks and scaling of attention and paged_attention.
template <typename OpT> static host::AttentionParams attentionParams(OpT a) {
  host::AttentionParams p;
  p.causal = a.getCausal();
  if (auto s = a.getScale())
    p.scale = s->convertToDouble();
  if (auto w = a.getSlidingWindow())
    p.slidingWindow = static_cast<int64_t>(*w);
  if (auto c = a.getSoftcap())
    p.softcap = c->convertToDouble();
  return p;
}

static host::RopeParams ropeParams(RopeOp op) {
  host::RopeParams p;
  p.style = op.getStyle() == RopeStyle::Neox ? host::RopeStyle::Neox
                                             : host::RopeStyle::GptJ;
  p.theta = op.getTheta().convertToDouble();
  p.rotaryDim = static_cast<int64_t>(op.getRotaryDim().value_or(0));
  switch (op.getScaling()) {
  case RopeScaling::None: p.scaling = host::RopeScaling::None; break;
  case RopeScaling::Linear: p.scaling = host::RopeScaling::Linear; break;
  case RopeScaling::Llama3: p.scaling = host::RopeScaling::Llama3; break;
  case RopeScaling::Yarn: p.scaling = host::RopeScaling::Yarn; break;
  }
  p.factor = op.getFactor().convertToDouble();
  p.lowFreqFactor = op.getLowFreqFactor().convertToDouble();
  p.highFreqFactor = op.getHighFreqFactor().convertToDouble();
  p.originalMaxPositions = static_cast<int64_t>(op.getOriginalMaxPositions());
  p.betaFast = op.getBetaFast().convertToDouble();
  p.betaSlow = op.getBetaSlow().convertToDouble();
  if (std::optional<APFloat> f = op.getAttentionFactor())
    p.attentionFactor = f->convertToDouble();
  if (std::optional<ArrayRef<double>> inv = op.getInvFreq())
    p.invFreq.assign(inv->begin(), inv->end());
  return p;
}

static host::CompareOp compareKind(ComparePredicate p) {
  switch (p) {
  case ComparePredicate::eq: return host::CompareOp::Eq;
  case ComparePredicate::ne: return host::CompareOp::Ne;
  case ComparePredicate::lt: return host::CompareOp::Lt;
  case ComparePredicate::le: return host::CompareOp::Le;
  case ComparePredicate::gt: return host::CompareOp::Gt;
  case ComparePredicate::ge: return host::CompareOp::Ge;
  }
  return host::CompareOp::Eq;
}

LogicalResult Evaluator::evalOp(Operation *op) {
  using U = host::UnaryOp;
  using B = host::BinaryOp;
  using R = host::ReduceOp;
  // Each case allocates its result with a concrete shape, then calls the
  // kernel; `run` turns a kernel Status into a located diagnostic.
  auto run = [&](Status s) { return s ? success() : fail(op, s); };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](WeightOp w) -> LogicalResult {
        Shape shape(w.getType().getShape().begin(), w.getType().getShape().end());
        FailureOr<Tensor *> out = result(op, shape);
        if (failed(out))
          return failure();
        std::optional<ArrayRef<int64_t>> rows;
        if (w.getSourceRows())
          rows = *w.getSourceRows();
        Status s = loadWeight(weights_, w.getName(), w.getSources(), rows, w.getTransposed(),
                              **out);
        return s ? success() : w.emitError("cannot load weight: ") << s.message();
      })
      .Case([&](ConstantOp c) { return evalConstant(c); })
      .Case([&](NegOp) { return evalUnary(op, U::Neg); })
      .Case([&](AbsOp) { return evalUnary(op, U::Abs); })
      .Case([&](ExpOp) { return evalUnary(op, U::Exp); })
      .Case([&](LogOp) { return evalUnary(op, U::Log); })
      .Case([&](SqrtOp) { return evalUnary(op, U::Sqrt); })
      .Case([&](RsqrtOp) { return evalUnary(op, U::Rsqrt); })
      .Case([&](ReciprocalOp) { return evalUnary(op, U::Reciprocal); })
      .Case([&](TanhOp) { return evalUnary(op, U::Tanh); })
      .Case([&](SigmoidOp) { return evalUnary(op, U::Sigmoid); })
      .Case([&](SiluOp) { return evalUnary(op, U::Silu); })
      .Case([&](ErfOp) { return evalUnary(op, U::Erf); })
      .Case([&](SinOp) { return evalUnary(op, U::Sin); })
      .Case([&](CosOp) { return evalUnary(op, U::Cos); })
      .Case([&](ReluOp) { return evalUnary(op, U::Relu); })
      .Case([&](NotOp) { return evalUnary(op, U::Not); })
      .Case([&](GeluOp g) {
        return evalUnary(op, g.getTanhApproximation() ? U::GeluTanh : U::Gelu);
      })
      .Case([&](AddOp) { return evalBinary(op, B::Add); })
      .Case([&](SubOp) { return evalBinary(op, B::Sub); })
      .Case([&](MulOp) { return evalBinary(op, B::Mul); })
      .Case([&](DivOp) { return evalBinary(op, B::Div); })
      .Case([&](PowOp) { return evalBinary(op, B::Pow); })
      .Case([&](MaxOp) { return evalBinary(op, B::Max); })
      .Case([&](MinOp) { return evalBinary(op, B::Min); })
      .Case([&](AndOp) { return evalBinary(op, B::And); })
      .Case([&](OrOp) { return evalBinary(op, B::Or); })
      .Case([&](CompareOp c) -> LogicalResult {
        const Tensor &a = get(c.getLhs()), &b = get(c.getRhs());
        Shape shape;
        if (Status s = host::broadcastShapes(a.shape(), b.shape(), shape); !s)
          return fail(op, s);
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure()
                           : run(host::compare(compareKind(c.getPredicate()), a, b, **out));
      })
      .Case([&](WhereOp w) -> LogicalResult {
        const Tensor &c = get(w.getCondition()), &a = get(w.getOnTrue()),
                     &b = get(w.getOnFalse());
        Shape s1, s2;
        Status s = host::broadcastShapes(c.shape(), a.shape(), s1);
        if (s)
          s = host::broadcastShapes(s1, b.shape(), s2);
        if (!s)
          return fail(op, s);
        FailureOr<Tensor *> out = result(op, s2);
        return failed(out) ? failure() : run(host::where(c, a, b, **out));
      })
      .Case([&](CastOp c) -> LogicalResult {
        const Tensor &x = get(c.getInput());
        FailureOr<Tensor *> out = result(op, x.shape());
        return failed(out) ? failure() : run(host::cast(x, **out));
      })
      .Case([&](MatmulOp m) -> LogicalResult {
        const Tensor &a = get(m.getLhs()), &b = get(m.getRhs());
        // Concrete shape: batch broadcast, then M and N as in numpy.
        Shape as = a.shape(), bs = b.shape();
        bool tb = m.getTransposeB();
        Shape ab(as.begin(), as.end() - std::min<size_t>(as.size(), 2));
        Shape bb(bs.begin(), bs.end() - std::min<size_t>(bs.size(), 2));
        Shape shape;
        if (Status s = host::broadcastShapes(ab, bb, shape); !s)
          return fail(op, s);
        if (as.size() > 1)
          shape.push_back(as[as.size() - 2]);
        if (bs.size() > 1)
          shape.push_back(tb ? bs[bs.size() - 2] : bs.back());
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::matmul(a, b, tb, **out));
      })
      .Case([&](ReduceSumOp r) {
        return evalReduce(op, R::Sum, r.getAxes(), r.getKeepDims());
      })
      .Case([&](ReduceMeanOp r) {
        return evalReduce(op, R::Mean, r.getAxes(), r.getKeepDims());
      })
      .Case([&](ReduceMaxOp r) {
        return evalReduce(op, R::Max, r.getAxes(), r.getKeepDims());
      })
      .Case([&](ReduceMinOp r) {
        return evalReduce(op, R::Min, r.getAxes(), r.getKeepDims());
      })
      .Case([&](ArgmaxOp a) -> LogicalResult {
        const Tensor &x = get(a.getInput());
        int64_t axis = static_cast<int64_t>(a.getAxis());
        Shape shape = x.shape();
        if (a.getKeepDims())
          shape[axis] = 1;
        else
          shape.erase(shape.begin() + axis);
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure()
                           : run(host::argmax(x, axis, a.getKeepDims(), **out));
      })
      .Case([&](SoftmaxOp s) -> LogicalResult {
        const Tensor &x = get(s.getInput());
        FailureOr<Tensor *> out = result(op, x.shape());
        return failed(out) ? failure()
                           : run(host::softmax(x, static_cast<int64_t>(s.getAxis()), **out));
      })
      .Case([&](RmsNormOp n) -> LogicalResult {
        const Tensor &x = get(n.getInput());
        FailureOr<Tensor *> out = result(op, x.shape());
        return failed(out) ? failure()
                           : run(host::rmsNorm(x, get(n.getWeight()),
                                               n.getEpsilon().convertToFloat(),
                                               n.getWeightOffset().convertToFloat(), **out));
      })
      .Case([&](LayerNormOp n) -> LogicalResult {
        const Tensor &x = get(n.getInput());
        FailureOr<Tensor *> out = result(op, x.shape());
        const Tensor *bias = n.getBias() ? &get(n.getBias()) : nullptr;
        return failed(out) ? failure()
                           : run(host::layerNorm(x, get(n.getWeight()), bias,
                                                 n.getEpsilon().convertToFloat(), **out));
      })
      .Case([&](GatherOp g) -> LogicalResult {
        const Tensor &d = get(g.getData()), &i = get(g.getIndices());
        int64_t axis = static_cast<int64_t>(g.getAxis());
        Shape shape(d.shape().begin(), d.shape().begin() + axis);
        shape.insert(shape.end(), i.shape().begin(), i.shape().end());
        shape.insert(shape.end(), d.shape().begin() + axis + 1, d.shape().end());
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::gather(d, i, axis, **out));
      })
      .Case([&](ReshapeOp r) -> LogicalResult {
        const Tensor &x = get(r.getInput());
        std::string error;
        FailureOr<SmallVector<int64_t>> dims = reshapeResult(x.shape(), r.getShape(), error);
        if (failed(dims))
          return op->emitError(error);
        Shape shape(dims->begin(), dims->end());
        if (host::numElements(shape) != x.numel())
          return op->emitError("cannot reshape ")
                 << host::shapeToString(x.shape()) << " with pattern "
                 << host::shapeToString(Shape(r.getShape().begin(), r.getShape().end()));
        FailureOr<Tensor *> out = result(op, shape);
        if (failed(out))
          return failure();
        std::memcpy((*out)->data(), x.data(), x.byteSize());
        return success();
      })
      .Case([&](TransposeOp t) -> LogicalResult {
        const Tensor &x = get(t.getInput());
        std::vector<int64_t> perm(t.getPermutation().begin(), t.getPermutation().end());
        Shape shape;
        for (int64_t p : perm)
          shape.push_back(x.dim(p));
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::transpose(x, perm, **out));
      })
      .Case([&](ConcatOp c) -> LogicalResult {
        std::vector<const Tensor *> xs;
        for (Value v : c.getInputs())
          xs.push_back(&get(v));
        int64_t axis = static_cast<int64_t>(c.getAxis());
        Shape shape = xs.front()->shape();
        shape[axis] = 0;
        for (const Tensor *x : xs)
          shape[axis] += x->dim(axis);
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::concat(xs, axis, **out));
      })
      .Case([&](SliceOp s) -> LogicalResult {
        const Tensor &x = get(s.getInput());
        std::vector<int64_t> starts, steps(s.getSteps().begin(), s.getSteps().end());
        Shape shape;
        for (int64_t d = 0; d < x.rank(); ++d) {
          SliceRange r = sliceRange(x.dim(d), s.getStarts()[d], s.getEnds()[d], steps[d]);
          starts.push_back(r.start);
          shape.push_back(r.length);
        }
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::slice(x, starts, steps, **out));
      })
      .Case([&](BroadcastToOp b) -> LogicalResult {
        const Tensor &x = get(b.getInput());
        RankedTensorType rt = b.getType();
        Shape shape;
        int64_t off = rt.getRank() - x.rank();
        for (int64_t d = 0; d < rt.getRank(); ++d)
          shape.push_back(rt.isDynamicDim(d) ? x.dim(d - off) : rt.getDimSize(d));
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::broadcastTo(x, **out));
      })
      .Case([&](ArangeOp a) -> LogicalResult {
        int64_t n = get(a.getReference()).dim(static_cast<int64_t>(a.getAxis()));
        FailureOr<Tensor *> out = result(op, {n});
        if (failed(out))
          return failure();
        for (int64_t i = 0; i < n; ++i)
          (*out)->setInt(i, static_cast<int64_t>(a.getStart()) + i);
        return success();
      })
      .Case([&](ShapeOfOp so) -> LogicalResult {
        const Tensor &x = get(so.getInput());
        FailureOr<Tensor *> out = result(op, {x.rank()});
        if (failed(out))
          return failure();
        for (int64_t d = 0; d < x.rank(); ++d)
          (*out)->set(d, static_cast<double>(x.dim(d)));
        return success();
      })
      .Case([&](RangeOp r) -> LogicalResult {
        double start = get(r.getStart()).get(0), limit = get(r.getLimit()).get(0),
               delta = get(r.getDelta()).get(0);
        if (delta == 0)
          return op->emitError("range with a delta of 0");
        int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
        FailureOr<Tensor *> out = result(op, {n});
        if (failed(out))
          return failure();
        for (int64_t i = 0; i < n; ++i)
          (*out)->set(i, start + static_cast<double>(i) * delta);
        return success();
      })
      .Case([&](ExpandOp e) -> LogicalResult {
        const Tensor &x = get(e.getInput()), &sv = get(e.getShape());
        Shape target, shape;
        for (int64_t i = 0; i < sv.numel(); ++i)
          target.push_back(sv.getInt(i));
        if (Status s = host::broadcastShapes(x.shape(), target, shape); !s)
          return fail(op, s);
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::broadcastTo(x, **out));
      })
      .Case([&](FillOp f) -> LogicalResult {
        const Tensor &sv = get(f.getShape());
        Shape shape;
        for (int64_t i = 0; i < sv.numel(); ++i) {
          shape.push_back(sv.getInt(i));
          if (shape.back() < 0)
            return op->emitError("fill with a negative dimension");
        }
        FailureOr<Tensor *> out = result(op, shape);
        if (failed(out))
          return failure();
        double v = 0;
        if (auto fa = dyn_cast<FloatAttr>(f.getValue()))
          v = fa.getValueAsDouble();
        else if (auto ia = dyn_cast<IntegerAttr>(f.getValue()))
          v = static_cast<double>(ia.getValue().getSExtValue());
        (*out)->fill(v);
        return success();
      })
      .Case([&](ReshapeToOp r) -> LogicalResult {
        const Tensor &x = get(r.getInput()), &sv = get(r.getShape());
        SmallVector<int64_t> pattern;
        for (int64_t i = 0; i < sv.numel(); ++i)
          pattern.push_back(sv.getInt(i));
        std::string error;
        FailureOr<SmallVector<int64_t>> dims = reshapeResult(x.shape(), pattern, error);
        if (failed(dims))
          return op->emitError(error);
        FailureOr<Tensor *> out = result(op, Shape(dims->begin(), dims->end()));
        if (failed(out))
          return failure();
        std::memcpy((*out)->data(), x.data(), x.byteSize());
        return success();
      })
      .Case([&](SliceToOp s) -> LogicalResult {
        const Tensor &x = get(s.getInput()), &b = get(s.getStarts()), &e = get(s.getEnds());
        std::vector<int64_t> starts(x.rank(), 0), steps(x.rank(), 1);
        Shape shape = x.shape();
        for (auto [i, a] : llvm::enumerate(s.getAxes())) {
          int64_t step = s.getSteps()[i];
          SliceRange r = sliceRange(x.dim(a), b.getInt(i), e.getInt(i), step);
          starts[a] = r.start;
          steps[a] = step;
          shape[a] = r.length;
        }
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::slice(x, starts, steps, **out));
      })
      .Case([&](CumsumOp c) -> LogicalResult {
        const Tensor &x = get(c.getInput());
        FailureOr<Tensor *> out = result(op, x.shape());
        return failed(out) ? failure()
                           : run(host::cumsum(x, static_cast<int64_t>(c.getAxis()),
                                              c.getExclusive(), c.getReverse(), **out));
      })
      .Case([&](GatherNdOp g) -> LogicalResult {
        const Tensor &d = get(g.getData()), &i = get(g.getIndices());
        int64_t k = i.shape().back();
        Shape shape(i.shape().begin(), i.shape().end() - 1);
        shape.insert(shape.end(), d.shape().begin() + k, d.shape().end());
        FailureOr<Tensor *> out = result(op, shape);
        return failed(out) ? failure() : run(host::gatherNd(d, i, **out));
      })
      .Case([&](RopeOp r) -> LogicalResult {
        const Tensor &x = get(r.getInput());
        FailureOr<Tensor *> out = result(op, x.shape());
        return failed(out) ? failure()
                           : run(host::rope(x, get(r.getPositions()), ropeParams(r), **out));
      })
      .Case([&](AttentionOp a) -> LogicalResult {
        const Tensor &q = get(a.getQuery()), &k = get(a.getKey()), &v = get(a.getValue());
        FailureOr<Tensor *> out = result(op, {q.dim(0), q.dim(1), q.dim(2), v.dim(3)});
        return failed(out) ? failure()
                           : run(host::attention(q, k, v, attentionParams(a), **out));
      })
      .Case([&](KvAppendOp a) -> LogicalResult {
        const Tensor &cache = get(a.getCache());
        FailureOr<Tensor *> out = result(op, cache.shape());
        return failed(out) ? failure()
                           : run(host::kvAppend(cache, get(a.getKey()), get(a.getValue()),
                                                get(a.getBlockTables()), get(a.getPositions()),
                                                kvLayerBase_ + static_cast<int64_t>(a.getLayer()), **out));
      })
      .Case([&](PagedAttentionOp a) -> LogicalResult {
        const Tensor &q = get(a.getQuery());
        FailureOr<Tensor *> out = result(op, q.shape());
        return failed(out) ? failure()
                           : run(host::pagedAttention(
                                 q, get(a.getCache()), get(a.getBlockTables()),
                                 get(a.getContextLens()), get(a.getPositions()),
                                 kvLayerBase_ + static_cast<int64_t>(a.getLayer()), attentionParams(a), **out));
      })
      .Case([&](SwigluOp s) -> LogicalResult {
        const Tensor &g = get(s.getGate());
        FailureOr<Tensor *> out = result(op, g.shape());
        return failed(out) ? failure() : run(host::swiglu(g, get(s.getUp()), **out));
      })
      .Case([&](GegluOp s) -> LogicalResult {
        const Tensor &g = get(s.getGate());
        FailureOr<Tensor *> out = result(op, g.shape());
        return failed(out) ? failure()
                           : run(host::geglu(g, get(s.getUp()), s.getTanhApproximation(), **out));
      })
      .Case([&](FusedOp f) { return evalFused(f); })
      .Default([&](Operation *other) -> LogicalResult {
        return other->emitError("the interpreter does not support '")
               << other->getName() << "'";
      });
}

} // namespace

Status loadWeight(const WeightProvider &weights, StringRef name,
                  std::optional<ArrayAttr> sources, std::optional<ArrayRef<int64_t>> sourceRows,
                  bool transposed, Tensor &out) {
  // One stored tensor of `rows` result rows, transposed when stored so.
  auto load = [&](StringRef n, int64_t rows, Tensor &dst) -> Status {
    Shape part = out.shape();
    part[0] = rows;
    dst = Tensor(out.dtype(), part);
    if (!transposed)
      return weights(n, dst);
    Tensor stored(out.dtype(), {part[1], part[0]});
    KILN_RETURN_IF_ERROR(weights(n, stored));
    return host::transpose(stored, {1, 0}, dst);
  };
  if (out.rank() < 1)
    return weights(name, out);
  if (sources) {
    if (!sourceRows || sourceRows->size() != sources->size())
      return Status::error("weight " + name.str() + " has sources without their row counts");
    std::vector<Tensor> parts(sources->size());
    std::vector<const Tensor *> ptrs;
    for (auto [i, n, rows] : llvm::enumerate(*sources, *sourceRows)) {
      KILN_RETURN_IF_ERROR(load(cast<StringAttr>(n).getValue(), rows, parts[i]));
      ptrs.push_back(&parts[i]);
    }
    return host::concat(ptrs, 0, out);
  }
  Tensor t;
  KILN_RETURN_IF_ERROR(load(name, out.dim(0), t));
  out = std::move(t);
  return Status::ok();
}

LogicalResult evaluateOp(Operation *op, const std::vector<Tensor> &operands,
                         const WeightProvider &weights, std::vector<Tensor> &results,
                         int64_t kvLayer) {
  if (operands.size() != op->getNumOperands())
    return op->emitError("expected ") << op->getNumOperands() << " operand values";
  Evaluator ev(weights);
  ev.setKvLayerBase(kvLayer);
  return ev.runOp(op, operands, results);
}

LogicalResult evaluate(func::FuncOp func, const std::vector<Tensor> &inputs,
                       const WeightProvider &weights, std::vector<Tensor> &results) {
  if (func.isExternal())
    return func.emitError("cannot evaluate a function without a body");
  if (inputs.size() != func.getNumArguments())
    return func.emitError("expected ") << func.getNumArguments() << " inputs, got "
                                       << inputs.size();
  for (auto [i, t] : llvm::enumerate(func.getArgumentTypes())) {
    FailureOr<DType> dt = tensorDType(t);
    if (failed(dt))
      return func.emitError("argument ") << i << " has unsupported type " << t;
    auto rt = cast<RankedTensorType>(t);
    const Tensor &in = inputs[i];
    bool ok = in.dtype() == *dt && in.rank() == rt.getRank();
    for (int64_t d = 0; ok && d < rt.getRank(); ++d)
      ok = rt.isDynamicDim(d) || rt.getDimSize(d) == in.dim(d);
    if (!ok)
      return func.emitError("input ") << i << " is " << host::dtypeName(in.dtype())
                                      << host::shapeToString(in.shape())
                                      << ", the function takes " << t;
  }
  Evaluator ev(weights);
  return ev.runBlock(func.getBody().front(), inputs, results);
}

} // namespace kiln::interp
