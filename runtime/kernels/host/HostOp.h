//===- HostOp.h - one kiln op, evaluated with the host kernels --*- C++ -*-===//
//
// The bridge between the IR and the host kernels, without MLIR: a HostOp is
// a kiln op's name (its mnemonic), attributes (by their IR names, defaults
// filled in), result dtypes and declared result shapes (-1: dynamic), and for
// `constant` its value. `evalHostOp` computes each result's concrete shape,
// checks it against the declared one, allocates it and runs the kernel.
//
// Two callers share it, so an op's meaning on the host is written once: the
// interpreter (interp/, which converts MLIR ops) and the runtime's host
// device (which reads kernels' host programs from the engine manifest).
//
//===----------------------------------------------------------------------===//
#ifndef KILN_RUNTIME_KERNELS_HOST_HOSTOP_H
#define KILN_RUNTIME_KERNELS_HOST_HOSTOP_H

#include "runtime/kernels/host/Tensor.h"

#include <map>
#include <string>
#include <vector>

namespace kiln::host {

struct HostAttr {
  enum class Kind { Int, Float, Ints, Floats, Str, Bool } kind = Kind::Int;
  int64_t i = 0;
  double f = 0;
  bool b = false;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
};

struct HostOp {
  std::string name; // "add", "rms_norm", "paged_attention", ...
  std::map<std::string, HostAttr> attrs;
  std::vector<DType> resultTypes;
  std::vector<Shape> resultShapes; // as declared: -1 for a dynamic dimension
  Tensor value;                    // `constant`

  bool has(const std::string &k) const { return attrs.count(k) != 0; }
  /// Typed reads; a missing attribute (or one of another kind) gives
  /// `otherwise`.
  int64_t getInt(const std::string &k, int64_t otherwise = 0) const;
  double getFloat(const std::string &k, double otherwise = 0) const;
  bool getBool(const std::string &k) const; // unit attributes: presence
  std::string getStr(const std::string &k) const;
  std::vector<int64_t> getInts(const std::string &k) const;
  std::vector<double> getFloats(const std::string &k) const;
};

/// Evaluates `op` on `operands`, filling `results` (one per result).
/// `kvLayerBase` is added to kv_append/paged_attention layers (a kernel body
/// names layer 0; its launch says which layer). Errors name the op.
Status evalHostOp(const HostOp &op, const std::vector<const Tensor *> &operands, std::vector<Tensor> &results,
                  int64_t kvLayerBase = 0);

struct RopeParams;
/// A rope op's parameters from its attributes; errors name what is unknown.
Status ropeParams(const HostOp &op, RopeParams &p);

/// ONNX Slice on one dimension of size `dim`: the clamped first index and the
/// number of elements taken.
struct SliceRange {
  int64_t start;
  int64_t length;
};
SliceRange sliceRange(int64_t dim, int64_t start, int64_t end, int64_t step);

/// A reshape pattern (0 copies an input dimension, -1 is inferred) applied
/// to the concrete `input` shape.
Status reshapeDims(const Shape &input, const std::vector<int64_t> &pattern, Shape &out);

} // namespace kiln::host

#endif
