// RUN: kiln-opt %s --kiln-quantize-weights="bits=8 group-size=-1 lm-head=true" | FileCheck %s

// With lm-head, the LM head is rounded too (a matmul whose columns are the
// returned logits'); group size -1 takes each output's whole row. The
// embedding (a gather) still stays float.
// CHECK: module attributes {kiln.dequant_weights = {
// CHECK-SAME: conv.weight = {bits = 8 : i64, group_size = -1 : i64, k_axis = 0 : i64, packing = "rtn"
// CHECK-SAME: lm_head.weight = {bits = 8 : i64, group_size = -1 : i64, k_axis = 1 : i64, packing = "rtn"
// CHECK-NOT: embed.weight = {
// CHECK-LABEL: func.func @forward
// CHECK: kiln.weight "embed.weight" : tensor<512x64xf32>
func.func @forward(%ids: tensor<1x4xi64>) -> tensor<1x4x512xf32> {
  %e = kiln.weight "embed.weight" : tensor<512x64xf32>
  %x = kiln.gather %e[%ids] {axis = 0 : i64} : tensor<512x64xf32>, tensor<1x4xi64> -> tensor<1x4x64xf32>
  %q = kiln.weight "l.q.weight" : tensor<64x64xf32>
  %y = kiln.matmul %x, %q {transpose_b} : tensor<1x4x64xf32>, tensor<64x64xf32> -> tensor<1x4x64xf32>
  %c = kiln.weight "conv.weight" : tensor<64x64xf32>
  %y2 = kiln.matmul %y, %c : tensor<1x4x64xf32>, tensor<64x64xf32> -> tensor<1x4x64xf32>
  %ub = kiln.weight "l.up.weight" : tensor<128x64xbf16>
  %u = kiln.cast %ub : tensor<128x64xbf16> to tensor<128x64xf32>
  %y3 = kiln.matmul %y2, %u {transpose_b} : tensor<1x4x64xf32>, tensor<128x64xf32> -> tensor<1x4x128xf32>
  %d = kiln.weight "l.down.weight" : tensor<64x128xf32>
  %y4 = kiln.matmul %y3, %d {transpose_b} : tensor<1x4x128xf32>, tensor<64x128xf32> -> tensor<1x4x64xf32>
  %h = kiln.weight "lm_head.weight" : tensor<512x64xf32>
  %logits = kiln.matmul %y4, %h {transpose_b} : tensor<1x4x64xf32>, tensor<512x64xf32> -> tensor<1x4x512xf32>
  return %logits : tensor<1x4x512xf32>
}
