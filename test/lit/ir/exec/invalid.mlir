// RUN: kiln-opt %s -split-input-file -verify-diagnostics
// One case per verifier rule of the kiln_exec dialect (ir/Exec/ExecOps.cpp).

// expected-error @+1 {{size must not be negative}}
kiln_exec.arena @a size(-1) alignment(256)

// -----

// expected-error @+1 {{alignment must be a power of two, got 48}}
kiln_exec.arena @a size(1024) alignment(48)

// -----

kiln_exec.arena @a size(1024) alignment(256)
func.func @slice_negative() {
  // expected-error @+1 {{offset and size must not be negative}}
  %b = kiln_exec.buffer_slice @a[-256, 64] : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

kiln_exec.arena @a size(1024) alignment(256)
func.func @slice_too_small() {
  // expected-error @+1 {{slice of 8 bytes cannot hold 'tensor<4xf32>' (16 bytes)}}
  %b = kiln_exec.buffer_slice @a[0, 8] : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

func.func @slice_unknown_arena() {
  // expected-error @+1 {{'nowhere' is not a kiln_exec.arena}}
  %b = kiln_exec.buffer_slice @nowhere[0, 16] : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

kiln_exec.arena @a size(1024) alignment(256)
func.func @slice_misaligned() {
  // expected-error @+1 {{offset 128 is not a multiple of the arena alignment 256}}
  %b = kiln_exec.buffer_slice @a[128, 16] : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

kiln_exec.arena @a size(1024) alignment(256)
func.func @slice_past_end() {
  // expected-error @+1 {{slice [768, 1280) runs past the arena's 1024 bytes}}
  %b = kiln_exec.buffer_slice @a[768, 512] : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

func.func @alloc_dynamic() {
  // expected-error @+1 {{an arena buffer needs a static shape, got 'tensor<?x4xf32>'}}
  %b = kiln_exec.alloc : !kiln_exec.buffer<tensor<?x4xf32>>
  return
}

// -----

func.func @view_size(%b: !kiln_exec.buffer<tensor<2x4xf32>>) {
  // expected-error @+1 {{view of 32 bytes as 'tensor<3x4xf32>' (48 bytes)}}
  %v = kiln_exec.view %b : !kiln_exec.buffer<tensor<2x4xf32>> to !kiln_exec.buffer<tensor<3x4xf32>>
  return
}

// -----

kiln_exec.kernel @k family("gemv")
func.func @launch_outputs(%b: !kiln_exec.buffer<tensor<4xf32>>) {
  // expected-error @+1 {{num_outputs 2 is outside [0, 1]}}
  kiln_exec.launch @k(%b) grid [1, 1, 1] block [32, 1, 1] smem 0 {num_outputs = 2 : i64} : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

func.func @weight_empty_name() {
  // expected-error @+1 {{weight name must not be empty}}
  %w = kiln_exec.weight_slot "" layout(identity) : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

func.func @weight_unknown_layout() {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'layout' [identity, transpose, concat_rows, transpose_concat_rows]}}
  %w = kiln_exec.weight_slot "w" layout(swizzle) : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

func.func @weight_concat_sources() {
  // expected-error @+1 {{concat_rows needs at least two sources}}
  %w = kiln_exec.weight_slot "w" layout(concat_rows) {sources = ["q"]} : !kiln_exec.buffer<tensor<4x4xf32>>
  return
}

// -----

func.func @weight_sources_without_concat() {
  // expected-error @+1 {{only concat_rows and transpose_concat_rows take sources}}
  %w = kiln_exec.weight_slot "w" layout(identity) {sources = ["q", "k"]} : !kiln_exec.buffer<tensor<4x4xf32>>
  return
}

// -----

func.func @weight_transpose_rank() {
  // expected-error @+1 {{transpose applies to 2-D weights}}
  %w = kiln_exec.weight_slot "w" layout(transpose) : !kiln_exec.buffer<tensor<4xf32>>
  return
}

// -----

// expected-error @+1 {{num_kv_heads must be positive}}
kiln_exec.kv_page_pool @kv {page_size = 16 : i64, num_layers = 2 : i64, num_kv_heads = 0 : i64, head_dim = 16 : i64, dtype = bf16}

// -----

// expected-error @+1 {{page_size must be a power of two, got 24}}
kiln_exec.kv_page_pool @kv {page_size = 24 : i64, num_layers = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, dtype = bf16}

// -----

// expected-error @+1 {{dtype must be a float type, got 'i32'}}
kiln_exec.kv_page_pool @kv {page_size = 16 : i64, num_layers = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, dtype = i32}

// -----

// expected-error @+1 {{unknown kernel family 'conv'}}
kiln_exec.kernel @k family("conv")

// -----

// expected-error @+1 {{flops and bytes must not be negative}}
kiln_exec.kernel @k family("gemv") attributes {flops = -1 : i64}

// -----

// expected-error @+1 {{region #0 ('body') failed to verify constraint: region with at most 1 blocks}}
kiln_exec.kernel @k family("fused") {
^bb0:
^bb1:
}

// -----

kiln_exec.kernel @k family("gemv")
func.func @launch_grid_rank() {
  // expected-error @+1 {{grid and block need three entries each}}
  kiln_exec.launch @k() grid [1, 1] block [32, 1, 1] smem 0
  return
}

// -----

kiln_exec.kernel @k family("gemv")
func.func @launch_grid_zero() {
  // expected-error @+1 {{grid dimensions must be positive}}
  kiln_exec.launch @k() grid [0, 1, 1] block [32, 1, 1] smem 0
  return
}

// -----

kiln_exec.kernel @k family("gemv")
func.func @launch_block_zero() {
  // expected-error @+1 {{block dimensions must be positive}}
  kiln_exec.launch @k() grid [1, 1, 1] block [32, 0, 1] smem 0
  return
}

// -----

kiln_exec.kernel @k family("gemv")
func.func @launch_block_threads() {
  // expected-error @+1 {{block of 2048 threads exceeds 1024}}
  kiln_exec.launch @k() grid [1, 1, 1] block [1024, 2, 1] smem 0
  return
}

// -----

kiln_exec.kernel @k family("gemv")
func.func @launch_smem() {
  // expected-error @+1 {{smem of 300000 bytes is outside [0, 232448]}}
  kiln_exec.launch @k() grid [1, 1, 1] block [32, 1, 1] smem 300000
  return
}

// -----

kiln_exec.arena @k size(16) alignment(256)
func.func @launch_not_a_kernel() {
  // expected-error @+1 {{'k' is not a kiln_exec.kernel}}
  kiln_exec.launch @k() grid [1, 1, 1] block [32, 1, 1] smem 0
  return
}
