// libFuzzer: the input is an ONNX file whose initializers the runtime would
// bind. Every input must be accepted or rejected with a message, and an
// accepted one must describe tensors whose bytes lie inside the file (or
// are held inline, with the size their shape needs).
#include "runtime/format/OnnxWeights.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::format::SafetensorsIndex index;
  const std::string path = "/nonexistent/fuzz.onnx";
  kiln::Status s = kiln::format::parseOnnxInitializers(
      std::string_view(reinterpret_cast<const char *>(data), size), path, index);
  if (s.isOk())
    for (const auto &t : index.tensors) {
      if (!t.inlineData.empty() ? t.inlineData.size() != t.size
                                : t.file == path && (t.offset > size || t.size > size - t.offset))
        std::abort(); // a tensor outside the file
    }
  return 0;
}
