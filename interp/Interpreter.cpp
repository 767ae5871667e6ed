//===- Interpreter.cpp - evaluate kiln functions on host tensors ----------===//
#include "interp/Interpreter.h"

#include "interp/HostOpConversion.h"
#include "interp/Npy.h"
#include "ir/Kiln/KilnOps.h"
#include "runtime/format/Safetensors.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/IR/BuiltinAttributes.h"

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
               : t->dtype == "I32" ? DType::I32
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

LogicalResult Evaluator::evalOp(Operation *op) {
  if (auto w = dyn_cast<WeightOp>(op)) {
    Shape shape(w.getType().getShape().begin(), w.getType().getShape().end());
    FailureOr<Tensor *> out = result(op, shape);
    if (failed(out))
      return failure();
    std::optional<ArrayRef<int64_t>> rows;
    if (w.getSourceRows())
      rows = *w.getSourceRows();
    Status s = loadWeight(withDequantWeights(weights_, op), w.getName(), w.getSources(), rows, w.getTransposed(),
                          **out);
    return s ? success() : w.emitError("cannot load weight: ") << s.message();
  }
  if (auto f = dyn_cast<FusedOp>(op))
    return evalFused(f);
  // Every other op: as the host kernels define it (runtime/kernels/host/HostOp),
  // the same code the runtime's host device runs.
  host::HostOp h;
  if (Status s = toHostOp(op, h); !s)
    return op->emitError("the interpreter does not support '") << op->getName() << "': " << s.message();
  std::vector<const Tensor *> operands;
  for (Value v : op->getOperands())
    operands.push_back(&get(v));
  std::vector<Tensor> results;
  if (Status s = host::evalHostOp(h, operands, results, kvLayerBase_); !s)
    return fail(op, s);
  for (auto [i, t] : llvm::enumerate(results))
    values_[op->getResult(i)] = std::move(t);
  return success();
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

WeightProvider withDequantWeights(const WeightProvider &weights, Operation *op) {
  auto module = op->getParentOfType<ModuleOp>();
  DictionaryAttr table = module ? module->getAttrOfType<DictionaryAttr>(kDequantWeightsAttr) : nullptr;
  if (!table)
    return weights;
  return [weights, table](StringRef name, Tensor &out) -> Status {
    auto d = table.getAs<DictionaryAttr>(name);
    if (!d)
      return weights(name, out);
    auto str = [&](const char *key) {
      auto a = d.getAs<StringAttr>(key);
      return a ? a.getValue() : StringRef();
    };
    auto integer = [&](const char *key) {
      auto a = d.getAs<IntegerAttr>(key);
      return a ? a.getInt() : int64_t(0);
    };
    if (auto rtn = d.getAs<StringAttr>("packing"); rtn && rtn.getValue() == "rtn") { // kiln-quantize-weights
      Tensor src(DType::F32, out.shape());
      KILN_RETURN_IF_ERROR(weights(str("source"), src));
      return host::quantizeRoundTrip(src, integer("bits"), integer("group_size"), "weight " + name.str(), out,
                                     static_cast<int>(integer("k_axis")));
    }
    auto packing = d.getAs<QuantPackingAttr>("packing");
    host::DequantParams p;
    p.bits = integer("bits");
    p.groupSize = integer("group_size");
    if (!packing || !host::parseQuantPacking(stringifyQuantPacking(packing.getValue()).str(), p.packing) ||
        (p.bits != 4 && p.bits != 8) || out.rank() != 2 || p.groupSize == 0)
      return Status::error("weight " + name.str() + ": its kiln.dequant_weights entry is malformed");
    const int64_t K = out.dim(0), N = out.dim(1), per = 32 / p.bits;
    const int64_t G = p.groupSize == -1 ? 1 : K / p.groupSize;
    const bool awq = p.packing == host::QuantPacking::Awq;
    Tensor q(DType::I32, awq ? Shape{K, N / per} : Shape{K / per, N}), s(DType::F32, {G, N});
    Tensor z(DType::I32, {G, N / per}), g(DType::I32, {K});
    KILN_RETURN_IF_ERROR(weights(str("qweight"), q));
    KILN_RETURN_IF_ERROR(weights(str("scales"), s));
    if (!str("zeros").empty())
      KILN_RETURN_IF_ERROR(weights(str("zeros"), z));
    if (!str("g_idx").empty())
      KILN_RETURN_IF_ERROR(weights(str("g_idx"), g));
    return host::dequant(q, s, str("zeros").empty() ? nullptr : &z, str("g_idx").empty() ? nullptr : &g, p, out)
        .withContext("weight " + name.str());
  };
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
