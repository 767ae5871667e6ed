#!/usr/bin/env python3
"""The tables of bench/prefill.sh from its raw output directory.

  prefill_table.py OUT
"""
import json, os, re, sys

out = sys.argv[1]


def load_json(path):
    try:
        return json.loads(open(path).read().strip().splitlines()[-1])
    except Exception:
        return {}


def read(path):
    return open(path).read() if os.path.exists(path) else ""


kern = load_json(f"{out}/peer-kernels.json")
peak = kern.get("peak_tflops", float("nan"))
print(f"measured bf16 peak (torch.matmul 8192^3): {peak} TFLOP/s on {kern.get('device', '?')}")
print()
print(f"{'shape':5} {'prompt':>9} {'kiln ms':>9} {'TFLOP/s':>8} {'% peak':>7} {'hf+sdpa ms':>10} {'hf/kiln':>8}  "
      f"{'chunked ms':>10}")
LINE = re.compile(r"batch (\d+) x (\d+) tokens in (\d+) steps? of (\d+): TTFT ([\d.]+) ms .*?, ([\d.]+) TFLOP/s")
for s in os.environ.get("SHAPES", "l1b l8b").split():
    peer = load_json(f"{out}/{s}-peer-prefill.json")
    chunked = {(int(m[1]), int(m[2])): float(m[5]) for m in LINE.finditer(read(f"{out}/{s}-kiln-prefill-chunked.txt"))}
    for m in LINE.finditer(read(f"{out}/{s}-kiln-prefill.txt")):
        b, n, ms, tf = int(m[1]), int(m[2]), float(m[5]), float(m[6])
        hf = peer.get(f"prefill_ms_{n}") if b == 1 else None
        ratio = f"{hf / ms:8.2f}" if hf else f"{'':8}"
        ch = chunked.get((b, n))
        print(f"{s:5} {f'{b}x{n}' if b > 1 else n:>9} {ms:9.2f} {tf:8.1f} {100 * tf / peak:6.1f}% "
              f"{hf if hf else '':>10} {ratio}  {ch if ch else '':>10}")
    for variant, what in (("-mma", "GEMMs on mma.sync: compiled --no-wgmma"),
                          ("-nows", "gemmMma GEMMs: compiled --no-warp-specialize"),
                          ("-pp", "ping-pong GEMMs: compiled --warp-specialize=pingpong"),
                          ("-nocl", "gemmWs in lone blocks: compiled --no-cluster (2026-12-06 run 7's default)"),
                          ("-cl", "gemmWs in block pairs: compiled --cluster")):
        for m in LINE.finditer(read(f"{out}/{s}-kiln-prefill{variant}.txt")):
            print(f"{s:5} {m[2]:>9} {float(m[5]):9.2f} {float(m[6]):8.1f} {100 * float(m[6]) / peak:6.1f}%  "
                  f"({what})")
print()
# GEMMs: kiln's prefill kernels of the 4096-token profile against cuBLAS at
# the same shape (matched by FLOPs: 2 M N K, the epilogue adds little), timed
# back to back and, where peer_kernels.py measured it, with L2 evicted first.
PROF = re.compile(r"^\s+(\S+)\s+(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)",
                  re.M)
print(f"{'shape':5} {'kernel':28} {'family':17} {'M':>5} {'N':>6} {'K':>6} {'kiln us':>9} {'TFLOP/s':>8} "
      f"{'cuBLAS us':>9} {'TFLOP/s':>8} {'kiln/cuBLAS':>11} {'L2-cold us':>10} {'kiln/cold':>9}")
for s, variant in [(s, v) for s in os.environ.get("SHAPES", "l1b l8b").split() for v in ("", "-mma", "-nows", "-pp", "-nocl", "-cl")]:
    shape = "llama3.2-1b" if s == "l1b" else "llama3.1-8b"
    peers = kern.get(shape, {})
    txt = read(f"{out}/{s}-kiln-prefill{variant}.txt")
    prof = txt[txt.find("profile:"):] if "profile:" in txt else ""
    M = max((r["M"] for r in peers.get("gemm", [])), default=0)
    for p in PROF.finditer(prof):
        name, fam, us, flops = p[1], p[2], float(p[4]), int(p[8])
        if fam in ("gemm", "gemv") and M:
            best = min((r for r in peers["gemm"] if r["M"] == M), key=lambda r: abs(2 * r["M"] * r["N"] * r["K"] - flops))
            f = 2 * best["M"] * best["N"] * best["K"]
            if abs(f - flops) > 0.02 * f:
                continue
            cu = best["ms"] * 1e3
            cold = best.get("ms_cold", 0) * 1e3  # cuBLAS with L2 evicted first (peer_kernels.py)
            print(f"{s + variant:5} {name:28} {fam:17} {M:5} {best['N']:6} {best['K']:6} {us:9.1f} {f / us * 1e-6:8.1f} "
                  f"{cu:9.1f} {best['tflops']:8.1f} {cu / us:11.2f}" +
                  (f" {cold:10.1f} {cold / us:9.2f}" if cold else ""))
        elif fam.startswith("attention") and peers.get("sdpa"):
            a = peers["sdpa"][-1]
            print(f"{s + variant:5} {name:28} {fam:17} {a['T']:5} {'':6} {'':6} {us:9.1f} {a['ms'] * 1e3 * a['tflops'] / us:8.1f} "
                  f"{a['ms'] * 1e3:9.1f} {a['tflops']:8.1f} {a['ms'] * 1e3 / us:11.2f}  (flash SDPA: {a['backend']})")
