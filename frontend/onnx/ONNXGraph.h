//===- ONNXGraph.h - the ONNX graph importer's internals --------*- C++ -*-===//
//
// GraphImporter (ONNXImporter.cpp: the graph, initializers, one-op nodes;
// ONNXCompositeOps.cpp: nodes that expand to several kiln ops) and the
// attribute helpers both use. Internal to frontend/onnx.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_ONNX_ONNXGRAPH_H
#define KILN_FRONTEND_ONNX_ONNXGRAPH_H

#include "frontend/onnx/ONNXModel.h"
#include "ir/Kiln/KilnOps.h"
#include "runtime/kernels/host/HostKernels.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"

#include <map>
#include <string>
#include <vector>

namespace kiln::onnx_frontend::detail {

using namespace mlir;
using kiln::host::DType;
using kiln::host::Shape;
using kiln::host::Tensor;

constexpr int64_t kDyn = ShapedType::kDynamic;
/// Folding never materialises more elements than this: a known but huge
/// shape stays a run-time op rather than becoming a huge constant.
constexpr int64_t kMaxFoldElements = int64_t(1) << 20;

int64_t attrInt(const onnx::NodeProto &n, const char *name, int64_t dflt);
float attrFloat(const onnx::NodeProto &n, const char *name, float dflt);
const onnx::AttributeProto *attr(const onnx::NodeProto &n, const char *name);
int64_t rankOf(Value v);
int64_t normAxis(int64_t axis, int64_t rank);

class GraphImporter {
public:
  GraphImporter(MLIRContext &ctx, const onnx::ModelProto &model, std::string path)
      : model_(model), graph_(model.graph()), path_(std::move(path)), b_(&ctx),
        opset_(defaultOpset(model)) {}

  OwningOpRef<ModuleOp> run(Status &status);

private:
  Status error(const onnx::NodeProto &n, const std::string &m) const {
    return nodeError(path_, n, m);
  }
  Location locOf(const onnx::NodeProto &n) {
    return NameLoc::get(b_.getStringAttr(n.name().empty() ? n.op_type() : n.name()),
                        FileLineColLoc::get(b_.getContext(), path_, 0, 0));
  }
  Status addInitializer(const onnx::TensorProto &t);
  Value constant(const Tensor &t, Location loc);
  /// The value of ONNX tensor `name`; null for an omitted optional input.
  Value input(const onnx::NodeProto &n, int i) {
    if (i >= n.input_size() || n.input(i).empty())
      return {};
    return values_.at(n.input(i));
  }
  /// The known value of input `i`, or null when it is only known at run time.
  const Tensor *known(const onnx::NodeProto &n, int i) {
    Value v = input(n, i);
    auto it = v ? constants_.find(v.getAsOpaquePointer()) : constants_.end();
    return it == constants_.end() ? nullptr : &it->second;
  }
  Status knownInts(const onnx::NodeProto &n, int i, std::vector<int64_t> &out,
                   const char *what);
  Status convertNode(const onnx::NodeProto &n);
  // Operators that expand to several kiln ops (ONNXCompositeOps.cpp); each
  // sets its node's outputs.
  Status convertSplit(const onnx::NodeProto &n);
  Status convertRotary(const onnx::NodeProto &n);
  Status convertRange(const onnx::NodeProto &n);
  Status convertNorm(const onnx::NodeProto &n);
  Status convertAttention(const onnx::NodeProto &n);
  /// Finishes `o` (null: make() failed, `status` says why) into `out`.
  Status emit(const onnx::NodeProto &n, Operation *o, Status &status, Value &out) {
    if (!o)
      return status;
    FailureOr<Value> v = finish(o, n, status);
    if (failed(v))
      return status;
    out = *v;
    return Status::ok();
  }
  /// `v` as the node's one output.
  Status single(const onnx::NodeProto &n, Value v) {
    if (n.output_size() != 1)
      return error(n, "nodes with " + std::to_string(n.output_size()) + " outputs are not supported");
    values_[n.output(0)] = v;
    return Status::ok();
  }
  /// Builds an op whose result type is inferred, reporting a failed inference
  /// (operands that do not fit) as an error on node `n` instead of aborting.
  template <typename OpT, typename... Args>
  Operation *make(const onnx::NodeProto &n, Status &status, Args &&...args) {
    OperationState state(locOf(n), OpT::getOperationName());
    OpT::build(b_, state, TypeRange{}, std::forward<Args>(args)...);
    SmallVector<Type> types;
    std::string diag;
    {
      ScopedDiagnosticHandler capture(b_.getContext(), [&](Diagnostic &d) {
        diag += (diag.empty() ? "" : "; ") + d.str();
        return success();
      });
      if (failed(OpT::inferReturnTypes(b_.getContext(), state.location, state.operands,
                                       state.attributes.getDictionary(b_.getContext()),
                                       state.getRawProperties(), state.regions, types))) {
        status = error(n, diag.empty() ? "the operands do not fit the operation" : diag);
        return nullptr;
      }
    }
    state.addTypes(types);
    return b_.create(state);
  }
  /// Folds `op` when every operand is known; returns its result either way.
  FailureOr<Value> finish(Operation *op, const onnx::NodeProto &n, Status &status);

  const onnx::ModelProto &model_;
  const onnx::GraphProto &graph_;
  std::string path_;
  OpBuilder b_;
  int64_t opset_;
  std::map<std::string, Value> values_;
  std::map<const void *, Tensor> constants_; // keyed by Value's opaque pointer
};

} // namespace kiln::onnx_frontend::detail

#endif
