// RUN: kiln-opt %s -split-input-file -verify-diagnostics
// One case per verifier rule of the kiln dialect (ir/Kiln/KilnOps.cpp).

func.func @weight_empty_name() {
  // expected-error @+1 {{weight name must not be empty}}
  %w = kiln.weight "" : tensor<4xf32>
  return
}

// -----

func.func @weight_dynamic_shape() {
  // expected-error @+1 {{weight shape must be static}}
  %w = kiln.weight "w" : tensor<?x4xf32>
  return
}

// -----

func.func @result_type_not_inferred(%a: tensor<4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{'kiln.add' op inferred type(s) 'tensor<4xf32>' are incompatible with return type(s) of operation 'tensor<8xf32>'}}
  %0 = kiln.add %a, %a : tensor<4xf32>, tensor<4xf32> -> tensor<8xf32>
  return
}

// -----

func.func @binary_no_broadcast(%a: tensor<4xf32>, %b: tensor<5xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operand shapes do not broadcast: dimension 4 against 5}}
  %0 = kiln.mul %a, %b : tensor<4xf32>, tensor<5xf32> -> tensor<4xf32>
  return
}

// -----

func.func @binary_element_types(%a: tensor<4xf32>, %b: tensor<4xbf16>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operands differ in element type: 'f32' and 'bf16'}}
  %0 = kiln.add %a, %b : tensor<4xf32>, tensor<4xbf16> -> tensor<4xf32>
  return
}

// -----

func.func @unary_type_mismatch(%a: tensor<4xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "kiln.exp"(%a) : (tensor<4xf32>) -> tensor<4xbf16>
  return
}

// -----

func.func @compare_element_types(%a: tensor<4xf32>, %b: tensor<4xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operands differ in element type}}
  %0 = kiln.compare eq, %a, %b : tensor<4xf32>, tensor<4xi64> -> tensor<4xi1>
  return
}

// -----

func.func @where_value_types(%c: tensor<4xi1>, %a: tensor<4xf32>, %b: tensor<4xf16>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operands differ in element type: 'f32' and 'f16'}}
  %0 = kiln.where %c, %a, %b : tensor<4xi1>, tensor<4xf32>, tensor<4xf16> -> tensor<4xf32>
  return
}

// -----

func.func @where_condition_shape(%c: tensor<3xi1>, %a: tensor<4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operand shapes do not broadcast: dimension 3 against 4}}
  %0 = kiln.where %c, %a, %a : tensor<3xi1>, tensor<4xf32>, tensor<4xf32> -> tensor<4xf32>
  return
}

// -----

func.func @cast_shape(%a: tensor<4xf32>) {
  // expected-error @+1 {{result shape must equal the operand shape}}
  %0 = kiln.cast %a : tensor<4xf32> to tensor<5xbf16>
  return
}

// -----

func.func @matmul_rank0(%a: tensor<f32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul operands must have rank >= 1}}
  %0 = kiln.matmul %a, %b : tensor<f32>, tensor<4xf32> -> tensor<f32>
  return
}

// -----

func.func @matmul_element_types(%a: tensor<2x4xf32>, %b: tensor<4x3xbf16>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul operands differ in element type}}
  %0 = kiln.matmul %a, %b : tensor<2x4xf32>, tensor<4x3xbf16> -> tensor<2x3xf32>
  return
}

// -----

func.func @matmul_contraction(%a: tensor<2x4xf32>, %w: tensor<3x5xf32>) {
  // The weight is [out, in] = [3, 5] under transpose_b, so K is 5, not 4.
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{matmul contraction dimensions differ: 4 and 5}}
  %0 = kiln.matmul %a, %w {transpose_b} : tensor<2x4xf32>, tensor<3x5xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @matmul_batch(%a: tensor<2x3x4xf32>, %b: tensor<5x4x6xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{operand shapes do not broadcast: dimension 2 against 5}}
  %0 = kiln.matmul %a, %b : tensor<2x3x4xf32>, tensor<5x4x6xf32> -> tensor<2x3x6xf32>
  return
}

