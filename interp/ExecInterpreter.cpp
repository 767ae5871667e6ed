//===- ExecInterpreter.cpp - run lowered kiln_exec functions on the host --===//
#include "interp/ExecInterpreter.h"

#include "ir/Exec/ExecOps.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/BuiltinOps.h"

#include <cstring>
#include <map>

using namespace mlir;
using kiln::host::DType;
using kiln::host::Shape;
using kiln::host::Tensor;
namespace ex = kiln::exec;

namespace kiln::interp {

bool isExecFunction(func::FuncOp func) {
  return func.getNumArguments() > 0 && isa<ex::BufferType>(func.getArgumentTypes()[0]);
}

namespace {

/// Where a buffer's bytes are: a window of an arena, or a tensor of its own
/// (arguments, weights, unplanned allocs), seen with a shape.
struct Buffer {
  std::vector<uint8_t> *bytes = nullptr; // arena or own storage
  size_t offset = 0, size = 0;
  Shape shape;
  DType dtype = DType::F32;
};

class ExecEvaluator {
public:
  ExecEvaluator(const WeightProvider &w) : weights_(w) {}
  LogicalResult run(func::FuncOp f, const std::vector<Tensor> &inputs,
                    std::vector<Tensor> &results);

private:
  Buffer &own(Value v, const Tensor &t) {
    storage_.push_back(std::make_unique<std::vector<uint8_t>>(
        static_cast<const uint8_t *>(t.data()), static_cast<const uint8_t *>(t.data()) + t.byteSize()));
    Buffer &b = buffers_[v];
    b = {storage_.back().get(), 0, t.byteSize(), t.shape(), t.dtype()};
    return b;
  }
  Tensor read(const Buffer &b) {
    Tensor t(b.dtype, b.shape);
    if (t.byteSize())
      std::memcpy(t.data(), b.bytes->data() + b.offset, t.byteSize());
    return t;
  }
  LogicalResult write(Operation *op, Buffer &b, const Tensor &t) {
    if (t.byteSize() > b.size)
      return op->emitError("writes ") << t.byteSize() << " bytes into a buffer of " << b.size;
    if (t.byteSize())
      std::memcpy(b.bytes->data() + b.offset, t.data(), t.byteSize());
    b.shape = t.shape();
    return success();
  }
  std::vector<uint8_t> &arena(ModuleOp m, StringRef name) {
    auto it = arenas_.find(name.str());
    if (it != arenas_.end())
      return it->second;
    auto a = m.lookupSymbol<ex::ArenaOp>(name);
    // Filled with a pattern so that a read of never-written bytes shows.
    return arenas_[name.str()] =
               std::vector<uint8_t>(a ? static_cast<size_t>(a.getSize()) : 0, 0x7f);
  }

