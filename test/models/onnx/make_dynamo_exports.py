#!/usr/bin/env python3
"""torch.onnx (dynamo) exports of the tiny Hugging Face models, as a user
makes them today (issue 21): `torch.onnx.export(model, (input_ids,),
dynamo=True)` with the sequence dimension dynamic and the exporter's default
opset and optimisation, of the float32 model holding the bf16 weights of
test/models/hf/ARCH (so that ARCH's transformers golden applies).

  dynamo/ARCH/model.onnx    the export (weights inside; small initializers
                            such as norms and biases become constants)
  dynamo/ARCH/config.json   the model's config, as optimum writes it beside
                            its export (kiln reads the end-of-sequence ids)
  dynamo/summary.json       torch/transformers/onnxscript versions, opsets,
                            operators, and each export against torch on
                            onnxruntime

Needs torch, transformers, onnxscript, onnx and onnxruntime (CPU is
enough): make_dynamo_exports.py --out test/models/onnx/dynamo
"""
import argparse, json, os, shutil, sys

import numpy as np
import torch

ARCHS = ("llama", "mistral", "qwen2", "qwen3")
HERE = os.path.dirname(os.path.abspath(__file__))


class Plain(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids, use_cache=False).logits


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
    a = ap.parse_args()
    import onnxscript, transformers
    summary = dict(torch=torch.__version__, transformers=transformers.__version__, onnxscript=onnxscript.__version__)
    for arch in ARCHS:
        summary[arch] = export(arch, a.out)
        assert summary[arch]["max_abs_err_vs_torch"] < 1e-4, (arch, summary[arch])
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
