// RUN: kiln-opt %s -split-input-file | FileCheck %s
// RUN: kiln-opt %s -split-input-file -mlir-print-op-generic | kiln-opt -split-input-file | FileCheck %s
// Every kiln op parses, verifies and prints back (also through the generic
// form, which checks properties survive).

// CHECK-LABEL: func.func @weights_and_constants
func.func @weights_and_constants() -> (tensor<512x64xbf16>, tensor<2xf32>) {
  // CHECK: %[[W:.*]] = kiln.weight "model.embed_tokens.weight" : tensor<512x64xbf16>
  %w = kiln.weight "model.embed_tokens.weight" : tensor<512x64xbf16>
  // CHECK: kiln.weight "l.{q,k}" {source_rows = array<i64: 64, 32>, sources = ["l.q", "l.k"], transposed} : tensor<96x64xbf16>
  %wqk = kiln.weight "l.{q,k}" {sources = ["l.q", "l.k"], source_rows = array<i64: 64, 32>, transposed} : tensor<96x64xbf16>
  // CHECK: kiln.constant dense<[1.000000e+00, 2.500000e+00]> : tensor<2xf32>
  %c = kiln.constant dense<[1.0, 2.5]> : tensor<2xf32>
  return %w, %c : tensor<512x64xbf16>, tensor<2xf32>
}

// -----

// CHECK-LABEL: func.func @unary
func.func @unary(%x: tensor<?x64xbf16>, %i: tensor<4xi64>, %m: tensor<3xi1>) {
  // CHECK: kiln.neg %{{.*}} : tensor<?x64xbf16>
  %0 = kiln.neg %x : tensor<?x64xbf16>
  // CHECK: kiln.neg %{{.*}} : tensor<4xi64>
  %1 = kiln.neg %i : tensor<4xi64>
  // CHECK: kiln.abs
  %2 = kiln.abs %x : tensor<?x64xbf16>
  // CHECK: kiln.exp
  %3 = kiln.exp %x : tensor<?x64xbf16>
  // CHECK: kiln.log
  %4 = kiln.log %x : tensor<?x64xbf16>
  // CHECK: kiln.sqrt
  %5 = kiln.sqrt %x : tensor<?x64xbf16>
  // CHECK: kiln.rsqrt
  %6 = kiln.rsqrt %x : tensor<?x64xbf16>
  // CHECK: kiln.reciprocal
  %7 = kiln.reciprocal %x : tensor<?x64xbf16>
  // CHECK: kiln.tanh
  %8 = kiln.tanh %x : tensor<?x64xbf16>
  // CHECK: kiln.sigmoid
  %9 = kiln.sigmoid %x : tensor<?x64xbf16>
  // CHECK: kiln.silu
  %10 = kiln.silu %x : tensor<?x64xbf16>
  // CHECK: kiln.erf
  %11 = kiln.erf %x : tensor<?x64xbf16>
  // CHECK: kiln.sin
  %12 = kiln.sin %x : tensor<?x64xbf16>
  // CHECK: kiln.cos
  %13 = kiln.cos %x : tensor<?x64xbf16>
  // CHECK: kiln.relu
  %14 = kiln.relu %x : tensor<?x64xbf16>
  // CHECK: kiln.not %{{.*}} : tensor<3xi1>
  %15 = kiln.not %m : tensor<3xi1>
  // CHECK: kiln.gelu %{{.*}} : tensor<?x64xbf16>
  %16 = kiln.gelu %x : tensor<?x64xbf16>
  // CHECK: kiln.gelu %{{.*}} {tanh_approximation} : tensor<?x64xbf16>
  %17 = kiln.gelu %x {tanh_approximation} : tensor<?x64xbf16>
  return
}

// -----

