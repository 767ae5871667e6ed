// RUN: kiln-opt %s -split-input-file -kiln-lower-to-exec=max-batch=4 -verify-diagnostics | FileCheck %s

// Two decode layers whose matmul groups differ only in their weights share
// one kernel; results get allocs of the largest step (4 sequences), the
// reshape a view, weights stored [K, N] a transposed slot.
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[IDS:.*]]: !kiln_exec.buffer<tensor<?x1xi64>>, %[[X:.*]]: !kiln_exec.buffer<tensor<?x1x64xf32>>) -> !kiln_exec.buffer<tensor<4x1x4x16xf32>>
// CHECK: %[[W1:.*]] = kiln_exec.weight_slot "w1" layout(transpose) : !kiln_exec.buffer<tensor<64x64xf32>>
// CHECK: %[[Y1:.*]] = kiln_exec.alloc : !kiln_exec.buffer<tensor<4x1x64xf32>>
// CHECK: kiln_exec.launch @decode_0_matmul(%[[X]], %[[W1]], %[[Y1]]) grid [16, 1, 1] block [64, 1, 1] smem 0 {kiln.bytes = 100 : i64, kiln.flops = 16384 : i64, num_outputs = 1 : i64}
// CHECK: %[[W2:.*]] = kiln_exec.weight_slot "w2" layout(identity)
// CHECK: %[[Y2:.*]] = kiln_exec.alloc : !kiln_exec.buffer<tensor<4x1x64xf32>>
// CHECK: kiln_exec.launch @decode_0_matmul(%[[Y1]], %[[W2]], %[[Y2]])
// CHECK: %[[V:.*]] = kiln_exec.view %[[Y2]] : !kiln_exec.buffer<tensor<4x1x64xf32>> to !kiln_exec.buffer<tensor<4x1x4x16xf32>>
// CHECK: return %[[V]]
// CHECK: kiln_exec.kernel @decode_0_matmul family("gemv") attributes {bytes = 100 : i64, flops = 16384 : i64, tile = {grid = 16 : i64, threads = 64 : i64}}
// CHECK-NEXT: ^bb0(%{{.*}}: tensor<?x1x64xf32>, %{{.*}}: tensor<64x64xf32>):
// CHECK-NEXT: kiln.fused "matmul"
// CHECK-NOT: kiln_exec.kernel
func.func @decode(%ids: tensor<?x1xi64>, %x: tensor<?x1x64xf32>) -> tensor<?x1x4x16xf32> {
  %w1 = kiln.weight "w1" {transposed} : tensor<64x64xf32>
  %y1 = kiln.fused "matmul"(%x, %w1) {kiln.cost = {bytes = 100 : i64, flops = 16384 : i64, time_ns = 10 : i64, weight_bytes = 0 : i64}, kiln.tile = {family = "gemv", grid = 16 : i64, threads = 64 : i64}} : (tensor<?x1x64xf32>, tensor<64x64xf32>) -> tensor<?x1x64xf32> {
  ^bb0(%a: tensor<?x1x64xf32>, %b: tensor<64x64xf32>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
    kiln.yield %m : tensor<?x1x64xf32>
  }
  %w2 = kiln.weight "w2" : tensor<64x64xf32>
  %y2 = kiln.fused "matmul"(%y1, %w2) {kiln.cost = {bytes = 100 : i64, flops = 16384 : i64, time_ns = 10 : i64, weight_bytes = 0 : i64}, kiln.tile = {family = "gemv", grid = 16 : i64, threads = 64 : i64}} : (tensor<?x1x64xf32>, tensor<64x64xf32>) -> tensor<?x1x64xf32> {
  ^bb0(%a: tensor<?x1x64xf32>, %b: tensor<64x64xf32>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
    kiln.yield %m : tensor<?x1x64xf32>
  }
  %r = kiln.reshape %y2 {shape = array<i64: 0, 0, 4, 16>} : tensor<?x1x64xf32> -> tensor<?x1x4x16xf32>
  return %r : tensor<?x1x4x16xf32>
}

// -----

// Lowering needs every kernel op fused.
func.func @unfused(%ids: tensor<?x1xi64>, %x: tensor<?x1x64xf32>) -> tensor<?x1x64xf32> {
  // expected-error @+1 {{runs as a kernel but is not in a kiln.fused group: run kiln-fuse before lowering}}
  %y = kiln.exp %x : tensor<?x1x64xf32>
  return %y : tensor<?x1x64xf32>
}

// -----

// A residual epilogue writes in place over the residual when that is its
// last reader and it is passed once; not when the same value is also the
// matmul's input (other blocks still read it), nor when it is returned.
// CHECK-LABEL: func.func @decode
// CHECK: %[[X1:.*]] = kiln_exec.alloc : !kiln_exec.buffer<tensor<4x1x64xf32>>
// CHECK: kiln_exec.launch @{{.*}}(%{{.*}}, %{{.*}}, %[[X1]])
// CHECK: %[[H:.*]] = kiln_exec.alloc : !kiln_exec.buffer<tensor<4x1x64xf32>>
// CHECK: kiln_exec.launch @{{.*}}(%{{.*}}, %{{.*}}, %[[H]])
// In place: the residual add of the second matmul writes %X1.
// CHECK: kiln_exec.launch @[[RES:.*]](%[[H]], %{{.*}}, %[[X1]], %[[X1]]) {{.*}} {num_outputs = 1 : i64}
// Not in place: %X1 is also this group's matmul input.
// CHECK: %[[Y:.*]] = kiln_exec.alloc : !kiln_exec.buffer<tensor<4x1x64xf32>>
// CHECK: kiln_exec.launch @{{.*}}(%[[X1]], %{{.*}}, %[[X1]], %[[Y]])
func.func @decode(%ids: tensor<?x1xi64>, %x: tensor<?x1x64xf32>) -> tensor<?x1x64xf32> {
  %w = kiln.weight "w" : tensor<64x64xf32>
  %x1 = kiln.fused "matmul"(%x, %w) : (tensor<?x1x64xf32>, tensor<64x64xf32>) -> tensor<?x1x64xf32> {
  ^bb0(%a: tensor<?x1x64xf32>, %b: tensor<64x64xf32>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
    kiln.yield %m : tensor<?x1x64xf32>
  }
  %h = kiln.fused "matmul"(%x, %w) : (tensor<?x1x64xf32>, tensor<64x64xf32>) -> tensor<?x1x64xf32> {
  ^bb0(%a: tensor<?x1x64xf32>, %b: tensor<64x64xf32>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
    kiln.yield %m : tensor<?x1x64xf32>
  }
  %x2 = kiln.fused "matmul"(%h, %w, %x1) : (tensor<?x1x64xf32>, tensor<64x64xf32>, tensor<?x1x64xf32>) -> tensor<?x1x64xf32> {
  ^bb0(%a: tensor<?x1x64xf32>, %b: tensor<64x64xf32>, %c: tensor<?x1x64xf32>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
    %r = kiln.add %c, %m : tensor<?x1x64xf32>, tensor<?x1x64xf32> -> tensor<?x1x64xf32>
    kiln.yield %r : tensor<?x1x64xf32>
  }
  %y = kiln.fused "matmul"(%x2, %w, %x2) : (tensor<?x1x64xf32>, tensor<64x64xf32>, tensor<?x1x64xf32>) -> tensor<?x1x64xf32> {
  ^bb0(%a: tensor<?x1x64xf32>, %b: tensor<64x64xf32>, %c: tensor<?x1x64xf32>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x64xf32>, tensor<64x64xf32> -> tensor<?x1x64xf32>
    %r = kiln.add %c, %m : tensor<?x1x64xf32>, tensor<?x1x64xf32> -> tensor<?x1x64xf32>
    kiln.yield %r : tensor<?x1x64xf32>
  }
  return %y : tensor<?x1x64xf32>
}

// -----

// Two layers' cache appends differ only in the layer they address: one
// kernel serves both, its body names layer 0, and each launch says which
// layer it writes.
// CHECK-LABEL: func.func @decode
// CHECK: kiln_exec.launch @[[K:decode_0_kv_append]](%{{.*}}) {{.*}} {num_outputs = 1 : i64}
// CHECK: kiln_exec.launch @[[K]](%{{.*}}) {{.*}} {kv_layer = 1 : i64, num_outputs = 1 : i64}
// CHECK: kiln_exec.kernel @[[K]]
// CHECK: kiln.kv_append %{{.*}}[0]
// CHECK-NOT: kiln_exec.kernel
func.func @decode(%k: tensor<?x1x2x16xf32>, %bt: tensor<?x?xi32>, %pos: tensor<?x1xi64>, %cache: tensor<2x?x2x16x2x16xf32>) -> tensor<2x?x2x16x2x16xf32> {
  %c1 = kiln.fused "kv_append"(%cache, %k, %bt, %pos) : (tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>) -> tensor<2x?x2x16x2x16xf32> {
  ^bb0(%c: tensor<2x?x2x16x2x16xf32>, %a: tensor<?x1x2x16xf32>, %b: tensor<?x?xi32>, %p: tensor<?x1xi64>):
    %r = kiln.kv_append %c[0], %a, %a, %b, %p : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
    kiln.yield %r : tensor<2x?x2x16x2x16xf32>
  }
  %c2 = kiln.fused "kv_append"(%c1, %k, %bt, %pos) : (tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>) -> tensor<2x?x2x16x2x16xf32> {
  ^bb0(%c: tensor<2x?x2x16x2x16xf32>, %a: tensor<?x1x2x16xf32>, %b: tensor<?x?xi32>, %p: tensor<?x1xi64>):
    %r = kiln.kv_append %c[1], %a, %a, %b, %p : tensor<2x?x2x16x2x16xf32>, tensor<?x1x2x16xf32>, tensor<?x?xi32>, tensor<?x1xi64>
    kiln.yield %r : tensor<2x?x2x16x2x16xf32>
  }
  return %c2 : tensor<2x?x2x16x2x16xf32>
}