  const WeightProvider &weights_;
  llvm::DenseMap<Value, Buffer> buffers_;
  std::vector<std::unique_ptr<std::vector<uint8_t>>> storage_;
  std::map<std::string, std::vector<uint8_t>> arenas_;
};

LogicalResult ExecEvaluator::run(func::FuncOp f, const std::vector<Tensor> &inputs,
                                 std::vector<Tensor> &results) {
  auto module = f->getParentOfType<ModuleOp>();
  if (inputs.size() != f.getNumArguments())
    return f.emitError("expected ") << f.getNumArguments() << " inputs, got " << inputs.size();
  for (auto [arg, t] : llvm::zip(f.getArguments(), inputs))
    own(arg, t);
  for (Operation &op : f.getBody().front()) {
    if (auto w = dyn_cast<ex::WeightSlotOp>(op)) {
      RankedTensorType view = w.getType().getView();
      FailureOr<DType> dt = tensorDType(view);
      if (failed(dt))
        return w.emitError("unsupported weight type");
      Tensor t(*dt, Shape(view.getShape().begin(), view.getShape().end()));
      bool transposed = w.getLayout() == ex::WeightLayout::Transpose ||
                        w.getLayout() == ex::WeightLayout::TransposeConcatRows;
      std::optional<ArrayRef<int64_t>> rows;
      if (w.getSourceRows())
        rows = *w.getSourceRows();
      if (Status s = loadWeight(withDequantWeights(weights_, w), w.getName(), w.getSources(), rows, transposed, t);
          !s)
        return w.emitError("cannot load weight: ") << s.message();
      own(w, t);
    } else if (auto a = dyn_cast<ex::AllocOp>(op)) {
      RankedTensorType view = a.getType().getView();
      Tensor t(*tensorDType(view), Shape(view.getShape().begin(), view.getShape().end()));
      own(a, t);
    } else if (auto s = dyn_cast<ex::BufferSliceOp>(op)) {
      RankedTensorType view = s.getType().getView();
      std::vector<uint8_t> &bytes = arena(module, s.getArena());
      size_t off = static_cast<size_t>(s.getOffset()), size = static_cast<size_t>(s.getSize());
      if (off + size > bytes.size())
        return s.emitError("slice runs past its arena");
      buffers_[s] = {&bytes, off, size, Shape(view.getShape().begin(), view.getShape().end()),
                     *tensorDType(view)};
    } else if (auto v = dyn_cast<ex::ViewOp>(op)) {
      Buffer b = buffers_.lookup(v.getSource());
      RankedTensorType view = v.getType().getView();
      RankedTensorType from = v.getSource().getType().getView();
      Shape shape(view.getShape().begin(), view.getShape().end());
      // A reshape that keeps the batch and token dimensions keeps their
      // actual extents in a smaller step than planned.
      for (int64_t i = 0; i < 2 && i < view.getRank() && i < from.getRank() &&
                          i < static_cast<int64_t>(b.shape.size());
           ++i)
        if (view.getDimSize(i) == from.getDimSize(i))
          shape[i] = b.shape[i];
      int64_t known = 1, dyn = -1;
      for (auto [i, d] : llvm::enumerate(shape)) {
        if (ShapedType::isDynamic(d))
          dyn = static_cast<int64_t>(i);
        else
          known *= d;
      }
      if (dyn >= 0)
        shape[dyn] = host::numElements(b.shape) / std::max<int64_t>(1, known);
      b.shape = shape;
      buffers_[v] = b;
    } else if (auto l = dyn_cast<ex::LaunchOp>(op)) {
      auto kernel = module.lookupSymbol<ex::KernelOp>(l.getKernel());
      FusedOp body = kernel && !kernel.getBody().empty()
                         ? dyn_cast<FusedOp>(&kernel.getBody().front().front())
                         : FusedOp();
      if (!body)
        return l.emitError("kernel '") << l.getKernel() << "' has no kiln.fused body";
      int64_t outs = static_cast<int64_t>(l.getNumOutputs());
      auto operands = l.getBuffers();
      int64_t ins = static_cast<int64_t>(operands.size()) - outs;
      std::vector<Tensor> args, out;
      for (int64_t i = 0; i < ins; ++i)
        args.push_back(read(buffers_[operands[i]]));
      if (failed(evaluateOp(body, args, weights_, out, static_cast<int64_t>(l.getKvLayer()))))
        return failure();
      if (static_cast<int64_t>(out.size()) != outs)
        return l.emitError("kernel gives ") << out.size() << " results for " << outs << " outputs";
      for (int64_t i = 0; i < outs; ++i)
        if (failed(write(l, buffers_[operands[ins + i]], out[i])))
          return failure();
    } else if (auto r = dyn_cast<func::ReturnOp>(op)) {
      results.clear();
      for (Value v : r.getOperands())
        results.push_back(read(buffers_[v]));
    } else if (!isa<ex::KvPagePoolOp>(op)) {
      return op.emitError("the exec interpreter does not run this op");
    }
  }
  return success();
}

} // namespace

LogicalResult evaluateExec(func::FuncOp func, const std::vector<Tensor> &inputs,
                           const WeightProvider &weights, std::vector<Tensor> &results) {
  ExecEvaluator ev(weights);
  return ev.run(func, inputs, results);
}

} // namespace kiln::interp
