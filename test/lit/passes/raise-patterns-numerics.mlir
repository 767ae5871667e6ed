// The raised composites compute what the primitives did: the interpreter
// evaluates each function before and after on random inputs (2 seeds).
// RUN: kiln-interp %s --check-pipeline "builtin.module(kiln-raise-patterns)" | FileCheck %s
// RUN: kiln-opt %s -kiln-raise-patterns | FileCheck %s --check-prefix=RAISED
// CHECK: compared 4 results: all agree
// RAISED-LABEL: func.func @layer_norm
// RAISED: kiln.layer_norm
// RAISED-LABEL: func.func @attention
// RAISED: kiln.attention {{.*}} {causal}

func.func @layer_norm(%x: tensor<1x?x64xf32>, %w: tensor<64xf32>, %b: tensor<64xf32>) -> tensor<1x?x64xf32> {
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

func.func @attention(%ids: tensor<1x?xi64>, %q: tensor<1x4x?x16xf32>, %k: tensor<1x2x?x16xf32>, %v: tensor<1x2x?x16xf32>) -> tensor<1x?x4x16xf32> {
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
