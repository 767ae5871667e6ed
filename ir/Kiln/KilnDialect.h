//===- KilnDialect.h - the kiln graph dialect ---------------------*- C++ -*-===//
#ifndef KILN_IR_KILN_KILNDIALECT_H
#define KILN_IR_KILN_KILNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"

#include "ir/Kiln/KilnDialect.h.inc"
#include "ir/Kiln/KilnEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "ir/Kiln/KilnAttrs.h.inc"

#endif
