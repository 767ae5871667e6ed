// libFuzzer: config.json parsing must return an error, never crash, and an
// accepted config must satisfy the invariants the importer relies on.
#include "frontend/hf/HFConfig.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::hf::ModelConfig c;
  kiln::Status s = kiln::hf::parseConfigText(
      std::string(reinterpret_cast<const char *>(data), size), "fuzz", c);
  if (s.isOk() && (!c.family || c.heads <= 0 || c.kvHeads <= 0 || c.heads % c.kvHeads ||
                   c.headDim <= 0 || c.layers <= 0))
    std::abort();
  return 0;
}
