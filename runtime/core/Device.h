//===- Device.h - where an engine's kernels run -----------------*- C++ -*-===//
//
// The runtime drives a Device: memory, copies, and launches of the engine's
// kernels by index with a KernelArgs. `cuda` runs the compiled kernels
// (runtime/cuda); `host` evaluates each kernel's host program with the
// reference kernels (runtime/host). Every call returns a Status.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_CORE_DEVICE_H
#define KILN_RUNTIME_CORE_DEVICE_H

#include "runtime/format/Engine.h"
#include "runtime/format/Manifest.h"
#include "runtime/support/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kiln::rt {

/// An address in a device's memory.
using DevPtr = uint64_t;

/// The kernels' one parameter (`kiln::Args` in codegen/cuda/common.cuh;
/// docs/codegen.md): buffers in operand order, the workspace, step sizes,
/// the KV layer.
struct KernelArgs {
  uint64_t p[16] = {};
  uint64_t ws = 0;
  int32_t batch = 0, tokens = 0, pages = 0, maxBlocks = 0, layer = 0, pad = 0;
};
static_assert(sizeof(KernelArgs) == 160, "KernelArgs must match kiln::Args");

struct LaunchConfig {
  unsigned grid = 1, block = 1, smem = 0;
  /// The kernel waits for its predecessor itself (the manifest's
  /// dependent_launch): a device may start it while that one finishes.
  bool dependent = false;
};

class Device {
public:
  virtual ~Device() = default;
  /// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs)".
  virtual std::string describe() const = 0;
  /// The architecture kernels are chosen for: "sm_90".
  virtual std::string arch() const = 0;
  /// Streaming multiprocessors (0 where the notion does not apply).
  virtual int64_t multiprocessors() const { return 0; }

  virtual Status alloc(size_t bytes, DevPtr &out) = 0;
  virtual void free(DevPtr p) = 0;
  virtual Status upload(DevPtr dst, const void *src, size_t bytes) = 0;
  virtual Status download(void *dst, DevPtr src, size_t bytes) = 0;
  /// An upload the caller knows no launch still running reads or writes:
  /// it need not wait for them (CUDA: a second stream), and launches made
  /// after it see it. By default, upload.
  virtual Status uploadAside(DevPtr dst, const void *src, size_t bytes) { return upload(dst, src, bytes); }
  /// A download in two halves: begin orders the copy after the launches so
  /// far and returns at once (later launches may overwrite `src`); end
  /// waits for it and writes the bytes to `dst`. Copies begun and not yet
  /// ended: at most kDownloadsInFlight. By default, begin copies at once
  /// (devices that run launches as they are made).
  static constexpr int kDownloadsInFlight = 4;
  virtual Status downloadBegin(DevPtr src, size_t bytes, int &ticket);
  virtual Status downloadEnd(int ticket, void *dst, size_t bytes);
  virtual Status zero(DevPtr dst, size_t bytes) = 0;
  /// Copies within device memory, ordered with the launches.
  virtual Status copy(DevPtr dst, DevPtr src, size_t bytes) = 0;
  virtual Status memoryInfo(size_t &free, size_t &total) = 0;

  /// Makes the engine's kernels launchable: the binaries of the target this
  /// device runs, or (CUDA) the stored sources compiled again for it.
  /// `note` says which, for the caller to report.
  virtual Status prepareKernels(const format::EngineFile &engine, const format::EngineManifest &m,
                                std::string &note) = 0;
  virtual Status launch(size_t kernel, const KernelArgs &args, const LaunchConfig &config) = 0;
  virtual Status synchronize() = 0;

  /// Launch graphs (CUDA graphs): the launches between beginGraph and
  /// endGraph are recorded, not run, into graph `key`; runGraph replays it.
  /// Devices without graphs return false from supportsGraphs.
  virtual bool supportsGraphs() const { return false; }
  virtual Status beginGraph() { return Status::error("this device has no launch graphs"); }
  virtual Status endGraph(uint64_t key) { return Status::error("this device has no launch graphs"); }
  virtual bool hasGraph(uint64_t key) const { return false; }
  virtual Status runGraph(uint64_t key) { return Status::error("this device has no launch graphs"); }
  /// Replays graph `key` `reps` times and waits: their device time in
  /// microseconds.
  virtual Status timeGraph(uint64_t key, int reps, double &us) {
    return Status::error("this device has no launch graphs");
  }
  /// Whether LaunchConfig::dependent changes anything here.
  virtual bool supportsDependentLaunch() const { return false; }

  /// Launches and waits for one kernel, and its time on the device in
  /// microseconds (device events where there are any; otherwise the host
  /// clock around the launch).
  virtual Status timedLaunch(size_t kernel, const KernelArgs &args, const LaunchConfig &config, double &us);
  /// Bytes per second (read plus written) of a large copy within device
  /// memory: the bandwidth a streaming kernel can hope for.
  virtual Status copyBandwidth(double &bytesPerSecond);

private:
  std::vector<unsigned char> early_[kDownloadsInFlight]; // the default downloadBegin's copies
  int nextTicket_ = 0;
};

/// "cuda" (the first GPU), "host" (the reference kernels on the CPU), or
/// "auto" (cuda when a GPU can be opened, else host).
/// `fallback` (optional): for "auto" that opened the host, why the GPU could
/// not be used (callers say so on stderr: the host is orders slower).
Status openDevice(const std::string &name, std::unique_ptr<Device> &out, std::string *fallback = nullptr);
Status openCudaDevice(std::unique_ptr<Device> &out);
Status openHostDevice(std::unique_ptr<Device> &out);

} // namespace kiln::rt

#endif
