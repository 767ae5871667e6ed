//===- FuzzManifest.cpp - libFuzzer target for the manifest reader --------===//
//
// The input is the manifest section's text; the engine around it has the
// sections a compiled engine has (source, cubin, PTX), so the fuzzer spends
// its time in the JSON and schema checks rather than on checksums.
//
//===----------------------------------------------------------------------===//
#include "runtime/format/Engine.h"
#include "runtime/format/Manifest.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kiln::format::EngineWriter w("fuzz");
  if (!w.add("manifest", std::string(reinterpret_cast<const char *>(data), size)).isOk() ||
      !w.add("cuda_source", std::string(200000, 'x')).isOk() ||
      !w.add("cubin.sm_90a", std::string(400000, 'c')).isOk() ||
      !w.add("ptx.sm_90a", std::string(400000, 'p')).isOk())
    return 0;
  kiln::format::EngineFile e;
  if (!kiln::format::parseEngine(w.serialize(), "fuzz", e).isOk())
    __builtin_trap();
  kiln::format::EngineManifest m;
  if (kiln::format::readManifest(e, "fuzz", m).isOk()) {
    std::string target;
    (void)kiln::format::selectTarget(m, "fuzz", "sm_90", target);
    for (const auto &k : m.kernels)
      (void)k.grid.eval(8, 512, 1000, 256);
  }
  return 0;
}
