//===- Inspect.cpp - kiln inspect ENGINE ----------------------------------===//
//
// Reads an engine as the runtime does (container checks, then the manifest's
// schema) and prints it: header, model, limits, memory, KV layout, sections,
// and a table of kernels with their launch counts per function. --json
// prints the manifest itself.
//
//===----------------------------------------------------------------------===//
#include "tools/kiln/Compile.h"

#include "runtime/format/Engine.h"
#include "runtime/format/Manifest.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

namespace kiln::tool {

bool looksLikeEngine(const std::string &path) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return false;
  char magic[8] = {};
  size_t n = std::fread(magic, 1, 8, f);
  std::fclose(f);
  return n == 8 && std::string(magic, 7) == "KILNENG";
}

int inspectEngine(const std::string &path, bool json, const std::string &arch) {
  auto fail = [](const std::string &m) {
    llvm::errs() << "kiln inspect: " << m << "\n";
    return 1;
  };
  format::EngineFile engine;
  if (Status s = format::readEngine(path, engine); !s)
    return fail(s.message());
  format::EngineManifest m;
  if (Status s = format::readManifest(engine, path, m); !s)
    return fail(s.message());
  std::string runs;
  if (!arch.empty())
    if (Status s = format::selectTarget(m, path, arch, runs); !s)
      return fail(s.message());
  if (json) {
    llvm::outs() << engine.data(*engine.find("manifest")) << "\n";
    return 0;
  }
  auto &os = llvm::outs();
  auto mb = [](int64_t b) { return llvm::format("%10.3f MB", b / 1e6); };
  os << "engine        " << path << " (format " << engine.formatVersion << ", " << engine.bytes.size()
     << " bytes, written by " << engine.compilerVersion << ", NVRTC " << m.nvrtc << ")\n";
  os << "model         " << m.modelSource << " (" << m.architecture << ")"
     << (m.weightsEmbedded ? ", weights embedded" : ", weights bound at load") << "\n";
  os << "tokenizer     " << (m.tokenizer ? *m.tokenizer : std::string("none")) << "\n";
  std::string targets;
  for (const std::string &t : m.targets)
    targets += (targets.empty() ? "" : ", ") + t;
  os << "targets       " << targets << " (tiles chosen for " << m.gpu << ")";
  if (!runs.empty())
    os << "; a " << arch << " GPU runs the " << runs << " kernels";
  os << "\n";
  os << "limits        batch " << m.maxBatch << ", " << m.maxSeq << " tokens per sequence, " << m.maxNumTokens
     << " tokens per prefill step, pages of " << m.pageSize << "\n";
  os << "kv cache      " << m.kv.layers << " layers x " << m.kv.kvHeads << " kv heads x " << m.kv.headDim << " "
     << m.kv.dtype << ": " << m.kv.bytesPerToken << " bytes per token\n";
  os << "memory        weights " << mb(m.memory.weights) << "\n"
     << "              arena   " << mb(std::max(m.memory.arenaPrefill, m.memory.arenaDecode)) << "  (prefill "
     << m.memory.arenaPrefill << ", decode " << m.memory.arenaDecode << ")\n"
     << "              KV pool " << mb(m.memory.kvPool) << "\n"
     << "              workspace " << mb(m.memory.workspace) << "\n"
     << "              graphs  " << mb(m.memory.graphs) << "\n"
     << "              total   " << mb(m.memory.total) << "\n";
  int64_t wbytes = 0;
  for (const format::WeightDesc &w : m.weights)
    wbytes += w.bytes;
  os << "weights       " << m.weights.size() << " slots, " << wbytes << " bytes\n";
  // Weights the loader computes: rounded from float ones (--quantize), or
  // dequantized from GPTQ/AWQ-packed ones; by packing, bits and group size.
  std::map<std::string, int64_t> quantized;
  for (const format::DequantWeightDesc &d : m.dequantWeights)
    ++quantized[(d.packing == "rtn" ? "rounded at load (--quantize) to int" : d.packing + " int") +
                std::to_string(d.bits) +
                (d.groupSize == -1 ? std::string(", a group per row") : ", groups of " + std::to_string(d.groupSize))];
  for (const auto &[what, n] : quantized)
    os << "quantized     " << n << " weights " << what << "; the kernels read them in the compute dtype\n";
  os << "sections     ";
  for (const format::EngineSection &s : engine.sections)
    os << " " << s.name << " (" << s.size << ")";
  os << "\n";
  std::map<int64_t, std::map<std::string, int64_t>> launches;
  for (const format::FunctionDesc &f : m.functions) {
    os << "function      " << f.name << ": " << f.launches.size() << " launches, arena " << f.arenaBytes
       << " bytes, " << f.args.size() << " arguments\n";
    for (const format::LaunchDesc &l : f.launches)
      ++launches[l.kernel][f.name];
  }
  os << "kernels       " << m.kernels.size() << "\n";
  os << llvm::format("  %-32s %-18s %7s %7s  %-28s %s\n", "name", "family", "threads", "smem", "grid",
                     "cubin bytes / launches");
  for (size_t i = 0; i < m.kernels.size(); ++i) {
    const format::KernelDesc &k = m.kernels[i];
    std::string grid = std::to_string(k.grid.factor), rows;
    for (const std::string &s : k.grid.symbols)
      rows += (k.grid.tiles && rows.empty() ? "" : "*") + s;
    if (k.grid.tiles)
      grid += "*ceil(" + rows + "/" + std::to_string(k.grid.divisor) + ")";
    else
      grid += rows + (k.grid.divisor > 1 ? "/" + std::to_string(k.grid.divisor) : "");
    std::string cubin;
    for (const format::KernelBinaryDesc &b : k.binaries)
      cubin += (cubin.empty() ? "" : " ") + b.target + ":" + std::to_string(b.cubin.size);
    std::string uses;
    for (const auto &[f, n] : launches[static_cast<int64_t>(i)])
      uses += " " + f + " x" + std::to_string(n);
    os << llvm::format("  %-32s %-18s %7lld %7lld  %-28s %s%s\n", k.name.c_str(), k.family.c_str(),
                       static_cast<long long>(k.threads), static_cast<long long>(k.smem), grid.c_str(),
                       cubin.c_str(), uses.c_str());
  }
  return 0;
}

} // namespace kiln::tool
