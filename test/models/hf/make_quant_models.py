#!/usr/bin/env python3
"""Writes tiny GPTQ and AWQ checkpoints and their dequantised references (numpy only).

One tiny Llama (hidden 128, intermediate 256, 2 layers, 4 heads of 32, 2 KV
heads, vocab 512) with weights from a fixed integer hash (the same values on
every machine and numpy version). Its seven projections per layer are
quantised round-to-nearest per group and packed as each format's published
description says; embeddings, norms and the LM head stay bf16. For each
variant VARIANT this writes

  OUT/VARIANT/       config.json with its quantization_config, model.safetensors
  OUT/VARIANT-ref/   the same model with each projection's weight dequantised
                     by this file's own reader (unpacking the written words,
                     not reusing the packer's integers) and stored float32:
                     what transformers runs as the golden, what kiln's
                     importer and loader must reproduce tensor by tensor.

Variants: every packing kiln reads (gptq with its zeros stored minus one,
gptq_v2, awq's GEMM order), 4 and 8 bits, groups of 32, 64, 128 and -1,
act order (desc_act, g_idx a permutation's groups), symmetric and not.

And for `kiln compile --quantize` (the loader's round-to-nearest of float
projections, host::quantizeRoundTrip):

  OUT/rtn-float/         the model with bf16 projections (nn.Linear's [N, K])
  OUT/rtn-VARIANT-ref/   its projections (and LM head where the variant says)
                         rounded by rtn_round_trip below, stored float32

  python3 make_quant_models.py --out DIR [--golden-prompt]
"""
import argparse, json, os, struct

import numpy as np

