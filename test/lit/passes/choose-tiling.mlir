// RUN: kiln-opt %s -split-input-file -kiln-choose-tiling | FileCheck %s
// RUN: kiln-opt %s -split-input-file -kiln-choose-tiling -kiln-test-print-cost -o /dev/null | FileCheck %s --check-prefix=COST
// RUN: kiln-opt %s -split-input-file -kiln-choose-tiling=target=a100 | FileCheck %s --check-prefix=A100
// RUN: kiln-opt %s -split-input-file -kiln-choose-tiling=prefill-tokens=4096 | FileCheck %s --check-prefix=BIG
// RUN: kiln-opt %s -split-input-file -kiln-choose-tiling="prefill-tokens=4096 epilogue-warps=false" | FileCheck %s --check-prefix=NOEW
// RUN: not kiln-opt %s -split-input-file -kiln-choose-tiling=target=h900 2>&1 | FileCheck %s --check-prefix=BAD
// BAD: unknown target "h900" (known: a100-pcie-40gb, a100-sxm-80gb, h100-pcie-80gb, h100-sxm-80gb, h200-sxm-141gb; or give a path to a .json description)

// A decode projection: 6144 x 2048 bf16 weights (25165824 bytes), one
// token in (4096 bytes) and out (12288 bytes). K = 2048 takes 16-byte
// loads, eight of them in flight per lane cover a row; with 6144 rows
// there are enough warps without split-K.
// CHECK: module attributes {kiln.target = "h100-sxm-80gb"}
// CHECK-LABEL: func.func @decode
// CHECK: kiln.fused "matmul"(%{{.*}}) {kiln.cost = {bytes = 25182208 : i64, flops = 25165824 : i64, time_ns = {{[0-9]+}} : i64, weight_bytes = 25165824 : i64}, kiln.tile = {family = "gemv", grid = 768 : i64, rows = 1 : i64, split_k = 1 : i64, threads = 256 : i64, unroll = 8 : i64, vector_width = 8 : i64}}
// 96 rows: all of their bytes are in flight at once already; splitting K
// would not add any.
// CHECK: kiln.fused "matmul"(%{{.*}}) {kiln.cost = {bytes = 397504 : i64, {{.*}}, kiln.tile = {family = "gemv", grid = 12 : i64, rows = 1 : i64, split_k = 1 : i64
// K = 2052 only divides into 4-element (8-byte) loads; 8 rows split K over
// four of the block's eight warps to have more loads in flight.
// CHECK: kiln.tile = {family = "gemv", grid = 4 : i64, rows = 1 : i64, split_k = 4 : i64, threads = 256 : i64, unroll = 8 : i64, vector_width = 4 : i64}
// On the A100 (108 SMs, 2 TB/s) the module names its target.
// A100: module attributes {kiln.target = "a100-sxm-80gb"}
// COST-LABEL: @decode on h100-sxm-80gb: 1 x 1 tokens, context 1024
// COST: 0 matmul gemv 25182208 25165824 25165824 {{.*}} grid=768,rows=1,split_k=1,threads=256,unroll=8,vector_width=8
// COST: kernels 3, bytes 25616664, weights read 25591872 of 25591872 bound (1.000x)
func.func @decode(%ids: tensor<?x1xi64>, %x: tensor<?x1x2048xbf16>, %x2: tensor<?x1x2052xbf16>) -> (tensor<?x1x6144xbf16>, tensor<?x1x96xbf16>, tensor<?x1x8xbf16>) {
  %w = kiln.weight "w" : tensor<6144x2048xbf16>
  %y = kiln.fused "matmul"(%x, %w) : (tensor<?x1x2048xbf16>, tensor<6144x2048xbf16>) -> tensor<?x1x6144xbf16> {
  ^bb0(%a: tensor<?x1x2048xbf16>, %b: tensor<6144x2048xbf16>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x2048xbf16>, tensor<6144x2048xbf16> -> tensor<?x1x6144xbf16>
    kiln.yield %m : tensor<?x1x6144xbf16>
  }
  %w2 = kiln.weight "w2" : tensor<96x2048xbf16>
  %z = kiln.fused "matmul"(%x, %w2) : (tensor<?x1x2048xbf16>, tensor<96x2048xbf16>) -> tensor<?x1x96xbf16> {
  ^bb0(%a: tensor<?x1x2048xbf16>, %b: tensor<96x2048xbf16>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x2048xbf16>, tensor<96x2048xbf16> -> tensor<?x1x96xbf16>
    kiln.yield %m : tensor<?x1x96xbf16>
  }
  %w3 = kiln.weight "w3" : tensor<8x2052xbf16>
  %u = kiln.fused "matmul"(%x2, %w3) : (tensor<?x1x2052xbf16>, tensor<8x2052xbf16>) -> tensor<?x1x8xbf16> {
  ^bb0(%a: tensor<?x1x2052xbf16>, %b: tensor<8x2052xbf16>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x1x2052xbf16>, tensor<8x2052xbf16> -> tensor<?x1x8xbf16>
    kiln.yield %m : tensor<?x1x8xbf16>
  }
  return %y, %z, %u : tensor<?x1x6144xbf16>, tensor<?x1x96xbf16>, tensor<?x1x8xbf16>
}

// -----

// Prefill of 512 tokens: a GEMM with tiles that fit shared memory. Bytes:
// activations 2097152 + weights 25165824 + result 6291456; 2 M N K flops.
// CHECK-LABEL: func.func @prefill
// CHECK: kiln.cost = {bytes = 33554432 : i64, flops = 12884901888 : i64, {{.*}}, kiln.tile = {block_k = {{32|64}} : i64, block_m = {{[0-9]+}} : i64, block_n = {{[0-9]+}} : i64, family = "gemm", grid = {{[0-9]+}} : i64, smem = {{[0-9]+}} : i64, stages = {{[234]}} : i64}
// At 4096 tokens the GEMM takes the largest tile the kernel builds
// (target::GemmTileShape: 128 x 256, 64 deep for wgmma, 4 stages in 193 KB
// of shared memory, plus 1 KB to align the swizzled stages). Its 768
// tiles are 5.8 a block: too few for epilogue warps without a residual
// (8 waves).
// BIG-LABEL: func.func @prefill
// BIG: kiln.tile = {block_k = 64 : i64, block_m = 128 : i64, block_n = 256 : i64, family = "gemm", grid = 768 : i64, smem = 197632 : i64, stages = 4 : i64}
// COST-LABEL: @prefill on h100-sxm-80gb: 1 x 512 tokens
// COST: 0 matmul gemm 33554432 25165824 12884901888
func.func @prefill(%ids: tensor<?x?xi64>, %x: tensor<?x?x2048xbf16>) -> tensor<?x?x6144xbf16> {
  %w = kiln.weight "w" : tensor<6144x2048xbf16>
  %y = kiln.fused "matmul"(%x, %w) : (tensor<?x?x2048xbf16>, tensor<6144x2048xbf16>) -> tensor<?x?x6144xbf16> {
  ^bb0(%a: tensor<?x?x2048xbf16>, %b: tensor<6144x2048xbf16>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x?x2048xbf16>, tensor<6144x2048xbf16> -> tensor<?x?x6144xbf16>
    kiln.yield %m : tensor<?x?x6144xbf16>
  }
  return %y : tensor<?x?x6144xbf16>
}

// -----

// An output projection with its residual at 4096 tokens: 512 tiles of
// 128 x 256, 3.9 a block, enough for epilogue warps with a residual to
// load (2.5 waves): 3 stages beside 128 staged rows of 256 + 8 products.
// epilogue-warps=false keeps the 4-stage ring.
// BIG-LABEL: func.func @prefill_residual
// BIG: kiln.tile = {block_k = 64 : i64, block_m = 128 : i64, block_n = 256 : i64, epilogue_warps = 1 : i64, family = "gemm", grid = 512 : i64, smem = 216064 : i64, stages = 3 : i64}
// NOEW-LABEL: func.func @prefill_residual
// NOEW: kiln.tile = {block_k = 64 : i64, block_m = 128 : i64, block_n = 256 : i64, family = "gemm", grid = 512 : i64, smem = 197632 : i64, stages = 4 : i64}
func.func @prefill_residual(%ids: tensor<?x?xi64>, %x: tensor<?x?x4096xbf16>, %r: tensor<?x?x4096xbf16>) -> tensor<?x?x4096xbf16> {
  %w = kiln.weight "wo" : tensor<4096x4096xbf16>
  %y = kiln.fused "matmul"(%x, %w, %r) : (tensor<?x?x4096xbf16>, tensor<4096x4096xbf16>, tensor<?x?x4096xbf16>) -> tensor<?x?x4096xbf16> {
  ^bb0(%a: tensor<?x?x4096xbf16>, %b: tensor<4096x4096xbf16>, %c: tensor<?x?x4096xbf16>):
    %m = kiln.matmul %a, %b {transpose_b} : tensor<?x?x4096xbf16>, tensor<4096x4096xbf16> -> tensor<?x?x4096xbf16>
    %s = kiln.add %c, %m : tensor<?x?x4096xbf16>, tensor<?x?x4096xbf16> -> tensor<?x?x4096xbf16>
    kiln.yield %s : tensor<?x?x4096xbf16>
  }
  return %y : tensor<?x?x4096xbf16>
}

// -----

// Decode attention over 1024 cached tokens of 8 kv heads of 64 (bf16):
// 1024 x 2 x 8 x 64 x 2 = 2097152 cache bytes, split into chunks so that
// the blocks cover the SMs.
// CHECK-LABEL: func.func @attention
// CHECK: kiln.tile = {decode_rows = 1 : i64, family = "paged_attention", grid = {{[0-9]+}} : i64, kv_chunk = {{[0-9]+}} : i64, splits = {{[0-9]+}} : i64, threads = 128 : i64}
// COST-LABEL: @attention on h100-sxm-80gb: 1 x 1 tokens, context 1024
// COST: 0 paged_attention paged_attention 2105360 0
func.func @attention(%ids: tensor<?x1xi64>, %q: tensor<?x1x32x64xbf16>, %c: tensor<16x?x2x16x8x64xbf16>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %pos: tensor<?x1xi64>) -> tensor<?x1x32x64xbf16> {
  %o = kiln.fused "paged_attention"(%q, %c, %bt, %ctx, %pos) : (tensor<?x1x32x64xbf16>, tensor<16x?x2x16x8x64xbf16>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>) -> tensor<?x1x32x64xbf16> {
  ^bb0(%a: tensor<?x1x32x64xbf16>, %b: tensor<16x?x2x16x8x64xbf16>, %d: tensor<?x?xi32>, %e: tensor<?xi32>, %f: tensor<?x1xi64>):
    %r = kiln.paged_attention %a, %b[3], %d, %e, %f {causal} : tensor<?x1x32x64xbf16>, tensor<16x?x2x16x8x64xbf16>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x1xi64>
    kiln.yield %r : tensor<?x1x32x64xbf16>
  }
  return %o : tensor<?x1x32x64xbf16>
}

// -----

// Prefill attention, 32 query heads over 8 KV heads of 128: the query tile
// follows from the group (4 heads x 32 tokens, target::AttentionTileShape),
// the key tile is what the registers hold at two blocks per SM (32 at
// D = 128).
// CHECK-LABEL: func.func @prefill_attention
// CHECK: kiln.tile = {block_kv = 32 : i64, block_q = 128 : i64, family = "flash_attention", grid = {{[0-9]+}} : i64, smem = 69632 : i64}
func.func @prefill_attention(%ids: tensor<?x?xi64>, %q: tensor<?x?x32x128xbf16>, %c: tensor<32x?x2x16x8x128xbf16>, %bt: tensor<?x?xi32>, %ctx: tensor<?xi32>, %pos: tensor<?x?xi64>) -> tensor<?x?x32x128xbf16> {
  %o = kiln.fused "paged_attention"(%q, %c, %bt, %ctx, %pos) : (tensor<?x?x32x128xbf16>, tensor<32x?x2x16x8x128xbf16>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x?xi64>) -> tensor<?x?x32x128xbf16> {
  ^bb0(%a: tensor<?x?x32x128xbf16>, %b: tensor<32x?x2x16x8x128xbf16>, %d: tensor<?x?xi32>, %e: tensor<?xi32>, %f: tensor<?x?xi64>):
    %r = kiln.paged_attention %a, %b[3], %d, %e, %f {causal} : tensor<?x?x32x128xbf16>, tensor<32x?x2x16x8x128xbf16>, tensor<?x?xi32>, tensor<?xi32>, tensor<?x?xi64>
    kiln.yield %r : tensor<?x?x32x128xbf16>
  }
  return %o : tensor<?x?x32x128xbf16>
}
