//===- HostDevice.cpp - the host device: reference kernels on the CPU -----===//
//
// Memory is host memory; a launch evaluates the kernel's host program (its
// fused body, serialised in the manifest) with the host kernels through
// host::evalHostOp, the code the interpreter uses too: operands are read
// from the launch's buffers with the step's sizes, results written back to
// its output buffers. Slow and exact: the reference the CUDA path is checked
// against, and the device for machines without a GPU.
//
//===----------------------------------------------------------------------===//
#include "runtime/core/Device.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

namespace kiln::rt {

namespace {

class HostDevice : public Device {
public:
  ~HostDevice() override {
    for (auto &[p, n] : blocks_)
      std::free(reinterpret_cast<void *>(p));
  }
  std::string describe() const override { return "host (reference kernels)"; }
  std::string arch() const override { return "host"; }

  Status alloc(size_t bytes, DevPtr &out) override {
    void *p = std::calloc(1, bytes ? bytes : 1);
    if (!p)
      return Status::error("out of host memory allocating " + std::to_string(bytes) + " bytes");
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
  Status memoryInfo(size_t &free, size_t &total) override {
    // The host device does not budget memory: report a generous amount.
    free = size_t(16) << 30;
    total = free;
    return Status::ok();
  }
  Status prepareKernels(const format::EngineFile &, const format::EngineManifest &m, std::string &note) override {
    kernels_ = &m.kernels;
    note = "evaluating the engine's " + std::to_string(m.kernels.size()) + " kernels with the host kernels";
    return Status::ok();
  }

  Status launch(size_t kernel, const KernelArgs &a, const LaunchConfig &) override {
    if (!kernels_ || kernel >= kernels_->size())
      return Status::error("launch of kernel " + std::to_string(kernel) + ", which was not prepared");
    const format::KernelDesc &k = (*kernels_)[kernel];
    const format::HostProgramDesc &hp = k.host;
    std::vector<host::Tensor> values;
    values.reserve(hp.args.size() + hp.ops.size() * 2);
    for (size_t i = 0; i < hp.args.size(); ++i) {
      const auto &arg = hp.args[i];
      host::DType dt;
      host::parseDType(arg.dtype, dt);
      host::Shape shape;
      for (size_t d = 0; d < arg.sizes.size(); ++d) {
        const std::string &s = arg.symbols[d];
        shape.push_back(s.empty() ? arg.sizes[d]
                        : s == "batch" ? a.batch
                        : s == "tokens" ? a.tokens
                        : s == "pages" ? a.pages
                                       : a.maxBlocks);
      }
      host::Tensor t(dt, shape);
      if (t.byteSize())
        std::memcpy(t.data(), reinterpret_cast<const void *>(a.p[i]), t.byteSize());
      values.push_back(std::move(t));
    }
    for (const auto &op : hp.ops) {
      std::vector<const host::Tensor *> in;
      for (int64_t id : op.operands)
        in.push_back(&values[static_cast<size_t>(id)]);
      std::vector<host::Tensor> out;
      KILN_RETURN_IF_ERROR(host::evalHostOp(op.op, in, out, a.layer).withContext(k.name));
      for (host::Tensor &t : out)
        values.push_back(std::move(t));
    }
    for (size_t j = 0; j < hp.yields.size(); ++j) {
      const host::Tensor &t = values[static_cast<size_t>(hp.yields[j])];
      size_t slot = hp.args.size() + j;
      if (slot >= 16 || !a.p[slot])
        return Status::error(k.name + ": no buffer for result " + std::to_string(j));
      auto it = blocks_.upper_bound(a.p[slot]);
      if (it == blocks_.begin() || a.p[slot] + t.byteSize() > std::prev(it)->first + std::prev(it)->second)
        return Status::error(k.name + ": result " + std::to_string(j) + " of " + std::to_string(t.byteSize()) +
                             " bytes overruns its buffer");
      if (t.byteSize())
        std::memcpy(reinterpret_cast<void *>(a.p[slot]), t.data(), t.byteSize());
    }
    return Status::ok();
  }
  Status synchronize() override { return Status::ok(); }
  Status copyBandwidth(double &bytesPerSecond) override {
    // Two 64 MiB buffers, past the caches of most hosts: the best of 5.
    const size_t bytes = size_t(64) << 20;
    std::vector<char> a(bytes, 1), b(bytes, 2);
    double best = 0;
    for (int i = 0; i < 5; ++i) {
      auto start = std::chrono::steady_clock::now();
      std::memcpy(i % 2 ? a.data() : b.data(), i % 2 ? b.data() : a.data(), bytes);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      best = std::max(best, 2.0 * static_cast<double>(bytes) / s);
    }
    bytesPerSecond = best;
    return Status::ok();
  }

private:
  const std::vector<format::KernelDesc> *kernels_ = nullptr;
  std::map<DevPtr, size_t> blocks_;
};

} // namespace

Status openHostDevice(std::unique_ptr<Device> &out) {
  out = std::make_unique<HostDevice>();
  return Status::ok();
}

} // namespace kiln::rt
