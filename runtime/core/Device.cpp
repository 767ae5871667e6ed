//===- Device.cpp - opening a device by name ------------------------------===//
#include "runtime/core/Device.h"

#include <chrono>

namespace kiln::rt {

Status Device::timedLaunch(size_t kernel, const KernelArgs &args, const LaunchConfig &config, double &us) {
  KILN_RETURN_IF_ERROR(synchronize());
  auto start = std::chrono::steady_clock::now();
  KILN_RETURN_IF_ERROR(launch(kernel, args, config));
  KILN_RETURN_IF_ERROR(synchronize());
  us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  return Status::ok();
}

Status Device::copyBandwidth(double &) { return Status::error(describe() + " cannot measure its copy bandwidth"); }

Status openDevice(const std::string &name, std::unique_ptr<Device> &out) {
  if (name == "cuda")
    return openCudaDevice(out);
  if (name == "host")
    return openHostDevice(out);
  if (name == "auto") {
    // The GPU when there is one, else the host.
    if (openCudaDevice(out))
      return Status::ok();
    return openHostDevice(out);
  }
  return Status::error("unknown device '" + name + "' (cuda, host or auto)");
}

} // namespace kiln::rt
