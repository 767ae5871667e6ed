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

#endif // KILN_PASSES_TD
