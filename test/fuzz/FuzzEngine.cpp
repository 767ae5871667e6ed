//===- FuzzEngine.cpp - libFuzzer target for the engine reader ------------===//
#include "runtime/format/Engine.h"
#include "runtime/format/Manifest.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::format::EngineFile e;
  if (kiln::format::parseEngine(std::vector<uint8_t>(data, data + size), "fuzz", e).isOk())
  {
    for (const auto &s : e.sections)
      (void)e.data(s).size();
    kiln::format::EngineManifest m;
    (void)kiln::format::readManifest(e, "fuzz", m);
  }
  return 0;
}
