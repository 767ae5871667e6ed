//===- HostOpConversion.h - a kiln op as a host::HostOp ----------*- C++ -*-===//
//
// The one conversion from the IR to what the host kernels evaluate: the
// op's mnemonic, every attribute by its IR name (defaults filled in; enums
// as their keywords), result dtypes and declared shapes, a constant's value.
// The interpreter evaluates through it, and codegen serialises kernels' host
// programs from it, so the IR and the runtime's host device agree.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_INTERP_HOSTOPCONVERSION_H
#define KILN_INTERP_HOSTOPCONVERSION_H

#include "runtime/kernels/host/HostOp.h"

#include "mlir/IR/Operation.h"

namespace kiln::interp {

/// Converts `op` (a kiln op other than weight and fused); errors name what
/// cannot be converted.
Status toHostOp(mlir::Operation *op, host::HostOp &out);

} // namespace kiln::interp

#endif
