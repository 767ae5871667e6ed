// RUN: kiln-opt %s -split-input-file -kiln-insert-kv-cache=prefill-logits=all -verify-diagnostics
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

// expected-error @+1 {{second argument must be position_ids tensor<?x?xi64> (then the past keys and values), got 'tensor<?x?x4x16xf32>'}}
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

// -----

// Explicit past mode, but the keys are not concat(past, new).
func.func @forward(%ids: tensor<?x?xi64>, %pos: tensor<?x?xi64>, %pk: tensor<?x2x?x16xf32>) -> tensor<?x?x64xf32> {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %h = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  // expected-error @+1 {{keys and values must be a past input concatenated with the new tokens' (along the sequence) to become a paged cache}}
  %a = kiln.attention %h, %h, %h {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  %o = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  return %o : tensor<?x?x64xf32>
}

// -----

// The past is also read elsewhere (here: returned as is), which a paged
// cache cannot provide.
// expected-error @+1 {{past input 2 is used other than by its concatenation with the new tokens}}
func.func @forward(%ids: tensor<?x?xi64>, %pos: tensor<?x?xi64>, %pk: tensor<?x?x4x16xf32>) -> (tensor<?x?x64xf32>, tensor<?x?x4x16xf32>) {
  %emb = kiln.weight "embed" : tensor<128x64xf32>
  %x = kiln.gather %emb[%ids] {axis = 0 : i64} : tensor<128x64xf32>, tensor<?x?xi64> -> tensor<?x?x64xf32>
  %h = kiln.reshape %x {shape = array<i64: 0, 0, 4, 16>} : tensor<?x?x64xf32> -> tensor<?x?x4x16xf32>
  %kc = kiln.concat %pk, %h {axis = 1 : i64} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  %a = kiln.attention %h, %kc, %kc {causal} : tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32>, tensor<?x?x4x16xf32> -> tensor<?x?x4x16xf32>
  %o = kiln.reshape %a {shape = array<i64: 0, 0, 64>} : tensor<?x?x4x16xf32> -> tensor<?x?x64xf32>
  return %o, %pk : tensor<?x?x64xf32>, tensor<?x?x4x16xf32>
}

// (prefill-logits=all: any function returning logits first.) With the
// default, prefill-logits=last, the logits must come from the LM head matmul:
// RUN: not kiln-opt %s -split-input-file -kiln-insert-kv-cache 2>&1 | FileCheck %s --check-prefix=LAST
// LAST: prefill-logits=last needs the logits to come from a matmul (the LM head); use prefill-logits=all
// RUN: not kiln-opt %s -split-input-file -kiln-insert-kv-cache=prefill-logits=some 2>&1 | FileCheck %s --check-prefix=MODE
// MODE: prefill-logits must be last or all, got some
