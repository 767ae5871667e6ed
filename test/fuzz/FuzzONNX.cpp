// libFuzzer: an .onnx file's bytes. Parsing, the graph's order and every
// initializer must end in success or an error message, never a crash.
#include "frontend/onnx/ONNXModel.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace kiln::onnx_frontend;
  onnx::ModelProto model;
  std::string path = "/nonexistent/fuzz.onnx"; // external data never resolves
  if (!parseModel(std::string_view(reinterpret_cast<const char *>(data), size), path, model))
    return 0;
  std::vector<const onnx::NodeProto *> order;
  (void)sortNodes(model.graph(), path, order);
  for (const auto &t : model.graph().initializer()) {
    kiln::host::Tensor value;
    (void)readTensor(t, path, value);
  }
  return 0;
}