// CHECK-LABEL: func.func @binary
func.func @binary(%a: tensor<?x64xf32>, %b: tensor<64xf32>, %c: tensor<1x?x1xf32>,
                  %i: tensor<?xi64>, %p: tensor<?xi1>, %q: tensor<1xi1>) {
  // CHECK: kiln.add %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %0 = kiln.add %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  // CHECK: kiln.sub {{.*}} -> tensor<1x?x64xf32>
  %1 = kiln.sub %c, %a : tensor<1x?x1xf32>, tensor<?x64xf32> -> tensor<1x?x64xf32>
  // CHECK: kiln.mul
  %2 = kiln.mul %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  // CHECK: kiln.div {{.*}} : tensor<?xi64>, tensor<?xi64> -> tensor<?xi64>
  %3 = kiln.div %i, %i : tensor<?xi64>, tensor<?xi64> -> tensor<?xi64>
  // CHECK: kiln.pow
  %4 = kiln.pow %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  // CHECK: kiln.max
  %5 = kiln.max %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  // CHECK: kiln.min
  %6 = kiln.min %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  // CHECK: kiln.and {{.*}} : tensor<?xi1>, tensor<1xi1> -> tensor<?xi1>
  %7 = kiln.and %p, %q : tensor<?xi1>, tensor<1xi1> -> tensor<?xi1>
  // CHECK: kiln.or
  %8 = kiln.or %p, %q : tensor<?xi1>, tensor<1xi1> -> tensor<?xi1>
  // CHECK: kiln.compare lt, {{.*}} : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xi1>
  %9 = kiln.compare lt, %a, %b : tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xi1>
  // CHECK: kiln.compare ge
  %10 = kiln.compare ge, %i, %i : tensor<?xi64>, tensor<?xi64> -> tensor<?xi1>
  // CHECK: kiln.where {{.*}} : tensor<?x64xi1>, tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  %11 = kiln.where %9, %a, %b : tensor<?x64xi1>, tensor<?x64xf32>, tensor<64xf32> -> tensor<?x64xf32>
  // CHECK: kiln.cast {{.*}} : tensor<?x64xf32> to tensor<?x64xbf16>
  %12 = kiln.cast %a : tensor<?x64xf32> to tensor<?x64xbf16>
  return
}

// -----

