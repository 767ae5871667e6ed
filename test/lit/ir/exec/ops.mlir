// RUN: kiln-opt %s | FileCheck %s
// RUN: kiln-opt %s -mlir-print-op-generic | kiln-opt | FileCheck %s
// Every kiln_exec op parses, verifies and prints back.

// CHECK: kiln_exec.arena @activations size(4096) alignment(256)
kiln_exec.arena @activations size(4096) alignment(256)
// CHECK: kiln_exec.kv_page_pool @kv {dtype = bf16, head_dim = 16 : i64, num_kv_heads = 2 : i64, num_layers = 2 : i64, page_size = 16 : i64}
kiln_exec.kv_page_pool @kv {page_size = 16 : i64, num_layers = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, dtype = bf16}
// CHECK: kiln_exec.kernel @gemv_172x64 family("gemv") attributes {bytes = 22360 : i64, constants = {k = 64 : i64, n = 172 : i64}, flops = 22016 : i64, tile = {rows_per_block = 4 : i64}}
kiln_exec.kernel @gemv_172x64 family("gemv") attributes {constants = {n = 172 : i64, k = 64 : i64}, tile = {rows_per_block = 4 : i64}, flops = 22016 : i64, bytes = 22360 : i64}
// CHECK: kiln_exec.kernel @silu family("fused") {
// CHECK-NEXT: ^bb0(%[[X:.*]]: tensor<1x172xbf16>):
// CHECK-NEXT:   kiln.silu %[[X]]
kiln_exec.kernel @silu family("fused") {
^bb0(%x: tensor<1x172xbf16>):
  %y = kiln.silu %x : tensor<1x172xbf16>
}

// CHECK-LABEL: func.func @decode_step
func.func @decode_step() {
  // CHECK: %[[X:.*]] = kiln_exec.buffer_slice @activations[0, 128] : !kiln_exec.buffer<tensor<1x64xbf16>>
  %x = kiln_exec.buffer_slice @activations[0, 128] : !kiln_exec.buffer<tensor<1x64xbf16>>
  // CHECK: %[[Y:.*]] = kiln_exec.buffer_slice @activations[256, 344]
  %y = kiln_exec.buffer_slice @activations[256, 344] : !kiln_exec.buffer<tensor<1x172xbf16>>
  // CHECK: %[[W:.*]] = kiln_exec.weight_slot "model.layers.0.mlp.up_proj.weight" layout(identity) : !kiln_exec.buffer<tensor<172x64xbf16>>
  %w = kiln_exec.weight_slot "model.layers.0.mlp.up_proj.weight" layout(identity) : !kiln_exec.buffer<tensor<172x64xbf16>>
  // CHECK: kiln_exec.weight_slot "layers.0.qkv" layout(concat_rows) {sources = ["q", "k", "v"]}
  %qkv = kiln_exec.weight_slot "layers.0.qkv" layout(concat_rows) {sources = ["q", "k", "v"]} : !kiln_exec.buffer<tensor<128x64xbf16>>
  // CHECK: kiln_exec.weight_slot "lm_head" layout(transpose)
  %t = kiln_exec.weight_slot "lm_head" layout(transpose) : !kiln_exec.buffer<tensor<64x512xbf16>>
  // CHECK: kiln_exec.launch @gemv_172x64(%[[X]], %[[W]], %[[Y]]) grid [43, 1, 1] block [128, 1, 1] smem 0 : !kiln_exec.buffer<tensor<1x64xbf16>>, !kiln_exec.buffer<tensor<172x64xbf16>>, !kiln_exec.buffer<tensor<1x172xbf16>>
  kiln_exec.launch @gemv_172x64(%x, %w, %y) grid [43, 1, 1] block [128, 1, 1] smem 0 : !kiln_exec.buffer<tensor<1x64xbf16>>, !kiln_exec.buffer<tensor<172x64xbf16>>, !kiln_exec.buffer<tensor<1x172xbf16>>
  // CHECK: kiln_exec.launch @silu(%[[Y]]) grid [1, 1, 1] block [256, 1, 1] smem 1024
  kiln_exec.launch @silu(%y) grid [1, 1, 1] block [256, 1, 1] smem 1024 : !kiln_exec.buffer<tensor<1x172xbf16>>
  return
}

// -----

// CHECK-LABEL: func.func @alloc_view
// CHECK: %[[B:.*]] = kiln_exec.alloc : !kiln_exec.buffer<tensor<1x1x64xbf16>>
// CHECK: kiln_exec.view %[[B]] : !kiln_exec.buffer<tensor<1x1x64xbf16>> to !kiln_exec.buffer<tensor<1x1x4x16xbf16>>
// CHECK: kiln_exec.weight_slot "l.{q,k}" layout(transpose_concat_rows) {sources = ["l.q", "l.k"]}
func.func @alloc_view(%pool: !kiln_exec.buffer<tensor<2x?x2x16x2x16xbf16>>) {
  %b = kiln_exec.alloc : !kiln_exec.buffer<tensor<1x1x64xbf16>>
  %v = kiln_exec.view %b : !kiln_exec.buffer<tensor<1x1x64xbf16>> to !kiln_exec.buffer<tensor<1x1x4x16xbf16>>
  %w = kiln_exec.weight_slot "l.{q,k}" layout(transpose_concat_rows) {sources = ["l.q", "l.k"]} : !kiln_exec.buffer<tensor<96x64xbf16>>
  return
}
