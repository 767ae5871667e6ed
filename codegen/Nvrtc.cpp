//===- Nvrtc.cpp - compile CUDA C++ with NVRTC ----------------------------===//
#include "codegen/Nvrtc.h"

#include <dlfcn.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <regex>
#include <sstream>

namespace kiln::codegen {

namespace {

// The few NVRTC entry points kiln uses, with their C signatures
// (nvrtcResult is an int enum, nvrtcProgram an opaque pointer).
using Program = void *;
struct Api {
  int (*createProgram)(Program *, const char *, const char *, int, const char *const *,
                       const char *const *) = nullptr;
  int (*compileProgram)(Program, int, const char *const *) = nullptr;
  int (*getProgramLogSize)(Program, size_t *) = nullptr;
  int (*getProgramLog)(Program, char *) = nullptr;
  int (*getCUBINSize)(Program, size_t *) = nullptr;
  int (*getCUBIN)(Program, char *) = nullptr;
  int (*getPTXSize)(Program, size_t *) = nullptr;
  int (*getPTX)(Program, char *) = nullptr;
  int (*destroyProgram)(Program *) = nullptr;
  const char *(*getErrorString)(int) = nullptr;
  int (*version)(int *, int *) = nullptr;
  std::string error;
};

const Api &api() {
  static Api a;
  static std::once_flag once;
  std::call_once(once, [] {
    void *lib = nullptr;
    for (const char *name : {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12",
                             "/usr/local/cuda/lib64/libnvrtc.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
    if (!lib) {
      a.error = "cannot load NVRTC (libnvrtc.so): install the CUDA toolkit or add its lib64 "
                "to LD_LIBRARY_PATH";
      return;
    }
    auto sym = [&](auto &fn, const char *name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn && a.error.empty())
        a.error = std::string("NVRTC lacks ") + name;
    };
    sym(a.createProgram, "nvrtcCreateProgram");
    sym(a.compileProgram, "nvrtcCompileProgram");
    sym(a.getProgramLogSize, "nvrtcGetProgramLogSize");
    sym(a.getProgramLog, "nvrtcGetProgramLog");
    sym(a.getCUBINSize, "nvrtcGetCUBINSize");
    sym(a.getCUBIN, "nvrtcGetCUBIN");
    sym(a.getPTXSize, "nvrtcGetPTXSize");
    sym(a.getPTX, "nvrtcGetPTX");
    sym(a.destroyProgram, "nvrtcDestroyProgram");
    sym(a.getErrorString, "nvrtcGetErrorString");
    sym(a.version, "nvrtcVersion");
  });
  return a;
}

/// The log with each "name(LINE): error" followed by that source line.
std::string annotate(const std::string &log, const std::string &source, const std::string &name) {
  std::vector<std::string> lines;
  std::istringstream src(source);
  for (std::string l; std::getline(src, l);)
    lines.push_back(l);
  std::ostringstream out;
  std::istringstream in(log);
  std::regex at("^" + std::regex_replace(name, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                R"(\((\d+)\): (error|warning))");
  for (std::string l; std::getline(in, l);) {
    out << "  " << l << "\n";
    std::smatch m;
    if (std::regex_search(l, m, at)) {
      size_t n = std::stoul(m[1]);
      if (n >= 1 && n <= lines.size())
        out << "    " << n << " | " << lines[n - 1] << "\n";
    }
  }
  return out.str();
}

} // namespace

Status nvrtcVersion(std::string &out) {
  const Api &a = api();
  if (!a.error.empty())
    return Status::error(a.error);
  int major = 0, minor = 0;
  a.version(&major, &minor);
  out = std::to_string(major) + "." + std::to_string(minor);
  return Status::ok();
}

Status compileCuda(const std::string &source, const std::string &name, const std::string &arch,
                   const NvrtcOptions &options, CompiledKernel &out) {
  const Api &a = api();
  if (!a.error.empty())
    return Status::error(a.error);
  Program prog = nullptr;
  if (int r = a.createProgram(&prog, source.c_str(), name.c_str(), 0, nullptr, nullptr))
    return Status::error(name + ": NVRTC cannot create the program: " + a.getErrorString(r));
  std::vector<std::string> opts = {"--gpu-architecture=" + arch, "--std=c++17",
                                   "-default-device"};
  for (const std::string &d : options.includeDirs)
    opts.push_back("-I" + d);
  if (options.fastMath)
    opts.push_back("--use_fast_math");
  for (const std::string &d : options.defines)
    opts.push_back("-D" + d);
  std::vector<const char *> argv;
  for (const std::string &o : opts)
    argv.push_back(o.c_str());
  int result = a.compileProgram(prog, static_cast<int>(argv.size()), argv.data());
  size_t logSize = 0;
  a.getProgramLogSize(prog, &logSize);
  std::string log(logSize, '\0');
  if (logSize)
    a.getProgramLog(prog, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n'))
    log.pop_back();
  if (result) {
    a.destroyProgram(&prog);
    return Status::error(name + ": NVRTC failed for " + arch + " (" + a.getErrorString(result) +
                         "):\n" + annotate(log, source, name));
  }
  size_t cubinSize = 0, ptxSize = 0;
  a.getCUBINSize(prog, &cubinSize);
  out.cubin.assign(cubinSize, '\0');
  if (cubinSize)
    a.getCUBIN(prog, out.cubin.data());
  // PTX exists only for virtual architectures (compute_XX); a real one
  // gives the cubin alone.
  if (a.getPTXSize(prog, &ptxSize) == 0 && ptxSize > 1) {
    out.ptx.assign(ptxSize, '\0');
    a.getPTX(prog, out.ptx.data());
  }
  a.destroyProgram(&prog);
  out.arch = arch;
  out.log = log;
  return Status::ok();
}

Status compileAll(const std::vector<KernelSource> &sources, const std::vector<std::string> &targets,
                  const NvrtcOptions &options, unsigned threads,
                  std::vector<std::vector<CompiledKernel>> &compiled, size_t &unique) {
  // Distinct sources, in first-appearance order.
  std::map<std::string, size_t> index;
  std::vector<size_t> slot(sources.size());
  std::vector<const KernelSource *> distinct;
  for (size_t i = 0; i < sources.size(); ++i) {
    auto [it, fresh] = index.try_emplace(sources[i].source, distinct.size());
    if (fresh)
      distinct.push_back(&sources[i]);
    slot[i] = it->second;
  }
  unique = distinct.size();
  size_t jobs = distinct.size() * targets.size();
  std::vector<CompiledKernel> results(jobs);
  std::vector<Status> status(jobs, Status::ok());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t j; (j = next.fetch_add(1)) < jobs;) {
      const KernelSource &k = *distinct[j / targets.size()];
      status[j] = compileCuda(k.source, k.name, targets[j % targets.size()], options, results[j]);
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < std::max(1u, threads) && t < jobs; ++t)
    pool.emplace_back(worker);
  worker();
  for (std::thread &t : pool)
    t.join();
  for (const Status &s : status)
    if (!s)
      return s;
  compiled.assign(sources.size(), {});
  for (size_t i = 0; i < sources.size(); ++i)
    for (size_t t = 0; t < targets.size(); ++t)
      compiled[i].push_back(results[slot[i] * targets.size() + t]);
  return Status::ok();
}

} // namespace kiln::codegen
