//===- Passes.td - kiln's passes -----------------------------*- tablegen -*-===//
#ifndef KILN_PASSES_TD
#define KILN_PASSES_TD

include "mlir/Pass/PassBase.td"

def RaisePatterns : Pass<"kiln-raise-patterns", "mlir::ModuleOp"> {
  let summary = "Rewrite primitive spellings of SiLU, SwiGLU, GELU, RMSNorm and RoPE to composite ops";
  let description = [{
    Exporters spell composites as chains of primitives; the fusion and
    codegen passes want the composite. This pass recognises:

    - SiLU: `x * sigmoid(x)` (either order) becomes `kiln.silu`.
    - SwiGLU: `silu(g) * u` (either order) becomes `kiln.swiglu g, u`.
    - RMSNorm: `w * (x * r)` where `r` is `rsqrt(m + eps)`,
      `reciprocal(sqrt(m + eps))` or `1 / sqrt(m + eps)`, `m = reduce_mean(x^2)` over the last axis
      with kept dims (`x^2` as `pow(x, 2)` or `x * x`), `eps` a scalar
      constant and `w` 1-D of the last dimension's size; any operand order.
      It becomes `kiln.rms_norm x, w {epsilon = eps}`.
    - GELU: a product of `x`, `0.5` and `1 + erf(x / sqrt 2)` (exact) or
      `1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))` (tanh form), in any order and
      grouping, constants within 1e-3, becomes `kiln.gelu` (with
      `tanh_approximation` for the second).

    - RoPE (rotate-half) on `[B, H, T, D]`: `x * cos + rotate_half(x) * sin`
      whose cos/sin come from `concat(F, F)`, `F = transpose(inv_freq x
      float(positions))` with a constant `inv_freq = theta^(-2i/D)` (theta is
      recovered from it; scaled frequencies are left alone). It becomes
      `transpose, kiln.rope {neox, theta}, transpose` (kiln's token-major
      layout; later passes cancel the transposes).

    Casts to the same type fold away first (exporters wrap norms in them).
    Anything else is left alone: another axis, another exponent, a weight of
    another shape, or an intermediate value used elsewhere (which would then
    be computed twice).

    Before:
    ```mlir
    %p = kiln.pow %x, %two : ... ; %m = kiln.reduce_mean %p {axes = array<i64: 2>, keep_dims}
    %a = kiln.add %m, %eps ; %s = kiln.sqrt %a ; %r = kiln.reciprocal %s
    %n = kiln.mul %x, %r ; %y = kiln.mul %w, %n
    ```
    After:
    ```mlir
    %y = kiln.rms_norm %x, %w {epsilon = 1.0e-06 : f32}
    ```
  }];
  let dependentDialects = ["kiln::KilnDialect"];
}

def InsertKvCache : Pass<"kiln-insert-kv-cache", "mlir::ModuleOp"> {
  let summary = "Derive prefill and decode entry points over a paged KV cache from a full-sequence forward";
  let description = [{
    The imported `@forward(input_ids[B, T]) -> logits` recomputes every key
    and value at each step. This pass replaces it with two entry points that
    share one paged cache:

    ```
    @prefill(input_ids[B, T], positions[B, T], block_tables[B, N],
             context_lens[B], kv_cache[L, P, 2, page, Hkv, D])
        -> (logits[B, T, V], kv_cache)
    @decode(input_ids[B, 1], positions[B, 1], ...same...) -> (logits[B, 1, V], kv_cache)
    ```

    Token `pos` of sequence `b` is stored in page `block_tables[b, pos /
    page]`, so sequences of different lengths run in one batch; a negative
    position is padding. Every `kiln.attention` (causal self-attention over
    the same tokens) becomes `kiln.kv_append` of its keys and values into
    layer `l` of the cache followed by `kiln.paged_attention` of its queries,
    in program order. The sequence positions `arange(input_ids)` become the
    `positions` argument (RoPE and learned position embeddings then read the
    true positions), and decode's types are refined to one token.

    Before:
    ```mlir
    %a = kiln.attention %q, %k, %v {causal} : ...
    ```
    After:
    ```mlir
    %c1 = kiln.kv_append %c0[0], %k, %v, %block_tables, %positions : ...
    %a = kiln.paged_attention %q, %c1[0], %block_tables, %context_lens, %positions {causal} : ...
    ```

    Refused with an error naming the op: no attention, attention that is not
    causal self-attention, layers whose KV heads, head dim or dtype differ,
    or sequence positions used other than as `[1, T]` positions.
  }];
  let options = [
    Option<"pageSize", "page-size", "int64_t", /*default=*/"16",
           "tokens per KV page (a power of two)">,
    Option<"entry", "entry", "std::string", /*default=*/"\"forward\"",
           "the full-sequence function to replace">
  ];
  let dependentDialects = ["kiln::KilnDialect"];
}

#endif // KILN_PASSES_TD
