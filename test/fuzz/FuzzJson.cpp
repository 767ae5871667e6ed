// libFuzzer: the JSON parser must return an error, never crash or hang.
#include "runtime/format/Json.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::format::JsonValue v;
  (void)kiln::format::parseJson(
      std::string_view(reinterpret_cast<const char *>(data), size), v);
  return 0;
}
