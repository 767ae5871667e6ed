#!/usr/bin/env python3
"""`kiln inspect` on a Llama-3.1-8B-shaped model whose weights are never written.

Writes config.json (the transformers 4 spelling: rope_theta, rope_scaling,
torch_dtype) and four safetensors shards holding only their headers (the
files are sparse: their size is right, their data was never written), plus
model.safetensors.index.json. `kiln inspect --json` must report 8.03 B
parameters (8,030,261,248, computed by hand below), 16.06 GB of bf16 and
131072 KV bytes per token, in under 2 s. Standard library only.
"""
import argparse, json, os, struct, subprocess, sys, tempfile, time

H, I, L, NH, KV, D, V = 4096, 14336, 32, 32, 8, 128, 128256


def tensors():
    yield "model.embed_tokens.weight", [V, H]
    for l in range(L):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", [H]
        yield p + "self_attn.q_proj.weight", [NH * D, H]
        yield p + "self_attn.k_proj.weight", [KV * D, H]
        yield p + "self_attn.v_proj.weight", [KV * D, H]
        yield p + "self_attn.o_proj.weight", [H, NH * D]
        yield p + "post_attention_layernorm.weight", [H]
        yield p + "mlp.gate_proj.weight", [I, H]
        yield p + "mlp.up_proj.weight", [I, H]
        yield p + "mlp.down_proj.weight", [H, I]
    yield "model.norm.weight", [H]
    yield "lm_head.weight", [V, H]


def write_shards(d, shards=4):
    items = list(tensors())
    per = (len(items) + shards - 1) // shards
    weight_map = {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for t, shape in items[s * per:(s + 1) * per]:
            n = 2
            for x in shape:
                n *= x
            header[t] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + n]}
            off += n
            weight_map[t] = name
        h = json.dumps(header).encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            f.truncate(8 + len(h) + off)  # sparse: no weight bytes written
    json.dump({"metadata": {}, "weight_map": weight_map},
              open(os.path.join(d, "model.safetensors.index.json"), "w"))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kiln", required=True)
    a = ap.parse_args()
    # Hand count: embeddings and LM head, 32 layers, final norm.
    per_layer = 2 * H + NH * D * H + 2 * KV * D * H + H * NH * D + 3 * I * H
    want = 2 * V * H + L * per_layer + H
    assert want == 8_030_261_248, want
    with tempfile.TemporaryDirectory() as d:
        json.dump({"architectures": ["LlamaForCausalLM"], "hidden_size": H, "intermediate_size": I,
                   "num_hidden_layers": L, "num_attention_heads": NH, "num_key_value_heads": KV,
                   "vocab_size": V, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
                   "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
                   "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}},
                  open(os.path.join(d, "config.json"), "w"))
        write_shards(d)
        t = time.perf_counter()
        out = subprocess.run([a.kiln, "inspect", d, "--json"], check=True, capture_output=True, text=True)
        dt = time.perf_counter() - t
    r = json.loads(out.stdout)
    print(f"kiln inspect: {r['parameters']} parameters ({r['parameters'] / 1e9:.2f} B), "
          f"{r['bytes_by_dtype'].get('bf16', 0) / 1e9:.2f} GB bf16, {r['kv_bytes_per_token']} KV bytes/token, {dt:.2f} s")
    fails = []
    if r["parameters"] != want:
        fails.append(f"parameters {r['parameters']} != {want}")
    if r["bytes_by_dtype"] != {"bf16": 2 * want}:
        fails.append(f"bytes {r['bytes_by_dtype']} != bf16 {2 * want}")
    if r["kv_bytes_per_token"] != L * KV * D * 2 * 2:
        fails.append(f"kv bytes/token {r['kv_bytes_per_token']} != {L * KV * D * 2 * 2}")
    if r["rope"] != "llama3":
        fails.append(f"rope {r['rope']} != llama3 (transformers 4 rope_scaling)")
    if dt >= 2.0:
        fails.append(f"took {dt:.2f} s, more than 2 s")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
