#!/usr/bin/env python3
"""Write a Hugging Face model directory with the shape of a real model and no weight data.

config.json plus safetensors shards that hold only their headers: each file
has its full size but is sparse (its data was never written), so compiling
or inspecting the shape of an 8B model needs neither the weights nor the
disk space. kiln's compiler reads only config.json and the headers.

  make_shape_model.py --shape llama-3.2-1b OUT_DIR [--layers N]

Standard library only; importable (config_for, write_model).
"""
import argparse, json, os, struct, sys

SHAPES = {
    # Llama 3.2 1B: tied embeddings, llama3 RoPE scaling 32.
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                         tie_word_embeddings=True, head_dim=64,
                         rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192}),
    # Llama 3.1 8B.
    "llama-3.1-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                         max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                         tie_word_embeddings=False,
                         rope_scaling={"rope_type": "llama3", "factor": 8.0,
                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192}),
}


def config_for(shape, layers=None):
    c = dict(SHAPES[shape])
    if layers is not None:
        c["num_hidden_layers"] = layers
    c.update(architectures=["LlamaForCausalLM"], model_type="llama", torch_dtype="bfloat16")
    return c


def llama_tensors(c):
    H, I, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    NH, KV, V = c["num_attention_heads"], c["num_key_value_heads"], c["vocab_size"]
    D = c.get("head_dim", H // NH)
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
    if not c.get("tie_word_embeddings"):
        yield "lm_head.weight", [V, H]


def write_shards(d, items, shards):
    """Header-only bf16 safetensors shards and their index."""
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
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f)


def write_model(d, config, shards=4):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    write_shards(d, list(llama_tensors(config)), shards)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--layers", type=int, help="override the number of layers")
    ap.add_argument("out")
    a = ap.parse_args()
    write_model(a.out, config_for(a.shape, a.layers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