// -----

func.func @reduce_axis_range(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reduction axis 2 is out of range for rank 2}}
  %0 = kiln.reduce_sum %a {axes = array<i64: 2>} : tensor<2x3xf32> -> tensor<2xf32>
  return
}

// -----

func.func @reduce_axis_repeated(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reduction axis 1 is repeated}}
  %0 = kiln.reduce_max %a {axes = array<i64: 1, 1>} : tensor<2x3xf32> -> tensor<2xf32>
  return
}

// -----

func.func @argmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reduction axis -1 is out of range for rank 2}}
  %0 = kiln.argmax %a {axis = -1 : i64} : tensor<2x3xf32> -> tensor<2xi64>
  return
}

// -----

func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{softmax axis 2 is out of range for rank 2}}
  %0 = kiln.softmax %a {axis = 2 : i64} : tensor<2x3xf32>
  return
}

// -----

func.func @rms_norm_epsilon(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must not be negative}}
  %0 = kiln.rms_norm %x, %w {epsilon = -1.0e-05 : f32} : tensor<2x8xf32>, tensor<8xf32>
  return
}

// -----

func.func @rms_norm_input_rank(%x: tensor<f32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0 = kiln.rms_norm %x, %w {epsilon = 1.0e-05 : f32} : tensor<f32>, tensor<8xf32>
  return
}

// -----

func.func @rms_norm_weight_rank(%x: tensor<2x8xf32>, %w: tensor<1x8xf32>) {
  // expected-error @+1 {{weight must be 1-D}}
  %0 = kiln.rms_norm %x, %w {epsilon = 1.0e-05 : f32} : tensor<2x8xf32>, tensor<1x8xf32>
  return
}

// -----

func.func @rms_norm_weight_size(%x: tensor<2x8xf32>, %w: tensor<7xf32>) {
  // expected-error @+1 {{weight size 7 does not match the last dimension 8}}
  %0 = kiln.rms_norm %x, %w {epsilon = 1.0e-05 : f32} : tensor<2x8xf32>, tensor<7xf32>
  return
}

// -----

func.func @layer_norm_epsilon(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must not be negative}}
  %0 = kiln.layer_norm %x, %w {epsilon = -1.0 : f32} : tensor<2x8xf32>, tensor<8xf32>
  return
}

// -----

func.func @layer_norm_bias_size(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %b: tensor<9xf32>) {
  // expected-error @+1 {{bias size 9 does not match the last dimension 8}}
  %0 = kiln.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f32} : tensor<2x8xf32>, tensor<8xf32>, tensor<9xf32>
  return
}

// -----

func.func @gather_axis(%t: tensor<4x8xf32>, %i: tensor<3xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{gather axis 2 is out of range for rank 2}}
  %0 = kiln.gather %t[%i] {axis = 2 : i64} : tensor<4x8xf32>, tensor<3xi64> -> tensor<3x8xf32>
  return
}

// -----

func.func @reshape_two_inferred(%x: tensor<?x64xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reshape shape may have only one -1}}
  %0 = kiln.reshape %x {shape = array<i64: -1, -1>} : tensor<?x64xf32> -> tensor<?x?xf32>
  return
}

// -----

func.func @reshape_negative(%x: tensor<?x64xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reshape dimension -2 is negative}}
  %0 = kiln.reshape %x {shape = array<i64: -2, 64>} : tensor<?x64xf32> -> tensor<?x64xf32>
  return
}

// -----

func.func @reshape_copy_past_rank(%x: tensor<?x64xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reshape entry 0 at index 2 has no input dimension to copy}}
  %0 = kiln.reshape %x {shape = array<i64: 0, 8, 0>} : tensor<?x64xf32> -> tensor<?x8x?xf32>
  return
}

// -----

