//===- Nvrtc.h - compile CUDA C++ with NVRTC --------------------*- C++ -*-===//
//
// NVRTC is loaded at run time (dlopen): nothing links against CUDA, a machine
// without it gets a clear error, and the runtime can re-JIT for another GPU
// with the same code. A failed compile is an error that quotes NVRTC's log
// and the offending source lines. No MLIR here (the runtime uses it too).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_CODEGEN_NVRTC_H
#define KILN_CODEGEN_NVRTC_H

#include "runtime/support/Status.h"

#include <string>
#include <vector>

namespace kiln::codegen {

struct CompiledKernel {
  std::string arch;  // "sm_90a"
  std::string cubin; // ELF
  std::string ptx;
  std::string log;   // NVRTC's warnings, if any
};

struct NvrtcOptions {
  std::vector<std::string> includeDirs = {"/usr/local/cuda/include"};
  bool fastMath = false;
  /// Preprocessor definitions ("NAME=VALUE") for the whole source, the
  /// device library included (A/B knobs of the library: `kiln compile
  /// --pdl-prefetch`, `--pdl-trigger`). A re-JIT at load does not see them.
  std::vector<std::string> defines;
};

/// Compiles `source` (named `name` in diagnostics) for `arch` ("sm_90a",
/// "sm_80", ...).
Status compileCuda(const std::string &source, const std::string &name, const std::string &arch,
                   const NvrtcOptions &options, CompiledKernel &out);

struct KernelSource {
  std::string name;   // for diagnostics
  std::string source; // CUDA C++
};

/// Compiles every source for every target on `threads` threads. Identical
/// sources compile once (the same specialisation in every layer):
/// `compiled[i][t]` is source i for targets[t], shared between duplicates;
/// `unique` counts the distinct sources. The first failure is returned.
Status compileAll(const std::vector<KernelSource> &sources, const std::vector<std::string> &targets,
                  const NvrtcOptions &options, unsigned threads,
                  std::vector<std::vector<CompiledKernel>> &compiled, size_t &unique);

/// NVRTC's version ("13.0"), or an error when it cannot be loaded.
Status nvrtcVersion(std::string &out);

} // namespace kiln::codegen

#endif
