// libFuzzer: the input is the start of a safetensors file whose size is the
// input's size. Every header must be accepted or rejected with a message, and
// an accepted one must describe tensors that lie inside the file.
#include "runtime/format/Safetensors.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::format::SafetensorsIndex index;
  kiln::Status s = kiln::format::parseSafetensorsHeader(
      std::string_view(reinterpret_cast<const char *>(data), size), size, "fuzz", index);
  if (s.isOk())
    for (const auto &t : index.tensors)
      if (t.offset + t.size > size || t.offset < 8)
        std::abort(); // accepted a tensor outside the file
  return 0;
}