func.func @reshape_count(%x: tensor<4x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{reshape changes the element count from 64 to 60}}
  %0 = kiln.reshape %x {shape = array<i64: 4, 15>} : tensor<4x16xf32> -> tensor<4x15xf32>
  return
}

// -----

func.func @reshape_not_divisible(%x: tensor<4x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{cannot reshape 64 elements with shape pattern of 7}}
  %0 = kiln.reshape %x {shape = array<i64: -1, 7>} : tensor<4x16xf32> -> tensor<9x7xf32>
  return
}

// -----

func.func @transpose_size(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{permutation has 3 entries for rank 2}}
  %0 = kiln.transpose %x {permutation = array<i64: 0, 1, 2>} : tensor<2x3xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @transpose_not_permutation(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{permutation is not a permutation of [0, 2)}}
  %0 = kiln.transpose %x {permutation = array<i64: 1, 1>} : tensor<2x3xf32> -> tensor<3x3xf32>
  return
}

// -----

func.func @concat_empty() {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{concat needs at least one operand}}
  %0 = "kiln.concat"() <{axis = 0 : i64}> : () -> tensor<1xf32>
  return
}

// -----

func.func @concat_axis(%a: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{concat axis 2 is out of range for rank 2}}
  %0 = kiln.concat %a, %a {axis = 2 : i64} : tensor<2x3xf32>, tensor<2x3xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @concat_rank(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{concat operands must share rank and element type}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : tensor<2x3xf32>, tensor<3xf32> -> tensor<3x3xf32>
  return
}

// -----

func.func @concat_dims(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{concat operands differ in dimension 1: 3 and 4}}
  %0 = kiln.concat %a, %b {axis = 0 : i64} : tensor<2x3xf32>, tensor<2x4xf32> -> tensor<4x3xf32>
  return
}

// -----

func.func @slice_counts(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice starts, ends and steps need 2 entries each}}
  %0 = kiln.slice %x {starts = array<i64: 0>, ends = array<i64: 1, 1>, steps = array<i64: 1, 1>} : tensor<2x3xf32> -> tensor<1x1xf32>
  return
}

// -----

func.func @slice_zero_step(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice step on dimension 1 is zero}}
  %0 = kiln.slice %x {starts = array<i64: 0, 0>, ends = array<i64: 1, 1>, steps = array<i64: 1, 0>} : tensor<2x3xf32> -> tensor<1x1xf32>
  return
}

// -----

func.func @broadcast_element_type(%x: tensor<1x4xf32>) {
  // expected-error @+1 {{result element type must equal the operand's}}
  %0 = kiln.broadcast_to %x : tensor<1x4xf32> -> tensor<3x4xf16>
  return
}

// -----

func.func @broadcast_rank(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{result rank 1 is below the operand rank 2}}
  %0 = kiln.broadcast_to %x : tensor<2x4xf32> -> tensor<4xf32>
  return
}

// -----

func.func @broadcast_dynamic_stretch(%x: tensor<1x4xf32>) {
  // expected-error @+1 {{dimension 0 stretches from 1 and must be static}}
  %0 = kiln.broadcast_to %x : tensor<1x4xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @broadcast_mismatch(%x: tensor<2x4xf32>) {
  // expected-error @+1 {{dimension 1 is 5 but the operand has 4}}
  %0 = kiln.broadcast_to %x : tensor<2x4xf32> -> tensor<2x5xf32>
  return
}

// -----

func.func @arange_axis(%x: tensor<1x?xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{arange axis 2 is out of range for rank 2}}
  %0 = kiln.arange %x {axis = 2 : i64} : tensor<1x?xi64> -> tensor<?xi64>
  return
}

// -----

