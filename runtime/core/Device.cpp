//===- Device.cpp - opening a device by name ------------------------------===//
#include "runtime/core/Device.h"

namespace kiln::rt {

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
