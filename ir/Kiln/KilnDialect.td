//===- KilnDialect.td - the kiln graph dialect -------------*- tablegen -*-===//
//
// Tensor ops with value semantics on builtin tensor types. Token and batch
// dimensions are dynamic (`?`); weights are named, never embedded.
//
//===----------------------------------------------------------------------===//
#ifndef KILN_DIALECT_TD
#define KILN_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Transformer graphs: primitive tensor ops and composites";
  let description = [{
    The graph level of kiln. Importers produce it from Hugging Face
    directories and ONNX files; graph passes raise primitive patterns to
    composites (`kiln.rms_norm`, `kiln.rope`, `kiln.attention`, ...), insert
    the paged KV cache, fuse (`kiln.fused`) and choose tiles. Every op has
    value semantics on builtin ranked tensors; results of shape-changing ops
    are inferred from operands and attributes, and a result type that differs
    from the inferred one is a verifier error.
  }];
  let useDefaultAttributePrinterParser = 1;
}

class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic, traits>;

// Element types a kiln tensor may hold.
def Kiln_Float : AnyTypeOf<[F32, F16, BF16, F64]>;
def Kiln_Int : AnyTypeOf<[I1, I8, I32, I64]>;
def Kiln_FloatTensor : RankedTensorOf<[Kiln_Float]>;
def Kiln_IntTensor : RankedTensorOf<[I8, I32, I64]>;
def Kiln_BoolTensor : RankedTensorOf<[I1]>;
def Kiln_Tensor : RankedTensorOf<[Kiln_Float, Kiln_Int]>;

#endif // KILN_DIALECT_TD