func.func @rope_input_rank(%x: tensor<1x?x64xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{input must be [batch, tokens, heads, head_dim]}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x?x64xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_positions_rank(%x: tensor<1x?x4x16xf32>, %p: tensor<?xi64>) {
  // expected-error @+1 {{positions must be [batch, tokens]}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x?x4x16xf32>, tensor<?xi64>
  return
}

// -----

func.func @rope_positions_shape(%x: tensor<1x5x4x16xf32>, %p: tensor<1x6xi64>) {
  // expected-error @+1 {{do not match the input's tokens}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x5x4x16xf32>, tensor<1x6xi64>
  return
}

// -----

func.func @rope_theta(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{theta must be positive}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 0.0 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_rotary_dim_odd(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{rotary_dim must be positive and even, got 7}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64, rotary_dim = 7 : i64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_rotary_dim_large(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{rotary_dim 32 exceeds the head dim 16}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64, rotary_dim = 32 : i64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_odd_head_dim(%x: tensor<1x?x4x15xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{head dim 15 must be even}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x?x4x15xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_table_shape(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>, %t: tensor<1x?x4x2xf32>) {
  // expected-error @+1 {{cos_sin 'tensor<1x?x4x2xf32>' is not the table of positions 'tensor<1x?xi64>' for a rotary dim of 16}}
  %0 = kiln.rope %x, %p table %t {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x4x2xf32>
  return
}

// -----

func.func @rope_table_dtype(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>, %t: tensor<1x?x8x2xf16>) {
  // expected-error @+1 {{operand #2 must be ranked tensor of 32-bit float values}}
  %0 = kiln.rope %x, %p table %t {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x8x2xf16>
  return
}

// -----

func.func @rope_table_frequencies(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  %t = kiln.rope_cos_sin %p {rotary_dim = 16 : i64, theta = 1.0e+04 : f64} : tensor<1x?xi64> -> tensor<1x?x8x2xf32>
  // expected-error @+1 {{cos_sin has other frequencies than the rotation}}
  %0 = kiln.rope %x, %p table %t {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x8x2xf32>
  return
}

// -----

func.func @rope_table_positions(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>, %q: tensor<1x?xi64>) {
  %t = kiln.rope_cos_sin %q {rotary_dim = 16 : i64, theta = 1.0e+04 : f64} : tensor<1x?xi64> -> tensor<1x?x8x2xf32>
  // expected-error @+1 {{cos_sin is the table of other positions}}
  %0 = kiln.rope %x, %p table %t {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x8x2xf32>
  return
}

// -----

func.func @rope_cos_sin_rotary_dim(%p: tensor<1x?xi64>) {
  // expected-error @+1 {{rotary_dim must be positive and even, got 5}}
  %t = kiln.rope_cos_sin %p {rotary_dim = 5 : i64, theta = 1.0e+04 : f64} : tensor<1x?xi64> -> tensor<1x?x2x2xf32>
  return
}

// -----

func.func @rope_cos_sin_theta(%p: tensor<1x?xi64>) {
  // expected-error @+1 {{theta must be positive}}
  %t = kiln.rope_cos_sin %p {rotary_dim = 4 : i64, theta = -1.0 : f64} : tensor<1x?xi64> -> tensor<1x?x2x2xf32>
  return
}

// -----

func.func @rope_factor(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{scaling factor must be positive}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64, scaling = #kiln<rope_scaling linear>, factor = 0.0 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_original_positions(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{yarn scaling needs original_max_positions > 0}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64, scaling = #kiln<rope_scaling yarn>, factor = 4.0 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @rope_llama3_bands(%x: tensor<1x?x4x16xf32>, %p: tensor<1x?xi64>) {
  // expected-error @+1 {{llama3 scaling needs 0 < low_freq_factor < high_freq_factor}}
  %0 = kiln.rope %x, %p {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, low_freq_factor = 4.0 : f64, high_freq_factor = 1.0 : f64, original_max_positions = 8192 : i64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  return
}

// -----

func.func @attention_rank(%q: tensor<1x?x64xf32>, %k: tensor<1x?x2x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{attention operands must be [batch, seq, heads, head_dim]}}
  %0 = kiln.attention %q, %k, %k {causal} : tensor<1x?x64xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x64xf32>
  return
}

// -----

func.func @attention_element_types(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xbf16>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{query, key and value must share an element type}}
  %0 = kiln.attention %q, %k, %k {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xbf16>, tensor<1x?x2x16xbf16> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_batch(%q: tensor<2x?x4x16xf32>, %k: tensor<3x?x2x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{query and key batch sizes differ: 2 and 3}}
  %0 = kiln.attention %q, %k, %k {causal} : tensor<2x?x4x16xf32>, tensor<3x?x2x16xf32>, tensor<3x?x2x16xf32> -> tensor<2x?x4x16xf32>
  return
}

// -----

func.func @attention_value_batch(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xf32>, %v: tensor<2x?x2x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{key and value batch sizes differ: 1 and 2}}
  %0 = kiln.attention %q, %k, %v {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<2x?x2x16xf32> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_lengths(%q: tensor<1x?x4x16xf32>, %k: tensor<1x8x2x16xf32>, %v: tensor<1x9x2x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{key and value lengths differ: 8 and 9}}
  %0 = kiln.attention %q, %k, %v {causal} : tensor<1x?x4x16xf32>, tensor<1x8x2x16xf32>, tensor<1x9x2x16xf32> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_kv_heads(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xf32>, %v: tensor<1x?x4x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{key and value head counts differ: 2 and 4}}
  %0 = kiln.attention %q, %k, %v {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x4x16xf32> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_head_dim(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x8xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{query and key head dims differ: 16 and 8}}
  %0 = kiln.attention %q, %k, %k {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x8xf32>, tensor<1x?x2x8xf32> -> tensor<1x?x4x8xf32>
  return
}

// -----

func.func @attention_gqa(%q: tensor<1x?x5x16xf32>, %k: tensor<1x?x2x16xf32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{query heads 5 must be a multiple of key/value heads 2}}
  %0 = kiln.attention %q, %k, %k {causal} : tensor<1x?x5x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x5x16xf32>
  return
}

// -----

func.func @attention_scale(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xf32>) {
  // expected-error @+1 {{scale must be positive}}
  %0 = kiln.attention %q, %k, %k {causal, scale = 0.0 : f64} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_softcap(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xf32>) {
  // expected-error @+1 {{softcap must be positive}}
  %0 = kiln.attention %q, %k, %k {causal, softcap = -1.0 : f64} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_window(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xf32>) {
  // expected-error @+1 {{sliding_window must be positive}}
  %0 = kiln.attention %q, %k, %k {causal, sliding_window = 0 : i64} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  return
}

// -----

func.func @attention_causal_lengths(%q: tensor<1x9x4x16xf32>, %k: tensor<1x8x2x16xf32>) {
  // expected-error @+1 {{causal attention has more queries (9) than keys (8)}}
  %0 = kiln.attention %q, %k, %k {causal} : tensor<1x9x4x16xf32>, tensor<1x8x2x16xf32>, tensor<1x8x2x16xf32> -> tensor<1x9x4x16xf32>
  return
}

// -----

func.func @fused_arg_count(%x: tensor<4xf32>) {
  // expected-error @+1 {{body has 2 arguments for 1 inputs}}
  %0 = kiln.fused "elementwise" (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>, %b: tensor<4xf32>):
    kiln.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @fused_arg_type(%x: tensor<4xf32>) {
  // expected-error @+1 {{body argument type 'tensor<4xf16>' differs from input type 'tensor<4xf32>'}}
  %0 = kiln.fused "elementwise" (%x) : (tensor<4xf32>) -> tensor<4xf16> {
  ^bb0(%a: tensor<4xf16>):
    kiln.yield %a : tensor<4xf16>
  }
  return
}

// -----

func.func @fused_yield_types(%x: tensor<4xf32>) {
  // expected-error @+1 {{yielded types do not match the result types}}
  %0 = kiln.fused "elementwise" (%x) : (tensor<4xf32>) -> tensor<8xf32> {
  ^bb0(%a: tensor<4xf32>):
    kiln.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @fused_uses_value_from_above(%x: tensor<4xf32>) {
  %0 = kiln.fused "elementwise" (%x) : (tensor<4xf32>) -> tensor<4xf32> {
  ^bb0(%a: tensor<4xf32>):
    // expected-note @-2 {{required by region isolation constraints}}
    // expected-error @+1 {{using value defined outside the region}}
    %e = kiln.exp %x : tensor<4xf32>
    kiln.yield %e : tensor<4xf32>
  }
  return
}

// -----

func.func @yield_outside_fused(%x: tensor<4xf32>) {
  // expected-error @+1 {{expects parent op 'kiln.fused'}}
  kiln.yield %x : tensor<4xf32>
}

// -----

func.func @range_types(%a: tensor<i64>, %b: tensor<f32>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{start, limit and delta must share an element type}}
  %0 = kiln.range %a, %b, %a : tensor<i64>, tensor<f32>, tensor<i64> -> tensor<?xi64>
  return
}

// -----

func.func @expand_dynamic_shape_length(%x: tensor<4xf32>, %s: tensor<?xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{the shape operand must be 1-D with a static length}}
  %0 = kiln.expand %x, %s : tensor<4xf32>, tensor<?xi64> -> tensor<?xf32>
  return
}

// -----

func.func @fill_rank(%s: tensor<2xi64>) {
  // expected-error @+1 {{result rank 3 differs from the shape's length 2}}
  %0 = kiln.fill %s {value = 0.0 : f32} : tensor<2xi64> -> tensor<?x?x?xf32>
  return
}

// -----

func.func @fill_value_type(%s: tensor<2xi64>) {
  // expected-error @+1 {{value type 'i64' differs from the result element type}}
  %0 = kiln.fill %s {value = 0 : i64} : tensor<2xi64> -> tensor<?x?xf32>
  return
}

// -----

func.func @fill_dynamic_shape_length(%s: tensor<?xi64>) {
  // expected-error @+1 {{the shape operand must be 1-D with a static length}}
  %0 = kiln.fill %s {value = 0.0 : f32} : tensor<?xi64> -> tensor<?xf32>
  return
}

// -----

func.func @reshape_to_dynamic_shape_length(%x: tensor<4xf32>, %s: tensor<?xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{the shape operand must be 1-D with a static length}}
  %0 = kiln.reshape_to %x, %s : tensor<4xf32>, tensor<?xi64> -> tensor<?xf32>
  return
}

// -----

func.func @slice_to_counts(%x: tensor<4x5xf32>, %b: tensor<2xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{starts, ends, axes and steps need one entry per axis}}
  %0 = kiln.slice_to %x, %b, %b {axes = array<i64: 1>, steps = array<i64: 1>} : tensor<4x5xf32>, tensor<2xi64>, tensor<2xi64> -> tensor<4x?xf32>
  return
}

// -----

func.func @slice_to_axis(%x: tensor<4x5xf32>, %b: tensor<1xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice axis 2 is out of range for rank 2}}
  %0 = kiln.slice_to %x, %b, %b {axes = array<i64: 2>, steps = array<i64: 1>} : tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64> -> tensor<4x5xf32>
  return
}

// -----

func.func @slice_to_repeated(%x: tensor<4x5xf32>, %b: tensor<2xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice axis 1 is repeated}}
  %0 = kiln.slice_to %x, %b, %b {axes = array<i64: 1, 1>, steps = array<i64: 1, 1>} : tensor<4x5xf32>, tensor<2xi64>, tensor<2xi64> -> tensor<4x?xf32>
  return
}

// -----

func.func @slice_to_zero_step(%x: tensor<4x5xf32>, %b: tensor<1xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{slice step on axis 0 is zero}}
  %0 = kiln.slice_to %x, %b, %b {axes = array<i64: 0>, steps = array<i64: 0>} : tensor<4x5xf32>, tensor<1xi64>, tensor<1xi64> -> tensor<?x5xf32>
  return
}

// -----

func.func @cumsum_axis(%x: tensor<4x5xf32>) {
  // expected-error @+1 {{cumsum axis 2 is out of range for rank 2}}
  %0 = kiln.cumsum %x {axis = 2 : i64} : tensor<4x5xf32>
  return
}

// -----

func.func @gather_nd_dynamic_tuple(%d: tensor<4x5xf32>, %i: tensor<3x?xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{the last dimension of the indices must be static}}
  %0 = kiln.gather_nd %d[%i] : tensor<4x5xf32>, tensor<3x?xi64> -> tensor<3xf32>
  return
}

// -----

func.func @gather_nd_tuple_length(%d: tensor<4x5xf32>, %i: tensor<3x3xi64>) {
  // expected-error @+2 {{failed to infer returned types}}
  // expected-error @+1 {{index tuples of length 3 do not fit data of rank 2}}
  %0 = kiln.gather_nd %d[%i] : tensor<4x5xf32>, tensor<3x3xi64> -> tensor<3xf32>
  return
}

// -----

func.func @kv_append_cache_rank(%c: tensor<2x?x2x16x32xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{cache must be [layers, pages, 2, page_size, kv_heads, head_dim]}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x16x32xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_not_kv(%c: tensor<2x?x3x16x2x16xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{cache dimension 2 must be 2 (K and V), got 3}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x3x16x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_page_size(%c: tensor<2x?x2x12x2x16xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{page size must be a static power of two, got 12}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x12x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_layer(%c: tensor<2x?x2x16x2x16xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{layer 2 is out of range for a cache of 2 layers}}
  %0 = kiln.kv_append %c[2], %k, %k, %bt, %p : tensor<2x?x2x16x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_dtype(%c: tensor<2x?x2x16x2x16xbf16>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{element type 'f32' differs from the cache's 'bf16'}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x16x2x16xbf16>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_head_dim(%c: tensor<2x?x2x16x2x32xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{head dim 16 differs from the cache's 32}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x16x2x32xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_heads(%c: tensor<2x?x2x16x4x16xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{kv heads 2 differ from the cache's 4}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x16x4x16xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_block_tables(%c: tensor<2x?x2x16x2x16xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<3x4xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{block tables must be [batch, pages per sequence]}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x16x2x16xf32>, tensor<1x1x2x16xf32>, tensor<3x4xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @kv_append_positions(%c: tensor<2x?x2x16x2x16xf32>, %k: tensor<1x1x2x16xf32>, %bt: tensor<1x4xi32>, %p: tensor<1x5xi64>) {
  // expected-error @+1 {{positions must be [batch, tokens] of the tokens}}
  %0 = kiln.kv_append %c[0], %k, %k, %bt, %p : tensor<2x?x2x16x2x16xf32>, tensor<1x1x2x16xf32>, tensor<1x4xi32>, tensor<1x5xi64>
  return
}

// -----

func.func @paged_attention_heads(%q: tensor<1x1x3x16xf32>, %c: tensor<2x?x2x16x2x16xf32>, %bt: tensor<1x4xi32>, %ctx: tensor<1xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{query heads 3 are not a multiple of the cache's 2}}
  %0 = kiln.paged_attention %q, %c[0], %bt, %ctx, %p {causal} : tensor<1x1x3x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<1x4xi32>, tensor<1xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @paged_attention_context(%q: tensor<1x1x4x16xf32>, %c: tensor<2x?x2x16x2x16xf32>, %bt: tensor<1x4xi32>, %ctx: tensor<2xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{context lengths must be [batch], got 'tensor<2xi32>'}}
  %0 = kiln.paged_attention %q, %c[0], %bt, %ctx, %p {causal} : tensor<1x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<1x4xi32>, tensor<2xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @paged_attention_window(%q: tensor<1x1x4x16xf32>, %c: tensor<2x?x2x16x2x16xf32>, %bt: tensor<1x4xi32>, %ctx: tensor<1xi32>, %p: tensor<1x1xi64>) {
  // expected-error @+1 {{sliding_window must be positive}}
  %0 = kiln.paged_attention %q, %c[0], %bt, %ctx, %p {causal, sliding_window = 0 : i64} : tensor<1x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<1x4xi32>, tensor<1xi32>, tensor<1x1xi64>
  return
}

// -----

func.func @weight_transposed_rank() {
  // expected-error @+1 {{only a 2-D weight can be stored transposed, got 'tensor<4x4x4xf32>'}}
  %w = kiln.weight "w" {transposed} : tensor<4x4x4xf32>
  return
}

// -----

func.func @weight_sources_alone() {
  // expected-error @+1 {{sources and source_rows come together}}
  %w = kiln.weight "w" {sources = ["a", "b"]} : tensor<4x4xf32>
  return
}

// -----

func.func @weight_sources_rows() {
  // expected-error @+1 {{source rows add up to 5, not the 'tensor<4x4xf32>' of the concatenation}}
  %w = kiln.weight "w" {sources = ["a", "b"], source_rows = array<i64: 2, 3>} : tensor<4x4xf32>
  return
}

// -----

func.func @weight_one_source() {
  // expected-error @+1 {{needs at least two sources, each with its row count}}
  %w = kiln.weight "w" {sources = ["a"], source_rows = array<i64: 4>} : tensor<4x4xf32>
  return
}

// -----

func.func @dequant_bits(%q: tensor<32x512xi32>, %s: tensor<2x512xf16>) {
  // expected-error @+1 {{bits must be 4 or 8, got 3}}
  %0 = kiln.dequant %q, %s {bits = 3 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_awq_bits(%q: tensor<256x128xi32>, %s: tensor<2x512xf16>) {
  // expected-error @+1 {{awq packing holds 4-bit values, got 8}}
  %0 = kiln.dequant %q, %s {bits = 8 : i64, group_size = 128 : i64, packing = #kiln<quant_packing awq>} : (tensor<256x128xi32>, tensor<2x512xf16>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_group(%q: tensor<32x512xi32>, %s: tensor<2x512xf16>) {
  // expected-error @+1 {{group_size must be -1 or divide K = 256, got 100}}
  %0 = kiln.dequant %q, %s {bits = 4 : i64, group_size = 100 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_qweight(%q: tensor<64x512xi32>, %s: tensor<2x512xf16>) {
  // expected-error @+1 {{qweight must be 'tensor<32x512xi32>', got 'tensor<64x512xi32>'}}
  %0 = kiln.dequant %q, %s {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<64x512xi32>, tensor<2x512xf16>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_scales(%q: tensor<32x512xi32>, %s: tensor<4x512xf16>) {
  // expected-error @+1 {{scales must be 'tensor<2x512xf16>', got 'tensor<4x512xf16>'}}
  %0 = kiln.dequant %q, %s {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<4x512xf16>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_zeros(%q: tensor<32x512xi32>, %s: tensor<2x512xf16>, %z: tensor<2x512xi32>) {
  // expected-error @+1 {{zeros must be 'tensor<2x64xi32>', got 'tensor<2x512xi32>'}}
  %0 = kiln.dequant %q, %s zeros %z {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<2x512xi32>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_g_idx(%q: tensor<32x512xi32>, %s: tensor<2x512xf16>, %g: tensor<128xi32>) {
  // expected-error @+1 {{g_idx must be 'tensor<256xi32>', got 'tensor<128xi32>'}}
  %0 = kiln.dequant %q, %s g_idx %g {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<128xi32>) -> tensor<256x512xf16>
  return
}

// -----

func.func @dequant_result(%q: tensor<32x512xi32>, %s: tensor<2x512xf16>) {
  // expected-error @+1 {{result must be a static [K, N] matrix}}
  %0 = kiln.dequant %q, %s {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>) -> tensor<?x512xf16>
  return
}
