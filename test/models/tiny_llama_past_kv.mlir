// A two-layer Llama-style model with explicit past and present keys and
// values, as exporters write one (head-major [B, Hkv, P, D], concatenated
// with the new tokens' along the sequence axis and returned as present_*):
// the input of kiln-insert-kv-cache's second mode. Attention-only layers
// (the MLP adds nothing to what the cache does); random weights.

func.func @forward(%ids: tensor<?x?xi64> {kiln.name = "input_ids"}, %pos: tensor<?x?xi64> {kiln.name = "position_ids"}, %pk0: tensor<?x2x?x16xf32> {kiln.name = "past_key_0"}, %pv0: tensor<?x2x?x16xf32> {kiln.name = "past_value_0"}, %pk1: tensor<?x2x?x16xf32> {kiln.name = "past_key_1"}, %pv1: tensor<?x2x?x16xf32> {kiln.name = "past_value_1"}) -> (tensor<?x?x512xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>) {
  %emb = kiln.weight "model.embed_tokens.weight" : tensor<512x64xf32>
  %x0 = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<512x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %ln0 = kiln.weight "model.layers.0.input_layernorm.weight" : tensor<64xf32>
  %h0 = kiln.rms_norm %x0, %ln0 {epsilon = 1.0e-05 : f32} : tensor<?x?x64xf32>, tensor<64xf32>
  %wq0 = kiln.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
  %q0 = kiln.matmul %h0, %wq0 {transpose_b} : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  %wk0 = kiln.weight "model.layers.0.self_attn.k_proj.weight" : tensor<32x64xf32>
  %k0 = kiln.matmul %h0, %wk0 {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %wv0 = kiln.weight "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
  %v0 = kiln.matmul %h0, %wv0 {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %q40 = kiln.reshape %q0 {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %k40 = kiln.reshape %k0 {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %v40 = kiln.reshape %v0 {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %qr0 = kiln.rope %q40, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x4x16xf32>, tensor<?x?xi64>
  %kr0 = kiln.rope %k40, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x2x16xf32>, tensor<?x?xi64>
  %kh0 = kiln.transpose %kr0 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
  %kc0 = kiln.concat %pk0, %kh0 {axis = 2 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x2x?x16xf32>
  %kt0 = kiln.transpose %kc0 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
  %vh0 = kiln.transpose %v40 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
  %vc0 = kiln.concat %pv0, %vh0 {axis = 2 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x2x?x16xf32>
  %vt0 = kiln.transpose %vc0 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
  %a0 = kiln.attention %qr0, %kt0, %vt0 {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %a30 = kiln.reshape %a0 {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  %wo0 = kiln.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
  %o0 = kiln.matmul %a30, %wo0 {transpose_b} : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  %x1 = kiln.add %x0, %o0 : tensor<?x?x64xf32>, tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %ln1 = kiln.weight "model.layers.1.input_layernorm.weight" : tensor<64xf32>
  %h1 = kiln.rms_norm %x1, %ln1 {epsilon = 1.0e-05 : f32} : tensor<?x?x64xf32>, tensor<64xf32>
  %wq1 = kiln.weight "model.layers.1.self_attn.q_proj.weight" : tensor<64x64xf32>
  %q1 = kiln.matmul %h1, %wq1 {transpose_b} : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  %wk1 = kiln.weight "model.layers.1.self_attn.k_proj.weight" : tensor<32x64xf32>
  %k1 = kiln.matmul %h1, %wk1 {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %wv1 = kiln.weight "model.layers.1.self_attn.v_proj.weight" : tensor<32x64xf32>
  %v1 = kiln.matmul %h1, %wv1 {transpose_b} : tensor<?x?x64xf32>, tensor<32x64xf32> -> tensor<?x?x32xf32>
  %q41 = kiln.reshape %q1 {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %k41 = kiln.reshape %k1 {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %v41 = kiln.reshape %v1 {shape = array<i64: 0, 0, 2, 16>} : tensor<?x?x32xf32> -> tensor<?x?x2x16xf32>
  %qr1 = kiln.rope %q41, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x4x16xf32>, tensor<?x?xi64>
  %kr1 = kiln.rope %k41, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x?x2x16xf32>, tensor<?x?xi64>
  %kh1 = kiln.transpose %kr1 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
  %kc1 = kiln.concat %pk1, %kh1 {axis = 2 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x2x?x16xf32>
  %kt1 = kiln.transpose %kc1 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
  %vh1 = kiln.transpose %v41 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x?x2x16xf32> -> tensor<?x2x?x16xf32>
  %vc1 = kiln.concat %pv1, %vh1 {axis = 2 : i64} : tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32> -> tensor<?x2x?x16xf32>
  %vt1 = kiln.transpose %vc1 {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x2x?x16xf32> -> tensor<?x?x2x16xf32>
  %a1 = kiln.attention %qr1, %kt1, %vt1 {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  %a31 = kiln.reshape %a1 {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  %wo1 = kiln.weight "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xf32>
  %o1 = kiln.matmul %a31, %wo1 {transpose_b} : tensor<?x?x64xf32>, tensor<64x64xf32> -> tensor<?x?x64xf32>
  %x2 = kiln.add %x1, %o1 : tensor<?x?x64xf32>, tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  %lnf = kiln.weight "model.norm.weight" : tensor<64xf32>
  %hf = kiln.rms_norm %x2, %lnf {epsilon = 1.0e-05 : f32} : tensor<?x?x64xf32>, tensor<64xf32>
  %lm = kiln.weight "lm_head.weight" : tensor<512x64xf32>
  %logits = kiln.matmul %hf, %lm {transpose_b} : tensor<?x?x64xf32>, tensor<512x64xf32> -> tensor<?x?x512xf32>
  return %logits, %kc0, %vc0, %kc1, %vc1 : tensor<?x?x512xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>, tensor<?x2x?x16xf32>
}
