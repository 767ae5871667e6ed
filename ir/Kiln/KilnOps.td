//===- KilnOps.td - ops of the kiln graph dialect ----------*- tablegen -*-===//
#ifndef KILN_OPS_TD
#define KILN_OPS_TD

include "ir/Kiln/KilnDialect.td"
include "ir/Kiln/KilnAttrs.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/OpAsmInterface.td"
include "mlir/IR/BuiltinAttributeInterfaces.td"

//===----------------------------------------------------------------------===//
// Weights and constants
//===----------------------------------------------------------------------===//

def Kiln_WeightOp : Kiln_Op<"weight", [Pure]> {
  let summary = "a named tensor of the model's weight source";
  let description = [{
    References a weight by the name it has in the model's safetensors or ONNX
    initializers. The data is never embedded: the runtime binds it at load, so
    compiling an 8B model reads no weight bytes. The shape must be static.

    With `transposed` (2-D only), the stored tensor is the transpose of the
    result, `[K, N]` for a `[N, K]` result. With `sources`, the weight is the
    row-wise (axis 0) concatenation of the named weights (each transposed
    first when `transposed`), `source_rows` rows each. Both are layout
    transforms applied once at load; `fuse` puts matmul weights in `[N, K]`
    form and merges the Q/K/V and gate/up projections this way.

    ```mlir
    %w = kiln.weight "model.layers.0.mlp.up_proj.weight" : tensor<8192x2048xbf16>
    %qkv = kiln.weight "layers.0.qkv" {sources = ["q", "k", "v"], source_rows = array<i64: 64, 32, 32>} : tensor<128x64xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<StrArrayAttr>:$sources,
                       OptionalAttr<DenseI64ArrayAttr>:$source_rows,
                       UnitAttr:$transposed);
  let builders = [
    OpBuilder<(ins "::mlir::Type":$type, "::llvm::StringRef":$name), [{
      build($_builder, $_state, type, $_builder.getStringAttr(name), nullptr, nullptr, nullptr);
    }]>
  ];
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_DequantOp : Kiln_Op<"dequant", [Pure, AttrSizedOperandSegments]> {
  let summary = "a weight-only quantized matrix, unpacked and scaled to floats";
  let description = [{
    The `[K, N]` weight (a matmul's right-hand side: `K` inputs, `N`
    outputs) that GPTQ and AWQ checkpoints store as `bits`-bit integers
    (4 or 8) packed `p = 32 / bits` to an int32 word, with a float scale and
    an integer zero point per group of `group_size` rows of K (-1: one group
    for all of K) and column:

    - `gptq`, `gptq_v2`: `qweight[K / p, N]`, packed along K: value (k, n)
      is bits `bits * (k % p)` upwards of word `qweight[k / p, n]`; `zeros`
      `[G, N / p]` packed along N the same way, stored minus one in `gptq`
      (checkpoint_format gptq) and as they are in `gptq_v2`;
    - `awq` (4 bits): `qweight[K, N / p]` and `zeros[G, N / p]`, packed
      along N, column `8j + c` in nibble `[0, 4, 1, 5, 2, 6, 3, 7][c]` of word
      `j` (AutoAWQ's order 0 2 4 6 1 3 5 7).

    Row k is in group `g_idx[k]` when given (GPTQ's `desc_act`), else
    `k / group_size`; `scales` is `[G, N]`. Without `zeros` the zero point is
    `2^(bits - 1)` (symmetric). Element (k, n) is `(q - z) * scale`, computed
    in f32 and rounded once to the result's dtype.

    ```mlir
    %w = kiln.dequant %qw, %s zeros %z {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>}
        : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<2x64xi32>) -> tensor<256x512xbf16>
    ```
  }];
  let arguments = (ins RankedTensorOf<[I32]>:$qweight, Kiln_FloatTensor:$scales,
                       Optional<RankedTensorOf<[I32]>>:$zeros, Optional<RankedTensorOf<[I32]>>:$g_idx,
                       Kiln_QuantPackingAttr:$packing, I64Attr:$bits, I64Attr:$group_size);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $qweight `,` $scales (`zeros` $zeros^)? (`g_idx` $g_idx^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Kiln_ConstantOp : Kiln_Op<"constant",
    [ConstantLike, Pure, InferTypeOpAdaptor]> {
  let summary = "a small tensor literal";
  let description = [{
    A tensor value written in the IR (masks, shape arithmetic, small tables).
    Large tensors belong in `kiln.weight`.

    ```mlir
    %c = kiln.constant dense<[1.0, 2.0]> : tensor<2xf32>
    ```
  }];
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class Kiln_UnaryOp<string mnemonic, string what, TypeConstraint type = Kiln_FloatTensor,
                   list<Trait> traits = []>
    : Kiln_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType])> {
  let summary = "elementwise " # what;
  let description = "Applies " # what # [{ to every element; the result has
    the operand's type. Accumulation and transcendental math happen in f32
    whatever the storage type.

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x : tensor<?x64xbf16>
    ```
  }];
  let arguments = (ins type:$input);
  let results = (outs type:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Kiln_NegOp : Kiln_UnaryOp<"neg", "negation", Kiln_Tensor>;
def Kiln_AbsOp : Kiln_UnaryOp<"abs", "absolute value", Kiln_Tensor>;
def Kiln_ExpOp : Kiln_UnaryOp<"exp", "e^x">;
def Kiln_LogOp : Kiln_UnaryOp<"log", "the natural logarithm">;
def Kiln_SqrtOp : Kiln_UnaryOp<"sqrt", "the square root">;
def Kiln_RsqrtOp : Kiln_UnaryOp<"rsqrt", "the reciprocal square root">;
def Kiln_ReciprocalOp : Kiln_UnaryOp<"reciprocal", "1/x">;
def Kiln_TanhOp : Kiln_UnaryOp<"tanh", "the hyperbolic tangent">;
def Kiln_SigmoidOp : Kiln_UnaryOp<"sigmoid", "the logistic sigmoid">;
def Kiln_SiluOp : Kiln_UnaryOp<"silu", "x * sigmoid(x)">;
def Kiln_ErfOp : Kiln_UnaryOp<"erf", "the error function">;
def Kiln_SinOp : Kiln_UnaryOp<"sin", "the sine">;
def Kiln_CosOp : Kiln_UnaryOp<"cos", "the cosine">;
def Kiln_ReluOp : Kiln_UnaryOp<"relu", "max(x, 0)">;
def Kiln_NotOp : Kiln_UnaryOp<"not", "logical negation", Kiln_BoolTensor>;

def Kiln_GeluOp : Kiln_Op<"gelu", [Pure, SameOperandsAndResultType]> {
  let summary = "elementwise GELU, exact or with the tanh approximation";
  let description = [{
    `x * 0.5 * (1 + erf(x / sqrt(2)))`, or with `tanh_approximation`
    `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (GPT-2's `gelu_new`).

    ```mlir
    %y = kiln.gelu %x {tanh_approximation} : tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, UnitAttr:$tanh_approximation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

class Kiln_BinaryOp<string mnemonic, string what, TypeConstraint type = Kiln_Tensor>
    : Kiln_Op<mnemonic, [Pure, InferTypeOpAdaptor]> {
  let summary = "elementwise " # what # " with numpy broadcasting";
  let description = "Computes " # what # [{ elementwise after broadcasting
    both operands to a common shape (numpy rules: align trailing dimensions; a
    dimension of 1 stretches). Both operands have the same element type. A
    dynamic dimension against 1 stays dynamic; against a static size it takes
    that size.

    ```mlir
    %y = kiln.}] # mnemonic # [{ %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins type:$lhs, type:$rhs);
  let results = (outs type:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(::mlir::MLIRContext *,
        std::optional<::mlir::Location> loc, Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferred) {
      return ::kiln::inferBroadcastResult(loc, {adaptor.getLhs(), adaptor.getRhs()},
                                          ::mlir::Type(), inferred);
    }
  }];
}

def Kiln_AddOp : Kiln_BinaryOp<"add", "a + b">;
def Kiln_SubOp : Kiln_BinaryOp<"sub", "a - b">;
def Kiln_MulOp : Kiln_BinaryOp<"mul", "a * b">;
def Kiln_DivOp : Kiln_BinaryOp<"div", "a / b (truncating for integers)">;
def Kiln_PowOp : Kiln_BinaryOp<"pow", "a ^ b", Kiln_FloatTensor>;
def Kiln_MaxOp : Kiln_BinaryOp<"max", "max(a, b)">;
def Kiln_MinOp : Kiln_BinaryOp<"min", "min(a, b)">;
def Kiln_AndOp : Kiln_BinaryOp<"and", "logical and", Kiln_BoolTensor>;
def Kiln_OrOp : Kiln_BinaryOp<"or", "logical or", Kiln_BoolTensor>;

def Kiln_CompareOp : Kiln_Op<"compare", [Pure, InferTypeOpAdaptor]> {
  let summary = "elementwise comparison with broadcasting, giving i1";
  let description = [{
    Compares broadcast operands of the same element type.

    ```mlir
    %m = kiln.compare lt, %a, %b : tensor<?x?xi64>, tensor<?x1xi64> -> tensor<?x?xi1>
    ```
  }];
  let arguments = (ins Kiln_ComparePredicateAttr:$predicate, Kiln_Tensor:$lhs,
                       Kiln_Tensor:$rhs);
  let results = (outs Kiln_BoolTensor:$result);
  let assemblyFormat = [{
    $predicate `,` $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

def Kiln_WhereOp : Kiln_Op<"where", [Pure, InferTypeOpAdaptor]> {
  let summary = "select between two tensors by an i1 condition, broadcasting all three";
  let description = [{
    ```mlir
    %y = kiln.where %mask, %a, %b : tensor<?x?xi1>, tensor<?x?xf32>, tensor<f32> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins Kiln_BoolTensor:$condition, Kiln_Tensor:$on_true,
                       Kiln_Tensor:$on_false);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $condition `,` $on_true `,` $on_false attr-dict `:` type($condition) `,`
    type($on_true) `,` type($on_false) `->` type($result)
  }];
}

def Kiln_CastOp : Kiln_Op<"cast", [Pure]> {
  let summary = "convert the element type";
  let description = [{
    Converts every element (float to int truncates toward zero; to i1 tests
    for non-zero). Operand and result have the same shape.

    ```mlir
    %y = kiln.cast %x : tensor<?x64xbf16> to tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `to` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1; // a cast to its own type is its operand
}

//===----------------------------------------------------------------------===//
// Contractions, reductions, normalisations
//===----------------------------------------------------------------------===//

def Kiln_MatmulOp : Kiln_Op<"matmul", [Pure, InferTypeOpAdaptor]> {
  let summary = "numpy matmul, optionally with the right operand transposed";
  let description = [{
    `lhs[..., M, K] x rhs[..., K, N] -> [..., M, N]`, batch dimensions
    broadcast; with `transpose_b` the right operand is `[..., N, K]` (the
    layout of a Hugging Face `nn.Linear` weight). Rank-1 operands are promoted
    and the added dimension dropped, as in numpy. Operands share an element
    type; accumulation is f32.

    ```mlir
    %y = kiln.matmul %x, %w {transpose_b} : tensor<1x?x64xbf16>, tensor<172x64xbf16> -> tensor<1x?x172xbf16>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$lhs, Kiln_FloatTensor:$rhs,
                       UnitAttr:$transpose_b);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs attr-dict `:` type($lhs) `,` type($rhs) `->` type($result)
  }];
}

