#!/usr/bin/env python3
"""A longer transformers golden for a saved model (run on the GPU machine):
float32 from the model's bf16 weights, greedy with end-of-sequence masked,
--new tokens after the prompt of an existing golden (peer_decode.py's).

  golden_long.py MODEL_DIR PROMPT_GOLDEN.json OUT.json [--new 128]
"""
import argparse, json
import torch
from transformers import AutoModelForCausalLM

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("prompt_golden")
ap.add_argument("out")
ap.add_argument("--new", type=int, default=128)
a = ap.parse_args()
prompt = json.load(open(a.prompt_golden))["prompt"]
m = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16).cuda().float().eval()
ids = torch.tensor([prompt], device="cuda")
with torch.no_grad():
    logits = m(ids).logits[0, -1].cpu()
    toks = m.generate(ids, max_new_tokens=a.new, min_new_tokens=a.new, do_sample=False)[0, len(prompt):].tolist()
# The precision floor: transformers itself in bf16, teacher-forced on the
# same sequence, against the float32 tokens.
mb = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype=torch.bfloat16).cuda().eval()
seq = torch.tensor([prompt + toks], device="cuda")
eos = m.generation_config.eos_token_id
eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
with torch.no_grad():
    lb = mb(seq).logits[0, len(prompt) - 1:-1].float()
    lb[:, eos] = float("-inf")  # as the golden, which generated with end-of-sequence masked
    pred = lb.argmax(-1).tolist()
agree = sum(int(p == t) for p, t in zip(pred, toks))
json.dump(dict(prompt=prompt, greedy_tokens=toks, last_logits=logits.tolist(),
               golden_dtype="float32 from bf16 weights", hf_bf16_teacher_forced_agreement=agree / len(toks),
               reference_bf16_tokens=pred),
          open(a.out, "w"))
print(f"wrote {a.out}: {len(toks)} tokens; transformers bf16 teacher-forced top-1 agreement with it: "
      f"{agree}/{len(toks)} ({100.0 * agree / len(toks):.1f}%)")
