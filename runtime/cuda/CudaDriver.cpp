//===- CudaDriver.cpp - the CUDA driver API through dlopen ----------------===//
#include "runtime/cuda/CudaDriver.h"

#include <dlfcn.h>
#include <mutex>

namespace kiln::cuda {

namespace {

struct Loaded {
  Driver d{};
  Status status = Status::ok();
};

template <typename F> bool resolve(void *lib, const char *name, F &out, std::string &missing) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (!out)
    missing += std::string(missing.empty() ? "" : ", ") + name;
  return out != nullptr;
}

Loaded open() {
  Loaded l;
  void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *e = dlerror();
    l.status = Status::error(std::string("the NVIDIA driver (libcuda.so.1) is not on this machine (") +
                             (e ? e : "dlopen failed") + "): run on a GPU machine or use the host device");
    return l;
  }
  std::string missing;
  Driver &d = l.d;
  resolve(lib, "cuInit", d.cuInit, missing);
  resolve(lib, "cuDriverGetVersion", d.cuDriverGetVersion, missing);
  resolve(lib, "cuDeviceGetCount", d.cuDeviceGetCount, missing);
  resolve(lib, "cuDeviceGet", d.cuDeviceGet, missing);
  resolve(lib, "cuDeviceGetName", d.cuDeviceGetName, missing);
  resolve(lib, "cuDeviceGetAttribute", d.cuDeviceGetAttribute, missing);
  resolve(lib, "cuDeviceTotalMem_v2", d.cuDeviceTotalMem, missing);
  resolve(lib, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain, missing);
  resolve(lib, "cuDevicePrimaryCtxRelease_v2", d.cuDevicePrimaryCtxRelease, missing);
  resolve(lib, "cuCtxSetCurrent", d.cuCtxSetCurrent, missing);
  resolve(lib, "cuCtxSynchronize", d.cuCtxSynchronize, missing);
  resolve(lib, "cuMemGetInfo_v2", d.cuMemGetInfo, missing);
  resolve(lib, "cuMemAlloc_v2", d.cuMemAlloc, missing);
  resolve(lib, "cuMemFree_v2", d.cuMemFree, missing);
  resolve(lib, "cuMemcpyHtoD_v2", d.cuMemcpyHtoD, missing);
  resolve(lib, "cuMemcpyDtoH_v2", d.cuMemcpyDtoH, missing);
  resolve(lib, "cuMemcpyHtoDAsync_v2", d.cuMemcpyHtoDAsync, missing);
  resolve(lib, "cuMemcpyDtoHAsync_v2", d.cuMemcpyDtoHAsync, missing);
  resolve(lib, "cuMemsetD8_v2", d.cuMemsetD8, missing);
  resolve(lib, "cuMemcpyDtoDAsync_v2", d.cuMemcpyDtoDAsync, missing);
  resolve(lib, "cuMemHostAlloc", d.cuMemHostAlloc, missing);
  resolve(lib, "cuMemFreeHost", d.cuMemFreeHost, missing);
  resolve(lib, "cuStreamWaitEvent", d.cuStreamWaitEvent, missing);
  resolve(lib, "cuModuleLoadData", d.cuModuleLoadData, missing);
  resolve(lib, "cuModuleUnload", d.cuModuleUnload, missing);
  resolve(lib, "cuModuleGetFunction", d.cuModuleGetFunction, missing);
  resolve(lib, "cuFuncSetAttribute", d.cuFuncSetAttribute, missing);
  resolve(lib, "cuFuncGetAttribute", d.cuFuncGetAttribute, missing);
  resolve(lib, "cuOccupancyMaxActiveBlocksPerMultiprocessor", d.cuOccupancyMaxActiveBlocksPerMultiprocessor, missing);
  resolve(lib, "cuLaunchKernel", d.cuLaunchKernel, missing);
  std::string optional;
  resolve(lib, "cuLaunchKernelEx", d.cuLaunchKernelEx, optional);
  resolve(lib, "cuTensorMapEncodeTiled", d.cuTensorMapEncodeTiled, optional);
  resolve(lib, "cuOccupancyMaxActiveClusters", d.cuOccupancyMaxActiveClusters, optional);
  resolve(lib, "cuStreamCreate", d.cuStreamCreate, missing);
  resolve(lib, "cuStreamDestroy_v2", d.cuStreamDestroy, missing);
  resolve(lib, "cuStreamSynchronize", d.cuStreamSynchronize, missing);
  resolve(lib, "cuStreamBeginCapture_v2", d.cuStreamBeginCapture, missing);
  resolve(lib, "cuStreamEndCapture", d.cuStreamEndCapture, missing);
  resolve(lib, "cuGraphInstantiateWithFlags", d.cuGraphInstantiate, missing);
  resolve(lib, "cuGraphLaunch", d.cuGraphLaunch, missing);
  resolve(lib, "cuGraphDestroy", d.cuGraphDestroy, missing);
  resolve(lib, "cuGraphExecDestroy", d.cuGraphExecDestroy, missing);
  resolve(lib, "cuEventCreate", d.cuEventCreate, missing);
  resolve(lib, "cuEventRecord", d.cuEventRecord, missing);
  resolve(lib, "cuEventSynchronize", d.cuEventSynchronize, missing);
  resolve(lib, "cuEventElapsedTime", d.cuEventElapsedTime, missing);
  resolve(lib, "cuEventDestroy_v2", d.cuEventDestroy, missing);
  resolve(lib, "cuGetErrorName", d.cuGetErrorName, missing);
  resolve(lib, "cuGetErrorString", d.cuGetErrorString, missing);
  if (!missing.empty()) {
    l.status = Status::error("the NVIDIA driver lacks " + missing + ": update the driver");
    return l;
  }
  if (CUresult r = d.cuInit(0); r != 0) {
    const char *name = nullptr;
    d.cuGetErrorName(r, &name);
    l.status = Status::error(std::string("cuInit failed (") + (name ? name : "?") +
                             "): no usable NVIDIA GPU on this machine");
  }
  return l;
}

} // namespace

Status driver(const Driver *&out) {
  static Loaded loaded = open();
  out = loaded.status ? &loaded.d : nullptr;
  return loaded.status;
}

Status check(CUresult r, const std::string &what) {
  if (r == 0)
    return Status::ok();
  const Driver *d = nullptr;
  const char *name = nullptr, *text = nullptr;
  if (driver(d)) {
    d->cuGetErrorName(r, &name);
    d->cuGetErrorString(r, &text);
  }
  return Status::error(StatusCode::kDevice, what + " failed: " + (name ? name : "CUDA error " + std::to_string(r)) +
                       (text ? std::string(" (") + text + ")" : std::string()));
}

} // namespace kiln::cuda
