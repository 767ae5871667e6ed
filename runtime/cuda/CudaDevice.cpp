//===- CudaDevice.cpp - the cuda device -----------------------------------===//
//
// The first GPU's primary context and one stream. Kernels come from the
// engine's cubins for the target this GPU runs (format::selectTarget); when
// the engine holds none, the stored CUDA sources are compiled again with
// NVRTC for this GPU (re-JIT), and the note says so.
//
//===----------------------------------------------------------------------===//
#include "codegen/Nvrtc.h"
#include "runtime/core/Device.h"
#include "runtime/cuda/CudaDriver.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

namespace kiln::rt {

namespace {

using namespace kiln::cuda;

class CudaDevice : public Device {
  /// The context current on the calling thread: every entry point binds it
  /// first, so a model loaded on one thread runs on another (kiln serve's
  /// and the C API's executor threads, an app's worker threads).
  void bind() const {
    if (d_ && ctx_)
      d_->cuCtxSetCurrent(ctx_);
  }

public:
  ~CudaDevice() override {
    if (!d_ || !ctx_)
      return;
    d_->cuCtxSetCurrent(ctx_);
    for (auto &[k, g] : graphs_)
      d_->cuGraphExecDestroy(g);
    for (CUevent e : events_)
      if (e)
        d_->cuEventDestroy(e);
    for (CUmodule m : modules_)
      d_->cuModuleUnload(m);
    for (CUevent e : landed_)
      if (e)
        d_->cuEventDestroy(e);
    if (uploaded_)
      d_->cuEventDestroy(uploaded_);
    for (void *p : {pinnedUp_, pinnedDown_})
      if (p)
        d_->cuMemFreeHost(p);
    if (aside_)
      d_->cuStreamDestroy(aside_);
    if (stream_)
      d_->cuStreamDestroy(stream_);
    d_->cuDevicePrimaryCtxRelease(dev_);
  }

