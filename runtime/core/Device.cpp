//===- Device.cpp - opening a device by name ------------------------------===//
#include "runtime/core/Device.h"

#include <cstring>

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

Status Device::downloadBegin(DevPtr src, size_t bytes, int &ticket) {
  ticket = nextTicket_;
  nextTicket_ = (nextTicket_ + 1) % kDownloadsInFlight;
  early_[ticket].resize(bytes);
  return download(early_[ticket].data(), src, bytes);
}

Status Device::downloadEnd(int ticket, void *dst, size_t bytes) {
  if (ticket < 0 || ticket >= kDownloadsInFlight || early_[ticket].size() != bytes)
    return Status::error("downloadEnd: no download of " + std::to_string(bytes) + " bytes under ticket " +
                         std::to_string(ticket));
  std::memcpy(dst, early_[ticket].data(), bytes);
  return Status::ok();
}

Status Device::copyBandwidth(double &) { return Status::error(describe() + " cannot measure its copy bandwidth"); }

Status openDevice(const std::string &name, std::unique_ptr<Device> &out, std::string *fallback) {
  if (name == "cuda")
    return openCudaDevice(out);
  if (name == "host")
    return openHostDevice(out);
  if (name == "auto") {
    // The GPU when there is one, else the host (saying why in `fallback`).
    Status cuda = openCudaDevice(out);
    if (cuda)
      return Status::ok();
    if (fallback)
      *fallback = cuda.message();
    return openHostDevice(out);
  }
  return Status::error("unknown device '" + name + "' (cuda, host or auto)");
}

} // namespace kiln::rt
