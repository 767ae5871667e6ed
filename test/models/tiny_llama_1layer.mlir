// A one-layer Llama in the kiln dialect, written by hand: embedding, RMSNorm,
// Q/K/V projections, neox RoPE (theta 500000), causal GQA attention (4 query
// heads over 2 kv heads of 16 channels), output projection and residual,
// RMSNorm, SwiGLU MLP (172) and residual, final RMSNorm and LM head. The
// shape of peer_decode.py's `tiny` Llama, with one layer, in f32.
//
// test/numerics/llama_block.py checks it against float64 numpy; the README's
// demo runs it with kiln-interp.

func.func @forward(%ids: tensor<1x?xi64>) -> tensor<1x?x512xf32> {
  %emb = kiln.weight "model.embed_tokens.weight" : tensor<512x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<512x64xf32>, tensor<1x?xi64> -> tensor<1x?x64xf32>
  %pos0 = kiln.arange %ids {axis = 1 : i64} : tensor<1x?xi64> -> tensor<?xi64>
  %pos = kiln.reshape %pos0 {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>

  // Attention.
  %ln1 = kiln.weight "model.layers.0.input_layernorm.weight" : tensor<64xf32>
  %h = kiln.rms_norm %x, %ln1 {epsilon = 1.0e-05 : f32} : tensor<1x?x64xf32>, tensor<64xf32>
  %wq = kiln.weight "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
  %wk = kiln.weight "model.layers.0.self_attn.k_proj.weight" : tensor<32x64xf32>
  %wv = kiln.weight "model.layers.0.self_attn.v_proj.weight" : tensor<32x64xf32>
  %q = kiln.matmul %h, %wq {transpose_b} : tensor<1x?x64xf32>, tensor<64x64xf32> -> tensor<1x?x64xf32>
  %k = kiln.matmul %h, %wk {transpose_b} : tensor<1x?x64xf32>, tensor<32x64xf32> -> tensor<1x?x32xf32>
  %v = kiln.matmul %h, %wv {transpose_b} : tensor<1x?x64xf32>, tensor<32x64xf32> -> tensor<1x?x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 1, -1, 4, 16>} : tensor<1x?x64xf32> -> tensor<1x?x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 1, -1, 2, 16>} : tensor<1x?x32xf32> -> tensor<1x?x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 1, -1, 2, 16>} : tensor<1x?x32xf32> -> tensor<1x?x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64} : tensor<1x?x2x16xf32>, tensor<1x?xi64>
  %att = kiln.attention %qr, %kr, %v4 {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  %att2 = kiln.reshape %att {shape = array<i64: 1, -1, 64>} : tensor<1x?x4x16xf32> -> tensor<1x?x64xf32>
  %wo = kiln.weight "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
  %o = kiln.matmul %att2, %wo {transpose_b} : tensor<1x?x64xf32>, tensor<64x64xf32> -> tensor<1x?x64xf32>
  %x2 = kiln.add %x, %o : tensor<1x?x64xf32>, tensor<1x?x64xf32> -> tensor<1x?x64xf32>

  // MLP.
  %ln2 = kiln.weight "model.layers.0.post_attention_layernorm.weight" : tensor<64xf32>
  %h2 = kiln.rms_norm %x2, %ln2 {epsilon = 1.0e-05 : f32} : tensor<1x?x64xf32>, tensor<64xf32>
  %wg = kiln.weight "model.layers.0.mlp.gate_proj.weight" : tensor<172x64xf32>
  %wu = kiln.weight "model.layers.0.mlp.up_proj.weight" : tensor<172x64xf32>
  %wd = kiln.weight "model.layers.0.mlp.down_proj.weight" : tensor<64x172xf32>
  %g = kiln.matmul %h2, %wg {transpose_b} : tensor<1x?x64xf32>, tensor<172x64xf32> -> tensor<1x?x172xf32>
  %u = kiln.matmul %h2, %wu {transpose_b} : tensor<1x?x64xf32>, tensor<172x64xf32> -> tensor<1x?x172xf32>
  %s = kiln.swiglu %g, %u : tensor<1x?x172xf32>
  %d = kiln.matmul %s, %wd {transpose_b} : tensor<1x?x172xf32>, tensor<64x172xf32> -> tensor<1x?x64xf32>
  %x3 = kiln.add %x2, %d : tensor<1x?x64xf32>, tensor<1x?x64xf32> -> tensor<1x?x64xf32>

  // Head.
  %lnf = kiln.weight "model.norm.weight" : tensor<64xf32>
  %hf = kiln.rms_norm %x3, %lnf {epsilon = 1.0e-05 : f32} : tensor<1x?x64xf32>, tensor<64xf32>
  %lm = kiln.weight "lm_head.weight" : tensor<512x64xf32>
  %logits = kiln.matmul %hf, %lm {transpose_b} : tensor<1x?x64xf32>, tensor<512x64xf32> -> tensor<1x?x512xf32>
  return %logits : tensor<1x?x512xf32>
}