  Status open() {
    KILN_RETURN_IF_ERROR(driver(d_));
    int count = 0;
    KILN_RETURN_IF_ERROR(check(d_->cuDeviceGetCount(&count), "cuDeviceGetCount"));
    if (count == 0)
      return Status::error("no NVIDIA GPU is visible (CUDA_VISIBLE_DEVICES?)");
    KILN_RETURN_IF_ERROR(check(d_->cuDeviceGet(&dev_, 0), "cuDeviceGet"));
    char name[256] = {};
    d_->cuDeviceGetName(name, sizeof(name) - 1, dev_);
    int major = 0, minor = 0, sms = 0;
    d_->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev_);
    d_->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev_);
    d_->cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev_);
    arch_ = "sm_" + std::to_string(major) + std::to_string(minor);
    major_ = major;
    dependentLaunch_ = major >= 9 && d_->cuLaunchKernelEx;
    sms_ = sms;
    describe_ = std::string(name) + " (" + arch_ + ", " + std::to_string(sms) + " SMs)";
    KILN_RETURN_IF_ERROR(check(d_->cuDevicePrimaryCtxRetain(&ctx_, dev_), "cuDevicePrimaryCtxRetain"));
    KILN_RETURN_IF_ERROR(check(d_->cuCtxSetCurrent(ctx_), "cuCtxSetCurrent"));
    KILN_RETURN_IF_ERROR(check(d_->cuStreamCreate(&stream_, CU_STREAM_NON_BLOCKING), "cuStreamCreate"));
    // Page-locked staging for the small copies of every step (inputs in,
    // tokens out): a copy from pageable memory goes through the driver's own
    // staging first. Without it (page-locking refused), copies stay pageable.
    if (d_->cuMemHostAlloc(&pinnedUp_, kPinnedBytes, 0) != 0 ||
        d_->cuMemHostAlloc(&pinnedDown_, kPinnedBytes + kDownloadsInFlight * kSlotBytes, 0) != 0 ||
        d_->cuEventCreate(&uploaded_, CU_EVENT_DISABLE_TIMING) != 0) {
      for (void **p : {&pinnedUp_, &pinnedDown_})
        if (*p)
          d_->cuMemFreeHost(*p), *p = nullptr;
    }
    for (CUevent &e : landed_)
      KILN_RETURN_IF_ERROR(check(d_->cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "creating an event"));
    KILN_RETURN_IF_ERROR(check(d_->cuStreamCreate(&aside_, CU_STREAM_NON_BLOCKING), "cuStreamCreate"));
    return Status::ok();
  }

  std::string describe() const override { return describe_; }
  std::string arch() const override { return arch_; }
  int64_t multiprocessors() const override { return sms_; }

  Status alloc(size_t bytes, DevPtr &out) override {
    bind();
    CUdeviceptr p = 0;
    KILN_RETURN_IF_ERROR(check(d_->cuMemAlloc(&p, bytes ? bytes : 1),
                               "allocating " + std::to_string(bytes) + " bytes on the GPU"));
    out = p;
    return Status::ok();
  }
  void free(DevPtr p) override {
    bind();
    if (p)
      d_->cuMemFree(p);
  }
  Status upload(DevPtr dst, const void *src, size_t bytes) override {
    bind();
    if (!bytes)
      return Status::ok();
    // The caller may reuse `src` on return: a small copy goes through the
    // page-locked buffer (once the previous copy from it has landed), a
    // large one from pageable memory is staged by the driver before the call
    // returns. The stream orders either before the kernels.
    if (!pinnedUp_ || bytes > kPinnedBytes)
      return check(d_->cuMemcpyHtoDAsync(dst, src, bytes, stream_), "copying to the GPU");
    return uploadPinned(dst, src, bytes, stream_);
  }
  Status uploadAside(DevPtr dst, const void *src, size_t bytes) override {
    bind();
    if (!bytes || !pinnedUp_ || bytes > kPinnedBytes)
      return upload(dst, src, bytes);
    KILN_RETURN_IF_ERROR(uploadPinned(dst, src, bytes, aside_));
    return check(d_->cuStreamWaitEvent(stream_, uploaded_, 0), "ordering a copy before the kernels");
  }
  Status download(void *dst, DevPtr src, size_t bytes) override {
    bind();
    if (!bytes)
      return Status::ok();
    bool pinned = pinnedDown_ && bytes <= kPinnedBytes;
    KILN_RETURN_IF_ERROR(
        check(d_->cuMemcpyDtoHAsync(pinned ? pinnedDown_ : dst, src, bytes, stream_), "copying from the GPU"));
    KILN_RETURN_IF_ERROR(check(d_->cuStreamSynchronize(stream_), "copying from the GPU (or a kernel before it)"));
    if (pinned)
      std::memcpy(dst, pinnedDown_, bytes);
    return Status::ok();
  }
  Status downloadBegin(DevPtr src, size_t bytes, int &ticket) override {
    bind();
    if (!pinnedDown_ || bytes > kSlotBytes)
      return Device::downloadBegin(src, bytes, ticket);
    ticket = nextSlot_;
    nextSlot_ = (nextSlot_ + 1) % kDownloadsInFlight;
    KILN_RETURN_IF_ERROR(check(d_->cuMemcpyDtoHAsync(slot(ticket), src, bytes, stream_), "copying from the GPU"));
    return check(d_->cuEventRecord(landed_[ticket], stream_), "copying from the GPU");
  }
  Status downloadEnd(int ticket, void *dst, size_t bytes) override {
    bind();
    if (!pinnedDown_ || bytes > kSlotBytes)
      return Device::downloadEnd(ticket, dst, bytes);
    if (ticket < 0 || ticket >= kDownloadsInFlight)
      return Status::error("downloadEnd: no download under ticket " + std::to_string(ticket));
    KILN_RETURN_IF_ERROR(
        check(d_->cuEventSynchronize(landed_[ticket]), "copying from the GPU (or a kernel before it)"));
    std::memcpy(dst, slot(ticket), bytes);
    return Status::ok();
  }
  /// Through the page-locked buffer, once the copy before from it has
  /// landed, on `stream`; `uploaded_` marks this one.
  Status uploadPinned(DevPtr dst, const void *src, size_t bytes, CUstream stream) {
    if (uploadPending_)
      KILN_RETURN_IF_ERROR(check(d_->cuEventSynchronize(uploaded_), "copying to the GPU"));
    std::memcpy(pinnedUp_, src, bytes);
    KILN_RETURN_IF_ERROR(check(d_->cuMemcpyHtoDAsync(dst, pinnedUp_, bytes, stream), "copying to the GPU"));
    uploadPending_ = true;
    return check(d_->cuEventRecord(uploaded_, stream), "copying to the GPU");
  }
  Status copy(DevPtr dst, DevPtr src, size_t bytes) override {
    bind();
    if (!bytes)
      return Status::ok();
    return check(d_->cuMemcpyDtoDAsync(dst, src, bytes, stream_), "copying on the GPU");
  }
  Status zero(DevPtr dst, size_t bytes) override {
    bind();
    return check(d_->cuMemsetD8(dst, 0, bytes), "clearing GPU memory");
  }
  Status memoryInfo(size_t &free, size_t &total) override {
    bind();
    return check(d_->cuMemGetInfo(&free, &total), "cuMemGetInfo");
  }

  Status prepareKernels(const format::EngineFile &engine, const format::EngineManifest &m,
                        std::string &note) override {
    bind();
    std::string target;
    Status chosen = format::selectTarget(m, "the engine", arch_, target);
    const format::EngineSection *cubins = chosen ? engine.find("cubin." + target) : nullptr;
    std::vector<std::string> rebuilt;
    if (!cubins) {
      // Re-JIT: the stored sources, compiled for this GPU.
      const format::EngineSection *src = engine.find("cuda_source");
      if (!src)
        return chosen ? Status::error("the engine has no cubin." + target + " section") : chosen;
      std::string_view all = engine.data(*src);
      uint64_t libEnd = m.kernels.empty() ? 0 : m.kernels.front().source.offset;
      std::string library(all.substr(0, libEnd));
      while (!library.empty() && library.back() == '\0')
        library.pop_back();
      std::vector<codegen::KernelSource> sources;
      for (const format::KernelDesc &k : m.kernels)
        sources.push_back({k.name, library + "\n" + std::string(all.substr(k.source.offset, k.source.size))});
      std::string jitArch = arch_ + (arch_ >= "sm_90" ? "a" : "");
      std::vector<std::vector<codegen::CompiledKernel>> compiled;
      size_t unique = 0;
      Status s = codegen::compileAll(sources, {jitArch}, codegen::NvrtcOptions(), 4, compiled, unique);
      if (!s)
        return Status::error(chosen.message() + "; compiling its CUDA sources for " + jitArch +
                             " failed too: " + s.message());
      for (auto &c : compiled)
        rebuilt.push_back(std::move(c[0].cubin));
      note = "compiled the engine's " + std::to_string(m.kernels.size()) + " kernels for " + jitArch +
             " with NVRTC (the engine holds " + m.targets.front() + "...)";
    } else {
      note = "using the engine's " + target + " kernels";
    }
    for (size_t i = 0; i < m.kernels.size(); ++i) {
      const format::KernelDesc &k = m.kernels[i];
      std::string image;
      if (cubins) {
        const format::KernelBinaryDesc *b = nullptr;
        for (const auto &kb : k.binaries)
          if (kb.target == target)
            b = &kb;
        if (!b)
          return Status::error("kernel " + k.name + " has no " + target + " binary");
        image = std::string(engine.data(*cubins).substr(b->cubin.offset, b->cubin.size));
      } else {
        image = std::move(rebuilt[i]);
      }
      CUmodule mod = nullptr;
      KILN_RETURN_IF_ERROR(check(d_->cuModuleLoadData(&mod, image.data()), "loading kernel " + k.name));
      modules_.push_back(mod);
      CUfunction f = nullptr;
      KILN_RETURN_IF_ERROR(check(d_->cuModuleGetFunction(&f, mod, k.name.c_str()), "finding kernel " + k.name));
      // Above 48 KB of static and dynamic shared memory together a kernel
      // must opt in (the decode attention's 48 KB ring plus its static
      // arrays): every kernel with dynamic shared memory asks for it.
      if (k.smem > 0)
        KILN_RETURN_IF_ERROR(check(
            d_->cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, static_cast<int>(k.smem)),
            "raising the shared memory of " + k.name));
      // Every skeleton strides over its work, so a grid larger than the
      // blocks the GPU holds at once gains nothing but repeated prologues:
      // launches are capped at one full wave.
      int perSm = 0;
      KILN_RETURN_IF_ERROR(check(d_->cuOccupancyMaxActiveBlocksPerMultiprocessor(
                                     &perSm, f, static_cast<int>(k.threads), static_cast<size_t>(k.smem)),
                                 "sizing the grid of " + k.name));
      unsigned wave = static_cast<unsigned>(std::max(1, perSm)) * static_cast<unsigned>(sms_);
      // A kernel compiled to run in clusters (KILN_CLUSTER_DIMS) launches
      // whole clusters, as many as the GPU holds at once (its GPCs may
      // leave an SM out of every pairing).
      int width = 0;
      if (major_ >= 9)
        KILN_RETURN_IF_ERROR(check(d_->cuFuncGetAttribute(&width, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, f),
                                   "reading the cluster width of " + k.name));
      width = std::max(1, width);
      if (width > 1 && d_->cuOccupancyMaxActiveClusters) {
        CUlaunchConfig lc = {static_cast<unsigned>(width), 1, 1, static_cast<unsigned>(k.threads), 1, 1,
                             static_cast<unsigned>(k.smem), stream_, nullptr, 0};
        int clusters = 0;
        KILN_RETURN_IF_ERROR(check(d_->cuOccupancyMaxActiveClusters(&clusters, f, &lc),
                                   "sizing the clusters of " + k.name));
        if (clusters < 1)
          return Status::error("kernel " + k.name + " runs in clusters of " + std::to_string(width) +
                               " blocks, and this GPU holds none at once");
        wave = static_cast<unsigned>(clusters * width);
      } else {
        wave = std::max(wave / static_cast<unsigned>(width), 1u) * static_cast<unsigned>(width);
      }
      waveBlocks_.push_back(wave);
      clusterWidth_.push_back(static_cast<unsigned>(width));
      functions_.push_back(f);
      names_.push_back(k.name);
      if (!k.tensorMaps.empty() && major_ >= 9 && !d_->cuTensorMapEncodeTiled)
        return Status::error("kernel " + k.name + " takes TMA tensor maps, which this driver cannot encode "
                             "(cuTensorMapEncodeTiled: CUDA 12 drivers and later): update the driver");
      tensorMaps_.push_back(k.tensorMaps);
    }
    return Status::ok();
  }

  Status launch(size_t kernel, const KernelArgs &args, const LaunchConfig &config) override {
    bind();
    if (kernel >= functions_.size())
      return Status::error("launch of kernel " + std::to_string(kernel) + ", which was not loaded");
    KernelArgs copy = args;
    // A kernel with TMA tensor maps takes them as its second parameter,
    // encoded for this launch's buffers and step (docs/engine-format.md).
    // Before sm_90 the kernels compiled from the sources ignore them.
    alignas(128) unsigned char maps[4][kTensorMapBytes] = {};
    void *params[] = {&copy, maps};
    const std::vector<format::TensorMapDesc> &specs = tensorMaps_[kernel];
    for (size_t i = 0; major_ >= 9 && i < specs.size(); ++i)
      KILN_RETURN_IF_ERROR(encodeTensorMap(specs[i], args, maps[i], names_[kernel]));
    LaunchConfig c = config;
    c.grid = std::min(c.grid, waveBlocks_[kernel]);
    const unsigned width = clusterWidth_[kernel]; // the wave is whole clusters
    c.grid = (c.grid + width - 1) / width * width;
    if (c.dependent && dependentLaunch_) {
      // Programmatic dependent launch: the kernel may start while the
      // previous one finishes; it waits for it itself (griddepcontrol.wait).
      CUlaunchAttribute attr = {};
      attr.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
      attr.value.programmaticStreamSerializationAllowed = 1;
      CUlaunchConfig lc = {c.grid, 1, 1, c.block, 1, 1, c.smem, stream_, &attr, 1};
      return check(d_->cuLaunchKernelEx(&lc, functions_[kernel], params, nullptr), "launching " + names_[kernel]);
    }
    return check(d_->cuLaunchKernel(functions_[kernel], c.grid, 1, 1, c.block, 1, 1, c.smem, stream_, params,
                                    nullptr),
                 "launching " + names_[kernel]);
  }
  Status timedLaunch(size_t kernel, const KernelArgs &args, const LaunchConfig &c, double &us) override {
    bind();
    LaunchConfig serial = c;
    serial.dependent = false;
    return timed([&] { return launch(kernel, args, serial); }, "running " + names_[kernel], us);
  }
  Status copyBandwidth(double &bytesPerSecond) override {
    bind();
    // Two 512 MiB buffers, far past the L2: the median of 10 copies, each
    // counted as the bytes read plus the bytes written.
    const size_t bytes = size_t(512) << 20;
    DevPtr a = 0, b = 0;
    KILN_RETURN_IF_ERROR(alloc(bytes, a));
    Status s = alloc(bytes, b);
    std::vector<double> us;
    for (int i = 0; s && i < 12; ++i) {
      double t = 0;
      s = timed([&] { return check(d_->cuMemcpyDtoDAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, stream_),
                                   "copying on the GPU"); },
                "copying on the GPU", t);
      if (s && i >= 2)
        us.push_back(t);
    }
    free(a);
    free(b);
    KILN_RETURN_IF_ERROR(s);
    std::sort(us.begin(), us.end());
    bytesPerSecond = 2.0 * static_cast<double>(bytes) / (us[us.size() / 2] * 1e-6);
    return Status::ok();
  }
  Status synchronize() override {
    bind();
    return check(d_->cuStreamSynchronize(stream_), "running the kernels");
  }

  bool supportsGraphs() const override { return true; }
  Status beginGraph() override {
    bind();
    return check(d_->cuStreamBeginCapture(stream_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "starting a graph capture");
  }
  Status endGraph(uint64_t key) override {
    bind();
    CUgraph g = nullptr;
    KILN_RETURN_IF_ERROR(check(d_->cuStreamEndCapture(stream_, &g), "ending a graph capture"));
    CUgraphExec exec = nullptr;
    Status s = check(d_->cuGraphInstantiate(&exec, g, 0), "instantiating a graph");
    d_->cuGraphDestroy(g);
    KILN_RETURN_IF_ERROR(s);
    if (auto it = graphs_.find(key); it != graphs_.end())
      d_->cuGraphExecDestroy(it->second);
    graphs_[key] = exec;
    return Status::ok();
  }
  bool hasGraph(uint64_t key) const override { return graphs_.count(key) != 0; }
  Status runGraph(uint64_t key) override {
    bind();
    auto it = graphs_.find(key);
    if (it == graphs_.end())
      return Status::error("no graph " + std::to_string(key));
    return check(d_->cuGraphLaunch(it->second, stream_), "launching a graph");
  }
  Status timeGraph(uint64_t key, int reps, double &us) override {
    bind();
    return timed(
        [&] {
          for (int i = 0; i < reps; ++i)
            KILN_RETURN_IF_ERROR(runGraph(key));
          return Status::ok();
        },
        "running a graph", us);
  }
  bool supportsDependentLaunch() const override { return dependentLaunch_; }

private:
  /// `t` over this launch's buffer p[t.operand], with its rows at this step.
  Status encodeTensorMap(const format::TensorMapDesc &t, const KernelArgs &a, void *out, const std::string &kernel) {
    const uint64_t base = a.p[t.operand];
    if (!base || base % 16)
      return Status::error("launching " + kernel + ": tensor map " + std::to_string(t.operand) +
                           " needs a 16-byte aligned buffer, got " + std::to_string(base));
    // A step without rows launches no work; the map still has to be valid.
    const int64_t rows = std::max<int64_t>(1, t.rows.eval(a.batch, a.tokens, a.pages, a.maxBlocks));
    const unsigned long long dims[2] = {static_cast<unsigned long long>(t.cols),
                                        static_cast<unsigned long long>(rows)};
    const unsigned long long strides[1] = {static_cast<unsigned long long>(t.cols) * 2};
    const unsigned box[2] = {static_cast<unsigned>(t.boxCols), static_cast<unsigned>(t.boxRows)};
    const unsigned elementStrides[2] = {1, 1};
    int dtype = t.dtype == "bf16" ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    return check(d_->cuTensorMapEncodeTiled(out, dtype, 2, reinterpret_cast<void *>(base), dims, strides, box,
                                            elementStrides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                 "encoding tensor map " + std::to_string(t.operand) + " of " + kernel + " (" +
                     std::to_string(rows) + " x " + std::to_string(t.cols) + ")");
  }

  /// Device time of what `work` enqueues, waited for (events around it).
  Status timed(const std::function<Status()> &work, const std::string &what, double &us) {
    KILN_RETURN_IF_ERROR(ensureEvents());
    KILN_RETURN_IF_ERROR(check(d_->cuEventRecord(events_[0], stream_), "recording an event"));
    KILN_RETURN_IF_ERROR(work());
    KILN_RETURN_IF_ERROR(check(d_->cuEventRecord(events_[1], stream_), "recording an event"));
    KILN_RETURN_IF_ERROR(check(d_->cuEventSynchronize(events_[1]), what));
    float ms = 0;
    KILN_RETURN_IF_ERROR(check(d_->cuEventElapsedTime(&ms, events_[0], events_[1]), "timing " + what));
    us = 1e3 * static_cast<double>(ms);
    return Status::ok();
  }
  Status ensureEvents() {
    for (CUevent &e : events_)
      if (!e)
        KILN_RETURN_IF_ERROR(check(d_->cuEventCreate(&e, CU_EVENT_DEFAULT), "creating an event"));
    return Status::ok();
  }

  const Driver *d_ = nullptr;
  bool dependentLaunch_ = false;
  int64_t sms_ = 0;
  int major_ = 0; // compute capability
  CUevent events_[2] = {nullptr, nullptr};
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  CUstream aside_ = nullptr; // uploadAside's copies
  static constexpr size_t kPinnedBytes = 1 << 20;
  void *pinnedUp_ = nullptr, *pinnedDown_ = nullptr; // page-locked staging
  CUevent uploaded_ = nullptr;                       // the last copy from pinnedUp_
  bool uploadPending_ = false;
  // downloadBegin's copies: slot i of pinnedDown_ past the first
  // kPinnedBytes, and the event after its copy.
  static constexpr size_t kSlotBytes = 64 << 10;
  CUevent landed_[kDownloadsInFlight] = {};
  int nextSlot_ = 0;
  unsigned char *slot(int i) { return static_cast<unsigned char *>(pinnedDown_) + kPinnedBytes + i * kSlotBytes; }
  std::string arch_, describe_;
  std::vector<CUmodule> modules_;
  std::vector<CUfunction> functions_;
  std::vector<std::string> names_;
  std::vector<unsigned> waveBlocks_; // blocks of one full wave, per kernel
  std::vector<unsigned> clusterWidth_; // blocks of a cluster, per kernel (1: none)
  std::vector<std::vector<format::TensorMapDesc>> tensorMaps_; // per kernel
  std::map<uint64_t, CUgraphExec> graphs_;
};

} // namespace

Status openCudaDevice(std::unique_ptr<Device> &out) {
  auto d = std::make_unique<CudaDevice>();
  KILN_RETURN_IF_ERROR(d->open());
  out = std::move(d);
  return Status::ok();
}

} // namespace kiln::rt
