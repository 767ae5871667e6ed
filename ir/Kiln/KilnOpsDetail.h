//===- KilnOpsDetail.h - shape helpers the kiln op verifiers share -*- C++ -*-===//
//
// Internal to ir/Kiln: KilnOps.cpp (element-wise, matmul, shape and
// movement ops) and TransformerOps.cpp (RoPE, attention, the paged KV
// cache, fused bodies) verify with them.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_IR_KILN_KILNOPSDETAIL_H
#define KILN_IR_KILN_KILNOPSDETAIL_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Value.h"

#include <string>

namespace kiln::detail {

constexpr int64_t kDynamic = mlir::ShapedType::kDynamic;

inline mlir::RankedTensorType rankedType(mlir::Value v) {
  return v ? mlir::dyn_cast<mlir::RankedTensorType>(v.getType()) : mlir::RankedTensorType();
}

inline bool isDyn(int64_t d) { return mlir::ShapedType::isDynamic(d); }

/// Two dimensions that must be equal at run time: the static one when one is
/// dynamic; failure when both are static and differ.
inline mlir::FailureOr<int64_t> mergeDims(int64_t a, int64_t b) {
  if (isDyn(a))
    return b;
  if (isDyn(b) || a == b)
    return a;
  return mlir::failure();
}

inline std::string dimStr(int64_t d) { return isDyn(d) ? "?" : std::to_string(d); }

} // namespace kiln::detail

#endif
