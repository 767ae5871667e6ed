// RUN: kiln-opt %s -split-input-file -kiln-fuse | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-fuse=launch-bytes=0 | FileCheck %s --check-prefix=NOLAUNCH
// RUN: kiln-opt %s -split-input-file -kiln-fuse=merge-projections=false | FileCheck %s --check-prefix=NOMERGE
// RUN: kiln-opt %s -split-input-file -kiln-fuse=append-in-attention=true | FileCheck %s --check-prefix=INATT

// A decode layer's attention half: the norm, Q/K/V merged into one matmul
// over a load-time concatenation, RoPE of queries and keys with the append,
// paged attention, and the output projection with its residual.
// CHECK-LABEL: func.func @decode
// CHECK: %[[W:.*]] = kiln.weight "l.{q,k,v}" {source_rows = array<i64: 64, 32, 32>, sources = ["l.q", "l.k", "l.v"]} : tensor<128x64xf32>
// CHECK: %[[QKV:.*]] = kiln.fused "matmul"(%{{.*}}, %{{.*}}, %[[W]]) : (tensor<?x1x64xf32>, tensor<64xf32>, tensor<128x64xf32>) -> tensor<?x1x128xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.rms_norm
// CHECK-NEXT: kiln.matmul %{{.*}} {transpose_b} : tensor<?x1x64xf32>, tensor<128x64xf32> -> tensor<?x1x128xf32>
// CHECK-NEXT: kiln.yield
// CHECK: %[[RK:.*]]:2 = kiln.fused "rope_kv_append"(%[[QKV]], %{{.*}}) : {{.*}} -> (tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>)
// CHECK-COUNT-3: kiln.slice
// CHECK-COUNT-3: kiln.reshape
// CHECK-COUNT-2: kiln.rope
// CHECK-NEXT: kiln.kv_append
// CHECK: kiln.fused "paged_attention"(%[[RK]]#0, %[[RK]]#1
// CHECK: kiln.fused "matmul"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.matmul
// CHECK-NEXT: kiln.add
// CHECK-NEXT: kiln.yield
// CHECK-NOT: kiln.fused
// CHECK: return
// Without merging, three matmuls share the norm: it is not fused into any
// of them (one norm kernel, then three matmuls).
// NOMERGE-LABEL: func.func @decode
// NOMERGE: kiln.fused "norm"
// NOMERGE-COUNT-3: kiln.fused "matmul"
func.func @decode(%x: tensor<?x1x64xf32>, %pos: tensor<?x1xi64>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %c: tensor<2x?x2x16x2x16xf32>) -> (tensor<?x1x64xf32>, tensor<2x?x2x16x2x16xf32>) {
  %g = kiln.weight "l.norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %wq = kiln.weight "l.q" : tensor<64x64xf32>
  %q = kiln.matmul %n, %wq {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
  %wk = kiln.weight "l.k" : tensor<32x64xf32>
  %k = kiln.matmul %n, %wk {transpose_b} : tensor<?x1x64xf32>, tensor<32x64xf32> -> tensor<?x1x32xf32>
  %wv = kiln.weight "l.v" : tensor<32x64xf32>
  %v = kiln.matmul %n, %wv {transpose_b} : tensor<?x1x64xf32>, tensor<32x64xf32> -> tensor<?x1x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x1x64xf32> -> tensor<?x1x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x4x16xf32>, tensor<?x1xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x2x16xf32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[0], %kr, %v4, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a = kiln.paged_attention %qr, %c1[0], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  %a3 = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x1x4x16xf32> -> tensor<?x1x64xf32>
  %wo = kiln.weight "l.o" : tensor<64x64xf32>
  %o = kiln.matmul %a3, %wo {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
  %h = kiln.add %x, %o : tensor<?x1x64xf32>, tensor<?x1x64xf32> -> tensor<?x1x64xf32>
  return %h, %c1 : tensor<?x1x64xf32>, tensor<2x?x2x16x2x16xf32>
}

// -----

// A decode step (token ids [?, 1] first). By default RoPE with the append
// is one kernel and the attention another. With append-in-attention, RoPE
// of queries and keys, the append and the attention are one group, which
// yields the cache it appended to and the attention; the next layer's
// append reads that cache.
// CHECK-LABEL: func.func @decode_step
// CHECK: kiln.fused "rope_kv_append"
// CHECK: kiln.fused "paged_attention"
// CHECK: kiln.fused "kv_append"
// CHECK: kiln.fused "paged_attention"
// INATT-LABEL: func.func @decode_step
// INATT: %[[A:.*]]:2 = kiln.fused "paged_attention"(%{{.*}}) : {{.*}} -> (tensor<2x?x2x16x2x16xf32>, tensor<?x1x4x16xf32>)
// INATT-COUNT-3: kiln.slice
// INATT-COUNT-3: kiln.reshape
// INATT-COUNT-2: kiln.rope
// INATT-NEXT: kiln.kv_append
// INATT-NEXT: kiln.paged_attention
// INATT-NEXT: kiln.yield
// INATT: %[[B:.*]]:2 = kiln.fused "paged_attention"(%[[A]]#0,
// INATT-NOT: kiln.fused
// INATT: return %[[A]]#1, %[[B]]#1, %[[B]]#0
func.func @decode_step(%ids: tensor<?x1xi64>, %pos: tensor<?x1xi64>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %c: tensor<2x?x2x16x2x16xf32>, %qkv: tensor<?x1x128xf32>, %q2: tensor<?x1x4x16xf32>, %k2: tensor<?x1x2x16xf32>, %v2: tensor<?x1x2x16xf32>) -> (tensor<?x1x4x16xf32>, tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>) {
  %q = kiln.slice %qkv {starts = array<i64: 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 64>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x64xf32>
  %k = kiln.slice %qkv {starts = array<i64: 0, 0, 64>, ends = array<i64: 9223372036854775807, 9223372036854775807, 96>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %v = kiln.slice %qkv {starts = array<i64: 0, 0, 96>, ends = array<i64: 9223372036854775807, 9223372036854775807, 128>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x1x64xf32> -> tensor<?x1x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x4x16xf32>, tensor<?x1xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x2x16xf32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[0], %kr, %v4, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a = kiln.paged_attention %qr, %c1[0], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  %c2 = kiln.kv_append %c1[1], %k2, %v2, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a2 = kiln.paged_attention %q2, %c2[1], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  return %a, %a2, %c2 : tensor<?x1x4x16xf32>, tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>
}

// -----

// Per-head norms before RoPE (Qwen3) keep the append in its own kernel even
// with append-in-attention: the attention would recompute each norm for
// every element it loads.
// INATT-LABEL: func.func @decode_step_normed
// INATT: kiln.fused "rope_kv_append"
// INATT: kiln.rms_norm
// INATT: kiln.fused "paged_attention"
// INATT-NOT: kiln.kv_append
// INATT: return
func.func @decode_step_normed(%ids: tensor<?x1xi64>, %pos: tensor<?x1xi64>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %c: tensor<2x?x2x16x2x16xf32>, %q4: tensor<?x1x4x16xf32>, %k4: tensor<?x1x2x16xf32>, %v4: tensor<?x1x2x16xf32>) -> (tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>) {
  %gq = kiln.weight "l.q_norm" : tensor<16xf32>
  %gk = kiln.weight "l.k_norm" : tensor<16xf32>
  %qn = kiln.rms_norm %q4, %gq {epsilon = 1.0e-06 : f32} : tensor<?x1x4x16xf32>, tensor<16xf32>
  %kn = kiln.rms_norm %k4, %gk {epsilon = 1.0e-06 : f32} : tensor<?x1x2x16xf32>, tensor<16xf32>
  %qr = kiln.rope %qn, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x4x16xf32>, tensor<?x1xi64>
  %kr = kiln.rope %kn, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x2x16xf32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[0], %kr, %v4, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a = kiln.paged_attention %qr, %c1[0], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  return %a, %c1 : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>
}

// -----

// In decode, RoPE and the KV append join the QKV projection they slice:
// one GEMV rotates each pair of columns in its epilogue and stores the
// queries and the cache (codegen's RoPE pairs). With append-in-attention
// they join the attention instead.
// CHECK-LABEL: func.func @decode_step_qkv
// CHECK: %[[P:.*]]:2 = kiln.fused "matmul"(%{{.*}}) : {{.*}} -> (tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.rms_norm
// CHECK-NEXT: kiln.matmul
// CHECK-COUNT-3: kiln.slice
// CHECK-COUNT-3: kiln.reshape
// CHECK-COUNT-2: kiln.rope
// CHECK-NEXT: kiln.kv_append
// CHECK-NEXT: kiln.yield
// CHECK-NEXT: }
// CHECK-NEXT: kiln.fused "paged_attention"(%[[P]]#0, %[[P]]#1,
// INATT-LABEL: func.func @decode_step_qkv
// INATT: kiln.fused "matmul"
// INATT: kiln.matmul
// INATT-NEXT: kiln.yield
// INATT: kiln.fused "paged_attention"
// INATT: kiln.kv_append
func.func @decode_step_qkv(%ids: tensor<?x1xi64>, %pos: tensor<?x1xi64>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %c: tensor<2x?x2x16x2x16xf32>, %x: tensor<?x1x64xf32>) -> (tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>) {
  %g = kiln.weight "l.norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %w = kiln.weight "l.qkv" : tensor<128x64xf32>
  %qkv = kiln.matmul %n, %w {transpose_b} : tensor<?x1x64xf32>, tensor<128x64xf32> -> tensor<?x1x128xf32>
  %q = kiln.slice %qkv {starts = array<i64: 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 64>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x64xf32>
  %k = kiln.slice %qkv {starts = array<i64: 0, 0, 64>, ends = array<i64: 9223372036854775807, 9223372036854775807, 96>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %v = kiln.slice %qkv {starts = array<i64: 0, 0, 96>, ends = array<i64: 9223372036854775807, 9223372036854775807, 128>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x1x64xf32> -> tensor<?x1x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x4x16xf32>, tensor<?x1xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x2x16xf32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[0], %kr, %v4, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a = kiln.paged_attention %qr, %c1[0], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  return %a, %c1 : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>
}

// -----

// Near misses: per-head norms before RoPE (Qwen3: a pair does not hold the
// head the norm needs), and a product that something else reads too.
// CHECK-LABEL: func.func @decode_step_qkv_normed
// CHECK: kiln.fused "matmul"
// CHECK: kiln.matmul
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused "rope_kv_append"
func.func @decode_step_qkv_normed(%ids: tensor<?x1xi64>, %pos: tensor<?x1xi64>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %c: tensor<2x?x2x16x2x16xf32>, %x: tensor<?x1x64xf32>) -> (tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>) {
  %g = kiln.weight "l.norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %w = kiln.weight "l.qkv" : tensor<128x64xf32>
  %qkv = kiln.matmul %n, %w {transpose_b} : tensor<?x1x64xf32>, tensor<128x64xf32> -> tensor<?x1x128xf32>
  %q = kiln.slice %qkv {starts = array<i64: 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 64>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x64xf32>
  %k = kiln.slice %qkv {starts = array<i64: 0, 0, 64>, ends = array<i64: 9223372036854775807, 9223372036854775807, 96>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %v = kiln.slice %qkv {starts = array<i64: 0, 0, 96>, ends = array<i64: 9223372036854775807, 9223372036854775807, 128>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x1x64xf32> -> tensor<?x1x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %gq = kiln.weight "l.q_norm" : tensor<16xf32>
  %gk = kiln.weight "l.k_norm" : tensor<16xf32>
  %qn = kiln.rms_norm %q4, %gq {epsilon = 1.0e-06 : f32} : tensor<?x1x4x16xf32>, tensor<16xf32>
  %kn = kiln.rms_norm %k4, %gk {epsilon = 1.0e-06 : f32} : tensor<?x1x2x16xf32>, tensor<16xf32>
  %qr = kiln.rope %qn, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x4x16xf32>, tensor<?x1xi64>
  %kr = kiln.rope %kn, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x2x16xf32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[0], %kr, %v4, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a = kiln.paged_attention %qr, %c1[0], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  return %a, %c1 : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>
}

// CHECK-LABEL: func.func @decode_step_qkv_read
// CHECK: kiln.fused "matmul"
// CHECK: kiln.matmul
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused "rope_kv_append"
func.func @decode_step_qkv_read(%ids: tensor<?x1xi64>, %pos: tensor<?x1xi64>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %c: tensor<2x?x2x16x2x16xf32>, %x: tensor<?x1x64xf32>) -> (tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x1x128xf32>) {
  %g = kiln.weight "l.norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %w = kiln.weight "l.qkv" : tensor<128x64xf32>
  %qkv = kiln.matmul %n, %w {transpose_b} : tensor<?x1x64xf32>, tensor<128x64xf32> -> tensor<?x1x128xf32>
  %q = kiln.slice %qkv {starts = array<i64: 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 64>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x64xf32>
  %k = kiln.slice %qkv {starts = array<i64: 0, 0, 64>, ends = array<i64: 9223372036854775807, 9223372036854775807, 96>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %v = kiln.slice %qkv {starts = array<i64: 0, 0, 96>, ends = array<i64: 9223372036854775807, 9223372036854775807, 128>, steps = array<i64: 1, 1, 1>} : tensor<?x1x128xf32> -> tensor<?x1x32xf32>
  %q4 = kiln.reshape %q {shape = array<i64: 0, 0, 4, 16>} : tensor<?x1x64xf32> -> tensor<?x1x4x16xf32>
  %k4 = kiln.reshape %k {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %v4 = kiln.reshape %v {shape = array<i64: 0, 0, 2, 16>} : tensor<?x1x32xf32> -> tensor<?x1x2x16xf32>
  %qr = kiln.rope %q4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x4x16xf32>, tensor<?x1xi64>
  %kr = kiln.rope %k4, %pos {style = #kiln<rope_style neox>, theta = 1.0e+04 : f64} : tensor<?x1x2x16xf32>, tensor<?x1xi64>
  %c1 = kiln.kv_append %c[0], %kr, %v4, %bt, %pos : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
  %a = kiln.paged_attention %qr, %c1[0], %bt, %ctx, %pos {causal} : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
  return %a, %c1, %qkv : tensor<?x1x4x16xf32>, tensor<2x?x2x16x2x16xf32>, tensor<?x1x128xf32>
}

// -----

// The MLP half: gate and up merged, SwiGLU of the two halves in the
// epilogue, down projection with the residual; biases merge with their
// projections (Qwen2's Q/K/V spelling).
// CHECK-LABEL: func.func @mlp
// CHECK: kiln.weight "m.{gate,up}" {source_rows = array<i64: 96, 96>
// CHECK: kiln.fused "matmul"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.rms_norm
// CHECK-NEXT: kiln.matmul
// CHECK-NEXT: kiln.slice
// CHECK-NEXT: kiln.slice
// CHECK-NEXT: kiln.swiglu
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused "matmul"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.matmul
// CHECK-NEXT: kiln.add
// CHECK-NEXT: kiln.yield
// CHECK-NOT: kiln.fused
func.func @mlp(%x: tensor<?x1x64xf32>) -> tensor<?x1x64xf32> {
  %g = kiln.weight "m.norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %wg = kiln.weight "m.gate" : tensor<96x64xf32>
  %gate = kiln.matmul %n, %wg {transpose_b} : tensor<?x1x64xf32>, tensor<96x64xf32> -> tensor<?x1x96xf32>
  %wu = kiln.weight "m.up" : tensor<96x64xf32>
  %up = kiln.matmul %n, %wu {transpose_b} : tensor<?x1x64xf32>, tensor<96x64xf32> -> tensor<?x1x96xf32>
  %s = kiln.swiglu %gate, %up : tensor<?x1x96xf32>
  %wd = kiln.weight "m.down" : tensor<64x96xf32>
  %d = kiln.matmul %s, %wd {transpose_b} : tensor<?x1x96xf32>, tensor<64x96xf32> -> tensor<?x1x64xf32>
  %h = kiln.add %x, %d : tensor<?x1x64xf32>, tensor<?x1x64xf32> -> tensor<?x1x64xf32>
  return %h : tensor<?x1x64xf32>
}

// -----

// CHECK-LABEL: func.func @qkv_bias
// CHECK: %[[B:.*]] = kiln.weight "l.{bq,bk}" {source_rows = array<i64: 64, 32>, sources = ["l.bq", "l.bk"]} : tensor<96xf32>
// CHECK: kiln.fused "matmul"(%{{.*}}, %{{.*}}, %[[B]])
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.matmul
// CHECK-NEXT: kiln.add
// CHECK-NEXT: kiln.yield
func.func @qkv_bias(%x: tensor<?x1x64xf32>) -> (tensor<?x1x64xf32>, tensor<?x1x32xf32>) {
  %wq = kiln.weight "l.q" : tensor<64x64xf32>
  %bq = kiln.weight "l.bq" : tensor<64xf32>
  %wk = kiln.weight "l.k" : tensor<32x64xf32>
  %bk = kiln.weight "l.bk" : tensor<32xf32>
  %q = kiln.matmul %x, %wq {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
  %qb = kiln.add %q, %bq : tensor<?x1x64xf32>, tensor<64xf32> -> tensor<?x1x64xf32>
  %k = kiln.matmul %x, %wk {transpose_b} : tensor<?x1x64xf32>, tensor<32x64xf32> -> tensor<?x1x32xf32>
  %kb = kiln.add %bk, %k : tensor<32xf32>, tensor<?x1x32xf32> -> tensor<?x1x32xf32>
  return %qb, %kb : tensor<?x1x64xf32>, tensor<?x1x32xf32>
}

// -----

// The LM head: final norm, matmul and greedy argmax in one kernel that
// yields both the logits and the tokens.
// CHECK-LABEL: func.func @lm_head
// CHECK: %[[R:.*]]:2 = kiln.fused "matmul"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.rms_norm
// CHECK-NEXT: %[[L:.*]] = kiln.matmul
// CHECK-NEXT: %[[T:.*]] = kiln.argmax %[[L]] {axis = 2 : i64}
// CHECK-NEXT: kiln.yield %[[L]], %[[T]]
// CHECK: return %[[R]]#0, %[[R]]#1
func.func @lm_head(%x: tensor<?x1x64xf32>) -> (tensor<?x1x512xf32>, tensor<?x1xi64>) {
  %g = kiln.weight "norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %w = kiln.weight "lm_head" : tensor<512x64xf32>
  %l = kiln.matmul %n, %w {transpose_b} : tensor<?x1x64xf32>, tensor<512x64xf32> -> tensor<?x1x512xf32>
  %t = kiln.argmax %l {axis = 2 : i64} : tensor<?x1x512xf32> -> tensor<?x1xi64>
  return %l, %t : tensor<?x1x512xf32>, tensor<?x1xi64>
}

// -----

// Prefill (a dynamic token dimension, 512 tokens assumed) of a wide
// projection: past 4 rows the matmul runs on tensor cores, whose norm
// prologue is serialised with each k-tile's copy and MMAs, so the norm
// stays a kernel of its own, launch counted or not.
// CHECK-LABEL: func.func @prefill_norm
// CHECK: kiln.fused "norm"
// CHECK: kiln.fused "matmul"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.matmul
// NOLAUNCH-LABEL: func.func @prefill_norm
// NOLAUNCH: kiln.fused "norm"
// NOLAUNCH: kiln.fused "matmul"
// NOLAUNCH-NEXT: ^bb0
// NOLAUNCH-NEXT: kiln.matmul
func.func @prefill_norm(%x: tensor<?x?x64xf32>) -> tensor<?x?x1024xf32> {
  %g = kiln.weight "norm" : tensor<64xf32>
  %n = kiln.rms_norm %x, %g {epsilon = 1.0e-05 : f32} : tensor<?x?x64xf32>, tensor<64xf32>
  %w = kiln.weight "up" : tensor<1024x64xf32>
  %y = kiln.matmul %n, %w {transpose_b} : tensor<?x?x64xf32>, tensor<1024x64xf32> -> tensor<?x?x1024xf32>
  return %y : tensor<?x?x1024xf32>
}

// -----

// Near misses. Matmuls of one activation are not merged when a right
// operand is not a weight, or when one weight is stored [K, N] (it is put in
// [N, K] form, transposed at load, but the layouts differ); an elementwise
// op whose other operand broadcasts the output to a larger shape stays out
// of the epilogue (the sum of two matmuls joins the later one's); a chain of
// elementwise ops is one kernel.
// CHECK-LABEL: func.func @near_misses
// CHECK-NOT: sources
// CHECK: %[[B:.*]] = kiln.fused "matmul"(%arg0, %arg1)
// CHECK: %[[W2:.*]] = kiln.weight "w2" {transposed} : tensor<16x8xf32>
// CHECK: kiln.fused "matmul"(%arg0, %[[W2]])
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.matmul %{{.*}} {transpose_b} : tensor<1x8xf32>, tensor<16x8xf32> -> tensor<1x16xf32>
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused "matmul"(%arg0, %{{.*}}, %[[B]])
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.matmul
// CHECK-NEXT: kiln.add
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused "elementwise"
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.add %{{.*}} : tensor<1x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
// CHECK-NEXT: kiln.exp
// CHECK-NEXT: kiln.tanh
// CHECK-NEXT: kiln.yield
func.func @near_misses(%x: tensor<1x8xf32>, %m: tensor<8x8xf32>, %big: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<1x16xf32>) {
  %w = kiln.weight "w" : tensor<8x8xf32>
  %a = kiln.matmul %x, %w {transpose_b} : tensor<1x8xf32>, tensor<8x8xf32> -> tensor<1x8xf32>
  %b = kiln.matmul %x, %m {transpose_b} : tensor<1x8xf32>, tensor<8x8xf32> -> tensor<1x8xf32>
  %w2 = kiln.weight "w2" : tensor<8x16xf32>
  %c = kiln.matmul %x, %w2 : tensor<1x8xf32>, tensor<8x16xf32> -> tensor<1x16xf32>
  %s = kiln.add %a, %b : tensor<1x8xf32>, tensor<1x8xf32> -> tensor<1x8xf32>
  %t = kiln.add %s, %big : tensor<1x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %e = kiln.exp %t : tensor<4x8xf32>
  %h = kiln.tanh %e : tensor<4x8xf32>
  return %h, %c : tensor<4x8xf32>, tensor<1x16xf32>
}

// -----

// An exporter's [K, N] weights (torch.onnx, GPT-2's Conv1D) are put in
// [N, K] form, stored transposed, and then merge like any projection.
// CHECK-LABEL: func.func @kn_weights
// CHECK: kiln.weight "l.{q,k}" {source_rows = array<i64: 64, 32>, sources = ["l.q", "l.k"], transposed} : tensor<96x64xf32>
// CHECK: kiln.matmul %{{.*}} {transpose_b} : tensor<?x1x64xf32>, tensor<96x64xf32> -> tensor<?x1x96xf32>
// NOMERGE-LABEL: func.func @kn_weights
// NOMERGE: kiln.weight "l.q" : tensor<64x64xf32>
func.func @kn_weights(%x: tensor<?x1x64xf32>) -> (tensor<?x1x64xf32>, tensor<?x1x32xf32>) {
  %wq = kiln.weight "l.q" : tensor<64x64xf32>
  %wk = kiln.weight "l.k" : tensor<64x32xf32>
  %q = kiln.matmul %x, %wq : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
  %k = kiln.matmul %x, %wk : tensor<?x1x64xf32>, tensor<64x32xf32> -> tensor<?x1x32xf32>
  return %q, %k : tensor<?x1x64xf32>, tensor<?x1x32xf32>
}

// -----

// f32 compute over bf16 weights (`kiln compile --dtype f32` of a bf16
// model): each consumer gets its own copy of a weight's cast, inside its
// kernel, so kernels read the bf16 weights and widen them as they load; no
// kernel writes f32 weights. Projections and their biases merge through
// the casts; the tied table is gathered by one kernel and read whole by the
// LM head.
// CHECK-LABEL: func.func @bf16_weights
// CHECK-NOT: kiln.cast
// CHECK: %[[E:.*]] = kiln.weight "embed" : tensor<512x64xbf16>
// CHECK: %[[H:.*]] = kiln.fused "embedding"(%[[E]], %{{.*}})
// CHECK-NEXT: ^bb0(%[[T:.*]]: tensor<512x64xbf16>, %{{.*}}: tensor<?x1xi64>):
// CHECK-NEXT: %[[C:.*]] = kiln.cast %[[T]] : tensor<512x64xbf16> to tensor<512x64xf32>
// CHECK-NEXT: kiln.gather %[[C]]
// CHECK: %[[W:.*]] = kiln.weight "l.{q,k}" {source_rows = array<i64: 64, 32>, sources = ["l.q", "l.k"]} : tensor<96x64xbf16>
// CHECK: %[[B:.*]] = kiln.weight "l.{bq,bk}" {source_rows = array<i64: 64, 32>, sources = ["l.bq", "l.bk"]} : tensor<96xbf16>
// CHECK: kiln.fused "matmul"(%{{.*}}, %[[H]], %[[W]], %[[B]]) : (tensor<64xbf16>, tensor<?x1x64xf32>, tensor<96x64xbf16>, tensor<96xbf16>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.cast %{{.*}} : tensor<64xbf16> to tensor<64xf32>
// CHECK-NEXT: kiln.rms_norm
// CHECK-NEXT: kiln.cast %{{.*}} : tensor<96x64xbf16> to tensor<96x64xf32>
// CHECK-NEXT: kiln.matmul
// CHECK-NEXT: kiln.cast %{{.*}} : tensor<96xbf16> to tensor<96xf32>
// CHECK-NEXT: kiln.add
// CHECK-NEXT: kiln.yield
// CHECK: kiln.fused "matmul"(%[[E]], %{{.*}})
// CHECK-NEXT: ^bb0
// CHECK-NEXT: kiln.cast %{{.*}} : tensor<512x64xbf16> to tensor<512x64xf32>
// CHECK-NEXT: kiln.matmul
// CHECK-NOT: kiln.fused
// CHECK: return
func.func @bf16_weights(%ids: tensor<?x1xi64>) -> (tensor<?x1x64xf32>, tensor<?x1x32xf32>, tensor<?x1x512xf32>) {
  %e = kiln.weight "embed" : tensor<512x64xbf16>
  %ef = kiln.cast %e : tensor<512x64xbf16> to tensor<512x64xf32>
  %h = kiln.gather %ef[%ids] {axis = 0 : i64} : tensor<512x64xf32>, tensor<?x1xi64> -> tensor<?x1x64xf32>
  %g = kiln.weight "norm" : tensor<64xbf16>
  %gf = kiln.cast %g : tensor<64xbf16> to tensor<64xf32>
  %x = kiln.rms_norm %h, %gf {epsilon = 1.0e-05 : f32} : tensor<?x1x64xf32>, tensor<64xf32>
  %wq = kiln.weight "l.q" : tensor<64x64xbf16>
  %wqf = kiln.cast %wq : tensor<64x64xbf16> to tensor<64x64xf32>
  %bq = kiln.weight "l.bq" : tensor<64xbf16>
  %bqf = kiln.cast %bq : tensor<64xbf16> to tensor<64xf32>
  %wk = kiln.weight "l.k" : tensor<32x64xbf16>
  %wkf = kiln.cast %wk : tensor<32x64xbf16> to tensor<32x64xf32>
  %bk = kiln.weight "l.bk" : tensor<32xbf16>
  %bkf = kiln.cast %bk : tensor<32xbf16> to tensor<32xf32>
  %q = kiln.matmul %x, %wqf {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
  %qb = kiln.add %q, %bqf : tensor<?x1x64xf32>, tensor<64xf32> -> tensor<?x1x64xf32>
  %k = kiln.matmul %x, %wkf {transpose_b} : tensor<?x1x64xf32>, tensor<32x64xf32> -> tensor<?x1x32xf32>
  %kb = kiln.add %bkf, %k : tensor<32xf32>, tensor<?x1x32xf32> -> tensor<?x1x32xf32>
  %l = kiln.matmul %qb, %ef {transpose_b} : tensor<?x1x64xf32>, tensor<512x64xf32> -> tensor<?x1x512xf32>
  return %qb, %kb, %l : tensor<?x1x64xf32>, tensor<?x1x32xf32>, tensor<?x1x512xf32>
}
