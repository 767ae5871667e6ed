#!/usr/bin/env python3
"""torch.onnx (dynamo) exports of the tiny Hugging Face models (Llama,
Mistral, Qwen2, Qwen3, GPT-2), as a user
makes them today (issue 21): `torch.onnx.export(model, (input_ids,),
dynamo=True)` with the sequence dimension dynamic and the exporter's default
opset and optimisation, of the float32 model holding the bf16 weights of
test/models/hf/ARCH (so that ARCH's transformers golden applies).

  dynamo/ARCH/model.onnx    the export (weights inside; small initializers
                            such as norms and biases become constants)
  dynamo/ARCH-kv/model.onnx the same with the cache as optimum exports it:
                            inputs input_ids, position_ids and
                            past_key_values.N.key/value [B, Hkv, P, D],
                            outputs logits and present.N.key/value (not
                            Mistral: its sliding-window cache keeps the last
                            window - 1 positions, a rolling cache kiln's
                            paged one does not take)
  dynamo/ARCH/config.json   the model's config, as optimum writes it beside
                            its export (kiln reads the end-of-sequence ids)
  dynamo/summary.json       torch/transformers/onnxscript versions, opsets,
                            operators, and each export against torch on
                            onnxruntime

Needs torch, transformers, onnxscript, onnx and onnxruntime (CPU is
enough): make_dynamo_exports.py --out test/models/onnx/dynamo [--only kv]
"""
import argparse, json, os, shutil, sys

import numpy as np
import torch

ARCHS = ("llama", "mistral", "qwen2", "qwen3", "gpt2")
KV_ARCHS = ("llama", "qwen2", "qwen3", "gpt2")
HERE = os.path.dirname(os.path.abspath(__file__))


class Plain(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids, use_cache=False).logits


class WithCache(torch.nn.Module):
    """(input_ids, position_ids, past k/v per layer) -> (logits, present k/v)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, position_ids, *past):
        from transformers import DynamicCache
        cache = DynamicCache(config=self.m.config)
        for i in range(len(past) // 2):
            cache.update(past[2 * i], past[2 * i + 1], i)
        o = self.m(input_ids=input_ids, position_ids=position_ids, past_key_values=cache, use_cache=True)
        present = []
        for layer in o.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (o.logits, *present)


def export_kv(arch, out):
    import onnx, onnxruntime as ort, transformers as tf
    src = os.path.join(HERE, "..", "hf", arch)
    m = tf.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    c = m.config
    layers = c.num_hidden_layers
    kv_heads = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    past_len, t = 5, 3
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, c.vocab_size, (1, t), generator=g)
    pos = torch.arange(past_len, past_len + t).reshape(1, t)
    past = [torch.randn(1, kv_heads, past_len, head_dim, generator=g) for _ in range(2 * layers)]
    mod = WithCache(m)
    with torch.no_grad():
        want = mod(ids, pos, *past)[0].numpy()
    d = os.path.join(out, arch + "-kv")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    names_in = ["input_ids", "position_ids"] + [f"past_key_values.{i}.{kv}" for i in range(layers)
                                                 for kv in ("key", "value")]
    names_out = ["logits"] + [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    seq = torch.export.Dim("seq", max=c.max_position_embeddings if hasattr(c, "max_position_embeddings") else 256)
    plen = torch.export.Dim("past", max=256)
    shapes = {"input_ids": {1: seq}, "position_ids": {1: seq}, "past": tuple({2: plen} for _ in past)}
    torch.onnx.export(mod, (ids, pos, *past), path, input_names=names_in, output_names=names_out,
                      dynamic_shapes=shapes, dynamo=True, external_data=False)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(d, "config.json"))
    feed = dict(zip(names_in, [ids.numpy(), pos.numpy()] + [p.numpy() for p in past]))
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    model = onnx.load(path)
    return dict(opset=[o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
                bytes=os.path.getsize(path), max_abs_err_vs_torch=float(np.abs(got - want).max()),
                ops=sorted({n.op_type for n in model.graph.node}))


def export(arch, out):
    import onnx, onnxruntime as ort, transformers as tf
    src = os.path.join(HERE, "..", "hf", arch)
    m = tf.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    mod = Plain(m)
    ids = torch.randint(0, m.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = mod(ids).numpy()
    d = os.path.join(out, arch)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    seq = torch.export.Dim("seq", max=m.config.max_position_embeddings)
    torch.onnx.export(mod, (ids,), path, input_names=["input_ids"], output_names=["logits"],
                      dynamic_shapes={"input_ids": {1: seq}}, dynamo=True, external_data=False)
    shutil.copy(os.path.join(src, "config.json"), os.path.join(d, "config.json"))
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input_ids": ids.numpy()})[0]
    model = onnx.load(path)
    return dict(opset=[o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
                bytes=os.path.getsize(path), max_abs_err_vs_torch=float(np.abs(got - want).max()),
                ops=sorted({n.op_type for n in model.graph.node}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["plain", "kv"], help="one kind of export (the summary keeps the others)")
    a = ap.parse_args()
    import onnxscript, transformers
    summary = dict(torch=torch.__version__, transformers=transformers.__version__, onnxscript=onnxscript.__version__)
    try:
        with open(os.path.join(a.out, "summary.json")) as f:
            summary = {**json.load(f), **summary}
    except OSError:
        pass
    for arch in ARCHS if a.only != "kv" else ():
        summary[arch] = export(arch, a.out)
        assert summary[arch]["max_abs_err_vs_torch"] < 1e-4, (arch, summary[arch])
    for arch in KV_ARCHS if a.only != "plain" else ():
        summary[arch + "-kv"] = export_kv(arch, a.out)
        assert summary[arch + "-kv"]["max_abs_err_vs_torch"] < 1e-4, (arch, summary[arch + "-kv"])
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
