// RUN: kiln-opt %s -split-input-file -kiln-insert-kv-cache -verify-diagnostics
// RUN: not kiln-opt %s -split-input-file -kiln-insert-kv-cache=page-size=12 2>&1 | FileCheck %s --check-prefix=PAGE
// PAGE: page-size must be a power of two, got 12

// Near-misses the pass refuses, each with an error on the op at fault.

// expected-error @+1 {{has no kiln.attention to put a KV cache under}}
func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?xi64> {
  return %ids : tensor<?x?xi64>
}

// -----

func.func @forward(%x: tensor<?x?x4x16xf32>) -> tensor<?x?x4x16xf32> {
  // expected-error @+1 {{is not causal: a KV cache needs causal self-attention}}
  %a = kiln.attention %x, %x, %x : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  return %a : tensor<?x?x4x16xf32>
}

// -----

func.func @forward(%x: tensor<?x?x4x16xf32>, %y: tensor<?x?x4x8xf32>) -> tensor<?x?x4x8xf32> {
  // expected-error @+1 {{differ in shape: the paged cache stores both alike}}
  %a = kiln.attention %x, %x, %y {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x8xf32> -> tensor<?x?x4x8xf32>
  return %a : tensor<?x?x4x8xf32>
}

// -----

func.func @forward(%x: tensor<?x?x4x16xf32>, %y: tensor<?x?x2x16xf32>) -> tensor<?x?x4x16xf32> {
  %a = kiln.attention %x, %x, %x {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  // expected-error @+1 {{differ from the first layer's (4 heads of 16, 'f32'): one cache needs one shape}}
  %b = kiln.attention %a, %y, %y {causal} : tensor<?x?x4x16xf32>, tensor<?x?x2x16xf32>, tensor<?x?x2x16xf32> -> tensor<?x?x4x16xf32>
  return %b : tensor<?x?x4x16xf32>
}

// -----

// expected-error @+1 {{must take only input_ids to derive a KV-cache entry point}}
func.func @forward(%ids: tensor<?x?xi64>, %x: tensor<?x?x4x16xf32>) -> tensor<?x?x4x16xf32> {
  %a = kiln.attention %x, %x, %x {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  return %a : tensor<?x?x4x16xf32>
}

// -----

func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x4x16xf32> {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %h = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %r = kiln.arange %ids {axis = 1 : i64} : tensor<?x?xi64> -> tensor<?xi64>
  // The positions as a float mask: not something a cache step can provide.
  // expected-error @+1 {{uses the sequence positions other than as [1, T] positions}}
  %f = kiln.cast %r : tensor<?xi64> to tensor<?xf32>
  %a = kiln.attention %h, %h, %h {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  return %a : tensor<?x?x4x16xf32>
}

// -----

// expected-error @+1 {{must return logits [batch, tokens, vocab] first, got 'tensor<?x?x4x16xf32>'}}
func.func @forward(%ids: tensor<?x?xi64>) -> tensor<?x?x4x16xf32> {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %h = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %a = kiln.attention %h, %h, %h {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  return %a : tensor<?x?x4x16xf32>
}
