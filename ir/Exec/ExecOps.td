//===- ExecOps.td - ops of the kiln_exec dialect -----------*- tablegen -*-===//
#ifndef KILN_EXEC_OPS_TD
#define KILN_EXEC_OPS_TD

include "ir/Exec/ExecDialect.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/EnumAttr.td"

def Exec_WeightLayout : I32EnumAttr<"WeightLayout", "layout transform applied at load", [
    I32EnumAttrCase<"Identity", 0, "identity">,
    I32EnumAttrCase<"Transpose", 1, "transpose">,
    I32EnumAttrCase<"ConcatRows", 2, "concat_rows">,
    I32EnumAttrCase<"TransposeConcatRows", 3, "transpose_concat_rows">
  ]> {
  let cppNamespace = "::kiln::exec";
}

def Exec_ArenaOp : Exec_Op<"arena", [Symbol]> {
  let summary = "a block of device memory that buffer slices are planned into";
  let description = [{
    `plan-arena` decides `size`; `alignment` (a power of two, 256 by default)
    applies to every slice offset.

    ```mlir
    kiln_exec.arena @activations size(1048576) alignment(256)
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$size,
                       DefaultValuedAttr<I64Attr, "256">:$alignment);
  let assemblyFormat = [{
    $sym_name `size` `(` $size `)` `alignment` `(` $alignment `)` attr-dict
  }];
  let hasVerifier = 1;
}

def Exec_BufferSliceOp : Exec_Op<"buffer_slice",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "bytes [offset, offset + size) of an arena, viewed as a tensor";
  let description = [{
    The offset is a multiple of the arena's alignment, the slice lies inside
    the arena, and `size` holds the viewed tensor.

    ```mlir
    %b = kiln_exec.buffer_slice @activations[512, 2048] : !kiln_exec.buffer<tensor<16x64xbf16>>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$arena, I64Attr:$offset, I64Attr:$size);
  let results = (outs Exec_BufferType:$result);
  let assemblyFormat = [{
    $arena `[` $offset `,` $size `]` attr-dict `:` qualified(type($result))
  }];
  let hasVerifier = 1;
}

def Exec_WeightSlotOp : Exec_Op<"weight_slot", [Pure]> {
  let summary = "a weight bound at load by name, with the layout transform applied then";
  let description = [{
    `layout` is `identity`, `transpose` (a 2-D weight stored transposed),
    `concat_rows` (the row-wise concatenation of `sources`, in order, e.g.
    Q/K/V or gate/up projections merged into one matmul) or
    `transpose_concat_rows` (each source transposed, then concatenated);
    `source_rows` gives each source's rows in the result.

    ```mlir
    %w = kiln_exec.weight_slot "model.layers.0.mlp.up_proj.weight" layout(identity) : !kiln_exec.buffer<tensor<172x64xbf16>>
    %qkv = kiln_exec.weight_slot "layers.0.qkv" layout(concat_rows) {sources = ["q", "k", "v"]} : !kiln_exec.buffer<tensor<128x64xbf16>>
    ```
  }];
  let arguments = (ins StrAttr:$name, Exec_WeightLayout:$layout,
                       OptionalAttr<StrArrayAttr>:$sources,
                       OptionalAttr<DenseI64ArrayAttr>:$source_rows);
  let results = (outs Exec_BufferType:$result);
  let assemblyFormat = "$name `layout` `(` $layout `)` attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
}

def Exec_AllocOp : Exec_Op<"alloc", []> {
  let summary = "an activation buffer not placed yet";
  let description = [{
    Lowering allocates each kernel result here; `plan-arena` gives it an
    offset in the function's arena and replaces it with a `buffer_slice`.
    The view is static (the planned maximum shape).

    ```mlir
    %b = kiln_exec.alloc : !kiln_exec.buffer<tensor<1x1x2048xbf16>>
    ```
  }];
  let results = (outs Exec_BufferType:$result);
  let assemblyFormat = "attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
}

def Exec_ViewOp : Exec_Op<"view", [Pure]> {
  let summary = "the same bytes seen as another tensor type (a reshape)";
  let description = [{
    A view aliases its source: liveness and planning treat both as one
    buffer. Static views have the source's byte size.

    ```mlir
    %v = kiln_exec.view %b : !kiln_exec.buffer<tensor<1x1x32x64xbf16>> to !kiln_exec.buffer<tensor<1x1x2048xbf16>>
    ```
  }];
  let arguments = (ins Exec_BufferType:$source);
  let results = (outs Exec_BufferType:$result);
  let assemblyFormat = "$source attr-dict `:` qualified(type($source)) `to` qualified(type($result))";
  let hasVerifier = 1;
}

def Exec_KvPagePoolOp : Exec_Op<"kv_page_pool", [Symbol]> {
  let summary = "the paged KV cache: pages of page_size tokens for every layer";
  let description = [{
    One page holds K and V of `page_size` tokens for `num_kv_heads` heads of
    `head_dim` channels, for each of `num_layers` layers. The runtime sizes the
    number of pages from free memory. `page_size` is a power of two.

    ```mlir
    kiln_exec.kv_page_pool @kv {page_size = 16 : i64, num_layers = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, dtype = bf16}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, I64Attr:$page_size,
                       I64Attr:$num_layers, I64Attr:$num_kv_heads,
                       I64Attr:$head_dim, TypeAttr:$dtype);
  let assemblyFormat = "$sym_name attr-dict";
  let hasVerifier = 1;
}

def Exec_KernelOp : Exec_Op<"kernel", [Symbol, IsolatedFromAbove, NoTerminator]> {
  let summary = "a kernel: family, specialisation constants, tiles, analytic cost";
  let description = [{
    `family` is one of the codegen kernel families (`gemv`, `gemm`,
    `elementwise`, `norm`, `rope_kv_append`, `flash_attention`,
    `paged_attention`, `sampling`, `embedding`, `fused`). `constants`
    specialise its template, `tile` holds what `choose-tiling` picked, and
    `flops`/`bytes` are the analytic cost the runtime reports against the
    roofline. The optional body holds the fused graph ops the kernel computes.

    ```mlir
    kiln_exec.kernel @gemv_172x64 family("gemv") {constants = {n = 172 : i64, k = 64 : i64}, tile = {rows_per_block = 4 : i64}, flops = 22016 : i64, bytes = 22360 : i64}
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$family,
                       DefaultValuedAttr<DictionaryAttr, "{}">:$constants,
                       DefaultValuedAttr<DictionaryAttr, "{}">:$tile,
                       DefaultValuedAttr<I64Attr, "0">:$flops,
                       DefaultValuedAttr<I64Attr, "0">:$bytes);
  let regions = (region MaxSizedRegion<1>:$body);
  let assemblyFormat = "$sym_name `family` `(` $family `)` attr-dict-with-keyword ($body^)?";
  let hasVerifier = 1;
}

def Exec_LaunchOp : Exec_Op<"launch", [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "run a kernel on buffers with a grid, a block and shared memory";
  let description = [{
    Launches are in schedule order. The last `num_outputs` buffers are
    written, the others read. `grid` and `block` have three positive
    entries; a block has at most 1024 threads and `smem` at most 232448 bytes
    (227 KiB, the Hopper limit per block). `kv_layer` is the KV-cache layer
    the kernel's `kv_append`/`paged_attention` ops address: kernel bodies
    name layer 0 and the launch says which layer, so one kernel serves every
    layer.

    ```mlir
    kiln_exec.launch @gemv_172x64(%x, %w, %y) grid [43, 1, 1] block [128, 1, 1] smem 0 : !kiln_exec.buffer<tensor<1x64xbf16>>, !kiln_exec.buffer<tensor<172x64xbf16>>, !kiln_exec.buffer<tensor<1x172xbf16>>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$kernel, Variadic<Exec_BufferType>:$buffers,
                       DenseI64ArrayAttr:$grid, DenseI64ArrayAttr:$block,
                       DefaultValuedAttr<I64Attr, "0">:$smem,
                       DefaultValuedAttr<I64Attr, "0">:$num_outputs,
                       DefaultValuedAttr<I64Attr, "0">:$kv_layer);
  let assemblyFormat = [{
    $kernel `(` $buffers `)` `grid` $grid `block` $block `smem` $smem attr-dict
    (`:` type($buffers)^)?
  }];
  let hasVerifier = 1;
}

#endif // KILN_EXEC_OPS_TD
