//===- ModelTestSupport.h - a recording device and tiny engines -----------===//
//
// What the Model and Generate tests share: a device that records launches
// on host memory, the tiny Llama's engine (as compiled, or --max-batch 4)
// with its real weights, loading on that device or on the host device.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_TEST_UNIT_RUNTIME_MODELTESTSUPPORT_H
#define KILN_TEST_UNIT_RUNTIME_MODELTESTSUPPORT_H

#include "runtime/core/Model.h"
#include "test/unit/runtime/TestEngine.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kiln::test {

using rt::Device;
using rt::DevPtr;
using rt::KernelArgs;
using rt::LaunchConfig;
using rt::LoadOptions;
using rt::Model;

inline const std::string kLlama = kTinyLlama;

struct Recorded {
  std::vector<std::pair<size_t, LaunchConfig>> launches;
  std::vector<KernelArgs> args;
  size_t kernels = 0;
  bool graphs = false;                 // the device captures graphs (replays append their launches)
  std::vector<uint64_t> captured;      // graph keys, in capture order
};

class RecordingDevice : public Device {
public:
  RecordingDevice(Recorded &r, size_t freeBytes) : r_(r), free_(freeBytes) {}
  ~RecordingDevice() override {
    for (auto &[p, b] : blocks_)
      std::free(reinterpret_cast<void *>(p));
  }
  std::string describe() const override { return "recording device"; }
  std::string arch() const override { return "sm_90"; }
  Status alloc(size_t bytes, DevPtr &out) override {
    void *p = std::calloc(1, bytes ? bytes : 1);
    out = reinterpret_cast<DevPtr>(p);
    blocks_[out] = bytes;
    return Status::ok();
  }
  void free(DevPtr p) override {
    if (blocks_.erase(p))
      std::free(reinterpret_cast<void *>(p));
  }
  Status upload(DevPtr dst, const void *src, size_t n) override {
    if (n)
      std::memcpy(reinterpret_cast<void *>(dst), src, n);
    return Status::ok();
  }
  Status download(void *dst, DevPtr src, size_t n) override {
    if (n)
      std::memcpy(dst, reinterpret_cast<const void *>(src), n);
    return Status::ok();
  }
  Status copy(DevPtr dst, DevPtr src, size_t n) override {
    if (n)
      std::memmove(reinterpret_cast<void *>(dst), reinterpret_cast<const void *>(src), n);
    return Status::ok();
  }
  Status zero(DevPtr dst, size_t n) override {
    if (n)
      std::memset(reinterpret_cast<void *>(dst), 0, n);
    return Status::ok();
  }
  Status memoryInfo(size_t &f, size_t &t) override {
    f = free_;
    t = free_ * 2;
    return Status::ok();
  }
  Status prepareKernels(const format::EngineFile &, const format::EngineManifest &m, std::string &note) override {
    r_.kernels = m.kernels.size();
    note = "recording";
    return Status::ok();
  }
  Status launch(size_t kernel, const KernelArgs &a, const LaunchConfig &c) override {
    if (capturing_) {
      graphs_[pending_].push_back({kernel, c, a});
      return Status::ok();
    }
    r_.launches.push_back({kernel, c});
    r_.args.push_back(a);
    return Status::ok();
  }
  Status synchronize() override { return Status::ok(); }
  bool supportsGraphs() const override { return r_.graphs; }
  Status beginGraph() override {
    capturing_ = true;
    graphs_[pending_].clear();
    return Status::ok();
  }
  Status endGraph(uint64_t key) override {
    capturing_ = false;
    graphs_[key] = std::move(graphs_[pending_]);
    graphs_.erase(pending_);
    r_.captured.push_back(key);
    return Status::ok();
  }
  bool hasGraph(uint64_t key) const override { return graphs_.count(key) > 0; }
  Status runGraph(uint64_t key) override {
    for (const Captured &l : graphs_.at(key)) {
      r_.launches.push_back({l.kernel, l.config});
      r_.args.push_back(l.args);
    }
    return Status::ok();
  }

private:
  struct Captured {
    size_t kernel;
    LaunchConfig config;
    KernelArgs args;
  };
  static constexpr uint64_t pending_ = ~uint64_t(0);
  Recorded &r_;
  size_t free_;
  std::map<DevPtr, size_t> blocks_;
  bool capturing_ = false;
  std::map<uint64_t, std::vector<Captured>> graphs_;
};

inline std::string writeEngine(const std::string &name, const std::string &edit = "", const std::string &with = "") {
  return writeTinyLlamaEngine(name, edit, with);
}
/// The tiny Llama compiled --max-batch 4 (its memory plan holds 4 decode
/// rows), max_batch optionally lowered to `batch`.
inline std::string writeEngineB4(const std::string &name, int batch = 4) {
  return writeTinyLlamaEngine(name, "\"max_batch\":4", "\"max_batch\":" + std::to_string(batch),
                                    "tiny_llama_b4.json");
}

inline Status load(Recorded &r, const std::string &engine, LoadOptions o, std::unique_ptr<Model> &m,
            size_t freeBytes = size_t(1) << 30) {
  if (o.weights.empty())
    o.weights = kLlama;
  return Model::load(std::make_unique<RecordingDevice>(r, freeBytes), engine, o, m);
}

/// The engine loaded on the host device (the reference kernels) with the
/// tiny Llama's weights.
inline Status loadOnHost(const std::string &engine, std::unique_ptr<Model> &m) {
  std::unique_ptr<Device> host;
  KILN_RETURN_IF_ERROR(rt::openDevice("host", host));
  LoadOptions o;
  o.weights = kLlama;
  return Model::load(std::move(host), engine, o, m);
}

inline std::vector<int64_t> iota(int64_t n, int64_t start) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i)
    v.push_back(start + i);
  return v;
}

} // namespace kiln::test

#endif
