//===- Npy.h - read and write numpy .npy files ----------------------*- C++ -*-===//
//
// Version 1/2 .npy, little-endian, C order. Float16, float32, float64, int8,
// int32, int64 and bool; bf16 tensors are written as float32 (exact).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERP_NPY_H
#define KILN_INTERP_NPY_H

#include "runtime/kernels/host/Tensor.h"

#include <string>

namespace kiln::interp {

/// Reads `path`; errors name the file and what is wrong with it.
host::Status readNpy(const std::string &path, host::Tensor &out);
host::Status writeNpy(const std::string &path, const host::Tensor &t);

} // namespace kiln::interp

#endif
