// RUN: kiln-opt %s -split-input-file -kiln-insert-kv-cache=prefill-logits=all | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-insert-kv-cache="page-size=4 prefill-logits=all" | FileCheck %s --check-prefix=PAGE4

// Two layers of rope + GQA attention: each attention becomes kv_append into
// its layer of one cache threaded through the layers, then paged_attention;
// the arange positions become the positions argument.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[IDS:.*]]: tensor<?x?xi64> {kiln.name = "input_ids"}, %[[POS:.*]]: tensor<?x?xi64> {kiln.name = "positions"}, %[[BT:.*]]: tensor<?x?xi32> {kiln.name = "block_tables"}, %[[CTX:.*]]: tensor<?xi32> {kiln.name = "context_lens"}, %[[C0:.*]]: tensor<2x?x2x16x2x16xf32> {kiln.name = "kv_cache"})
// CHECK-SAME: -> (tensor<?x?x64xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi64>)
// CHECK-NOT: kiln.arange
// CHECK: %[[Q0:.*]] = kiln.rope %{{.*}}, %[[POS]]
// CHECK: %[[K0:.*]] = kiln.rope %{{.*}}, %[[POS]]
// CHECK: %[[C1:.*]] = kiln.kv_append %[[C0]][0], %[[K0]], %{{.*}}, %[[BT]], %[[POS]] : tensor<2x?x2x16x2x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?xi32>, tensor<?x?xi64>
// CHECK: kiln.paged_attention %[[Q0]], %[[C1]][0], %[[BT]], %[[CTX]], %[[POS]] {causal} : tensor<?x?x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x?xi64>
// CHECK: %[[C2:.*]] = kiln.kv_append %[[C1]][1]
// CHECK: kiln.paged_attention %{{.*}}, %[[C2]][1], %[[BT]], %[[CTX]], %[[POS]] {causal, scale = 2.500000e-01 : f64, sliding_window = 8 : i64}
// CHECK-NOT: kiln.attention
// Greedy decoding's next tokens: the argmax over the vocabulary.
// CHECK: %[[NEXT:.*]] = kiln.argmax %[[LOGITS:.*]] {axis = 2 : i64} : tensor<?x?x64xf32> -> tensor<?x?xi64>
// CHECK: return %[[LOGITS]], %[[C2]], %[[NEXT]] : tensor<?x?x64xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi64>
// Decode takes one token per sequence, and the types follow.
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%{{.*}}: tensor<?x1xi64> {kiln.name = "input_ids"}, %{{.*}}: tensor<?x1xi64> {kiln.name = "positions"}, %{{.*}}: tensor<?x?xi32> {kiln.name = "block_tables"}, %{{.*}}: tensor<?xi32> {kiln.name = "context_lens"}, %{{.*}}: tensor<2x?x2x16x2x16xf32> {kiln.name = "kv_cache"})
// CHECK-SAME: -> (tensor<?x1x64xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x1xi64>)
// CHECK: kiln.paged_attention {{.*}} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
// CHECK-NOT: func.func @forward
// PAGE4: tensor<2x?x2x4x2x16xf32> {kiln.name = "kv_cache"}
func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %r = kiln.arange %ids {axis = 1 : i64} : tensor<?x?xi64> -> tensor<?xi64>
  %pos = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %wq = kiln.weight "wq" : tensor<64x64xf32>
  %wk = kiln.weight "wk" : tensor<32x64xf32>
  %q = kiln.matmul %x, %wq {transpose_b} : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x4x16xf32>, tensor<1x?xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x2x16xf32>, tensor<1x?xi64>
  %a = kiln.attention %qr, %kr, %k4 {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %a2 = kiln.attention %a, %kr, %kr {causal, scale = 0.25 : f64, sliding_window = 8 : i64} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %o = kiln.reshape %a2 {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

// Learned position embeddings (GPT-2) gather the true positions.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: %[[POS:[^:]*]]: tensor<?x?xi64> {kiln.name = "positions"}
// CHECK: kiln.gather %{{.*}}[%[[POS]]] {axis = 0 : i64} : tensor<256x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
// CHECK-LABEL: func.func @decode
// CHECK: kiln.gather {{.*}} : tensor<256x64xf32>, tensor<?x1xi64> -> tensor<?x1x64xf32>
func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x64xf32> {
  %wpe = kiln.weight "wpe" : tensor<256x64xf32>
  %r = kiln.arange %ids {axis = 1 : i64} : tensor<?x?xi64> -> tensor<?xi64>
  %pos = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %pe = kiln.gather %wpe[%pos] {axis = 0 : i64} : tensor<256x64xf32>, tensor<1x?xi64> -> tensor<1x?x64xf32>
  %emb = kiln.weight "wte" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %h = kiln.add %x, %pe : tensor<?x?x64xf32>, tensor<1x?x64xf32> -> tensor<?x?x64xf32>
  %h4 = kiln.reshape %h {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %a = kiln.attention %h4, %h4, %h4 {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  %o = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

// A graph with explicit past and present keys and values (head-major, as
// exporters write them): concat(past, new) becomes the append of the new
// tokens, attention reads the paged cache, position_ids become the
// positions, and the past inputs and present outputs disappear.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%{{.*}}: tensor<?x?xi64> {kiln.name = "input_ids"}, %[[POS:.*]]: tensor<?x?xi64> {kiln.name = "positions"}, %[[BT:.*]]: tensor<?x?xi32> {kiln.name = "block_tables"}, %[[CTX:.*]]: tensor<?xi32> {kiln.name = "context_lens"}, %[[C:.*]]: tensor<1x?x2x16x2x16xf32> {kiln.name = "kv_cache"})
// CHECK-SAME: -> (tensor<?x?x64xf32>, tensor<1x?x2x16x2x16xf32>, tensor<?x?xi64>)
// CHECK-NOT: kiln.concat
// CHECK: %[[KR:.*]] = kiln.rope %{{.*}}, %[[POS]]
// CHECK: %[[KT:.*]] = kiln.transpose %[[KR]] {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
// CHECK: %[[KN:.*]] = kiln.transpose %[[KT]] {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
// CHECK: %[[C1:.*]] = kiln.kv_append %[[C]][0], %[[KN]], %{{.*}}, %[[BT]], %[[POS]]
// CHECK: kiln.paged_attention %{{.*}}, %[[C1]][0], %[[BT]], %[[CTX]], %[[POS]] {causal}
// CHECK-NOT: kiln.concat
// CHECK: return %{{.*}}, %[[C1]], %{{.*}} : tensor<?x?x64xf32>, tensor<1x?x2x16x2x16xf32>, tensor<?x?xi64>
func.func @forward(%ids: tensor<?x?xi64>, %pos: tensor<?x?xi64>, %pk: tensor<?x2x?x16xf32>, %pv: tensor<?x2x?x16xf32>) -> (tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %wk = kiln.weight "wk" : tensor<32x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %q4 = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x2x16xf32>, tensor<?x?xi64>
  %kh = kiln.transpose %kr {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
  %kc = kiln.concat %pk, %kh {axis = 2 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x2x?x16xf32>
  %kt = kiln.transpose %kc {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
  %vh = kiln.transpose %k4 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
  %vc = kiln.concat %pv, %vh {axis = 2 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x2x?x16xf32>
  %vt = kiln.transpose %vc {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
  %a = kiln.attention %q4, %kt, %vt {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %o = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  return %o, %kc, %vc : tensor<?x?x64xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
}
