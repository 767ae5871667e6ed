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

namespace kiln {
/// The module attribute kiln-dequant-at-load writes: a dictionary from a
/// weight's name to how the loader computes it from packed tensors
/// (`qweight`, `scales`, optional `zeros` and `g_idx` names; `packing`,
/// `bits`, `group_size` as kiln.dequant's).
inline constexpr llvm::StringLiteral kDequantWeightsAttr = "kiln.dequant_weights";
} // namespace kiln

#endif
