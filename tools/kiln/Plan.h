//===- Plan.h - kiln plan -------------------------------------------*- C++ -*-===//
#ifndef KILN_TOOLS_KILN_PLAN_H
#define KILN_TOOLS_KILN_PLAN_H

#include <cstdint>
#include <string>

namespace kiln::tool {

struct PlanOptions {
  std::string model;
  std::string gpu = "h100-sxm-80gb";
  int64_t maxBatch = 1, maxSeq = 4096, maxNumTokens = 512, pageSize = 16;
  bool json = false;
  std::string svg; // draw buffer lifetimes here when set
};

/// `kiln plan`: prints the memory manifest; returns the exit code.
int plan(const PlanOptions &options);

} // namespace kiln::tool

#endif
