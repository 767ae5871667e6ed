// RUN: kiln-opt %s -kiln-insert-kv-cache | FileCheck %s
// RUN: kiln-interp %s --int-range 128 --check-kv-cache "builtin.module(kiln-insert-kv-cache{page-size=4})" | FileCheck %s --check-prefix=NUM

// With prefill-logits=last (the default) prefill runs the LM head on each
// sequence's last token only, the one with the largest position: argmax of
// the positions, gathered with the sequence index. Decode is unchanged.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: %[[POS:[^:]*]]: tensor<?x?xi64> {kiln.name = "positions"}
// CHECK-SAME: -> (tensor<?x1x128xf32>, tensor<1x?x2x16x2x16xf32>, tensor<?x1xi64>)
// CHECK: %[[PF:.*]] = kiln.cast %[[POS]] : tensor<?x?xi64> to tensor<?x?xf32>
// CHECK: %[[LAST:.*]] = kiln.argmax %[[PF]] {axis = 1 : i64, keep_dims} : tensor<?x?xf32> -> tensor<?x1xi64>
// CHECK: %[[SEQ:.*]] = kiln.arange %[[POS]] {axis = 0 : i64}
// CHECK: %[[ROWS:.*]] = kiln.gather_nd %{{.*}}[%{{.*}}] : tensor<?x?x64xf32>, tensor<?x1x2xi64> -> tensor<?x1x64xf32>
// CHECK: %[[L:.*]] = kiln.matmul %[[ROWS]], %{{.*}} {transpose_b} : tensor<?x1x64xf32>, tensor<128x64xf32> -> tensor<?x1x128xf32>
// CHECK-NOT: tensor<?x?x128xf32>
// CHECK-LABEL: func.func @decode
// CHECK-NOT: kiln.gather_nd
// CHECK: return
// The check compares each sequence's last prefill row, then every decode step.
// NUM: prefill of 3 sequences (last-token logits) and 16 decode steps: 51 logit rows agree with @forward
func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x128xf32> {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %r = kiln.arange %ids {axis = 1 : i64} : tensor<?x?xi64> -> tensor<?xi64>
  %pos = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %wk = kiln.weight "wk" : tensor<32x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %q4 = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x4x16xf32>, tensor<1x?xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x2x16xf32>, tensor<1x?xi64>
  %a = kiln.attention %qr, %kr, %k4 {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %a3 = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  %h = kiln.add %x, %a3 : tensor<?x?x64xf32>, tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %lm = kiln.weight "lm_head" : tensor<128x64xf32>
  %logits = kiln.matmul %h, %lm {transpose_b} : tensor<?x?x64xf32>, tensor<128x64xf32> -> tensor<?x?x128xf32>
  return %logits : tensor<?x?x128xf32>
}
