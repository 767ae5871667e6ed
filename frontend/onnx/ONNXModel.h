//===- ONNXModel.h - reading .onnx files (no MLIR) --------------*- C++ -*-===//
//
// The file-level half of the ONNX frontend: protobuf parsing, the opset check,
// tensors (inline, typed or external data, with the location confined to the
// model's directory) and the topological order of the nodes. No MLIR, so the
// fuzzers (built with clang, without the compiler) can reach it.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_FRONTEND_ONNX_ONNXMODEL_H
#define KILN_FRONTEND_ONNX_ONNXMODEL_H

#include "runtime/kernels/host/Tensor.h"
#include "runtime/support/Status.h"

#include <onnx/onnx_pb.h>

#include <string>
#include <string_view>
#include <vector>

namespace kiln::onnx_frontend {

/// Parses a model (from a file or bytes) and checks it has a graph and a
/// default-domain opset in [13, 28], or an older one whose every operator
/// ONNX defines there as in opset 13 (the model is then marked opset 13).
/// `path` names the model in errors.
Status loadModel(const std::string &path, onnx::ModelProto &model);
Status parseModel(std::string_view bytes, const std::string &path, onnx::ModelProto &model);

/// The default-domain opset the model imports (0 when none).
int64_t defaultOpset(const onnx::ModelProto &model);
/// The host dtype of an ONNX TensorProto data type; false when unsupported.
bool dtypeOfOnnx(int onnxType, host::DType &dt);
/// A tensor's values: raw or typed fields, or external data beside the model.
/// With `readData` false, every check is made (sizes against the data
/// present, the external file and range) but nothing is allocated or read.
Status readTensor(const onnx::TensorProto &t, const std::string &modelPath, host::Tensor &out,
                  bool readData = true);
/// The nodes in an order where each reads only what is already defined;
/// errors name the node that reads something undefined or closes a cycle.
Status sortNodes(const onnx::GraphProto &graph, const std::string &path,
                 std::vector<const onnx::NodeProto *> &order);
/// "PATH: node 'NAME' (OP): message".
Status nodeError(const std::string &path, const onnx::NodeProto &n, const std::string &m);

} // namespace kiln::onnx_frontend

#endif
