#!/usr/bin/env python3
"""`kiln plan` on the Llama-3.1-8B shape (header-only weights) against a hand calculation.

Weights: 8,030,261,248 parameters (hand-counted in inspect_8b.py) in bf16 =
16,060,522,496 bytes (16.06 GB). KV per token: 32 layers x 8 kv heads x 128
channels x (K and V) x 2 bytes = 131,072. Pool for 8 sequences of 4096
tokens in pages of 16: 8 x 256 pages x 16 x 131,072 = 4,294,967,296. The
manifest's parts must add up to its total, its arena must be at least the
lower bound of its live ranges, and the largest batch at 4096 tokens must be
what is left of the H100's 80 GB after the rest, in whole sequences. The
--svg drawing has one bar per planned buffer inside its function's panel
(prefill, and decode at each of the batch buckets 1, 2, 4 and 8).
Bad options are clear errors.
"""
import argparse, json, os, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from make_shape_model import config_for, write_model  # noqa: E402

PARAMS = 8_030_261_248


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--kiln", required=True)
    a = ap.parse_args()
    fails = []
    with tempfile.TemporaryDirectory() as d:
        write_model(d, config_for("llama-3.1-8b"))
        cmd = [a.kiln, "plan", d, "--max-batch", "8", "--max-seq", "4096", "--gpu", "h100-80gb"]
        svg = os.path.join(d, "plan.svg")
        out = subprocess.run(cmd + ["--json", "--svg", svg], check=True, capture_output=True,
                             text=True).stdout
        tree = ET.parse(svg)
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        print(text)
        r = json.loads(out)
        bad = subprocess.run([a.kiln, "plan", d, "--gpu", "h900"], capture_output=True, text=True)
        zero = subprocess.run([a.kiln, "plan", d, "--max-batch", "0"], capture_output=True, text=True)
    want = {"weights_bytes": 2 * PARAMS, "kv_bytes_per_token": 32 * 8 * 128 * 2 * 2,
            "kv_page_tokens": 16, "kv_pool_bytes": 8 * 256 * 16 * 131072,
            "gpu_bytes": 85520809984, "target": "h100-sxm-80gb"}
    for k, v in want.items():
        if r[k] != v:
            fails.append(f"{k} = {r[k]}, hand calculation {v}")
    parts = (r["weights_bytes"] + r["activation_arena_bytes"] + r["kv_pool_bytes"] +
             r["workspace_bytes"] + r["cuda_graph_reserve_bytes"])
    if parts != r["total_bytes"]:
        fails.append(f"parts add up to {parts}, total says {r['total_bytes']}")
    if r["activation_arena_bytes"] < r["arena_lower_bound_bytes"]:
        fails.append("arena below its lower bound")
    if not r["fits"]:
        fails.append("8 x 4096 tokens of an 8B model must fit an 80 GB H100")
    left = (r["gpu_bytes"] - r["context_reserve_bytes"] - r["weights_bytes"] -
            r["activation_arena_bytes"] - r["workspace_bytes"] - r["cuda_graph_reserve_bytes"])
    if r["max_batch_at_max_seq"] != left // (256 * 16 * 131072):
        fails.append(f"largest batch {r['max_batch_at_max_seq']} != {left // (256 * 16 * 131072)}")
    if "16.061 GB" not in text:
        fails.append("the manifest does not print 16.061 GB of weights")
    if bad.returncode == 0 or 'unknown target "h900"' not in bad.stderr:
        fails.append(f"unknown GPU: {bad.returncode} {bad.stderr!r}")
    if zero.returncode == 0 or "must be positive" not in zero.stderr:
        fails.append(f"--max-batch 0: {zero.returncode} {zero.stderr!r}")
    # The SVG: one bar per planned buffer, each inside its panel.
    ns = "{http://www.w3.org/2000/svg}"
    panels = [g for g in tree.getroot().iter(ns + "g") if g.get("class") == "panel"]
    bars = [(g, r) for g in panels for r in g.iter(ns + "rect") if r.get("class") == "buffer"]
    # A panel per function: prefill, and decode at each batch bucket (the
    # powers of two up to --max-batch 8).
    if r["decode_buckets"] != [1, 2, 4, 8]:
        fails.append(f"decode buckets {r['decode_buckets']}, want [1, 2, 4, 8]")
    if len(panels) != 5 or len(bars) != r["svg_buffers"] or not bars:
        fails.append(f"SVG has {len(panels)} panels and {len(bars)} bars for {r['svg_buffers']} buffers")
    for g, bar in bars:
        frame = next(x for x in g.iter(ns + "rect") if x.get("class") is None)
        fx, fy, fw, fh = (float(frame.get(k)) for k in ("x", "y", "width", "height"))
        bx, by, bw, bh = (float(bar.get(k)) for k in ("x", "y", "width", "height"))
        if bx < fx - 1e-6 or by < fy - 1e-6 or bx + bw > fx + fw + 1e-6 or by + bh > fy + fh + 1e-6:
            fails.append(f"bar {bar.find(ns + 'title').text} leaves its panel")
            break
    print(f"SVG: {len(panels)} panels, {len(bars)} bars")
    for f in fails:
        print("FAIL:", f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