// CHECK-LABEL: func.func @contractions_and_reductions
func.func @contractions_and_reductions(%x: tensor<1x?x64xbf16>, %w: tensor<172x64xbf16>,
                                       %v: tensor<64xbf16>, %b: tensor<3x64x5xbf16>) {
  // CHECK: kiln.matmul {{.*}} {transpose_b} : tensor<1x?x64xbf16>, tensor<172x64xbf16> -> tensor<1x?x172xbf16>
  %0 = kiln.matmul %x, %w {transpose_b} : tensor<1x?x64xbf16>, tensor<172x64xbf16> -> tensor<1x?x172xbf16>
  // CHECK: kiln.matmul {{.*}} : tensor<64xbf16>, tensor<3x64x5xbf16> -> tensor<3x5xbf16>
  %1 = kiln.matmul %v, %b : tensor<64xbf16>, tensor<3x64x5xbf16> -> tensor<3x5xbf16>
  // CHECK: kiln.reduce_sum {{.*}} {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xbf16> -> tensor<1x?x1xbf16>
  %2 = kiln.reduce_sum %x {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xbf16> -> tensor<1x?x1xbf16>
  // CHECK: kiln.reduce_mean {{.*}} -> tensor<?xbf16>
  %3 = kiln.reduce_mean %x {axes = array<i64: 0, 2>} : tensor<1x?x64xbf16> -> tensor<?xbf16>
  // CHECK: kiln.reduce_max
  %4 = kiln.reduce_max %x {axes = array<i64: 2>} : tensor<1x?x64xbf16> -> tensor<1x?xbf16>
  // CHECK: kiln.reduce_min
  %5 = kiln.reduce_min %x {axes = array<i64: 2>} : tensor<1x?x64xbf16> -> tensor<1x?xbf16>
  // CHECK: kiln.argmax {{.*}} {axis = 2 : i64} : tensor<1x?x64xbf16> -> tensor<1x?xi64>
  %6 = kiln.argmax %x {axis = 2 : i64} : tensor<1x?x64xbf16> -> tensor<1x?xi64>
  // CHECK: kiln.softmax {{.*}} {axis = 2 : i64} : tensor<1x?x64xbf16>
  %7 = kiln.softmax %x {axis = 2 : i64} : tensor<1x?x64xbf16>
  // CHECK: kiln.rms_norm {{.*}} {epsilon = 9.99999974E-6 : f32} : tensor<1x?x64xbf16>, tensor<64xbf16>
  %8 = kiln.rms_norm %x, %v {epsilon = 1.0e-05 : f32} : tensor<1x?x64xbf16>, tensor<64xbf16>
  // CHECK: kiln.rms_norm {{.*}} weight_offset = 1.000000e+00 : f32
  %9 = kiln.rms_norm %x, %v {epsilon = 1.0e-06 : f32, weight_offset = 1.0 : f32} : tensor<1x?x64xbf16>, tensor<64xbf16>
  // CHECK: kiln.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {{.*}} : tensor<1x?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>
  %10 = kiln.layer_norm %x, %v, %v {epsilon = 1.0e-05 : f32} : tensor<1x?x64xbf16>, tensor<64xbf16>, tensor<64xbf16>
  // CHECK: kiln.layer_norm %{{.*}}, %{{.*}} {{.*}} : tensor<1x?x64xbf16>, tensor<64xbf16>{{$}}
  %11 = kiln.layer_norm %x, %v {epsilon = 1.0e-05 : f32} : tensor<1x?x64xbf16>, tensor<64xbf16>
  return
}

// -----

// CHECK-LABEL: func.func @movement
func.func @movement(%t: tensor<512x64xbf16>, %ids: tensor<1x?xi64>, %x: tensor<1x?x64xf32>,
                    %s: tensor<2x3x4xf32>, %r: tensor<1x64xf32>,
                    %one: tensor<1x1x64xf32>) {
  // CHECK: kiln.gather %{{.*}}[%{{.*}}] {axis = 0 : i64} : tensor<512x64xbf16>, tensor<1x?xi64> -> tensor<1x?x64xbf16>
  %0 = kiln.gather %t[%ids] {axis = 0 : i64} : tensor<512x64xbf16>, tensor<1x?xi64> -> tensor<1x?x64xbf16>
  // CHECK: kiln.reshape {{.*}} {shape = array<i64: 1, -1, 4, 16>} : tensor<1x?x64xf32> -> tensor<1x?x4x16xf32>
  %1 = kiln.reshape %x {shape = array<i64: 1, -1, 4, 16>} : tensor<1x?x64xf32> -> tensor<1x?x4x16xf32>
  // CHECK: kiln.reshape {{.*}} {shape = array<i64: 0, 0, 2, 32>} : tensor<1x?x64xf32> -> tensor<1x?x2x32xf32>
  %r0 = kiln.reshape %x {shape = array<i64: 0, 0, 2, 32>} : tensor<1x?x64xf32> -> tensor<1x?x2x32xf32>
  // CHECK: kiln.reshape {{.*}} -> tensor<6x4xf32>
  %2 = kiln.reshape %s {shape = array<i64: -1, 4>} : tensor<2x3x4xf32> -> tensor<6x4xf32>
  // CHECK: kiln.transpose {{.*}} {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x4x16xf32> -> tensor<1x4x?x16xf32>
  %3 = kiln.transpose %1 {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x?x4x16xf32> -> tensor<1x4x?x16xf32>
  // CHECK: kiln.concat {{.*}} {axis = 1 : i64} : tensor<1x?x64xf32>, tensor<1x1x64xf32> -> tensor<1x?x64xf32>
  %4 = kiln.concat %x, %one {axis = 1 : i64} : tensor<1x?x64xf32>, tensor<1x1x64xf32> -> tensor<1x?x64xf32>
  // CHECK: kiln.concat {{.*}} : tensor<2x3x4xf32>, tensor<2x3x4xf32> -> tensor<2x6x4xf32>
  %5 = kiln.concat %s, %s {axis = 1 : i64} : tensor<2x3x4xf32>, tensor<2x3x4xf32> -> tensor<2x6x4xf32>
  // CHECK: kiln.slice {{.*}} -> tensor<1x?x32xf32>
  %6 = kiln.slice %x {starts = array<i64: 0, 0, 32>, ends = array<i64: 1, 9223372036854775807, 64>, steps = array<i64: 1, 1, 1>} : tensor<1x?x64xf32> -> tensor<1x?x32xf32>
  // x[:, ::-1, 1::2] of 2x3x4 is 2x3x2
  // CHECK: kiln.slice {{.*}} -> tensor<2x3x2xf32>
  %7 = kiln.slice %s {starts = array<i64: 0, -1, 1>, ends = array<i64: 2, -9223372036854775807, 4>, steps = array<i64: 1, -1, 2>} : tensor<2x3x4xf32> -> tensor<2x3x2xf32>
  // CHECK: kiln.broadcast_to {{.*}} : tensor<1x64xf32> -> tensor<4x3x64xf32>
  %8 = kiln.broadcast_to %r : tensor<1x64xf32> -> tensor<4x3x64xf32>
  // CHECK: kiln.arange {{.*}} {axis = 1 : i64} : tensor<1x?xi64> -> tensor<?xi64>
  %9 = kiln.arange %ids {axis = 1 : i64} : tensor<1x?xi64> -> tensor<?xi64>
  // CHECK: kiln.arange {{.*}} {axis = 1 : i64, start = 7 : i64}
  %10 = kiln.arange %ids {axis = 1 : i64, start = 7 : i64} : tensor<1x?xi64> -> tensor<?xi64>
  return
}

// -----

// CHECK-LABEL: func.func @composites
func.func @composites(%q: tensor<1x?x4x16xf32>, %k: tensor<1x?x2x16xf32>, %v: tensor<1x?x2x16xf32>,
                      %pos: tensor<1x?xi64>, %g: tensor<1x?x172xf32>) {
  // CHECK: kiln.rope {{.*}} {style = #kiln<rope_style neox>, theta = 5.000000e+05 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  %0 = kiln.rope %q, %pos {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>
  // CHECK: kiln.rope {{.*}} rotary_dim = 8 : i64, scaling = #kiln<rope_scaling llama3>, style = #kiln<rope_style gptj>
  %1 = kiln.rope %k, %pos {style = #kiln<rope_style gptj>, theta = 1.0e+04 : f64, rotary_dim = 8 : i64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, low_freq_factor = 1.0 : f64, high_freq_factor = 4.0 : f64, original_max_positions = 8192 : i64} : tensor<1x?x2x16xf32>, tensor<1x?xi64>
  // CHECK: kiln.rope {{.*}} scaling = #kiln<rope_scaling yarn>
  %2 = kiln.rope %k, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64, scaling = #kiln<rope_scaling yarn>, factor = 4.0 : f64, original_max_positions = 4096 : i64, attention_factor = 1.1 : f64} : tensor<1x?x2x16xf32>, tensor<1x?xi64>
  // CHECK: kiln.attention {{.*}} {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  %3 = kiln.attention %0, %1, %v {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  // CHECK: kiln.attention {{.*}} {causal, scale = 2.500000e-01 : f64, sliding_window = 4096 : i64, softcap = 5.000000e+01 : f64}
  %4 = kiln.attention %0, %1, %v {causal, scale = 0.25 : f64, sliding_window = 4096 : i64, softcap = 50.0 : f64} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
  // CHECK: kiln.swiglu {{.*}} : tensor<1x?x172xf32>
  %5 = kiln.swiglu %g, %g : tensor<1x?x172xf32>
  // CHECK: kiln.geglu {{.*}} {tanh_approximation} : tensor<1x?x172xf32>
  %6 = kiln.geglu %g, %g {tanh_approximation} : tensor<1x?x172xf32>
  // CHECK: %[[CS:.*]] = kiln.rope_cos_sin %{{.*}} {rotary_dim = 16 : i64, theta = 5.000000e+05 : f64} : tensor<1x?xi64> -> tensor<1x?x8x2xf32>
  %7 = kiln.rope_cos_sin %pos {rotary_dim = 16 : i64, theta = 5.0e+05 : f64} : tensor<1x?xi64> -> tensor<1x?x8x2xf32>
  // CHECK: kiln.rope %{{.*}}, %{{.*}} table %[[CS]] {style = #kiln<rope_style neox>, theta = 5.000000e+05 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x8x2xf32>
  %8 = kiln.rope %q, %pos table %7 {style = #kiln<rope_style neox>, theta = 5.0e+05 : f64} : tensor<1x?x4x16xf32>, tensor<1x?xi64>, tensor<1x?x8x2xf32>
  // CHECK: kiln.rope_cos_sin {{.*}} {factor = 8.000000e+00 : f64, original_max_positions = 8192 : i64, rotary_dim = 8 : i64, scaling = #kiln<rope_scaling llama3>
  %9 = kiln.rope_cos_sin %pos {theta = 1.0e+04 : f64, rotary_dim = 8 : i64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, low_freq_factor = 1.0 : f64, high_freq_factor = 4.0 : f64, original_max_positions = 8192 : i64} : tensor<1x?xi64> -> tensor<1x?x4x2xf32>
  // CHECK: kiln.rope {{.*}} table
  %10 = kiln.rope %k, %pos table %9 {style = #kiln<rope_style gptj>, theta = 1.0e+04 : f64, rotary_dim = 8 : i64, scaling = #kiln<rope_scaling llama3>, factor = 8.0 : f64, low_freq_factor = 1.0 : f64, high_freq_factor = 4.0 : f64, original_max_positions = 8192 : i64} : tensor<1x?x2x16xf32>, tensor<1x?xi64>, tensor<1x?x4x2xf32>
  return
}

// -----

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<1x?x64xf32>, %g: tensor<64xf32>, %w: tensor<172x64xf32>) -> tensor<1x?x172xf32> {
  // CHECK: %[[R:.*]] = kiln.fused "norm_matmul"(%{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x?x64xf32>, tensor<64xf32>, tensor<172x64xf32>) -> tensor<1x?x172xf32> {
  // CHECK-NEXT: ^bb0(%[[A:.*]]: tensor<1x?x64xf32>, %[[B:.*]]: tensor<64xf32>, %[[C:.*]]: tensor<172x64xf32>):
  // CHECK-NEXT:   %[[N:.*]] = kiln.rms_norm %[[A]], %[[B]]
  // CHECK-NEXT:   %[[M:.*]] = kiln.matmul %[[N]], %[[C]] {transpose_b}
  // CHECK-NEXT:   kiln.yield %[[M]] : tensor<1x?x172xf32>
  %y = kiln.fused "norm_matmul" (%x, %g, %w) : (tensor<1x?x64xf32>, tensor<64xf32>, tensor<172x64xf32>) -> tensor<1x?x172xf32> {
  ^bb0(%a: tensor<1x?x64xf32>, %b: tensor<64xf32>, %c: tensor<172x64xf32>):
    %n = kiln.rms_norm %a, %b {epsilon = 1.0e-05 : f32} : tensor<1x?x64xf32>, tensor<64xf32>
    %m = kiln.matmul %n, %c {transpose_b} : tensor<1x?x64xf32>, tensor<172x64xf32> -> tensor<1x?x172xf32>
    kiln.yield %m : tensor<1x?x172xf32>
  }
  // CHECK: return %[[R]]
  return %y : tensor<1x?x172xf32>
}

// -----

// CHECK-LABEL: func.func @runtime_shapes
func.func @runtime_shapes(%x: tensor<1x?x64xf32>, %s: tensor<3xi64>, %n: tensor<i64>,
                          %b: tensor<1xi64>, %i: tensor<3x2xi64>, %d: tensor<4x5x6xf32>) {
  // CHECK: kiln.shape_of {{.*}} : tensor<1x?x64xf32> -> tensor<3xi64>
  %0 = kiln.shape_of %x : tensor<1x?x64xf32> -> tensor<3xi64>
  // CHECK: kiln.range {{.*}} : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
  %1 = kiln.range %n, %n, %n : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
  // CHECK: kiln.expand {{.*}} : tensor<1x?x64xf32>, tensor<3xi64> -> tensor<?x?x64xf32>
  %2 = kiln.expand %x, %s : tensor<1x?x64xf32>, tensor<3xi64> -> tensor<?x?x64xf32>
  // CHECK: kiln.fill {{.*}} {value = 1.500000e+00 : f32} : tensor<3xi64> -> tensor<?x?x?xf32>
  %3 = kiln.fill %s {value = 1.5 : f32} : tensor<3xi64> -> tensor<?x?x?xf32>
  // CHECK: kiln.reshape_to {{.*}} : tensor<1x?x64xf32>, tensor<3xi64> -> tensor<?x?x?xf32>
  %4 = kiln.reshape_to %x, %s : tensor<1x?x64xf32>, tensor<3xi64> -> tensor<?x?x?xf32>
  // CHECK: kiln.slice_to {{.*}} {axes = array<i64: 2>, steps = array<i64: 2>} : tensor<1x?x64xf32>, tensor<1xi64>, tensor<1xi64> -> tensor<1x?x?xf32>
  %5 = kiln.slice_to %x, %b, %b {axes = array<i64: 2>, steps = array<i64: 2>} : tensor<1x?x64xf32>, tensor<1xi64>, tensor<1xi64> -> tensor<1x?x?xf32>
  // CHECK: kiln.cumsum {{.*}} {axis = 1 : i64, exclusive, reverse} : tensor<1x?x64xf32>
  %6 = kiln.cumsum %x {axis = 1 : i64, exclusive, reverse} : tensor<1x?x64xf32>
  // CHECK: kiln.gather_nd {{.*}} : tensor<4x5x6xf32>, tensor<3x2xi64> -> tensor<3x6xf32>
  %7 = kiln.gather_nd %d[%i] : tensor<4x5x6xf32>, tensor<3x2xi64> -> tensor<3x6xf32>
  return
}

// -----

// CHECK-LABEL: func.func @paged_kv_cache
func.func @paged_kv_cache(%c: tensor<2x?x2x16x2x16xbf16>, %q: tensor<?x1x4x16xbf16>,
                          %k: tensor<?x1x2x16xbf16>, %v: tensor<?x1x2x16xbf16>,
                          %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %pos: tensor<?x1xi64>) {
  // CHECK: kiln.kv_append %{{.*}}[1], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<2x?x2x16x2x16xbf16>, tensor<?x1x2x16xbf16>, tensor<?x?xi32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[1], %k, %v, %bt, %pos : tensor<2x?x2x16x2x16xbf16>, tensor<?x1x2x16xbf16>, tensor<?x?xi32>, tensor<?x1xi64>
  // CHECK: kiln.paged_attention %{{.*}}, %{{.*}}[1], %{{.*}}, %{{.*}}, %{{.*}} {causal, sliding_window = 8 : i64} : tensor<?x1x4x16xbf16>, tensor<2x?x2x16x2x16xbf16>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  %o = kiln.paged_attention %q, %c1[1], %bt, %ctx, %pos {causal, sliding_window = 8 : i64} : tensor<?x1x4x16xbf16>, tensor<2x?x2x16x2x16xbf16>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  return
}

// -----

// CHECK-LABEL: func.func @dequant
func.func @dequant(%qg: tensor<32x512xi32>, %s: tensor<2x512xf16>, %z: tensor<2x64xi32>, %g: tensor<256xi32>,
                   %qa: tensor<256x64xi32>, %q8: tensor<64x512xi32>, %s1: tensor<1x512xbf16>) {
  // CHECK: kiln.dequant %{{.*}}, %{{.*}} zeros %{{.*}} {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<2x64xi32>) -> tensor<256x512xbf16>
  %0 = kiln.dequant %qg, %s zeros %z {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<2x64xi32>) -> tensor<256x512xbf16>
  // CHECK: kiln.dequant %{{.*}}, %{{.*}} zeros %{{.*}} g_idx %{{.*}} {{.*}}gptq_v2
  %1 = kiln.dequant %qg, %s zeros %z g_idx %g {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq_v2>} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<2x64xi32>, tensor<256xi32>) -> tensor<256x512xf32>
  // CHECK: kiln.dequant %{{.*}}, %{{.*}} g_idx %{{.*}} {{.*}} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<256xi32>) -> tensor<256x512xf16>
  %2 = kiln.dequant %qg, %s g_idx %g {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing gptq>} : (tensor<32x512xi32>, tensor<2x512xf16>, tensor<256xi32>) -> tensor<256x512xf16>
  // CHECK: kiln.dequant {{.*}}awq
  %3 = kiln.dequant %qa, %s zeros %z {bits = 4 : i64, group_size = 128 : i64, packing = #kiln<quant_packing awq>} : (tensor<256x64xi32>, tensor<2x512xf16>, tensor<2x64xi32>) -> tensor<256x512xf16>
  // CHECK: kiln.dequant {{.*}}bits = 8 : i64, group_size = -1 : i64
  %4 = kiln.dequant %q8, %s1 {bits = 8 : i64, group_size = -1 : i64, packing = #kiln<quant_packing gptq>} : (tensor<64x512xi32>, tensor<1x512xbf16>) -> tensor<256x512xbf16>
  return
}