class Kiln_ReduceOp<string mnemonic, string what>
    : Kiln_Op<mnemonic, [Pure, InferTypeOpAdaptor]> {
  let summary = what # " over the given axes";
  let description = "Reduces by " # what # [{ over `axes` (distinct, in
    `[0, rank)`); `keep_dims` keeps them with size 1.

    ```mlir
    %y = kiln.}] # mnemonic # [{ %x {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xf32> -> tensor<1x?x1xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$axes,
                       UnitAttr:$keep_dims);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let extraClassDefinition = [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(::mlir::MLIRContext *,
        std::optional<::mlir::Location> loc, Adaptor adaptor,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferred) {
      return ::kiln::inferReduceResult(loc, adaptor.getInput(), adaptor.getAxes(),
                                       adaptor.getKeepDims(), inferred);
    }
  }];
}

def Kiln_ReduceSumOp : Kiln_ReduceOp<"reduce_sum", "a sum">;
def Kiln_ReduceMeanOp : Kiln_ReduceOp<"reduce_mean", "a mean">;
def Kiln_ReduceMaxOp : Kiln_ReduceOp<"reduce_max", "a maximum">;
def Kiln_ReduceMinOp : Kiln_ReduceOp<"reduce_min", "a minimum">;

def Kiln_ArgmaxOp : Kiln_Op<"argmax", [Pure, InferTypeOpAdaptor]> {
  let summary = "index of the largest element along an axis (the first on ties)";
  let description = [{
    ```mlir
    %t = kiln.argmax %logits {axis = 1 : i64} : tensor<?x512xf32> -> tensor<?xi64>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis, UnitAttr:$keep_dims);
  let results = (outs RankedTensorOf<[I64]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Kiln_SoftmaxOp : Kiln_Op<"softmax", [Pure, SameOperandsAndResultType]> {
  let summary = "softmax along an axis";
  let description = [{
    `exp(x - max) / sum(exp(x - max))` along `axis` (in `[0, rank)`); a row
    that is entirely `-inf` gives zeros.

    ```mlir
    %p = kiln.softmax %s {axis = 3 : i64} : tensor<1x4x?x?xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, I64Attr:$axis);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_RmsNormOp : Kiln_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "RMSNorm over the last axis";
  let description = [{
    `x * rsqrt(mean(x^2, -1) + epsilon) * (weight + weight_offset)`, computed
    in f32. `weight` is 1-D with the size of the last axis. `weight_offset` is
    1 for Gemma-style norms that store `weight - 1`.

    ```mlir
    %y = kiln.rms_norm %x, %w {epsilon = 1.0e-05 : f32} : tensor<1x?x64xbf16>, tensor<64xbf16>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       F32Attr:$epsilon,
                       DefaultValuedAttr<F32Attr, "0.0f">:$weight_offset);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight)
  }];
  let hasVerifier = 1;
}

