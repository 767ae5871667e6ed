#!/usr/bin/env python3
"""`kiln inspect` on a Llama-3.1-8B-shaped model whose weights are never written.

Writes config.json (the transformers 4 spelling: rope_theta, rope_scaling,
torch_dtype) and four safetensors shards holding only their headers (the
files are sparse: their size is right, their data was never written), plus
model.safetensors.index.json. `kiln inspect --json` must report 8.03 B
parameters (8,030,261,248, computed by hand below), 16.06 GB of bf16 and
131072 KV bytes per token, in under 2 s. Standard library only.
"""
import argparse, json, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from make_shape_model import config_for, write_model  # noqa: E402

H, I, L, NH, KV, D, V = 4096, 14336, 32, 32, 8, 128, 128256


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kiln", required=True)
    a = ap.parse_args()
    # Hand count: embeddings and LM head, 32 layers, final norm.
    per_layer = 2 * H + NH * D * H + 2 * KV * D * H + H * NH * D + 3 * I * H
    want = 2 * V * H + L * per_layer + H
    assert want == 8_030_261_248, want
    with tempfile.TemporaryDirectory() as d:
        # The transformers 4 spelling: rope_theta, rope_scaling, torch_dtype.
        write_model(d, config_for("llama-3.1-8b"))
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
