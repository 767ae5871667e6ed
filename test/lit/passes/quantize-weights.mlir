// RUN: kiln-opt %s --kiln-quantize-weights="bits=4 group-size=32" --split-input-file --verify-diagnostics | FileCheck %s

// The projections (Q, a Conv1D-style [K, N] weight, one cast to the compute
// dtype) are listed for the loader to round; the embedding (a gather) and
// the LM head (its columns are the returned logits') stay float unless
// lm-head. A weight cast to f32 becomes an f32 weight: the loader gives the
// rounded values in f32 itself.
// CHECK: module attributes {kiln.dequant_weights = {
// CHECK-SAME: conv.weight = {bits = 4 : i64, group_size = 32 : i64, k_axis = 0 : i64, packing = "rtn", source = "conv.weight"}
// CHECK-SAME: l.down.weight = {bits = 4 : i64, group_size = 32 : i64, k_axis = 1 : i64, packing = "rtn", source = "l.down.weight"}
// CHECK-SAME: l.q.weight = {bits = 4 : i64, group_size = 32 : i64, k_axis = 1 : i64, packing = "rtn", source = "l.q.weight"}
// CHECK-SAME: l.up.weight = {bits = 4 : i64, group_size = 32 : i64, k_axis = 1 : i64, packing = "rtn", source = "l.up.weight"}
// CHECK-NOT: embed.weight = {
// CHECK-NOT: lm_head.weight = {
// CHECK-LABEL: func.func @forward
// CHECK: kiln.weight "embed.weight" : tensor<512x64xf32>
// CHECK: %[[U:.*]] = kiln.weight "l.up.weight" : tensor<128x64xf32>
// CHECK-NOT: kiln.cast
// CHECK: kiln.matmul %{{.*}}, %[[U]] {transpose_b}
// CHECK: kiln.weight "lm_head.weight" : tensor<512x64xf32>
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

// -----

// A group size that does not divide a weight's input features is refused,
// naming both.
func.func @odd(%x: tensor<1x48xf32>) -> tensor<1x8xf32> {
  // expected-error @+1 {{--group-size 32 does not divide the 48 input features of 'odd.weight'}}
  %w = kiln.weight "odd.weight" : tensor<16x48xf32>
  %y = kiln.matmul %x, %w {transpose_b} : tensor<1x48xf32>, tensor<16x48xf32> -> tensor<1x16xf32>
  %h = kiln.weight "head.weight" : tensor<8x16xf32>
  %z = kiln.matmul %y, %h {transpose_b} : tensor<1x16xf32>, tensor<8x16xf32> -> tensor<1x8xf32>
  return %z : tensor<1x8xf32>
}

// -----

// Nothing to quantize (only an embedding) is refused rather than ignored.
// expected-error @+1 {{--quantize found no float projection weight to quantize}}
module {
  func.func @none(%ids: tensor<1x4xi64>) -> tensor<1x4x64xf32> {
    %e = kiln.weight "embed.weight" : tensor<512x64xf32>
    %x = kiln.gather %e[%ids] {axis = 0 : i64} : tensor<512x64xf32>, tensor<1x4xi64> -> tensor<1x4x64xf32>
    return %x : tensor<1x4x64xf32>
  }
}
