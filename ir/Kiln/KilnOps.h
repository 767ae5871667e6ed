//===- KilnOps.h - ops of the kiln graph dialect ------------------*- C++ -*-===//
#ifndef KILN_IR_KILN_KILNOPS_H
#define KILN_IR_KILN_KILNOPS_H

#include "ir/Kiln/KilnDialect.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace kiln {

/// numpy broadcasting of the operands' shapes; the result element type is
/// `elementType`, or the first operand's when null. Fails (with a diagnostic
/// at `loc`) on incompatible shapes or differing element types.
llvm::LogicalResult
inferBroadcastResult(std::optional<mlir::Location> loc, mlir::ValueRange operands,
                     mlir::Type elementType,
                     llvm::SmallVectorImpl<mlir::Type> &inferred);

/// The result of reducing `input` over `axes`.
llvm::LogicalResult inferReduceResult(std::optional<mlir::Location> loc,
                                      mlir::Value input,
                                      llvm::ArrayRef<int64_t> axes, bool keepDims,
                                      llvm::SmallVectorImpl<mlir::Type> &inferred);

/// The result dimensions of a reshape pattern (see kiln.reshape) applied to
/// `input` (which may hold ShapedType::kDynamic). Fails with a message.
llvm::FailureOr<llvm::SmallVector<int64_t>>
reshapeResult(llvm::ArrayRef<int64_t> input, llvm::ArrayRef<int64_t> pattern,
              std::string &error);

/// ONNX Slice on one dimension of size `dim`: the clamped first index and the
/// number of elements taken.
struct SliceRange {
  int64_t start;
  int64_t length;
};
SliceRange sliceRange(int64_t dim, int64_t start, int64_t end, int64_t step);

} // namespace kiln

#define GET_OP_CLASSES
#include "ir/Kiln/KilnOps.h.inc"

namespace kiln {

/// Whether two kiln.rope / kiln.rope_cos_sin ops have the same frequencies
/// and magnitude (theta, scaling and its parameters, inv_freq; defaults
/// compare equal to their spelled-out values). Rotary dims not compared.
bool sameRopeFrequencies(mlir::Operation *a, mlir::Operation *b);

/// The kiln.rope_cos_sin of `rope`'s positions and frequencies over
/// `rotaryDim`, built at `b`'s insertion point.
RopeCosSinOp buildRopeCosSin(mlir::OpBuilder &b, RopeOp rope, int64_t rotaryDim);

} // namespace kiln

#endif
