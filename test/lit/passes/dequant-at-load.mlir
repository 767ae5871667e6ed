// RUN: kiln-opt %s --kiln-dequant-at-load --split-input-file --verify-diagnostics | FileCheck %s

// A GPTQ projection (qweight, scales, qzeros, g_idx weights) becomes one
// weight named after its qweight, described in the module's table; its
// parts go. A dequant of an activation is left alone.
// CHECK: module attributes {kiln.dequant_weights = {
// CHECK-SAME: l.q.weight = {bits = 4 : i64, g_idx = "l.q.g_idx", group_size = 32 : i64, packing = #kiln<quant_packing gptq>, qweight = "l.q.qweight", scales = "l.q.scales", zeros = "l.q.qzeros"}
// CHECK-SAME: l.up.weight = {bits = 4 : i64, group_size = 64 : i64, packing = #kiln<quant_packing awq>, qweight = "l.up.qweight", scales = "l.up.scales", zeros = "l.up.qzeros"}
// CHECK-LABEL: func.func @forward
// CHECK-NOT: kiln.weight "l.q.qweight"
// CHECK: %[[W:.*]] = kiln.weight "l.q.weight" : tensor<64x32xf32>
// CHECK: kiln.matmul %{{.*}}, %[[W]]
// CHECK: %[[U:.*]] = kiln.weight "l.up.weight" : tensor<64x128xbf16>
// CHECK: kiln.matmul %{{.*}}, %[[U]]
// CHECK: kiln.dequant %arg1
func.func @forward(%x: tensor<1x64xf32>, %q: tensor<8x32xi32>) -> (tensor<1x32xf32>, tensor<1x128xbf16>, tensor<64x32xf32>) {
  %qw = kiln.weight "l.q.qweight" : tensor<8x32xi32>
  %s = kiln.weight "l.q.scales" : tensor<2x32xf16>
  %z = kiln.weight "l.q.qzeros" : tensor<2x4xi32>
  %g = kiln.weight "l.q.g_idx" : tensor<64xi32>
  %w = kiln.dequant %qw, %s zeros %z g_idx %g {bits = 4 : i64, group_size = 32 : i64, packing = #kiln<quant_packing gptq>}
      : (tensor<8x32xi32>, tensor<2x32xf16>, tensor<2x4xi32>, tensor<64xi32>) -> tensor<64x32xf32>
  %y = kiln.matmul %x, %w : tensor<1x64xf32>, tensor<64x32xf32> -> tensor<1x32xf32>
  %aq = kiln.weight "l.up.qweight" : tensor<64x16xi32>
  %as = kiln.weight "l.up.scales" : tensor<1x128xf16>
  %az = kiln.weight "l.up.qzeros" : tensor<1x16xi32>
  %u = kiln.dequant %aq, %as zeros %az {bits = 4 : i64, group_size = 64 : i64, packing = #kiln<quant_packing awq>}
      : (tensor<64x16xi32>, tensor<1x128xf16>, tensor<1x16xi32>) -> tensor<64x128xbf16>
  %xb = kiln.cast %x : tensor<1x64xf32> to tensor<1x64xbf16>
  %v = kiln.matmul %xb, %u : tensor<1x64xbf16>, tensor<64x128xbf16> -> tensor<1x128xbf16>
  %act = kiln.dequant %q, %s zeros %z {bits = 4 : i64, group_size = 32 : i64, packing = #kiln<quant_packing gptq>}
      : (tensor<8x32xi32>, tensor<2x32xf16>, tensor<2x4xi32>) -> tensor<64x32xf32>
  return %y, %v, %act : tensor<1x32xf32>, tensor<1x128xbf16>, tensor<64x32xf32>
}

// -----

// One name derived from two different sets of parts is refused.
func.func @twice(%x: tensor<1x64xf32>) -> (tensor<64x32xf32>, tensor<64x32xf32>) {
  %qw = kiln.weight "a.qweight" : tensor<8x32xi32>
  %s = kiln.weight "a.scales" : tensor<2x32xf16>
  %s2 = kiln.weight "b.scales" : tensor<2x32xf16>
  %w = kiln.dequant %qw, %s {bits = 4 : i64, group_size = 32 : i64, packing = #kiln<quant_packing gptq>}
      : (tensor<8x32xi32>, tensor<2x32xf16>) -> tensor<64x32xf32>
  // expected-error @+1 {{dequantizes into 'a.weight', which another dequant of different parts defines}}
  %w2 = kiln.dequant %qw, %s2 {bits = 4 : i64, group_size = 32 : i64, packing = #kiln<quant_packing gptq>}
      : (tensor<8x32xi32>, tensor<2x32xf16>) -> tensor<64x32xf32>
  return %w, %w2 : tensor<64x32xf32>, tensor<64x32xf32>
}
