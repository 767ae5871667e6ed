// RUN: kiln-opt %s -split-input-file -kiln-raise-patterns | FileCheck %s

// RMSNorm as torch.onnx spells it: pow, reduce_mean, add eps, sqrt,
// reciprocal, x * r, then the weight on the left.
// CHECK-LABEL: func.func @rms_norm_torch
// CHECK-SAME: (%[[X:.*]]: tensor<1x?x64xf32>, %[[W:.*]]: tensor<64xf32>)
// CHECK-NEXT: %[[Y:.*]] = kiln.rms_norm %[[X]], %[[W]] {epsilon = 9.99999997E-7 : f32} : tensor<1x?x64xf32>, tensor<64xf32>
// CHECK-NEXT: return %[[Y]]
func.func @rms_norm_torch(%x: tensor<1x?x64xf32>, %w: tensor<64xf32>) -> tensor<1x?x64xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32>
  %p = kiln.pow %x, %two : tensor<1x?x64xf32>, tensor<f32> -> tensor<1x?x64xf32>
  %m = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xf32> -> tensor<1x?x1xf32>
  %a = kiln.add %m, %eps : tensor<1x?x1xf32>, tensor<f32> -> tensor<1x?x1xf32>
  %s = kiln.sqrt %a : tensor<1x?x1xf32>
  %r = kiln.reciprocal %s : tensor<1x?x1xf32>
  %n = kiln.mul %x, %r : tensor<1x?x64xf32>, tensor<1x?x1xf32> -> tensor<1x?x64xf32>
  %y = kiln.mul %w, %n : tensor<64xf32>, tensor<1x?x64xf32> -> tensor<1x?x64xf32>
  return %y : tensor<1x?x64xf32>
}

// -----

