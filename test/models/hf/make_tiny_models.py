#!/usr/bin/env python3
"""Makes the tiny Hugging Face models and their transformers goldens (GPU machine).

For each architecture kiln imports, builds a tiny model with random weights
(seeded; init 0.25 so logits are peaked and greedy tokens vary; biases and
norm weights randomised too, so a wrong bias or norm is caught), saves it in
bf16 as a HF directory (config.json + model.safetensors) and writes
golden.json: the prompt, transformers' float32 logits at the last prompt
position and 32 greedy tokens, computed from the same bf16 weights.

It also exports the tiny Llama with torch.onnx, as a plain forward
(input_ids -> logits) and with explicit past/present KV, and checks each
export against torch with onnxruntime.

  python3 make_tiny_models.py --out DIR      # then copy DIR/* to test/models/hf/
  python3 make_tiny_models.py --golden-for DIR...   # fill in the goldens of saved
      models whose golden.json holds only the prompt (make_head_dim_models.py)
"""
import argparse, json, os, sys, traceback

import torch
import transformers
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM,
                          Qwen3Config, Qwen3ForCausalLM)

COMMON = dict(vocab_size=512, hidden_size=64, intermediate_size=172, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=16,
              max_position_embeddings=256, initializer_range=0.25)
# The family differences, as data: (config class, model class, overrides).
# BIAS_SCALE: biases are drawn N(0, scale); GPT-2 adds its c_proj biases to the
# residual stream at every position, and at 0.25 they drown the input (the
# greedy tokens repeat), so it gets a smaller scale and a larger init.
MODELS = {
    "llama": (LlamaConfig, LlamaForCausalLM, dict(
        tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})),
    # Llama 3.1 rope scaling with a short original context so the scaled band
    # matters at these lengths; tied embeddings as in Llama 3.2.
    "llama31": (LlamaConfig, LlamaForCausalLM, dict(
        tie_word_embeddings=True, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    # A window of 8 keys, shorter than prompt + generation.
    "mistral": (MistralConfig, MistralForCausalLM, dict(sliding_window=8, tie_word_embeddings=False)),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(tie_word_embeddings=False)),
    "qwen3": (Qwen3Config, Qwen3ForCausalLM, dict(tie_word_embeddings=False)),
    "gpt2": (GPT2Config, GPT2LMHeadModel, dict(
        vocab_size=512, n_embd=64, n_layer=2, n_head=4, n_positions=256, initializer_range=0.5,
        activation_function="gelu_new", bos_token_id=0, eos_token_id=0)),
}
BIAS_SCALE = {"gpt2": 0.05}
PROMPT_LEN, GEN = 16, 32
MIN_DISTINCT = 24  # a golden whose greedy tokens repeat one id tests little


def build(name, seed):
    cfg_cls, model_cls, over = MODELS[name]
    kw = dict(over) if name == "gpt2" else {**COMMON, **over}
    cfg = cfg_cls(**kw)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    m = model_cls(cfg).eval()
    with torch.no_grad():
        for pname, p in m.named_parameters():
            if pname.endswith("bias"):
                p.copy_(BIAS_SCALE.get(name, 0.25) * torch.randn_like(p))
            elif "norm" in pname or ".ln_" in pname:
                p.copy_(1 + 0.25 * torch.randn_like(p))
    return cfg, m.to(torch.bfloat16)


def as_float(name, cfg, m):
    """A float32 model holding m's bf16-rounded weights. Built afresh rather than
    m.float(): m.to(bfloat16) also rounded RoPE's non-persistent inv_freq buffer,
    which .float() does not undo, and the golden would carry that rounding."""
    f = MODELS[name][1](cfg).eval()
    missing, unexpected = f.load_state_dict({k: v.float() for k, v in m.state_dict().items()},
                                            strict=False)
    assert not unexpected, unexpected
    return f.to(next(m.parameters()).device)


def golden(f, prompt):
    with torch.no_grad():
        logits = f(prompt).logits[0, -1]
        toks = f.generate(prompt, max_new_tokens=GEN, min_new_tokens=GEN, do_sample=False,
                          pad_token_id=0)[0, PROMPT_LEN:]
    return logits.tolist(), toks.tolist()


