//===- Compile.h - kiln compile ---------------------------------*- C++ -*-===//
#ifndef KILN_TOOLS_KILN_COMPILE_H
#define KILN_TOOLS_KILN_COMPILE_H

#include "tools/kiln/Plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::tool {

struct CompileOptions {
  BuildOptions build;  // the model, the GPU description tiles are chosen for, the limits
  std::string output;  // the engine (or, for --emit other than engine, the text; "-" stdout)
  std::vector<std::string> targets; // empty: the GPU description's architecture
  std::string emit = "engine";      // graph | fused | exec | cuda | engine
  unsigned threads = 0; // NVRTC threads; 0: the machine's cores
  bool embedWeights = false;
  bool quiet = false;
};

/// `kiln compile`; returns the exit code.
int compile(const CompileOptions &options);

/// Whether `path` is a file that starts with the engine magic.
bool looksLikeEngine(const std::string &path);
/// `kiln inspect ENGINE`; returns the exit code. With `arch` ("sm_90"),
/// also checks that the engine holds kernels a GPU of it runs.
int inspectEngine(const std::string &path, bool json, const std::string &arch);

} // namespace kiln::tool

#endif