HIDDEN, INTER, LAYERS, HEADS, KV, HEAD_DIM, VOCAB = 128, 256, 2, 4, 2, 32, 512
PROJ = [("self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN), ("self_attn.k_proj", KV * HEAD_DIM, HIDDEN),
        ("self_attn.v_proj", KV * HEAD_DIM, HIDDEN), ("self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM),
        ("mlp.gate_proj", INTER, HIDDEN), ("mlp.up_proj", INTER, HIDDEN), ("mlp.down_proj", HIDDEN, INTER)]
# name: (method, bits, group, sym, desc_act, checkpoint_format)
VARIANTS = {
    "gptq-4bit-g32-sym": ("gptq", 4, 32, True, False, "gptq"),
    "gptq-4bit-g64-actorder": ("gptq", 4, 64, False, True, "gptq"),
    "gptq-4bit-perchannel": ("gptq", 4, -1, False, False, "gptq"),
    "gptq-8bit-g128-v2": ("gptq", 8, 128, False, False, "gptq_v2"),
    "gptq-8bit-g32-actorder-sym": ("gptq", 8, 32, True, True, "gptq"),
    "awq-4bit-g64": ("awq", 4, 64, False, False, None),
    "awq-4bit-g128": ("awq", 4, 128, False, False, None),
}
# --quantize variants: name: (bits, group, lm_head)
RTN_VARIANTS = {
    "int4-g32": (4, 32, False),
    "int8-g64": (8, 64, False),
    "int4-perrow-lmhead": (4, -1, True),
}
AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]  # nibble i holds column AWQ_ORDER[i] of its eight
PROMPT = [1, 17, 300, 42, 7, 511, 128, 64, 3, 99, 250, 12, 480, 33, 5, 200]


def hashed(seed, shape, scale):
    """Uniform in [-scale, scale) from splitmix64 of (seed, index): no RNG state."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        x = np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return ((2 * u - 1) * scale).astype(np.float32).reshape(shape)


def to_bf16_bits(a):
    """float32 -> bf16 bits, round to nearest even."""
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) >> 16
    return b.astype(np.uint16)


def from_bf16_bits(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def write_safetensors(path, tensors):
    """tensors: name -> (dtype string, numpy array of the bytes' dtype)."""
    header, blobs, at = {}, [], 0
    for name in sorted(tensors):
        dt, arr = tensors[name]
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def quantize(w_kn, bits, group, sym, g_idx, min_zero):
    """Round-to-nearest of w [K, N] in groups: integer values, zero points
    (at least `min_zero`) and f16 scales (the values quantised with the
    stored f16 scale)."""
    K, N = w_kn.shape
    maxq = (1 << bits) - 1
    G = int(g_idx.max()) + 1
    scales = np.zeros((G, N), np.float16)
    zeros = np.zeros((G, N), np.int64)
    q = np.zeros((K, N), np.int64)
    for g in range(G):
        rows = np.nonzero(g_idx == g)[0]
        part = w_kn[rows]
        lo, hi = np.minimum(part.min(0), 0), np.maximum(part.max(0), 0)
        if sym:
            amax = np.maximum(-lo, hi)
            s = (2 * amax / maxq).astype(np.float16)
            z = np.full(N, (maxq + 1) // 2)
        else:
            s = ((hi - lo) / maxq).astype(np.float16)
            z = np.clip(np.round(-lo / s.astype(np.float32)), min_zero, maxq).astype(np.int64)
        s = np.where(s == 0, np.float16(1), s)
        scales[g], zeros[g] = s, z
        q[rows] = np.clip(np.round(part / s.astype(np.float32)) + z, 0, maxq).astype(np.int64)
    return q, zeros, scales


def pack_rows(v, bits):
    """[R, C] -> [R / per, C]: word (i, c) holds v[i*per + j, c] at bits*j."""
    per = 32 // bits
    v = (v.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint32)
    out = np.zeros((v.shape[0] // per, v.shape[1]), np.uint32)
    for j in range(per):
        out |= v[j::per] << np.uint32(bits * j)
    return out.view(np.int32)


def pack_cols(v, bits, order=None):
    """[R, C] -> [R, C / per]: word (r, j) holds column j*per + order[i] in slot i."""
    per = 32 // bits
    order = order or list(range(per))
    v = (v.astype(np.int64) & ((1 << bits) - 1)).astype(np.uint32)
    out = np.zeros((v.shape[0], v.shape[1] // per), np.uint32)
    for i in range(per):
        out |= v[:, order[i]::per] << np.uint32(bits * i)
    return out.view(np.int32)


def unpack_rows(words, bits):
    per, mask = 32 // bits, (1 << bits) - 1
    w = words.view(np.uint32)
    out = np.zeros((w.shape[0] * per, w.shape[1]), np.int64)
    for j in range(per):
        out[j::per] = (w >> np.uint32(bits * j)) & mask
    return out


def unpack_cols(words, bits, order=None):
    per, mask = 32 // bits, (1 << bits) - 1
    order = order or list(range(per))
    w = words.view(np.uint32)
    out = np.zeros((w.shape[0], w.shape[1] * per), np.int64)
    for i in range(per):
        out[:, order[i]::per] = (w >> np.uint32(bits * i)) & mask
    return out


def reference_dequant(t, p, method, bits, group, fmt, K):
    """The reader: [K, N] float32 from the stored tensors of projection p."""
    scales = t[p + ".scales"][1].astype(np.float32)
    if method == "awq":
        q = unpack_cols(t[p + ".qweight"][1], bits, AWQ_ORDER)
        z = unpack_cols(t[p + ".qzeros"][1], bits, AWQ_ORDER)
        g_idx = np.arange(K) // group if group != -1 else np.zeros(K, np.int64)
    else:
        q = unpack_rows(t[p + ".qweight"][1], bits)
        z = unpack_cols(t[p + ".qzeros"][1], bits)
        if fmt == "gptq":
            z = z + 1  # stored minus one
        g_idx = t[p + ".g_idx"][1].astype(np.int64)
    return ((q - z[g_idx]).astype(np.float32) * scales[g_idx]).astype(np.float32)


def base_config():
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "intermediate_size": INTER, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "num_key_value_heads": KV, "head_dim": HEAD_DIM, "vocab_size": VOCAB,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": False, "attention_bias": False, "mlp_bias": False,
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
    }


def make(out, name, spec, golden_prompt):
    method, bits, group, sym, desc_act, fmt = spec
    seed = sum(map(ord, name))
    floats = {}  # name -> (dtype, array) shared by the quantised and reference dirs
    bf16 = lambda a: ("BF16", to_bf16_bits(a))
    floats["model.embed_tokens.weight"] = bf16(hashed(1, (VOCAB, HIDDEN), 1.0))
    floats["lm_head.weight"] = bf16(hashed(2, (VOCAB, HIDDEN), 0.2))
    floats["model.norm.weight"] = bf16(1 + hashed(3, (HIDDEN,), 0.2))
    quant, ref = dict(floats), dict(floats)
    for layer in range(LAYERS):
        pre = f"model.layers.{layer}."
        for i, n in enumerate(["input_layernorm", "post_attention_layernorm"]):
            a = bf16(1 + hashed(10 + 2 * layer + i, (HIDDEN,), 0.2))
            quant[pre + n + ".weight"] = ref[pre + n + ".weight"] = a
        for pi, (proj, n_out, k_in) in enumerate(PROJ):
            p = pre + proj
            w = hashed(100 + 10 * layer + pi, (n_out, k_in), 1.7 / np.sqrt(k_in)).T.copy()  # [K, N]
            K, N = w.shape
            if method == "gptq" and desc_act:
                perm = np.argsort(hashed(seed * 1000 + 10 * layer + pi, (K,), 1.0))
                g_idx = np.zeros(K, np.int64)
                g_idx[perm] = np.arange(K) // (group if group != -1 else K)
            else:
                g_idx = np.arange(K) // group if group != -1 else np.zeros(K, np.int64)
            # gptq stores zeros minus one in `bits` bits: a zero point of 0
            # would wrap to 2^bits - 1 and read back as 2^bits (AutoGPTQ's
            # own readers do the same), so its quantiser keeps zeros >= 1.
            q, z, s = quantize(w, bits, group, sym, g_idx, 1 if fmt == "gptq" else 0)
            if method == "awq":
                quant[p + ".qweight"] = ("I32", pack_cols(q, bits, AWQ_ORDER))
                quant[p + ".qzeros"] = ("I32", pack_cols(z, bits, AWQ_ORDER))
            else:
                quant[p + ".qweight"] = ("I32", pack_rows(q, bits))
                quant[p + ".qzeros"] = ("I32", pack_cols(z - 1 if fmt == "gptq" else z, bits))
                quant[p + ".g_idx"] = ("I32", g_idx.astype(np.int32))
            quant[p + ".scales"] = ("F16", s)
            deq = reference_dequant(quant, p, method, bits, group, fmt, K)
            # The reader must give back what was quantised (integers, zeros and
            # scales exactly); a packing bug shows here, not in the golden.
            expect = ((q - z[g_idx]).astype(np.float32) * s.astype(np.float32)[g_idx]).astype(np.float32)
            assert np.array_equal(deq, expect), (name, p)
            ref[p + ".weight"] = ("F32", deq.T.copy())
    qc = {"quant_method": method, "bits": bits, "group_size": group}
    if method == "gptq":
        qc.update(desc_act=desc_act, sym=sym, checkpoint_format=fmt, damp_percent=0.01, true_sequential=True)
    else:
        qc.update(zero_point=True, version="gemm", modules_to_not_convert=None)
    for d, tensors, config in [(name, quant, {**base_config(), "quantization_config": qc}),
                               (name + "-ref", ref, base_config())]:
        path = os.path.join(out, d)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        write_safetensors(os.path.join(path, "model.safetensors"), tensors)
        if golden_prompt and d.endswith("-ref"):
            with open(os.path.join(path, "golden.json"), "w") as f:
                json.dump({"prompt": PROMPT}, f)


def rtn_round_trip(w_nk, bits, group):
    """What `kiln compile --quantize` has the loader do to a float projection
    w [N, K] (float32): per output and group of K inputs, lo = min(w, 0),
    hi = max(w, 0), an f16 scale s = (hi - lo) / (2^bits - 1) (1 where 0),
    z = clip(round(-lo / s)), q = clip(round(w / s) + z), back as (q - z) * s;
    float32 throughout, halves to even -- written from its description, not
    from the C++."""
    N, K = w_nk.shape
    G = K if group == -1 else group
    maxq = np.float32((1 << bits) - 1)
    x = w_nk.astype(np.float32).reshape(N, K // G, G)
    lo = np.minimum(x.min(2), np.float32(0))
    hi = np.maximum(x.max(2), np.float32(0))
    s = ((hi - lo) / maxq).astype(np.float16).astype(np.float32)
    s = np.where(s == 0, np.float32(1), s)
    z = np.clip(np.round(-lo / s), np.float32(0), maxq)
    q = np.clip(np.round(x / s[..., None]) + z[..., None], np.float32(0), maxq)
    out = ((q - z[..., None]) * s[..., None]).astype(np.float32).reshape(N, K)
    assert out.dtype == np.float32
    return out


def make_rtn(out):
    bf16 = lambda a: ("BF16", to_bf16_bits(a))
    base = {"model.embed_tokens.weight": bf16(hashed(1, (VOCAB, HIDDEN), 1.0)),
            "lm_head.weight": bf16(hashed(2, (VOCAB, HIDDEN), 0.2)),
            "model.norm.weight": bf16(1 + hashed(3, (HIDDEN,), 0.2))}
    proj = {}
    for layer in range(LAYERS):
        pre = f"model.layers.{layer}."
        for i, n in enumerate(["input_layernorm", "post_attention_layernorm"]):
            base[pre + n + ".weight"] = bf16(1 + hashed(10 + 2 * layer + i, (HIDDEN,), 0.2))
        for pi, (p, n_out, k_in) in enumerate(PROJ):
            proj[pre + p + ".weight"] = bf16(hashed(500 + 10 * layer + pi, (n_out, k_in), 1.7 / np.sqrt(k_in)))
    dirs = {"rtn-float": {**base, **proj}}
    for name, (bits, group, lm_head) in RTN_VARIANTS.items():
        ref = dict(base)
        for k, (_, bits16) in proj.items():
            ref[k] = ("F32", rtn_round_trip(from_bf16_bits(bits16), bits, group))
        if lm_head:
            ref["lm_head.weight"] = ("F32", rtn_round_trip(from_bf16_bits(base["lm_head.weight"][1]), bits, group))
        dirs[f"rtn-{name}-ref"] = ref
    for d, tensors in dirs.items():
        path = os.path.join(out, d)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(base_config(), f, indent=2)
        write_safetensors(os.path.join(path, "model.safetensors"), tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--golden-prompt", action="store_true",
                    help="write golden.json holding the prompt into each -ref dir (make_tiny_models.py "
                         "--golden-for fills in transformers' logits and tokens)")
    ap.add_argument("--only", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    for name in args.only:
        make(args.out, name, VARIANTS[name], args.golden_prompt)
    make_rtn(args.out)
    print(f"wrote {len(args.only)} quantised models and their references, and rtn-float with "
          f"{len(RTN_VARIANTS)} rounded references, to {args.out}")


if __name__ == "__main__":
    main()