// The other spellings: x * x, eps first, rsqrt, r * x, weight on the right.
// CHECK-LABEL: func.func @rms_norm_rsqrt
// The epsilon is the bf16 constant's value.
// CHECK: kiln.rms_norm %{{.*}}, %{{.*}} {epsilon = 1.00135803E-5 : f32} : tensor<?x32xbf16>, tensor<32xbf16>
// CHECK-NOT: kiln.rsqrt
func.func @rms_norm_rsqrt(%x: tensor<?x32xbf16>, %w: tensor<32xbf16>) -> tensor<?x32xbf16> {
  %eps = kiln.constant dense<1.0e-05> : tensor<1xbf16>
  %p = kiln.mul %x, %x : tensor<?x32xbf16>, tensor<?x32xbf16> -> tensor<?x32xbf16>
  %m = kiln.reduce_mean %p {axes = array<i64: 1>, keep_dims} : tensor<?x32xbf16> -> tensor<?x1xbf16>
  %a = kiln.add %eps, %m : tensor<1xbf16>, tensor<?x1xbf16> -> tensor<?x1xbf16>
  %r = kiln.rsqrt %a : tensor<?x1xbf16>
  %n = kiln.mul %r, %x : tensor<?x1xbf16>, tensor<?x32xbf16> -> tensor<?x32xbf16>
  %y = kiln.mul %n, %w : tensor<?x32xbf16>, tensor<32xbf16> -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

// Near misses, each left alone: the mean over another axis; the cube; a
// mean that is also returned (it would be computed twice); a 2-D weight.
// CHECK-LABEL: func.func @rms_norm_near_misses
// CHECK-NOT: kiln.rms_norm
func.func @rms_norm_near_misses(%x: tensor<4x64xf32>, %w: tensor<64xf32>, %w2: tensor<1x64xf32>)
    -> (tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x1xf32>, tensor<4x64xf32>) {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %three = kiln.constant dense<3.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32>
  // mean over axis 0
  %p0 = kiln.pow %x, %two : tensor<4x64xf32>, tensor<f32> -> tensor<4x64xf32>
  %m0 = kiln.reduce_mean %p0 {axes = array<i64: 0>, keep_dims} : tensor<4x64xf32> -> tensor<1x64xf32>
  %a0 = kiln.add %m0, %eps : tensor<1x64xf32>, tensor<f32> -> tensor<1x64xf32>
  %r0 = kiln.rsqrt %a0 : tensor<1x64xf32>
  %n0 = kiln.mul %x, %r0 : tensor<4x64xf32>, tensor<1x64xf32> -> tensor<4x64xf32>
  %y0 = kiln.mul %w, %n0 : tensor<64xf32>, tensor<4x64xf32> -> tensor<4x64xf32>
  // x^3
  %p1 = kiln.pow %x, %three : tensor<4x64xf32>, tensor<f32> -> tensor<4x64xf32>
  %m1 = kiln.reduce_mean %p1 {axes = array<i64: 1>, keep_dims} : tensor<4x64xf32> -> tensor<4x1xf32>
  %a1 = kiln.add %m1, %eps : tensor<4x1xf32>, tensor<f32> -> tensor<4x1xf32>
  %r1 = kiln.rsqrt %a1 : tensor<4x1xf32>
  %n1 = kiln.mul %x, %r1 : tensor<4x64xf32>, tensor<4x1xf32> -> tensor<4x64xf32>
  %y1 = kiln.mul %w, %n1 : tensor<64xf32>, tensor<4x64xf32> -> tensor<4x64xf32>
  // the mean is used twice
  %p2 = kiln.pow %x, %two : tensor<4x64xf32>, tensor<f32> -> tensor<4x64xf32>
  %m2 = kiln.reduce_mean %p2 {axes = array<i64: 1>, keep_dims} : tensor<4x64xf32> -> tensor<4x1xf32>
  %a2 = kiln.add %m2, %eps : tensor<4x1xf32>, tensor<f32> -> tensor<4x1xf32>
  %r2 = kiln.rsqrt %a2 : tensor<4x1xf32>
  %n2 = kiln.mul %x, %r2 : tensor<4x64xf32>, tensor<4x1xf32> -> tensor<4x64xf32>
  %y2 = kiln.mul %w, %n2 : tensor<64xf32>, tensor<4x64xf32> -> tensor<4x64xf32>
  // a 2-D weight
  %p3 = kiln.pow %x, %two : tensor<4x64xf32>, tensor<f32> -> tensor<4x64xf32>
  %m3 = kiln.reduce_mean %p3 {axes = array<i64: 1>, keep_dims} : tensor<4x64xf32> -> tensor<4x1xf32>
  %a3 = kiln.add %m3, %eps : tensor<4x1xf32>, tensor<f32> -> tensor<4x1xf32>
  %r3 = kiln.rsqrt %a3 : tensor<4x1xf32>
  %n3 = kiln.mul %x, %r3 : tensor<4x64xf32>, tensor<4x1xf32> -> tensor<4x64xf32>
  %y3 = kiln.mul %w2, %n3 : tensor<1x64xf32>, tensor<4x64xf32> -> tensor<4x64xf32>
  return %y0, %y1, %y2, %m2, %y3 : tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x64xf32>, tensor<4x1xf32>, tensor<4x64xf32>
}

// -----

// SiLU in either order, then SwiGLU with the up projection on the left.
// CHECK-LABEL: func.func @swiglu
// CHECK-SAME: (%[[G:.*]]: tensor<1x?x172xf32>, %[[U:.*]]: tensor<1x?x172xf32>)
// CHECK-NEXT: %[[S:.*]] = kiln.swiglu %[[G]], %[[U]] : tensor<1x?x172xf32>
// CHECK-NEXT: %[[T:.*]] = kiln.silu %[[U]] : tensor<1x?x172xf32>
// CHECK-NEXT: return %[[S]], %[[T]]
func.func @swiglu(%g: tensor<1x?x172xf32>, %u: tensor<1x?x172xf32>) -> (tensor<1x?x172xf32>, tensor<1x?x172xf32>) {
  %sg = kiln.sigmoid %g : tensor<1x?x172xf32>
  %silu = kiln.mul %g, %sg : tensor<1x?x172xf32>, tensor<1x?x172xf32> -> tensor<1x?x172xf32>
  %y = kiln.mul %u, %silu : tensor<1x?x172xf32>, tensor<1x?x172xf32> -> tensor<1x?x172xf32>
  %su = kiln.sigmoid %u : tensor<1x?x172xf32>
  %t = kiln.mul %su, %u : tensor<1x?x172xf32>, tensor<1x?x172xf32> -> tensor<1x?x172xf32>
  return %y, %t : tensor<1x?x172xf32>, tensor<1x?x172xf32>
}

// -----

// Near misses: y * sigmoid(x) is no SiLU; silu(g) * u with u broadcast is no
// SwiGLU (the composite takes equal shapes).
// CHECK-LABEL: func.func @silu_near_misses
// CHECK: kiln.sigmoid
// CHECK-NOT: kiln.swiglu
func.func @silu_near_misses(%x: tensor<4x8xf32>, %y: tensor<4x8xf32>, %u: tensor<8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  %s = kiln.sigmoid %x : tensor<4x8xf32>
  %a = kiln.mul %y, %s : tensor<4x8xf32>, tensor<4x8xf32> -> tensor<4x8xf32>
  %g = kiln.silu %x : tensor<4x8xf32>
  %b = kiln.mul %g, %u : tensor<4x8xf32>, tensor<8xf32> -> tensor<4x8xf32>
  return %a, %b : tensor<4x8xf32>, tensor<4x8xf32>
}

// -----

// GELU, exact and tanh forms, in two groupings each.
// CHECK-LABEL: func.func @gelu
// CHECK-SAME: (%[[X:.*]]: tensor<2x?xf32>)
// CHECK-NEXT: %[[A:.*]] = kiln.gelu %[[X]] : tensor<2x?xf32>
// CHECK-NEXT: %[[B:.*]] = kiln.gelu %[[X]] : tensor<2x?xf32>
// CHECK-NEXT: %[[C:.*]] = kiln.gelu %[[X]] {tanh_approximation} : tensor<2x?xf32>
// CHECK-NEXT: return %[[A]], %[[B]], %[[C]]
func.func @gelu(%x: tensor<2x?xf32>) -> (tensor<2x?xf32>, tensor<2x?xf32>, tensor<2x?xf32>) {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %sqrt2 = kiln.constant dense<1.41421354> : tensor<f32>
  %rsqrt2 = kiln.constant dense<0.707106769> : tensor<f32>
  // (x * 0.5) * (1 + erf(x / sqrt 2))
  %d = kiln.div %x, %sqrt2 : tensor<2x?xf32>, tensor<f32> -> tensor<2x?xf32>
  %e = kiln.erf %d : tensor<2x?xf32>
  %e1 = kiln.add %e, %one : tensor<2x?xf32>, tensor<f32> -> tensor<2x?xf32>
  %xh = kiln.mul %x, %half : tensor<2x?xf32>, tensor<f32> -> tensor<2x?xf32>
  %a = kiln.mul %xh, %e1 : tensor<2x?xf32>, tensor<2x?xf32> -> tensor<2x?xf32>
  // 0.5 * (x * (1 + erf(x * 1/sqrt 2)))
  %d2 = kiln.mul %rsqrt2, %x : tensor<f32>, tensor<2x?xf32> -> tensor<2x?xf32>
  %e2 = kiln.erf %d2 : tensor<2x?xf32>
  %e21 = kiln.add %one, %e2 : tensor<f32>, tensor<2x?xf32> -> tensor<2x?xf32>
  %xe = kiln.mul %x, %e21 : tensor<2x?xf32>, tensor<2x?xf32> -> tensor<2x?xf32>
  %b = kiln.mul %half, %xe : tensor<f32>, tensor<2x?xf32> -> tensor<2x?xf32>
  // GPT-2's gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
  %three = kiln.constant dense<3.0> : tensor<f32>
  %k = kiln.constant dense<0.044715> : tensor<f32>
  %s = kiln.constant dense<0.797884583> : tensor<f32>
  %x3 = kiln.pow %x, %three : tensor<2x?xf32>, tensor<f32> -> tensor<2x?xf32>
  %kx3 = kiln.mul %k, %x3 : tensor<f32>, tensor<2x?xf32> -> tensor<2x?xf32>
  %inner = kiln.add %x, %kx3 : tensor<2x?xf32>, tensor<2x?xf32> -> tensor<2x?xf32>
  %arg = kiln.mul %inner, %s : tensor<2x?xf32>, tensor<f32> -> tensor<2x?xf32>
  %t = kiln.tanh %arg : tensor<2x?xf32>
  %t1 = kiln.add %t, %one : tensor<2x?xf32>, tensor<f32> -> tensor<2x?xf32>
  %hx = kiln.mul %half, %x : tensor<f32>, tensor<2x?xf32> -> tensor<2x?xf32>
  %c = kiln.mul %hx, %t1 : tensor<2x?xf32>, tensor<2x?xf32> -> tensor<2x?xf32>
  return %a, %b, %c : tensor<2x?xf32>, tensor<2x?xf32>, tensor<2x?xf32>
}

// -----

// Near misses: 0.4 instead of 0.5; erf of another value; tanh with the
// wrong cubic coefficient.
// CHECK-LABEL: func.func @gelu_near_misses
// CHECK-NOT: kiln.gelu
func.func @gelu_near_misses(%x: tensor<8xf32>, %y: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {
  %half = kiln.constant dense<0.5> : tensor<f32>
  %notHalf = kiln.constant dense<0.4> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %sqrt2 = kiln.constant dense<1.41421354> : tensor<f32>
  %d = kiln.div %x, %sqrt2 : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %e = kiln.erf %d : tensor<8xf32>
  %e1 = kiln.add %e, %one : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %xh = kiln.mul %x, %notHalf : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %a = kiln.mul %xh, %e1 : tensor<8xf32>, tensor<8xf32> -> tensor<8xf32>
  %dy = kiln.div %y, %sqrt2 : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %ey = kiln.erf %dy : tensor<8xf32>
  %ey1 = kiln.add %ey, %one : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %xh2 = kiln.mul %x, %half : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %b = kiln.mul %xh2, %ey1 : tensor<8xf32>, tensor<8xf32> -> tensor<8xf32>
  %three = kiln.constant dense<3.0> : tensor<f32>
  %k = kiln.constant dense<0.05> : tensor<f32>
  %s = kiln.constant dense<0.797884583> : tensor<f32>
  %x3 = kiln.pow %x, %three : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %kx3 = kiln.mul %k, %x3 : tensor<f32>, tensor<8xf32> -> tensor<8xf32>
  %inner = kiln.add %x, %kx3 : tensor<8xf32>, tensor<8xf32> -> tensor<8xf32>
  %arg = kiln.mul %inner, %s : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %t = kiln.tanh %arg : tensor<8xf32>
  %t1 = kiln.add %t, %one : tensor<8xf32>, tensor<f32> -> tensor<8xf32>
  %hx = kiln.mul %half, %x : tensor<f32>, tensor<8xf32> -> tensor<8xf32>
  %c = kiln.mul %hx, %t1 : tensor<8xf32>, tensor<8xf32> -> tensor<8xf32>
  return %a, %b, %c : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>
}

// -----

// The TorchScript exporter's RMSNorm: identity casts around it and 1 / sqrt.
// CHECK-LABEL: func.func @rms_norm_torchscript
// CHECK-SAME: (%[[X:.*]]: tensor<?x?x64xf32>, %[[W:.*]]: tensor<64xf32>)
// CHECK-NEXT: kiln.rms_norm %[[X]], %[[W]]
// CHECK-NOT: kiln.cast
func.func @rms_norm_torchscript(%x: tensor<?x?x64xf32>, %w: tensor<64xf32>) -> tensor<?x?x64xf32> {
  %two = kiln.constant dense<2.0> : tensor<f32>
  %one = kiln.constant dense<1.0> : tensor<f32>
  %eps = kiln.constant dense<1.0e-06> : tensor<f32>
  %c = kiln.cast %x : tensor<?x?x64xf32> to tensor<?x?x64xf32>
  %p = kiln.pow %c, %two : tensor<?x?x64xf32>, tensor<f32> -> tensor<?x?x64xf32>
  %m = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims} : tensor<?x?x64xf32> -> tensor<?x?x1xf32>
  %a = kiln.add %m, %eps : tensor<?x?x1xf32>, tensor<f32> -> tensor<?x?x1xf32>
  %s = kiln.sqrt %a : tensor<?x?x1xf32>
  %r = kiln.div %one, %s : tensor<f32>, tensor<?x?x1xf32> -> tensor<?x?x1xf32>
  %n = kiln.mul %c, %r : tensor<?x?x64xf32>, tensor<?x?x1xf32> -> tensor<?x?x64xf32>
  %c2 = kiln.cast %n : tensor<?x?x64xf32> to tensor<?x?x64xf32>
  %y = kiln.mul %w, %c2 : tensor<64xf32>, tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  return %y : tensor<?x?x64xf32>
}

// -----

// RoPE as torch.onnx spells it on [B, H, T, D]: cos/sin tables from a
// constant inv_freq (theta 10000, D 8) times the float positions, then
// x * cos + rotate_half(x) * sin. Raised to kiln.rope between transposes.
// CHECK-LABEL: func.func @rope
// CHECK-SAME: (%[[X:.*]]: tensor<1x2x?x8xf32>, %[[P:.*]]: tensor<1x?xi64>)
// CHECK: %[[T:.*]] = kiln.transpose %[[X]] {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x2x?x8xf32> -> tensor<1x?x2x8xf32>
// CHECK: %[[R:.*]] = kiln.rope %[[T]], %[[P]] {style = #kiln<rope_style neox>, theta = 1.000000e+04 : f64}
// CHECK: %[[Y:.*]] = kiln.transpose %[[R]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK: return %[[Y]]
func.func @rope(%x: tensor<1x2x?x8xf32>, %pos: tensor<1x?xi64>) -> tensor<1x2x?x8xf32> {
  %inv = kiln.constant dense<[[[1.0], [0.1], [0.01], [0.001]]]> : tensor<1x4x1xf32>
  %p3 = kiln.reshape %pos {shape = array<i64: 1, 1, -1>} : tensor<1x?xi64> -> tensor<1x1x?xi64>
  %pf = kiln.cast %p3 : tensor<1x1x?xi64> to tensor<1x1x?xf32>
  %f = kiln.matmul %inv, %pf : tensor<1x4x1xf32>, tensor<1x1x?xf32> -> tensor<1x4x?xf32>
  %ft = kiln.transpose %f {permutation = array<i64: 0, 2, 1>} : tensor<1x4x?xf32> -> tensor<1x?x4xf32>
  %e = kiln.concat %ft, %ft {axis = 2 : i64} : tensor<1x?x4xf32>, tensor<1x?x4xf32> -> tensor<1x?x8xf32>
  %c = kiln.cos %e : tensor<1x?x8xf32>
  %s = kiln.sin %e : tensor<1x?x8xf32>
  %c4 = kiln.reshape %c {shape = array<i64: 1, 1, -1, 8>} : tensor<1x?x8xf32> -> tensor<1x1x?x8xf32>
  %s4 = kiln.reshape %s {shape = array<i64: 1, 1, -1, 8>} : tensor<1x?x8xf32> -> tensor<1x1x?x8xf32>
  %xc = kiln.mul %x, %c4 : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %lo = kiln.slice %x {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 4>, steps = array<i64: 1, 1, 1, 1>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %hi = kiln.slice %x {starts = array<i64: 0, 0, 0, 4>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807>, steps = array<i64: 1, 1, 1, 1>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %nh = kiln.neg %hi : tensor<1x2x?x4xf32>
  %rot = kiln.concat %nh, %lo {axis = 3 : i64} : tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32> -> tensor<1x2x?x8xf32>
  %rs = kiln.mul %rot, %s4 : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %y = kiln.add %xc, %rs : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32> -> tensor<1x2x?x8xf32>
  return %y : tensor<1x2x?x8xf32>
}

// -----

// Frequencies scaled by 1/4 are not theta^(-2i/D): they are kept as they
// are (inv_freq, recovered from the tables). The halves swapped (-x[:h],
// x[h:]) are not a rotation of RoPE's: that sum stays primitive.
// CHECK-LABEL: func.func @rope_near_misses
// CHECK: kiln.rope %{{.*}} {inv_freq = array<f64: 0.2500000{{[0-9]*}}, 0.0250000{{[0-9]*}}, 0.002499999{{[0-9]*}}, 2.50000{{[0-9]*}}E-4>, style = #kiln<rope_style neox>
// CHECK-NOT: kiln.rope
// CHECK: %[[BAD:.*]] = kiln.add
// CHECK: return %{{.*}}, %[[BAD]]
func.func @rope_near_misses(%x: tensor<1x2x?x8xf32>, %pos: tensor<1x?xi64>) -> (tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>) {
  %scaled = kiln.constant dense<[[[0.25], [0.025], [0.0025], [0.00025]]]> : tensor<1x4x1xf32>
  %inv = kiln.constant dense<[[[1.0], [0.1], [0.01], [0.001]]]> : tensor<1x4x1xf32>
  %p3 = kiln.reshape %pos {shape = array<i64: 1, 1, -1>} : tensor<1x?xi64> -> tensor<1x1x?xi64>
  %pf = kiln.cast %p3 : tensor<1x1x?xi64> to tensor<1x1x?xf32>
  %f = kiln.matmul %scaled, %pf : tensor<1x4x1xf32>, tensor<1x1x?xf32> -> tensor<1x4x?xf32>
  %ft = kiln.transpose %f {permutation = array<i64: 0, 2, 1>} : tensor<1x4x?xf32> -> tensor<1x?x4xf32>
  %e = kiln.concat %ft, %ft {axis = 2 : i64} : tensor<1x?x4xf32>, tensor<1x?x4xf32> -> tensor<1x?x8xf32>
  %c4 = kiln.reshape %e {shape = array<i64: 1, 1, -1, 8>} : tensor<1x?x8xf32> -> tensor<1x1x?x8xf32>
  %c = kiln.cos %c4 : tensor<1x1x?x8xf32>
  %s = kiln.sin %c4 : tensor<1x1x?x8xf32>
  %lo = kiln.slice %x {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 4>, steps = array<i64: 1, 1, 1, 1>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %hi = kiln.slice %x {starts = array<i64: 0, 0, 0, 4>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807>, steps = array<i64: 1, 1, 1, 1>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %nh = kiln.neg %hi : tensor<1x2x?x4xf32>
  %rot = kiln.concat %nh, %lo {axis = 3 : i64} : tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32> -> tensor<1x2x?x8xf32>
  %xc = kiln.mul %x, %c : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %rs = kiln.mul %rot, %s : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %y = kiln.add %xc, %rs : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32> -> tensor<1x2x?x8xf32>
  %nl = kiln.neg %lo : tensor<1x2x?x4xf32>
  %bad = kiln.concat %nl, %hi {axis = 3 : i64} : tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32> -> tensor<1x2x?x8xf32>
  %f2 = kiln.matmul %inv, %pf : tensor<1x4x1xf32>, tensor<1x1x?xf32> -> tensor<1x4x?xf32>
  %ft2 = kiln.transpose %f2 {permutation = array<i64: 0, 2, 1>} : tensor<1x4x?xf32> -> tensor<1x?x4xf32>
  %e2 = kiln.concat %ft2, %ft2 {axis = 2 : i64} : tensor<1x?x4xf32>, tensor<1x?x4xf32> -> tensor<1x?x8xf32>
  %c2 = kiln.cos %e2 : tensor<1x?x8xf32>
  %s2 = kiln.sin %e2 : tensor<1x?x8xf32>
  %c24 = kiln.reshape %c2 {shape = array<i64: 1, 1, -1, 8>} : tensor<1x?x8xf32> -> tensor<1x1x?x8xf32>
  %s24 = kiln.reshape %s2 {shape = array<i64: 1, 1, -1, 8>} : tensor<1x?x8xf32> -> tensor<1x1x?x8xf32>
  %xc2 = kiln.mul %x, %c24 : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %rs2 = kiln.mul %bad, %s24 : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %y2 = kiln.add %xc2, %rs2 : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32> -> tensor<1x2x?x8xf32>
  return %y, %y2 : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32>
}

// -----

// Attention as torch.onnx writes it, head-major: GQA's repetition of 2 kv
// heads to 4 (reshape, expand, reshape), q k^T scaled by 1/sqrt(16), plus a
// mask built from the sequence length, softmax, times v, then back to
// token-major. The mask evaluates to the causal mask, so the whole chain is
// one causal attention (the default scale is left implicit).
// CHECK-LABEL: func.func @sdpa_gqa_causal
// CHECK-SAME: (%[[IDS:.*]]: tensor<1x?xi64>, %[[Q:.*]]: tensor<1x4x?x16xf32>, %[[K:.*]]: tensor<1x2x?x16xf32>, %[[V:.*]]: tensor<1x2x?x16xf32>)
// CHECK-DAG: %[[QT:.*]] = kiln.transpose %[[Q]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK-DAG: %[[KT:.*]] = kiln.transpose %[[K]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK-DAG: %[[VT:.*]] = kiln.transpose %[[V]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK: %[[A:.*]] = kiln.attention %[[QT]], %[[KT]], %[[VT]] {causal} : tensor<1x?x4x16xf32>, tensor<1x?x2x16xf32>, tensor<1x?x2x16xf32> -> tensor<1x?x4x16xf32>
// CHECK-NEXT: return %[[A]]
// The positions computed as range(0, shape_of(ids)[1], 1) become an arange.
// CHECK-LABEL: func.func @positions
// CHECK: kiln.arange %arg0 {axis = 1 : i64} : tensor<1x?xi64> -> tensor<?xi64>
// CHECK-NOT: kiln.range
func.func @sdpa_gqa_causal(%ids: tensor<1x?xi64>, %q: tensor<1x4x?x16xf32>, %k: tensor<1x2x?x16xf32>, %v: tensor<1x2x?x16xf32>) -> tensor<1x?x4x16xf32> {
  %s = kiln.shape_of %ids : tensor<1x?xi64> -> tensor<2xi64>
  %t1 = kiln.slice %s {starts = array<i64: 1>, ends = array<i64: 2>, steps = array<i64: 1>} : tensor<2xi64> -> tensor<1xi64>
  %t = kiln.reshape %t1 {shape = array<i64>} : tensor<1xi64> -> tensor<i64>
  %zero = kiln.constant dense<0> : tensor<i64>
  %one = kiln.constant dense<1> : tensor<i64>
  %r = kiln.range %zero, %t, %one : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
  %ri = kiln.reshape %r {shape = array<i64: -1, 1>} : tensor<?xi64> -> tensor<?x1xi64>
  %rj = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %above = kiln.compare gt, %rj, %ri : tensor<1x?xi64>, tensor<?x1xi64> -> tensor<?x?xi1>
  %ninf = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %z = kiln.constant dense<0.0> : tensor<f32>
  %mask = kiln.where %above, %ninf, %z : tensor<?x?xi1>, tensor<f32>, tensor<f32> -> tensor<?x?xf32>
  %c1 = kiln.constant dense<1> : tensor<1xi64>
  %c2 = kiln.constant dense<2> : tensor<1xi64>
  %c16 = kiln.constant dense<16> : tensor<1xi64>
  %es = kiln.concat %c1, %c2, %c2, %t1, %c16 {axis = 0 : i64} : tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64> -> tensor<5xi64>
  %k5 = kiln.reshape %k {shape = array<i64: 1, 2, 1, -1, 16>} : tensor<1x2x?x16xf32> -> tensor<1x2x1x?x16xf32>
  %ke = kiln.expand %k5, %es : tensor<1x2x1x?x16xf32>, tensor<5xi64> -> tensor<?x2x?x?x16xf32>
  %kr = kiln.reshape %ke {shape = array<i64: 1, 4, -1, 16>} : tensor<?x2x?x?x16xf32> -> tensor<1x4x?x16xf32>
  %v5 = kiln.reshape %v {shape = array<i64: 1, 2, 1, -1, 16>} : tensor<1x2x?x16xf32> -> tensor<1x2x1x?x16xf32>
  %ve = kiln.expand %v5, %es : tensor<1x2x1x?x16xf32>, tensor<5xi64> -> tensor<?x2x?x?x16xf32>
  %vr = kiln.reshape %ve {shape = array<i64: 1, 4, -1, 16>} : tensor<?x2x?x?x16xf32> -> tensor<1x4x?x16xf32>
  %kt = kiln.transpose %kr {permutation = array<i64: 0, 1, 3, 2>} : tensor<1x4x?x16xf32> -> tensor<1x4x16x?xf32>
  %qk = kiln.matmul %q, %kt : tensor<1x4x?x16xf32>, tensor<1x4x16x?xf32> -> tensor<1x4x?x?xf32>
  %scale = kiln.constant dense<2.500000e-01> : tensor<f32>
  %sc = kiln.mul %qk, %scale : tensor<1x4x?x?xf32>, tensor<f32> -> tensor<1x4x?x?xf32>
  %sm = kiln.add %sc, %mask : tensor<1x4x?x?xf32>, tensor<?x?xf32> -> tensor<1x4x?x?xf32>
  %p = kiln.softmax %sm {axis = 3 : i64} : tensor<1x4x?x?xf32>
  %o = kiln.matmul %p, %vr : tensor<1x4x?x?xf32>, tensor<1x4x?x16xf32> -> tensor<1x4x?x16xf32>
  %ot = kiln.transpose %o {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x4x?x16xf32> -> tensor<1x?x4x16xf32>
  return %ot : tensor<1x?x4x16xf32>
}
func.func @positions(%ids: tensor<1x?xi64>) -> tensor<?xi64> {
  %s = kiln.shape_of %ids : tensor<1x?xi64> -> tensor<2xi64>
  %t1 = kiln.slice %s {starts = array<i64: 1>, ends = array<i64: 2>, steps = array<i64: 1>} : tensor<2xi64> -> tensor<1xi64>
  %t = kiln.reshape %t1 {shape = array<i64>} : tensor<1xi64> -> tensor<i64>
  %zero = kiln.constant dense<0> : tensor<i64>
  %one = kiln.constant dense<1> : tensor<i64>
  %r = kiln.range %zero, %t, %one : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
  return %r : tensor<?xi64>
}

// -----

// No mask, the scale as a division by 2 (not 1/sqrt(16)): a full
// attention with an explicit scale.
// CHECK-LABEL: func.func @sdpa_scaled_full
// CHECK: kiln.attention %{{.*}}, %{{.*}}, %{{.*}} {scale = 5.000000e-01 : f64} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
// CHECK-NOT: kiln.softmax
func.func @sdpa_scaled_full(%q: tensor<?x4x?x16xf32>, %k: tensor<?x4x?x16xf32>, %v: tensor<?x4x?x16xf32>) -> tensor<?x?x4x16xf32> {
  %kt = kiln.transpose %k {permutation = array<i64: 0, 1, 3, 2>} : tensor<?x4x?x16xf32> -> tensor<?x4x16x?xf32>
  %qk = kiln.matmul %q, %kt : tensor<?x4x?x16xf32>, tensor<?x4x16x?xf32> -> tensor<?x4x?x?xf32>
  %two = kiln.constant dense<2.0> : tensor<f32>
  %sc = kiln.div %qk, %two : tensor<?x4x?x?xf32>, tensor<f32> -> tensor<?x4x?x?xf32>
  %p = kiln.softmax %sc {axis = 3 : i64} : tensor<?x4x?x?xf32>
  %o = kiln.matmul %p, %v : tensor<?x4x?x?xf32>, tensor<?x4x?x16xf32> -> tensor<?x4x?x16xf32>
  %ot = kiln.transpose %o {permutation = array<i64: 0, 2, 1, 3>} : tensor<?x4x?x16xf32> -> tensor<?x?x4x16xf32>
  return %ot : tensor<?x?x4x16xf32>
}

// -----

// Near misses: a mask that also hides the diagonal is not causal; a mask
// that is an input (its values unknown at compile time) cannot be checked.
// Both stay primitive.
// CHECK-LABEL: func.func @sdpa_not_causal
// CHECK-NOT: kiln.attention
// CHECK: kiln.softmax
// CHECK-LABEL: func.func @sdpa_mask_input
// CHECK-NOT: kiln.attention
// CHECK: kiln.softmax
func.func @sdpa_not_causal(%ids: tensor<1x?xi64>, %q: tensor<1x4x?x16xf32>, %k: tensor<1x4x?x16xf32>, %v: tensor<1x4x?x16xf32>) -> tensor<1x?x4x16xf32> {
  %s = kiln.shape_of %ids : tensor<1x?xi64> -> tensor<2xi64>
  %t1 = kiln.slice %s {starts = array<i64: 1>, ends = array<i64: 2>, steps = array<i64: 1>} : tensor<2xi64> -> tensor<1xi64>
  %t = kiln.reshape %t1 {shape = array<i64>} : tensor<1xi64> -> tensor<i64>
  %zero = kiln.constant dense<0> : tensor<i64>
  %one = kiln.constant dense<1> : tensor<i64>
  %r = kiln.range %zero, %t, %one : tensor<i64>, tensor<i64>, tensor<i64> -> tensor<?xi64>
  %ri = kiln.reshape %r {shape = array<i64: -1, 1>} : tensor<?xi64> -> tensor<?x1xi64>
  %rj = kiln.reshape %r {shape = array<i64: 1, -1>} : tensor<?xi64> -> tensor<1x?xi64>
  %above = kiln.compare ge, %rj, %ri : tensor<1x?xi64>, tensor<?x1xi64> -> tensor<?x?xi1>
  %ninf = kiln.constant dense<-3.40282347E+38> : tensor<f32>
  %z = kiln.constant dense<0.0> : tensor<f32>
  %mask = kiln.where %above, %ninf, %z : tensor<?x?xi1>, tensor<f32>, tensor<f32> -> tensor<?x?xf32>
  %kt = kiln.transpose %k {permutation = array<i64: 0, 1, 3, 2>} : tensor<1x4x?x16xf32> -> tensor<1x4x16x?xf32>
  %qk = kiln.matmul %q, %kt : tensor<1x4x?x16xf32>, tensor<1x4x16x?xf32> -> tensor<1x4x?x?xf32>
  %sm = kiln.add %qk, %mask : tensor<1x4x?x?xf32>, tensor<?x?xf32> -> tensor<1x4x?x?xf32>
  %p = kiln.softmax %sm {axis = 3 : i64} : tensor<1x4x?x?xf32>
  %o = kiln.matmul %p, %v : tensor<1x4x?x?xf32>, tensor<1x4x?x16xf32> -> tensor<1x4x?x16xf32>
  %ot = kiln.transpose %o {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x4x?x16xf32> -> tensor<1x?x4x16xf32>
  return %ot : tensor<1x?x4x16xf32>
}
func.func @sdpa_mask_input(%mask: tensor<?x?xf32>, %q: tensor<1x4x?x16xf32>, %k: tensor<1x4x?x16xf32>, %v: tensor<1x4x?x16xf32>) -> tensor<1x?x4x16xf32> {
  %kt = kiln.transpose %k {permutation = array<i64: 0, 1, 3, 2>} : tensor<1x4x?x16xf32> -> tensor<1x4x16x?xf32>
  %qk = kiln.matmul %q, %kt : tensor<1x4x?x16xf32>, tensor<1x4x16x?xf32> -> tensor<1x4x?x?xf32>
  %sm = kiln.add %qk, %mask : tensor<1x4x?x?xf32>, tensor<?x?xf32> -> tensor<1x4x?x?xf32>
  %p = kiln.softmax %sm {axis = 3 : i64} : tensor<1x4x?x?xf32>
  %o = kiln.matmul %p, %v : tensor<1x4x?x?xf32>, tensor<1x4x?x16xf32> -> tensor<1x4x?x16xf32>
  %ot = kiln.transpose %o {permutation = array<i64: 0, 2, 1, 3>} : tensor<1x4x?x16xf32> -> tensor<1x?x4x16xf32>
  return %ot : tensor<1x?x4x16xf32>
}

// -----

// LayerNorm as torch.onnx writes it below opset 17: centre, divide by the
// root of the mean square plus eps, scale, shift. It is RMSNorm of the
// centred input, which becomes LayerNorm, which takes the bias.
// CHECK-LABEL: func.func @layer_norm_opset14
// CHECK-SAME: (%[[X:.*]]: tensor<1x?x64xf32>, %[[W:.*]]: tensor<64xf32>, %[[B:.*]]: tensor<64xf32>)
// CHECK-NEXT: %[[Y:.*]] = kiln.layer_norm %[[X]], %[[W]], %[[B]] {epsilon = 9.99999974E-6 : f32} : tensor<1x?x64xf32>, tensor<64xf32>, tensor<64xf32>
// CHECK-NEXT: return %[[Y]]
func.func @layer_norm_opset14(%x: tensor<1x?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<1x?x64xf32> {
  %m = kiln.reduce_mean %x {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xf32> -> tensor<1x?x1xf32>
  %d = kiln.sub %x, %m : tensor<1x?x64xf32>, tensor<1x?x1xf32> -> tensor<1x?x64xf32>
  %two = kiln.constant dense<2.0> : tensor<f32>
  %p = kiln.pow %d, %two : tensor<1x?x64xf32>, tensor<f32> -> tensor<1x?x64xf32>
  %v = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims} : tensor<1x?x64xf32> -> tensor<1x?x1xf32>
  %eps = kiln.constant dense<1.0e-05> : tensor<f32>
  %a = kiln.add %v, %eps : tensor<1x?x1xf32>, tensor<f32> -> tensor<1x?x1xf32>
  %s = kiln.sqrt %a : tensor<1x?x1xf32>
  %n = kiln.div %d, %s : tensor<1x?x64xf32>, tensor<1x?x1xf32> -> tensor<1x?x64xf32>
  %y = kiln.mul %n, %w : tensor<1x?x64xf32>, tensor<64xf32> -> tensor<1x?x64xf32>
  %z = kiln.add %y, %b : tensor<1x?x64xf32>, tensor<64xf32> -> tensor<1x?x64xf32>
  return %z : tensor<1x?x64xf32>
}

// -----

// Near misses: the mean taken over the tokens, not the channels, is not a
// LayerNorm (the division spelling of RMSNorm still applies to the centred
// value); a bias of another shape stays an add.
// CHECK-LABEL: func.func @layer_norm_wrong_axis
// CHECK: kiln.reduce_mean %{{.*}} {axes = array<i64: 1>, keep_dims}
// CHECK: kiln.sub
// CHECK: kiln.rms_norm
// CHECK-NOT: kiln.layer_norm
// CHECK-LABEL: func.func @layer_norm_bias_shape
// CHECK: kiln.layer_norm %{{.*}}, %{{.*}} {epsilon
// CHECK-NEXT: kiln.add
func.func @layer_norm_wrong_axis(%x: tensor<1x8x64xf32>, %w: tensor<64xf32>) -> tensor<1x8x64xf32> {
  %m = kiln.reduce_mean %x {axes = array<i64: 1>, keep_dims} : tensor<1x8x64xf32> -> tensor<1x1x64xf32>
  %d = kiln.sub %x, %m : tensor<1x8x64xf32>, tensor<1x1x64xf32> -> tensor<1x8x64xf32>
  %p = kiln.mul %d, %d : tensor<1x8x64xf32>, tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  %v = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims} : tensor<1x8x64xf32> -> tensor<1x8x1xf32>
  %eps = kiln.constant dense<1.0e-05> : tensor<f32>
  %a = kiln.add %v, %eps : tensor<1x8x1xf32>, tensor<f32> -> tensor<1x8x1xf32>
  %s = kiln.sqrt %a : tensor<1x8x1xf32>
  %n = kiln.div %d, %s : tensor<1x8x64xf32>, tensor<1x8x1xf32> -> tensor<1x8x64xf32>
  %y = kiln.mul %n, %w : tensor<1x8x64xf32>, tensor<64xf32> -> tensor<1x8x64xf32>
  return %y : tensor<1x8x64xf32>
}
func.func @layer_norm_bias_shape(%x: tensor<1x8x64xf32>, %w: tensor<64xf32>, %b: tensor<8x64xf32>) -> tensor<1x8x64xf32> {
  %m = kiln.reduce_mean %x {axes = array<i64: 2>, keep_dims} : tensor<1x8x64xf32> -> tensor<1x8x1xf32>
  %d = kiln.sub %x, %m : tensor<1x8x64xf32>, tensor<1x8x1xf32> -> tensor<1x8x64xf32>
  %p = kiln.mul %d, %d : tensor<1x8x64xf32>, tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  %v = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims} : tensor<1x8x64xf32> -> tensor<1x8x1xf32>
  %eps = kiln.constant dense<1.0e-05> : tensor<f32>
  %a = kiln.add %v, %eps : tensor<1x8x1xf32>, tensor<f32> -> tensor<1x8x1xf32>
  %s = kiln.sqrt %a : tensor<1x8x1xf32>
  %n = kiln.div %d, %s : tensor<1x8x64xf32>, tensor<1x8x1xf32> -> tensor<1x8x64xf32>
  %y = kiln.mul %w, %n : tensor<64xf32>, tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  %z = kiln.add %y, %b : tensor<1x8x64xf32>, tensor<8x64xf32> -> tensor<1x8x64xf32>
  return %z : tensor<1x8x64xf32>
}

// -----

// Interleaved (GPT-J) RoPE with its tables gathered by position ids from
// precomputed cos/sin constants (theta 10000, D 8) and repeated pairwise,
// the rotation spelled rotate-every-two (strided slices, negation, stack,
// flatten): raised by evaluating both to kiln.rope {gptj}.
// CHECK-LABEL: func.func @rope_gptj_gathered
// CHECK-SAME: (%[[X:.*]]: tensor<1x2x?x8xf32>, %[[P:.*]]: tensor<1x?xi64>)
// CHECK: %[[T:.*]] = kiln.transpose %[[X]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK: %[[R:.*]] = kiln.rope %[[T]], %[[P]] {style = #kiln<rope_style gptj>, theta = 1.000000e+04 : f64}
// CHECK: %[[Y:.*]] = kiln.transpose %[[R]] {permutation = array<i64: 0, 2, 1, 3>}
// CHECK: return %[[Y]]
func.func @rope_gptj_gathered(%x: tensor<1x2x?x8xf32>, %pos: tensor<1x?xi64>) -> tensor<1x2x?x8xf32> {
  %cos_tab = kiln.constant dense<[[1.000000000e+00, 1.000000000e+00, 1.000000000e+00, 1.000000000e+00], [5.403023059e-01, 9.950041653e-01, 9.999500004e-01, 9.999995000e-01], [-4.161468365e-01, 9.800665778e-01, 9.998000067e-01, 9.999980000e-01], [-9.899924966e-01, 9.553364891e-01, 9.995500337e-01, 9.999955000e-01], [-6.536436209e-01, 9.210609940e-01, 9.992001067e-01, 9.999920000e-01], [2.836621855e-01, 8.775825619e-01, 9.987502604e-01, 9.999875000e-01], [9.601702867e-01, 8.253356149e-01, 9.982005399e-01, 9.999820001e-01], [7.539022543e-01, 7.648421873e-01, 9.975510003e-01, 9.999755001e-01], [-1.455000338e-01, 6.967067093e-01, 9.968017063e-01, 9.999680002e-01], [-9.111302619e-01, 6.216099683e-01, 9.959527330e-01, 9.999595003e-01], [-8.390715291e-01, 5.403023059e-01, 9.950041653e-01, 9.999500004e-01], [4.425697988e-03, 4.535961214e-01, 9.939560980e-01, 9.999395006e-01], [8.438539587e-01, 3.623577545e-01, 9.928086359e-01, 9.999280009e-01], [9.074467815e-01, 2.674988286e-01, 9.915618937e-01, 9.999155012e-01], [1.367372182e-01, 1.699671429e-01, 9.902159962e-01, 9.999020016e-01], [-7.596879129e-01, 7.073720167e-02, 9.887710779e-01, 9.998875021e-01]]> : tensor<16x4xf32>
  %sin_tab = kiln.constant dense<[[0.000000000e+00, 0.000000000e+00, 0.000000000e+00, 0.000000000e+00], [8.414709848e-01, 9.983341665e-02, 9.999833334e-03, 9.999998333e-04], [9.092974268e-01, 1.986693308e-01, 1.999866669e-02, 1.999998667e-03], [1.411200081e-01, 2.955202067e-01, 2.999550020e-02, 2.999995500e-03], [-7.568024953e-01, 3.894183423e-01, 3.998933419e-02, 3.999989333e-03], [-9.589242747e-01, 4.794255386e-01, 4.997916927e-02, 4.999979167e-03], [-2.794154982e-01, 5.646424734e-01, 5.996400648e-02, 5.999964000e-03], [6.569865987e-01, 6.442176872e-01, 6.994284734e-02, 6.999942833e-03], [9.893582466e-01, 7.173560909e-01, 7.991469397e-02, 7.999914667e-03], [4.121184852e-01, 7.833269096e-01, 8.987854920e-02, 8.999878500e-03], [-5.440211109e-01, 8.414709848e-01, 9.983341665e-02, 9.999833334e-03], [-9.999902066e-01, 8.912073601e-01, 1.097783008e-01, 1.099977817e-02], [-5.365729180e-01, 9.320390860e-01, 1.197122073e-01, 1.199971200e-02], [4.201670368e-01, 9.635581854e-01, 1.296341426e-01, 1.299963384e-02], [9.906073557e-01, 9.854497300e-01, 1.395431146e-01, 1.399954267e-02], [6.502878402e-01, 9.974949866e-01, 1.494381325e-01, 1.499943751e-02]]> : tensor<16x4xf32>
  %c = kiln.gather %cos_tab[%pos] {axis = 0 : i64} : tensor<16x4xf32>, tensor<1x?xi64> -> tensor<1x?x4xf32>
  %s = kiln.gather %sin_tab[%pos] {axis = 0 : i64} : tensor<16x4xf32>, tensor<1x?xi64> -> tensor<1x?x4xf32>
  %c5 = kiln.reshape %c {shape = array<i64: 1, 1, -1, 4, 1>} : tensor<1x?x4xf32> -> tensor<1x1x?x4x1xf32>
  %s5 = kiln.reshape %s {shape = array<i64: 1, 1, -1, 4, 1>} : tensor<1x?x4xf32> -> tensor<1x1x?x4x1xf32>
  %c2 = kiln.concat %c5, %c5 {axis = 4 : i64} : tensor<1x1x?x4x1xf32>, tensor<1x1x?x4x1xf32> -> tensor<1x1x?x4x2xf32>
  %s2 = kiln.concat %s5, %s5 {axis = 4 : i64} : tensor<1x1x?x4x1xf32>, tensor<1x1x?x4x1xf32> -> tensor<1x1x?x4x2xf32>
  %cr = kiln.reshape %c2 {shape = array<i64: 1, 1, -1, 8>} : tensor<1x1x?x4x2xf32> -> tensor<1x1x?x8xf32>
  %sr = kiln.reshape %s2 {shape = array<i64: 1, 1, -1, 8>} : tensor<1x1x?x4x2xf32> -> tensor<1x1x?x8xf32>
  %ev = kiln.slice %x {starts = array<i64: 0, 0, 0, 0>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807>, steps = array<i64: 1, 1, 1, 2>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %od = kiln.slice %x {starts = array<i64: 0, 0, 0, 1>, ends = array<i64: 9223372036854775807, 9223372036854775807, 9223372036854775807, 9223372036854775807>, steps = array<i64: 1, 1, 1, 2>} : tensor<1x2x?x8xf32> -> tensor<1x2x?x4xf32>
  %no = kiln.neg %od : tensor<1x2x?x4xf32>
  %u0 = kiln.reshape %no {shape = array<i64: 1, 2, -1, 4, 1>} : tensor<1x2x?x4xf32> -> tensor<1x2x?x4x1xf32>
  %u1 = kiln.reshape %ev {shape = array<i64: 1, 2, -1, 4, 1>} : tensor<1x2x?x4xf32> -> tensor<1x2x?x4x1xf32>
  %st = kiln.concat %u0, %u1 {axis = 4 : i64} : tensor<1x2x?x4x1xf32>, tensor<1x2x?x4x1xf32> -> tensor<1x2x?x4x2xf32>
  %rot = kiln.reshape %st {shape = array<i64: 1, 2, -1, 8>} : tensor<1x2x?x4x2xf32> -> tensor<1x2x?x8xf32>
  %xc = kiln.mul %x, %cr : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %rs = kiln.mul %rot, %sr : tensor<1x2x?x8xf32>, tensor<1x1x?x8xf32> -> tensor<1x2x?x8xf32>
  %y = kiln.add %xc, %rs : tensor<1x2x?x8xf32>, tensor<1x2x?x8xf32> -> tensor<1x2x?x8xf32>
  return %y : tensor<1x2x?x8xf32>
}
