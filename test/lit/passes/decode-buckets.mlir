// RUN: kiln-opt %s -split-input-file -kiln-decode-buckets=buckets=64,1,8 -verify-diagnostics | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-decode-buckets=buckets=64,1,8 -kiln-choose-tiling -verify-diagnostics | FileCheck %s --check-prefix=TILE
// RUN: kiln-opt %s -split-input-file -kiln-decode-buckets=buckets=64,1,8 -kiln-choose-tiling -kiln-lower-to-exec=max-batch=64 -verify-diagnostics | FileCheck %s --check-prefix=EXEC
// RUN: kiln-opt %s -split-input-file -kiln-decode-buckets -verify-diagnostics | FileCheck %s --check-prefix=NONE
// RUN: not kiln-opt %s -split-input-file -kiln-decode-buckets=buckets=4,0 2>&1 | FileCheck %s --check-prefix=ZERO
// RUN: not kiln-opt %s -split-input-file -kiln-decode-buckets=buckets=4,4 2>&1 | FileCheck %s --check-prefix=TWICE

// @decode keeps the largest bucket; each smaller one is a copy named for
// its batch, and every decode function says its batch.
// CHECK-LABEL: func.func @decode(
// CHECK-SAME: attributes {kiln.decode_batch = 64 : i64}
// CHECK-LABEL: func.func @decode_b1(
// CHECK-SAME: attributes {kiln.decode_batch = 1 : i64}
// CHECK: kiln.matmul
// CHECK-LABEL: func.func @decode_b8(
// CHECK-SAME: attributes {kiln.decode_batch = 8 : i64}
// Prefill is left alone.
// CHECK-LABEL: func.func @prefill(
// CHECK-NOT: kiln.decode_batch
// Each copy is tiled for its own batch: one row through the GEMV; 8 and
// 64 rows on tensor cores, in one 64-row tile whose 96 column tiles leave
// SMs idle, so each tile's K goes in two parts (split-K). A GEMM's tile
// names its step's rows (decode_rows), which the emitter's choices follow:
// the buckets' kernels are never merged into one.
// TILE-LABEL: func.func @decode(
// TILE: kiln.tile = {block_k = 64 : i64, block_m = 64 : i64, block_n = 64 : i64, decode_rows = 64 : i64, family = "gemm", grid = 192 : i64, smem = 66560 : i64, split_k = 2 : i64
// TILE-LABEL: func.func @decode_b1(
// TILE: kiln.tile = {family = "gemv", grid = 768 : i64, rows = 1 : i64
// TILE-LABEL: func.func @decode_b8(
// TILE: kiln.tile = {block_k = 64 : i64, block_m = 64 : i64, block_n = 64 : i64, decode_rows = 8 : i64, family = "gemm", grid = 192 : i64, smem = 66560 : i64, split_k = 2 : i64
// Lowered, a bucket's buffers hold its own batch of rows (64 x 6144 bf16
// for @decode, 1 x 6144 for @decode_b1) and the attribute stays.
// EXEC-LABEL: func.func @decode(
// EXEC-SAME: attributes {kiln.decode_batch = 64 : i64}
// EXEC: kiln_exec.alloc : !kiln_exec.buffer<tensor<64x1x6144xbf16>>
// EXEC: kiln_exec.launch @decode_0_matmul
// EXEC-LABEL: func.func @decode_b1(
// EXEC-SAME: attributes {kiln.decode_batch = 1 : i64}
// EXEC: kiln_exec.alloc : !kiln_exec.buffer<tensor<1x1x6144xbf16>>
// EXEC: kiln_exec.launch @decode_b1_1_matmul
// EXEC-LABEL: func.func @decode_b8(
// EXEC: kiln_exec.alloc : !kiln_exec.buffer<tensor<8x1x6144xbf16>>
// Each bucket launches a kernel of its own: @decode_b8's tile is @decode's
// but for its rows (decode_rows, which the emitter's choices follow);
// @decode_b1 has a GEMV.
// A launch carries its own step's planned bytes and FLOPs (8 rows: 8 x 2048
// + 6144 x 2048 + 8 x 6144 bf16; 2 x 8 x 2048 x 6144).
// EXEC: kiln_exec.launch @decode_b8_2_matmul{{.*}}kiln.bytes = 25296896 : i64, kiln.flops = 201326592 : i64
// EXEC: kiln_exec.kernel @decode_0_matmul family("gemm") {{.*}} decode_rows = 64 : i64
// EXEC: kiln_exec.kernel @decode_b1_1_matmul family("gemv") {{.*}} rows = 1 : i64
// EXEC: kiln_exec.kernel @decode_b8_2_matmul family("gemm") {{.*}} decode_rows = 8 : i64
// EXEC-NOT: kiln_exec.kernel
// With no buckets the module is left as it is.
// NONE-LABEL: func.func @decode(
// NONE-NOT: kiln.decode_batch
// NONE-NOT: @decode_b
// ZERO: kiln-decode-buckets: bucket 0 is not positive
// TWICE: kiln-decode-buckets: bucket 4 is named twice
func.func @decode(%ids: tensor<?x1xi64>, %x: tensor<?x1x2048xbf16>) -> tensor<?x1x6144xbf16> {
  %w = kiln.weight "w" : tensor<6144x2048xbf16>
  %y = kiln.fused "matmul"(%x, %w) : (tensor<?x1x2048xbf16>, tensor<6144x2048xbf16>) -> tensor<?x1x6144xbf16> {
  ^bb0(%a: tensor<?x1x2048xbf16>, %b: tensor<6144x2048xbf16>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x2048xbf16>, tensor<6144x2048xbf16> -> tensor<?x1x6144xbf16>
    kiln.yield %m : tensor<?x1x6144xbf16>
  }
  return %y : tensor<?x1x6144xbf16>
}
func.func @prefill(%ids: tensor<?x?xi64>) -> tensor<?x?xi64> {
  return %ids : tensor<?x?xi64>
}

// -----

// A module without @decode is refused.
// expected-error @below {{kiln-decode-buckets: the module has no @decode (run kiln-insert-kv-cache first)}}
module {
  func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?xi64> {
    return %ids : tensor<?x?xi64>
  }
}
