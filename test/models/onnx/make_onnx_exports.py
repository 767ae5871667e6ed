#!/usr/bin/env python3
"""torch.onnx exports of tiny GPT-J and GPT-2 models, for raise-patterns.

Made on the GPU machine (torch, transformers, onnx, onnxruntime; CPU is
enough). Random weights with init 0.25 so that logits are peaked.

  gptj_plain.onnx     GPT-J (interleaved "rotate every two" RoPE on 8 of 16
                      head channels), dynamo exporter, opset 18
  gpt2_opset14.onnx   GPT-2, TorchScript exporter at opset 14, where
                      LayerNormalization does not exist yet and is spelled
                      with ReduceMean, Sub, Pow, Sqrt and Div

Each export is checked against torch with onnxruntime; the summary is
printed as JSON.
"""
import argparse, json, os, sys, traceback

import numpy as np
import torch


def tiny(kind):
    import transformers as tf
    if kind == "gptj":
        cfg = tf.GPTJConfig(vocab_size=512, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                            rotary_dim=8, n_inner=172, activation_function="gelu_new",
                            tie_word_embeddings=False)
        cls = tf.GPTJForCausalLM
    else:
        cfg = tf.GPT2Config(vocab_size=512, n_positions=128, n_embd=64, n_layer=2, n_head=4,
                            n_inner=256)
        cls = tf.GPT2LMHeadModel
    torch.manual_seed(0)
    m = cls(cfg).float().eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.25)
            elif "bias" in n:
                p.normal_(0, 0.05)
            else:
                p.uniform_(0.5, 1.5)
    return m


class Plain(torch.nn.Module):
    def __init__(self, m):
        super().__init__(); self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids, use_cache=False).logits


def export(kind, path, dynamo, opset):
    mod = Plain(tiny(kind))
    ids = torch.randint(0, 512, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = mod(ids).numpy()
    torch.onnx.export(mod, (ids,), path, input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {1: "seq"}}, opset_version=opset, dynamo=dynamo,
                      external_data=False)
    import onnx, onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids.numpy()})[0]
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    return dict(file=os.path.basename(path), dynamo=dynamo, opset=opset,
                max_abs_err_vs_torch=float(np.abs(got - want).max()),
                distinct_greedy=int(len(set(want[0].argmax(-1).tolist()))), ops=ops)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    summary = {"torch": torch.__version__}
    import transformers
    summary["transformers"] = transformers.__version__
    for kind, name, dynamo, opset in (("gptj", "gptj_plain.onnx", True, 18),
                                      ("gpt2", "gpt2_opset14.onnx", False, 14)):
        try:
            summary[name] = export(kind, os.path.join(a.out, name), dynamo, opset)
        except Exception:
            summary[name] = dict(error=traceback.format_exc(limit=3))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