def export_onnx(f, cfg, out, prompt):
    """torch.onnx exports of the float32 tiny Llama: plain, and with KV I/O."""
    import numpy as np
    import onnxruntime as ort
    f = f.cpu().eval()  # exported and checked on the CPU
    L, KV, D = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__(); self.m = f
        def forward(self, input_ids):
            return self.m(input_ids=input_ids, use_cache=False).logits

    class WithKV(torch.nn.Module):
        """past_key_i/past_value_i [1, KV, P, D] in; logits and present_* out."""
        def __init__(self):
            super().__init__(); self.m = f
        def forward(self, input_ids, position_ids, *past):
            from transformers import DynamicCache
            cache = DynamicCache(config=cfg)
            for l in range(L):
                cache.update(past[2 * l], past[2 * l + 1], l)
            o = self.m(input_ids=input_ids, position_ids=position_ids, past_key_values=cache, use_cache=True)
            pres = []
            for l in range(L):
                pres += [cache.layers[l].keys, cache.layers[l].values]
            return (o.logits, *pres)

    results = {}
    ids = prompt.cpu()
    for kind in ("plain", "kv"):
        path = os.path.join(out, f"llama_{kind}.onnx")
        try:
            if kind == "plain":
                mod, args = Plain(), (ids,)
                names_in, names_out = ["input_ids"], ["logits"]
                dyn = {"input_ids": {1: "seq"}}
            else:
                P = 5
                past = []
                g = torch.Generator().manual_seed(3)
                for _ in range(L):
                    past += [torch.randn(1, KV, P, D, generator=g), torch.randn(1, KV, P, D, generator=g)]
                pos = torch.arange(P, P + ids.shape[1])[None]
                mod, args = WithKV(), (ids, pos, *past)
                names_in = ["input_ids", "position_ids"] + [f"past_{t}_{l}" for l in range(L) for t in ("key", "value")]
                names_out = ["logits"] + [f"present_{t}_{l}" for l in range(L) for t in ("key", "value")]
                dyn = {"input_ids": {1: "seq"}, "position_ids": {1: "seq"}}
                dyn.update({n: {2: "past"} for n in names_in[2:]})
            with torch.no_grad():
                want = mod(*args)
            want = want if isinstance(want, tuple) else (want,)
            exported = False
            for dynamo in (True, False):
                try:
                    torch.onnx.export(mod, args, path, input_names=names_in, output_names=names_out,
                                      dynamic_axes=dyn, opset_version=18, dynamo=dynamo,
                                      external_data=False)
                    exported = dynamo
                    break
                except Exception as e:
                    print(f"onnx export {kind} dynamo={dynamo} failed: {e}", file=sys.stderr)
                    if not dynamo:
                        raise
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            feeds = {i.name: a.numpy() for i, a in zip(sess.get_inputs(), args)}
            got = sess.run(None, feeds)
            err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
            results[kind] = dict(file=os.path.basename(path), dynamo=exported, max_abs_err_vs_torch=err,
                                 inputs=[i.name for i in sess.get_inputs()],
                                 outputs=[o.name for o in sess.get_outputs()],
                                 ops=sorted({n.op_type for n in __import__("onnx").load(path).graph.node}))
        except Exception:
            traceback.print_exc()
            results[kind] = dict(error=traceback.format_exc(limit=2))
    return results


def golden_for(dirs):
    """transformers' float32 golden (loaded from the bf16 weights) for each
    saved model, at the prompt its golden.json holds."""
    from transformers import AutoModelForCausalLM
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    for d in dirs:
        path = os.path.join(d, "golden.json")
        g = json.load(open(path))
        f = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").to(dev).eval()
        prompt = torch.tensor([g["prompt"]], device=dev)
        with torch.no_grad():
            logits = f(prompt).logits[0, -1]
            toks = f.generate(prompt, max_new_tokens=GEN, min_new_tokens=GEN, do_sample=False,
                              pad_token_id=0)[0, prompt.shape[1]:]
        g.update(greedy_tokens=toks.tolist(), last_logits=logits.tolist(),
                 golden_dtype="float32 from bf16 weights", transformers=transformers.__version__)
        json.dump(g, open(path, "w"))
        print(d, "distinct tokens:", len(set(toks.tolist())))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--golden-for":
        return golden_for(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=sorted(MODELS))
    a = ap.parse_args()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    summary = dict(transformers=transformers.__version__, torch=torch.__version__, models={})
    for name in a.only:
        # The first seed whose greedy tokens vary enough to test something.
        for seed in range(a.seed, a.seed + 20):
            cfg, m = build(name, seed)
            m = m.to(dev)
            g = torch.Generator().manual_seed(seed + 1)
            prompt = torch.randint(0, 512, (1, PROMPT_LEN), generator=g).to(dev)
            f = as_float(name, cfg, m)
            logits, toks = golden(f, prompt)
            if len(set(toks)) >= MIN_DISTINCT:
                break
        d = os.path.join(a.out, name)
        m.save_pretrained(d, safe_serialization=True)
        json.dump(dict(architecture=type(m).__name__, seed=seed, prompt=prompt[0].tolist(),
                       greedy_tokens=toks, last_logits=logits,
                       golden_dtype="float32 from bf16 weights",
                       transformers=transformers.__version__),
                  open(os.path.join(d, "golden.json"), "w"))
        summary["models"][name] = dict(greedy_tokens=toks, distinct=len(set(toks)),
                                       top_logit=max(logits), params=sum(p.numel() for p in m.parameters()))
        if name == "llama":
            summary["onnx"] = export_onnx(f, cfg, a.out, prompt)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
