//===- KilnDialect.cpp - the kiln graph dialect ---------------------------===//
#include "ir/Kiln/KilnDialect.h"
#include "ir/Kiln/KilnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace kiln;

#include "ir/Kiln/KilnDialect.cpp.inc"
#include "ir/Kiln/KilnEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "ir/Kiln/KilnAttrs.cpp.inc"

void KilnDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "ir/Kiln/KilnAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "ir/Kiln/KilnOps.cpp.inc"
      >();
}