def Kiln_LayerNormOp : Kiln_Op<"layer_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "LayerNorm over the last axis, with an optional bias";
  let description = [{
    `(x - mean) * rsqrt(var + epsilon) * weight + bias` over the last axis,
    in f32; `weight` and `bias` are 1-D with the size of that axis.

    ```mlir
    %y = kiln.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f32} : tensor<1x?x64xf32>, tensor<64xf32>, tensor<64xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$input, Kiln_FloatTensor:$weight,
                       Optional<Kiln_FloatTensor>:$bias, F32Attr:$epsilon);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` type($input) `,` type($weight)
    (`,` type($bias)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def Kiln_GatherOp : Kiln_Op<"gather", [Pure, InferTypeOpAdaptor]> {
  let summary = "ONNX Gather: pick slices along an axis by integer indices";
  let description = [{
    The result shape is `data.shape[:axis] + indices.shape +
    data.shape[axis+1:]`. Negative indices count from the end; an index out of
    range is a run-time error. The embedding lookup is a gather on axis 0.

    ```mlir
    %e = kiln.gather %table[%ids] {axis = 0 : i64} : tensor<512x64xbf16>, tensor<1x?xi64> -> tensor<1x?x64xbf16>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$data, Kiln_IntTensor:$indices, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $data `[` $indices `]` attr-dict `:` type($data) `,` type($indices) `->` type($result)
  }];
}

def Kiln_ReshapeOp : Kiln_Op<"reshape", [Pure, InferTypeOpAdaptor]> {
  let summary = "reshape by a pattern: literal sizes, 0 to copy, one -1 to infer";
  let description = [{
    `shape` lists the result dimensions as in ONNX Reshape: a positive entry
    is that size, `0` copies the input dimension at the same index (so dynamic
    batch and token dimensions pass through), and one entry may be `-1`,
    "what the element count leaves" (dynamic when the input has other dynamic
    dimensions). With a static input the element counts must agree.

    ```mlir
    %y = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$shape);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasFolder = 1;
}

def Kiln_TransposeOp : Kiln_Op<"transpose", [Pure, InferTypeOpAdaptor]> {
  let summary = "permute dimensions";
  let description = [{
    Result dimension `i` is input dimension `permutation[i]`.

    ```mlir
    %y = kiln.transpose %x {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x4x16xf32> -> tensor<1x4x?x16xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$permutation);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  // The identity permutation, and a transpose undoing the one that produced
  // its input, fold to the earlier value.
  let hasFolder = 1;
}

def Kiln_ConcatOp : Kiln_Op<"concat", [Pure, InferTypeOpAdaptor]> {
  let summary = "join tensors along an axis";
  let description = [{
    All operands share element type, rank, and every dimension but `axis`.

    ```mlir
    %y = kiln.concat %a, %b {axis = 1 : i64} : tensor<1x?x16xf32>, tensor<1x1x16xf32> -> tensor<1x?x16xf32>
    ```
  }];
  let arguments = (ins Variadic<Kiln_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` type($inputs) `->` type($result)";
}

def Kiln_SliceOp : Kiln_Op<"slice", [Pure, InferTypeOpAdaptor]> {
  let summary = "strided slice with ONNX clamping rules, on every axis";
  let description = [{
    `starts`, `ends` and `steps` have one entry per dimension. Negative starts
    and ends count from the end; both are clamped to the dimension (ONNX Slice
    semantics), so `ends = 9223372036854775807` means "to the end". Steps are
    non-zero and may be negative. Dynamic input dimensions give dynamic result
    dimensions.

    ```mlir
    %y = kiln.slice %x {starts = array<i64: 0, 0, 32>, ends = array<i64: 1, 9223372036854775807, 64>, steps = array<i64: 1, 1, 1>} : tensor<1x?x64xf32> -> tensor<1x?x32xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, DenseI64ArrayAttr:$starts,
                       DenseI64ArrayAttr:$ends, DenseI64ArrayAttr:$steps);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Kiln_BroadcastToOp : Kiln_Op<"broadcast_to", [Pure]> {
  let summary = "broadcast to the result type's shape (numpy rules)";
  let description = [{
    The result type gives the shape. A dimension the input stretches from 1
    must be static in the result; other dimensions equal the input's.

    ```mlir
    %y = kiln.broadcast_to %x : tensor<1x64xf32> -> tensor<4x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_ArangeOp : Kiln_Op<"arange", [Pure, InferTypeOpAdaptor]> {
  let summary = "0, 1, ..., n-1 (plus start) where n is a dimension of a reference tensor";
  let description = [{
    Makes position ids for a dynamic token dimension without shape
    arithmetic: the result is 1-D i64 of size `dim(reference, axis)`.

    ```mlir
    %pos = kiln.arange %ids {axis = 1 : i64} : tensor<1x?xi64> -> tensor<?xi64>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$reference, I64Attr:$axis,
                       DefaultValuedAttr<I64Attr, "0">:$start);
  let results = (outs RankedTensorOf<[I64]>:$result);
  let assemblyFormat = "$reference attr-dict `:` type($reference) `->` type($result)";
}

//===----------------------------------------------------------------------===//
// Run-time shapes (what ONNX exports compute sizes with)
//===----------------------------------------------------------------------===//

def Kiln_I64Vector : 1DTensorOf<[I64]>;
def Kiln_Scalar : 0DTensorOf<[I64, I32, F32, F64]>;

def Kiln_ShapeOfOp : Kiln_Op<"shape_of", [Pure, InferTypeOpAdaptor]> {
  let summary = "the dimensions of a tensor, as a 1-D i64 tensor";
  let description = [{
    ONNX `Shape`. Static dimensions fold away at import; dynamic ones are
    read at run time.

    ```mlir
    %s = kiln.shape_of %x : tensor<1x?x64xf32> -> tensor<3xi64>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input);
  let results = (outs Kiln_I64Vector:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
}

def Kiln_RangeOp : Kiln_Op<"range", [Pure, InferTypeOpAdaptor]> {
  let summary = "start, start + delta, ... below limit (ONNX Range), from scalars";
  let description = [{
    The three operands are 0-D tensors of one type; the result has
    `max(0, ceil((limit - start) / delta))` elements. A zero delta is a
    run-time error.

    ```mlir
    %r = kiln.range %start, %limit, %delta : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
    ```
  }];
  let arguments = (ins Kiln_Scalar:$start, Kiln_Scalar:$limit, Kiln_Scalar:$delta);
  let results = (outs RankedTensorOf<[I64, I32, F32, F64]>:$result);
  let assemblyFormat = [{
    $start `,` $limit `,` $delta attr-dict `:` type($start) `,` type($limit) `,`
    type($delta) `->` type($result)
  }];
}

def Kiln_ExpandOp : Kiln_Op<"expand", [Pure, InferTypeOpAdaptor]> {
  let summary = "broadcast to a shape given at run time (ONNX Expand)";
  let description = [{
    The result shape is the numpy broadcast of the input's shape and the
    values of `shape` (so a 1 in `shape` keeps the input's dimension). Its
    rank is the larger of the two; a dimension is static only where the
    input's is static and larger than 1.

    ```mlir
    %y = kiln.expand %x, %s : tensor<1x1x?xf32>, tensor<3xi64> -> tensor<?x?x?xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_I64Vector:$shape);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $shape attr-dict `:` type($input) `,` type($shape) `->` type($result)
  }];
}

def Kiln_FillOp : Kiln_Op<"fill", [Pure]> {
  let summary = "a tensor of a run-time shape filled with one value (ONNX ConstantOfShape)";
  let description = [{
    `shape` has a static length, the result's rank; `value` is a scalar of
    the result's element type.

    ```mlir
    %z = kiln.fill %s {value = 0.0 : f32} : tensor<2xi64> -> tensor<?x?xf32>
    ```
  }];
  let arguments = (ins Kiln_I64Vector:$shape, TypedAttrInterface:$value);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$shape attr-dict `:` type($shape) `->` type($result)";
  let hasVerifier = 1;
}

def Kiln_ReshapeToOp : Kiln_Op<"reshape_to", [Pure, InferTypeOpAdaptor]> {
  let summary = "reshape to a shape given at run time, with kiln.reshape's 0 and -1";
  let description = [{
    ONNX Reshape whose target is computed: the values of `shape` follow
    `kiln.reshape`'s pattern rules (0 copies, one -1 infers). The result's
    rank is the length of `shape`; its dimensions are dynamic.

    ```mlir
    %y = kiln.reshape_to %x, %s : tensor<1x?x64xf32>, tensor<4xi64> -> tensor<?x?x?x?xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_I64Vector:$shape);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $shape attr-dict `:` type($input) `,` type($shape) `->` type($result)
  }];
}

def Kiln_SliceToOp : Kiln_Op<"slice_to", [Pure, InferTypeOpAdaptor]> {
  let summary = "slice with starts and ends given at run time (ONNX Slice)";
  let description = [{
    `starts` and `ends` hold one value per entry of `axes` (distinct, in
    `[0, rank)`), with `kiln.slice`'s clamping rules and the static non-zero
    `steps`. Sliced dimensions are dynamic in the result.

    ```mlir
    %y = kiln.slice_to %x, %b, %e {axes = array<i64: 1>, steps = array<i64: 1>} : tensor<1x?x64xf32>, tensor<1xi64>, tensor<1xi64> -> tensor<1x?x64xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, Kiln_I64Vector:$starts, Kiln_I64Vector:$ends,
                       DenseI64ArrayAttr:$axes, DenseI64ArrayAttr:$steps);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $input `,` $starts `,` $ends attr-dict `:` type($input) `,` type($starts) `,`
    type($ends) `->` type($result)
  }];
}

def Kiln_CumsumOp : Kiln_Op<"cumsum", [Pure, SameOperandsAndResultType]> {
  let summary = "running sum along an axis (ONNX CumSum)";
  let description = [{
    `exclusive` leaves each element out of its own sum; `reverse` sums from
    the end.

    ```mlir
    %c = kiln.cumsum %x {axis = 1 : i64} : tensor<1x?xi64>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$input, I64Attr:$axis, UnitAttr:$exclusive,
                       UnitAttr:$reverse);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Kiln_GatherNdOp : Kiln_Op<"gather_nd", [Pure, InferTypeOpAdaptor]> {
  let summary = "gather slices by index tuples (ONNX GatherND, batch_dims 0)";
  let description = [{
    The last dimension of `indices` (static, at most the data's rank) is the
    length K of each index tuple; the result is `indices.shape[:-1] +
    data.shape[K:]`. Negative indices count from the end.

    ```mlir
    %g = kiln.gather_nd %d[%i] : tensor<4x5x6xf32>, tensor<3x2xi64> -> tensor<3x6xf32>
    ```
  }];
  let arguments = (ins Kiln_Tensor:$data, Kiln_IntTensor:$indices);
  let results = (outs Kiln_Tensor:$result);
  let assemblyFormat = [{
    $data `[` $indices `]` attr-dict `:` type($data) `,` type($indices) `->` type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Composites
//===----------------------------------------------------------------------===//

// A rotation's frequencies and magnitude beside theta and rotary_dim:
// shared by kiln.rope and kiln.rope_cos_sin (kiln.rope's description says
// what each means).
defvar Kiln_RopeFrequencies = (ins
    DefaultValuedAttr<Kiln_RopeScalingAttr, "::kiln::RopeScaling::None">:$scaling,
    DefaultValuedAttr<F64Attr, "1.0">:$factor,
    DefaultValuedAttr<F64Attr, "1.0">:$low_freq_factor,
    DefaultValuedAttr<F64Attr, "4.0">:$high_freq_factor,
    DefaultValuedAttr<I64Attr, "0">:$original_max_positions,
    DefaultValuedAttr<F64Attr, "32.0">:$beta_fast,
    DefaultValuedAttr<F64Attr, "1.0">:$beta_slow,
    OptionalAttr<F64Attr>:$attention_factor,
    OptionalAttr<DenseF64ArrayAttr>:$inv_freq);

def Kiln_RopeOp : Kiln_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding on [batch, tokens, heads, head_dim]";
  let description = [{
    Rotates the first `rotary_dim` (default: all) channels of each head by
    angles `position * inv_freq[i]`, `inv_freq[i] = theta^(-2i / rotary_dim)`,
    pairing `(i, i + rotary_dim/2)` (`neox`, rotate-half) or `(2i, 2i+1)`
    (`gptj`, interleaved). `scaling` rewrites `inv_freq` as Hugging Face
    does: `linear` divides by `factor`; `llama3` divides the low-frequency
    band by `factor` and blends the middle band (`low_freq_factor`,
    `high_freq_factor`, `original_max_positions`); `yarn` blends
    interpolation and extrapolation between `beta_fast` and `beta_slow`
    rotations and scales cos/sin by `attention_factor` (default
    `0.1 ln(factor) + 1`). `inv_freq`, when given, lists the `rotary_dim/2`
    frequencies outright and replaces `theta` and `scaling` (raise-patterns
    recovers it from an exporter's tables, whatever scaling made them).
    `positions` is `[batch, tokens]` or `[1, tokens]` (the same positions for
    every sequence), integer. `cos_sin`, when given, is the
    `kiln.rope_cos_sin` of these positions and frequencies
    (`[P, tokens, rotary_dim / 2, 2]` f32): the rotation reads its cosines and
    sines there.

    ```mlir
    %q = kiln.rope %x, %pos {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64}
        : tensor<1x?x4x16xf32>, tensor<1x?xi64>
    ```
  }];
  let arguments = !con((ins
    Kiln_FloatTensor:$input,
    Kiln_IntTensor:$positions,
    Optional<RankedTensorOf<[F32]>>:$cos_sin,
    Kiln_RopeStyleAttr:$style,
    F64Attr:$theta,
    OptionalAttr<I64Attr>:$rotary_dim), Kiln_RopeFrequencies);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $input `,` $positions (`table` $cos_sin^)? attr-dict `:` type($input) `,` type($positions)
    (`,` type($cos_sin)^)?
  }];
  let hasVerifier = 1;
}

def Kiln_RopeCosSinOp : Kiln_Op<"rope_cos_sin", [Pure, InferTypeOpAdaptor]> {
  let summary = "the cosines and sines of a rotary embedding, per position and frequency";
  let description = [{
    `[P, T, rotary_dim / 2, 2]` f32 from `positions[P, T]`: element
    `(p, t, i, 0)` is `cos(positions[p, t] * inv_freq[i]) * m` and
    `(p, t, i, 1)` the sine, with `inv_freq` and the magnitude `m` from the
    same attributes as `kiln.rope` (the angle in double, rounded once to
    f32). A `kiln.rope` given this table as its `cos_sin` reads its angles
    there instead of computing them: share-rope-tables makes one table per
    step for every rotation of the same positions and frequencies, so a
    decode step computes `B x rotary_dim / 2` angles instead of one per
    rotated pair of every head of every layer.

    ```mlir
    %cs = kiln.rope_cos_sin %pos {rotary_dim = 16 : i64, theta = 5.0e+05 : f64}
        : tensor<1x?xi64> -> tensor<1x?x8x2xf32>
    ```
  }];
  let arguments = !con((ins Kiln_IntTensor:$positions, F64Attr:$theta, I64Attr:$rotary_dim),
                       Kiln_RopeFrequencies);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $positions attr-dict `:` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Kiln_AttentionOp : Kiln_Op<"attention", [Pure, InferTypeOpAdaptor]> {
  let summary = "scaled dot-product attention: causal, GQA, sliding window, softcap";
  let description = [{
    `q[B, T, Hq, D]`, `k[B, S, Hkv, D]`, `v[B, S, Hkv, Dv]` give
    `[B, T, Hq, Dv]`. Query head `h` reads kv head `h / (Hq / Hkv)` (grouped
    query attention; `Hq` is a multiple of `Hkv`). Scores are `q.k * scale`
    (default `1/sqrt(D)`), then `softcap * tanh(s / softcap)` when set. With
    `causal`, the T queries are the last T of S positions: query `i` sees key
    `j` iff `j <= i + S - T`. `sliding_window` keeps keys with
    `qpos - kpos < sliding_window`.

    ```mlir
    %o = kiln.attention %q, %k, %v {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, UnitAttr:$causal,
                       OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<I64Attr>:$sliding_window,
                       OptionalAttr<F64Attr>:$softcap);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $key `,` $value attr-dict `:` type($query) `,` type($key) `,`
    type($value) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Kiln_SwigluOp : Kiln_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "silu(gate) * up";
  let description = [{
    The gated activation of Llama-family MLPs.

    ```mlir
    %h = kiln.swiglu %gate, %up : tensor<1x?x172xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$gate, Kiln_FloatTensor:$up);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Kiln_GegluOp : Kiln_Op<"geglu", [Pure, SameOperandsAndResultType]> {
  let summary = "gelu(gate) * up";
  let description = [{
    The gated activation of Gemma-family MLPs; `tanh_approximation` selects
    the tanh GELU.

    ```mlir
    %h = kiln.geglu %gate, %up {tanh_approximation} : tensor<1x?x172xf32>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$gate, Kiln_FloatTensor:$up,
                       UnitAttr:$tanh_approximation);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// The paged KV cache
//===----------------------------------------------------------------------===//

def Kiln_KvAppendOp : Kiln_Op<"kv_append", [Pure, AllTypesMatch<["cache", "result"]>,
    AllTypesMatch<["key", "value"]>]> {
  let summary = "write one layer's new keys and values into the paged KV cache";
  let description = [{
    `cache[L, P, 2, page, Hkv, D]` holds, for each of `L` layers, `P` pages of
    `page` tokens; index 0 of the third dimension is K, 1 is V. The token at
    position `pos = positions[b, t]` of sequence `b` lives in page
    `block_tables[b, pos / page]` at offset `pos % page`. `key[b, t]` and
    `value[b, t]` (`[B, T, Hkv, D]`) are written there for layer `layer`; a
    negative position marks padding and writes nothing. The result is the
    cache after the writes (value semantics: bufferization makes it in place).

    ```mlir
    %c1 = kiln.kv_append %c0[0], %k, %v, %block_tables, %positions : tensor<2x?x2x16x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?xi32>, tensor<?x?xi64>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$cache, Kiln_FloatTensor:$key,
                       Kiln_FloatTensor:$value, RankedTensorOf<[I32]>:$block_tables,
                       RankedTensorOf<[I64]>:$positions, I64Attr:$layer);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $cache `[` $layer `]` `,` $key `,` $value `,` $block_tables `,` $positions attr-dict
    `:` type($cache) `,` type($key) `,` type($block_tables) `,` type($positions)
  }];
  let hasVerifier = 1;
}

def Kiln_PagedAttentionOp : Kiln_Op<"paged_attention",
    [Pure, AllTypesMatch<["query", "result"]>]> {
  let summary = "attention of new queries over one layer's keys and values in the paged KV cache";
  let description = [{
    `query[B, T, Hq, D]` against the keys and values of layer `layer` of
    `cache[L, P, 2, page, Hkv, D]` (see `kiln.kv_append`). Sequence `b` has
    `context_lens[b]` tokens, stored through `block_tables[b]`; the query at
    `t` sits at position `positions[b, t]`. Query `(b, t)` sees key `j` iff
    `j < context_lens[b]`, and with `causal` also `j <= positions[b, t]`;
    `sliding_window`, `scale` and `softcap` are those of `kiln.attention`, as
    is GQA's head mapping. A negative position (padding) gives zeros.

    ```mlir
    %o = kiln.paged_attention %q, %c1[0], %block_tables, %context_lens, %positions {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
    ```
  }];
  let arguments = (ins Kiln_FloatTensor:$query, Kiln_FloatTensor:$cache,
                       RankedTensorOf<[I32]>:$block_tables, RankedTensorOf<[I32]>:$context_lens,
                       RankedTensorOf<[I64]>:$positions, I64Attr:$layer, UnitAttr:$causal,
                       OptionalAttr<F64Attr>:$scale,
                       OptionalAttr<I64Attr>:$sliding_window,
                       OptionalAttr<F64Attr>:$softcap);
  let results = (outs Kiln_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` $cache `[` $layer `]` `,` $block_tables `,` $context_lens `,` $positions attr-dict
    `:` type($query) `,` type($cache) `,` type($block_tables) `,` type($context_lens) `,` type($positions)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fusion groups
//===----------------------------------------------------------------------===//

def Kiln_FusedOp : Kiln_Op<"fused", [IsolatedFromAbove,
    SingleBlockImplicitTerminator<"YieldOp">, RecursiveMemoryEffects]> {
  let summary = "a fusion group: ops that will run as one kernel";
  let description = [{
    Holds the ops of one fusion group (like an IREE dispatch region or an XLA
    fusion). The body is isolated from above: its block arguments are the
    operands, and `kiln.yield` gives the results. `kind` names the kernel
    family the group lowers to.

    ```mlir
    %y = kiln.fused "norm_matmul" (%x, %g, %w) : (tensor<1x?x64xf32>, tensor<64xf32>, tensor<172x64xf32>) -> tensor<1x?x172xf32> {
    ^bb0(%a: tensor<1x?x64xf32>, %b: tensor<64xf32>, %c: tensor<172x64xf32>):
      %n = kiln.rms_norm %a, %b {epsilon = 1.0e-05 : f32} : tensor<1x?x64xf32>, tensor<64xf32>
      %m = kiln.matmul %n, %c {transpose_b} : tensor<1x?x64xf32>, tensor<172x64xf32> -> tensor<1x?x172xf32>
      kiln.yield %m : tensor<1x?x172xf32>
    }
    ```
  }];
  let arguments = (ins StrAttr:$kind, Variadic<AnyType>:$inputs);
  let results = (outs Variadic<AnyType>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $kind `(` $inputs `)` attr-dict `:` functional-type($inputs, $results) $body
  }];
  let hasVerifier = 1;
}

def Kiln_YieldOp : Kiln_Op<"yield", [Pure, Terminator, HasParent<"FusedOp">]> {
  let summary = "the results of a kiln.fused body";
  let description = [{
    ```mlir
    kiln.yield %m : tensor<1x?x172xf32>
    ```
  }];
  let arguments = (ins Variadic<AnyType>:$values);
  let builders = [OpBuilder<(ins), [{ /* no values */ }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // KILN_OPS_TD
