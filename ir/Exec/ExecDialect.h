//===- ExecDialect.h - the kiln_exec dialect ----------------------*- C++ -*-===//
#ifndef KILN_IR_EXEC_EXECDIALECT_H
#define KILN_IR_EXEC_EXECDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"

#include "ir/Exec/ExecDialect.h.inc"

#define GET_TYPEDEF_CLASSES
#include "ir/Exec/ExecTypes.h.inc"

#endif
