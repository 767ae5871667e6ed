#!/usr/bin/env python3
"""The cost model against measured kernel times (issue 16): for a profile
printed by `kiln-run --profile` or `--bench-prefill ... --profile` on the GPU
and the compile options of its engine, recompiles the model here to the
fused stage (`kiln compile --emit fused`), takes choose-tiling's predicted
time of each kernel (its kiln.cost, matched to the profile's row by the
planned bytes and FLOPs) and prints predicted against measured, then the
median and worst relative error per family.

  cost_calibration.py --kiln build/bin/kiln PROFILE MODEL_DIR [compile options...]
"""
import argparse, re, statistics, subprocess, sys, tempfile

ROW = re.compile(r"^\s+(\S+)\s+(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)%\s+(\d+)\s+(\d+)\s", re.M)
COST = re.compile(r"kiln\.cost = \{bytes = (\d+) : i64, flops = (\d+) : i64, time_ns = (\d+) : i64")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kiln", default="build/bin/kiln")
    ap.add_argument("profile")
    ap.add_argument("model")
    ap.add_argument("options", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    with tempfile.NamedTemporaryFile(suffix=".mlir") as f:
        r = subprocess.run([a.kiln, "compile", a.model, "--emit", "fused", "--quiet", "-o", f.name] + a.options,
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(r.stderr)
        predicted = {(int(b), int(fl)): int(t) * 1e-3 for b, fl, t in COST.findall(open(f.name).read())}
    text = open(a.profile).read()
    text = text[text.find("profile:"):]
    errors = {}
    pairs = []  # (error, measured us) of every kernel
    print(f"{'kernel':28} {'family':17} {'measured us':>11} {'predicted us':>12} {'error':>8}")
    for m in ROW.finditer(text):
        name, family, us, b, fl = m[1], m[2], float(m[4]), int(m[7]), int(m[8])
        p = predicted.get((b, fl))
        if p is None:
            print(f"{name:28} {family:17} {us:11.2f} {'?':>12}")
            continue
        e = p / us - 1
        errors.setdefault(family, []).append(e)
        pairs.append((e, us))
        print(f"{name:28} {family:17} {us:11.2f} {p:12.2f} {100 * e:+7.1f}%")
    every = [e for es in errors.values() for e in es]
    # Each kernel timed alone pays ~5 us of launch and event (the profile's
    # floor; a graph's node ~1): kernels this short measure the floor.
    long = [e for e, us in pairs if us >= 20.0]
    for fam, es in sorted(errors.items()) + [("all", every), ("all >= 20 us", long)]:
        if es:
            worst = max(es, key=abs)
            print(f"{fam:17} {len(es):3} kernels: median |error| {100 * statistics.median(abs(e) for e in es):5.1f}%, "
                  f"worst {100 * worst:+6.1f}%")


if __name__ == "__main__":
    main()
