#!/usr/bin/env python3
"""Makes the head-dim fixtures: tiny Llamas whose attention heads have
head_dim 24, 32, 48, 64, 80, 96, 112, 128 and 256 (test/models/hf/llama-hdD).

The GPU attention kernels split a head's dims over a warp's lanes; a head dim
that is not a multiple of 32 once lost dims silently (issue 16). Each
fixture has the tiny Llama's recipe (hidden 64, 4 query heads over 2 KV heads,
2 layers, vocab 512, weights N(0, 0.25), norm weights 1 + N(0, 0.25)) with
the head dim set apart from hidden / heads. Weights are bf16, written here
with numpy (no torch); golden.json holds the prompt, and
make_tiny_models.py --golden-for DIR... (on the GPU machine, with
transformers) adds transformers' float32 logits and 32 greedy tokens from
the same bf16 weights.

  python3 make_head_dim_models.py --out test/models/hf [--dims 48 80]
"""
import argparse, json, os, struct

import numpy as np

DIMS = [24, 32, 48, 64, 80, 96, 112, 128, 256]
HIDDEN, INTER, LAYERS, HEADS, KV, VOCAB = 64, 172, 2, 4, 2, 512
PROMPT_LEN = 16


def bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16 bit patterns (uint16)."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32)
    u = u + 0x7FFF + ((u >> 16) & 1)
    return (u >> 16).astype(np.uint16)


def write_safetensors(path, tensors):
    header, off, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, arr in tensors:
        b = bf16_bits(arr).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def make(out, d, seed):
    rng = np.random.default_rng(seed)
    w = lambda *shape: rng.normal(0.0, 0.25, size=shape).astype(np.float32)
    norm = lambda n: (1.0 + 0.25 * rng.normal(size=n)).astype(np.float32)
    t = [("model.embed_tokens.weight", w(VOCAB, HIDDEN))]
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        t += [(p + "input_layernorm.weight", norm(HIDDEN)),
              (p + "self_attn.q_proj.weight", w(HEADS * d, HIDDEN)),
              (p + "self_attn.k_proj.weight", w(KV * d, HIDDEN)),
              (p + "self_attn.v_proj.weight", w(KV * d, HIDDEN)),
              (p + "self_attn.o_proj.weight", w(HIDDEN, HEADS * d)),
              (p + "post_attention_layernorm.weight", norm(HIDDEN)),
              (p + "mlp.gate_proj.weight", w(INTER, HIDDEN)),
              (p + "mlp.up_proj.weight", w(INTER, HIDDEN)),
              (p + "mlp.down_proj.weight", w(HIDDEN, INTER))]
    t += [("model.norm.weight", norm(HIDDEN)), ("lm_head.weight", w(VOCAB, HIDDEN))]
    path = os.path.join(out, f"llama-hd{d}")
    os.makedirs(path, exist_ok=True)
    write_safetensors(os.path.join(path, "model.safetensors"), t)
    cfg = dict(architectures=["LlamaForCausalLM"], model_type="llama", attention_bias=False,
               attention_dropout=0.0, bos_token_id=1, eos_token_id=2, dtype="bfloat16", head_dim=d,
               hidden_act="silu", hidden_size=HIDDEN, initializer_range=0.25, intermediate_size=INTER,
               max_position_embeddings=256, mlp_bias=False, num_attention_heads=HEADS,
               num_hidden_layers=LAYERS, num_key_value_heads=KV, rms_norm_eps=1e-6,
               rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
               tie_word_embeddings=False, use_cache=True, vocab_size=VOCAB)
    json.dump(cfg, open(os.path.join(path, "config.json"), "w"), indent=2)
    prompt = rng.integers(0, VOCAB, PROMPT_LEN).tolist()
    json.dump(dict(architecture="LlamaForCausalLM", seed=seed, prompt=prompt),
              open(os.path.join(path, "golden.json"), "w"))
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dims", nargs="*", type=int, default=DIMS)
    a = ap.parse_args()
    for d in a.dims:
        print(make(a.out, d, seed=1000 + d))


if __name__ == "__main__":
    main()
