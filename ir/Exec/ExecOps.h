//===- ExecOps.h - ops of the kiln_exec dialect -------------------*- C++ -*-===//
#ifndef KILN_IR_EXEC_EXECOPS_H
#define KILN_IR_EXEC_EXECOPS_H

#include "ir/Exec/ExecDialect.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace kiln::exec {
/// The kernel families codegen knows.
llvm::ArrayRef<llvm::StringRef> kernelFamilies();
/// Bytes of a statically shaped tensor (i1 as one byte).
int64_t tensorBytes(mlir::RankedTensorType t);
} // namespace kiln::exec

#include "ir/Exec/ExecEnums.h.inc"

#define GET_OP_CLASSES
#include "ir/Exec/ExecOps.h.inc"

#endif
