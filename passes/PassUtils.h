//===- PassUtils.h - helpers shared by kiln's passes -------------*- C++ -*-===//
#ifndef KILN_PASSES_PASSUTILS_H
#define KILN_PASSES_PASSUTILS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace kiln {

/// Re-derives result types in `func` after its argument types became more
/// static (e.g. decode's one token): ops with type inference take the
/// inferred types, ops whose result has their first operand's type (norms,
/// rope, elementwise, the KV-cache ops) follow it, casts keep their element
/// type. The function type is updated to the returned values' types.
mlir::LogicalResult refineTypes(mlir::func::FuncOp func);

} // namespace kiln

#endif
