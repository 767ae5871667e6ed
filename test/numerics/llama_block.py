#!/usr/bin/env python3
"""Checks the interpreter on the hand-written one-layer Llama against numpy.

Writes random weights (uniform, scale 0.25 so logits are peaked and greedy
tokens vary) and token ids as .npy files, runs
`kiln-interp test/models/tiny_llama_1layer.mlir`, and compares its logits with
the same block computed here in float64 from the definitions (Hugging Face's
Llama: rotate-half RoPE, repeat_kv GQA, causal softmax, SwiGLU).

  llama_block.py --kiln-interp build/bin/kiln-interp --model test/models/tiny_llama_1layer.mlir
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 64, 4, 2, 16, 172, 512
THETA, EPS = 500000.0, 1e-5


def make_weights(rng):
    def u(*shape):
        return rng.uniform(-0.25, 0.25, size=shape).astype(np.float32)
    p = "model.layers.0."
    return {
        "model.embed_tokens.weight": u(VOCAB, HIDDEN) * 4,
        p + "input_layernorm.weight": 1 + u(HIDDEN),
        p + "self_attn.q_proj.weight": u(HEADS * HEAD_DIM, HIDDEN),
        p + "self_attn.k_proj.weight": u(KV_HEADS * HEAD_DIM, HIDDEN),
        p + "self_attn.v_proj.weight": u(KV_HEADS * HEAD_DIM, HIDDEN),
        p + "self_attn.o_proj.weight": u(HIDDEN, HEADS * HEAD_DIM),
        p + "post_attention_layernorm.weight": 1 + u(HIDDEN),
        p + "mlp.gate_proj.weight": u(FFN, HIDDEN),
        p + "mlp.up_proj.weight": u(FFN, HIDDEN),
        p + "mlp.down_proj.weight": u(HIDDEN, FFN),
        "model.norm.weight": 1 + u(HIDDEN),
        "lm_head.weight": u(VOCAB, HIDDEN) * 4,
    }


def rms_norm(x, w):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS) * w


def rope(x, pos):  # x [T, H, D]
    inv = 1.0 / THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM)
    ang = pos[:, None] * inv[None, :]
    cos = np.concatenate([np.cos(ang), np.cos(ang)], -1)[:, None, :]
    sin = np.concatenate([np.sin(ang), np.sin(ang)], -1)[:, None, :]
    half = HEAD_DIM // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos + rot * sin


def reference(w, ids):
    W = {k: v.astype(np.float64) for k, v in w.items()}
    p = "model.layers.0."
    T = ids.shape[1]
    x = W["model.embed_tokens.weight"][ids[0]]                     # [T, 64]
    pos = np.arange(T, dtype=np.float64)
    h = rms_norm(x, W[p + "input_layernorm.weight"])
    q = (h @ W[p + "self_attn.q_proj.weight"].T).reshape(T, HEADS, HEAD_DIM)
    k = (h @ W[p + "self_attn.k_proj.weight"].T).reshape(T, KV_HEADS, HEAD_DIM)
    v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(T, KV_HEADS, HEAD_DIM)
    q, k = rope(q, pos), rope(k, pos)
    rep = HEADS // KV_HEADS
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)   # repeat_kv
    s = np.einsum("thd,shd->hts", q, k) / np.sqrt(HEAD_DIM)
    s = np.where(np.tril(np.ones((T, T), bool))[None], s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    a = np.einsum("hts,shd->thd", s / s.sum(-1, keepdims=True), v).reshape(T, HIDDEN)
    x = x + a @ W[p + "self_attn.o_proj.weight"].T
    h = rms_norm(x, W[p + "post_attention_layernorm.weight"])
    g = h @ W[p + "mlp.gate_proj.weight"].T
    up = h @ W[p + "mlp.up_proj.weight"].T
    x = x + (g / (1 + np.exp(-g)) * up) @ W[p + "mlp.down_proj.weight"].T
    return (rms_norm(x, W["model.norm.weight"]) @ W["lm_head.weight"].T)[None]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln-interp", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=13)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    weights = make_weights(rng)
    ids = rng.integers(0, VOCAB, size=(1, a.tokens), dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        wdir = os.path.join(tmp, "weights")
        os.mkdir(wdir)
        for name, arr in weights.items():
            np.save(os.path.join(wdir, name + ".npy"), arr)
        np.save(os.path.join(tmp, "ids.npy"), ids)
        out = os.path.join(tmp, "out")
        subprocess.run([a.kiln_interp, a.model, "--weights", wdir, "--input",
                        os.path.join(tmp, "ids.npy"), "--output-dir", out], check=True)
        got = np.load(os.path.join(out, "result0.npy")).astype(np.float64)
    want = reference(weights, ids)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    err = np.abs(got - want).max() / np.abs(want).max()
    greedy_got, greedy_want = got[0].argmax(-1), want[0].argmax(-1)
    distinct = len(set(greedy_want.tolist()))
    print(f"logits {got.shape}: max error {err:.2e} of the largest logit; "
          f"greedy tokens {greedy_got.tolist()} ({distinct} distinct)")
    failures = []
    if not err < 1e-5:
        failures.append(f"logits differ: max relative error {err:.2e} >= 1e-5")
    if not (greedy_got == greedy_want).all():
        failures.append(f"greedy tokens differ: {greedy_got.tolist()} vs {greedy_want.tolist()}")
    if distinct < 3:
        failures.append(f"the test is weak: only {distinct} distinct greedy tokens")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
