#!/usr/bin/env python3
"""Decode kernels and bytes per token of the Llama-3.2-1B shape, before and after fusion.

Writes the 1B shape (header-only weights, scripts/make_shape_model.py) with
16 layers and with 1 layer, runs the graph passes with and without fusion,
and reads `kiln-test-print-cost` for @decode on the H100 description:

  kernels per layer = (kernels(16 layers) - kernels(1 layer)) / 15

Checks: 16 kernels per layer before fusion and 5 after (norm+QKV with
RoPE and the KV append in its epilogue, paged attention, O+residual,
norm+gate/up+SwiGLU, down+residual), 5 with append-in-attention too
(norm+QKV, rope+kv_append+paged attention) at no lower predicted time
than the default; the fused step reads each weight exactly once; its
predicted bytes per token stay within 2% of the weight bytes (the rest is
the KV cache at the costed context); fusion lowers the predicted time.
"""
import argparse, os, re, subprocess, sys, tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from make_shape_model import config_for, write_model  # noqa: E402

UNFUSED = "builtin.module(kiln-insert-kv-cache,kiln-choose-tiling,kiln-test-print-cost)"
FUSED = "builtin.module(kiln-graph-pipeline,kiln-test-print-cost)"
INATT = "builtin.module(kiln-graph-pipeline{append-in-attention=true},kiln-test-print-cost)"
NAMES = ("unfused", "fused", "in-attn")


def decode_cost(bin_dir, model_dir, pipeline):
    mlir = subprocess.run([os.path.join(bin_dir, "kiln-translate"), "--import-hf", model_dir],
                          check=True, capture_output=True, text=True).stdout
    out = subprocess.run([os.path.join(bin_dir, "kiln-opt"), "--pass-pipeline", pipeline,
                          "-o", os.devnull],
                         input=mlir, check=True, capture_output=True, text=True).stdout
    section = out[out.index("@decode"):]
    m = re.search(r"kernels (\d+), bytes (\d+), weights read (\d+) of (\d+) bound", section)
    t = re.search(r"predicted ([\d.]+) us per step, ([\d.]+) tokens/s", section)
    return dict(kernels=int(m[1]), bytes=int(m[2]), read=int(m[3]), weights=int(m[4]),
                us=float(t[1]), tps=float(t[2]), text=section)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", required=True, help="directory with kiln-translate and kiln-opt")
    a = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as d:
        for layers in (1, 16):
            md = os.path.join(d, f"l{layers}")
            write_model(md, config_for("llama-3.2-1b", layers))
            for name, p in zip(NAMES, (UNFUSED, FUSED, INATT)):
                res[(name, layers)] = decode_cost(a.bin, md, p)
    per_layer = {n: (res[(n, 16)]["kernels"] - res[(n, 1)]["kernels"]) / 15 for n in NAMES}
    print("Llama-3.2-1B shape, @decode, batch 1, context 1024, h100-sxm-80gb:")
    print(f"{'':10} {'kernels':>8} {'per layer':>10} {'bytes/token':>14} {'weight bytes':>14} {'ratio':>7} {'pred us':>9} {'tok/s':>8}")
    for n in NAMES:
        r = res[(n, 16)]
        print(f"{n:10} {r['kernels']:8d} {per_layer[n]:10.1f} {r['bytes']:14d} {r['weights']:14d} "
              f"{r['bytes'] / r['weights']:7.4f} {r['us']:9.1f} {r['tps']:8.1f}")
    lines = res[("fused", 16)]["text"].splitlines()
    print("\n".join(lines[:9] + ["  ..."] + lines[-3:]))
    fails = []
    if per_layer["unfused"] != 16:
        fails.append(f"{per_layer['unfused']} kernels per layer before fusion, expected 16")
    if per_layer["fused"] != 5:
        fails.append(f"{per_layer['fused']} kernels per layer after fusion, expected 5")
    if per_layer["in-attn"] != 5:
        fails.append(f"{per_layer['in-attn']} kernels per layer with append-in-attention, expected 5")
    if res[("in-attn", 16)]["us"] < res[("fused", 16)]["us"]:
        fails.append("append-in-attention is predicted faster than the default")
    f = res[("fused", 16)]
    # Each weight once; the gathered embedding row is the only extra read.
    if not (f["weights"] <= f["read"] <= f["weights"] + 2048 * 2):
        fails.append(f"fused decode reads {f['read']} weight bytes of {f['weights']}")
    if not (f["weights"] < f["bytes"] <= 1.02 * f["weights"]):
        fails.append(f"fused decode moves {f['bytes']} bytes per token for {f['weights']} of weights")
    if not f["us"] < res[("unfused", 16)]["us"]:
        fails.append("fusion does not lower the predicted decode time")
    for x in fails:
        print("FAIL:", x)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
