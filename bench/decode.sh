#!/usr/bin/env bash
# Decode speed at batch 1 (prompt 128, 256 generated tokens, bf16), kiln and
# its peers on the same random weights, in one device call (issue 8):
# peer_decode.py builds each shape, saves it, times transformers eager and a
# gpt-fast-style torch.compile decoder and the device-to-device copy
# bandwidth; kiln-run --bench runs the engine bench/prepare.sh compiled on
# those weights, and the engine compiled --dtype f32 (f32 compute over the
# same bf16 weights) once. Prints a table; raw output under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kiln-bench}
mkdir -p "$OUT"
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$OUT/cmake.log" 2>&1 && ninja -C build-gpu kiln-run > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
for s in ${SHAPES-l1b l8b}; do
  shape=$([ $s = l1b ] && echo llama3.2-1b || echo llama3.1-8b)
  python3 .device/bench/peer_decode.py --shape $shape --save "$OUT/$s" --prompt 128 --gen 256 > "$OUT/$s-peer.json" 2> "$OUT/$s-peer.log" \
    || tail -5 "$OUT/$s-peer.log"
  K="build-gpu/bin/kiln-run .device/engines/$s.engine --weights $OUT/$s --bench --prompt-len 128 --gen 256"
  $K > "$OUT/$s-kiln.txt" 2> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
  # Variants: programmatic dependent launch on and off, interleaved in one
  # process (5 runs each); without CUDA graphs; and the per-kernel profile.
  $K --ab-overlap 5 > "$OUT/$s-kiln-ab.txt" 2>> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
  $K --no-graphs --overlap off > "$OUT/$s-kiln-nographs.txt" 2>> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
  # Each step launched only once the previous one's tokens are back.
  $K --no-lookahead > "$OUT/$s-kiln-nolookahead.txt" 2>> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
  $K --gen 32 --profile > "$OUT/$s-profile.txt" 2>> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
  # The same weights computed in f32 (compiled --dtype f32).
  [ -f .device/engines/$s-f32.engine ] && { ${K/$s.engine/$s-f32.engine} > "$OUT/$s-kiln-f32.txt" 2>> "$OUT/$s-kiln.log" \
    || tail -3 "$OUT/$s-kiln.log"; }
  # The same step compiled with --append-in-attention (RoPE and the KV
  # append inside the attention kernel), alternated with the default engine
  # (for the shapes in AB_SHAPES, default none: measured in NOTES item 10).
  if [ -f .device/engines/$s-att.engine ] && [[ " ${AB_SHAPES-} " == *" $s "* ]]; then
    for i in 1 2 3; do
      ${K/$s.engine/$s-att.engine} >> "$OUT/$s-kiln-att.txt" 2>> "$OUT/$s-kiln.log"
      $K >> "$OUT/$s-kiln-default.txt" 2>> "$OUT/$s-kiln.log"
    done
  fi
  rm -rf "$OUT/$s"/*.safetensors
done
python3 - "$OUT" <<'PY'
import json, re, sys, os
out = sys.argv[1]
print(f"{'shape':6} {'kiln tok/s':>10} {'ms/tok':>7} {'TB/s':>6} {'% copy':>7} {'gpt-fast':>9} {'hf eager':>9} {'kiln/gptfast':>12}")
for s in os.environ.get("SHAPES", "l1b l8b").split():
    try:
        peer = json.loads(open(f"{out}/{s}-peer.json").read().strip().splitlines()[-1])
    except Exception:
        peer = {}
    txt = open(f"{out}/{s}-kiln.txt").read() if os.path.exists(f"{out}/{s}-kiln.txt") else ""
    m = re.search(r"decode ([\d.]+) tok/s, ([\d.]+) ms/token, (\d+) bytes/token", txt)
    if not m:
        print(f"{s:6} kiln: no result ({txt.strip()[:80]})")
        continue
    tps, ms, b = float(m[1]), float(m[2]), float(m[3])
    tbs = b * tps / 1e12
    copy = peer.get("copy_TBps", float("nan"))
    gf = peer.get("gptfast_tok_s", float("nan"))
    hf = peer.get("hf_eager_tok_s", float("nan"))
    print(f"{s:6} {tps:10.1f} {ms:7.3f} {tbs:6.2f} {100 * tbs / copy:6.1f}% {gf:9.1f} {hf:9.1f} {tps / gf:12.2f}")
    for line in txt.splitlines():
        if line.startswith("bench: programmatic dependent launch"):
            print(f"{s:6}   auto: {line[len('bench: '):]}")
    ab = open(f"{out}/{s}-kiln-ab.txt").read() if os.path.exists(f"{out}/{s}-kiln-ab.txt") else ""
    n = re.search(r"ab: median decode tok/s over (\d+) runs each: overlap on ([\d.]+), off ([\d.]+)", ab)
    if n:
        print(f"{s:6}   CUDA graphs, median of {n[1]} interleaved runs: overlap on {n[2]}, off {n[3]} tok/s")
    for variant, what in (("f32", "--dtype f32 (f32 compute, bf16 weights)"),
                          ("nographs", "no graphs, no overlap"),
                          ("nolookahead", "no lookahead (each step launched after the last one's tokens)"),
                          ("att", "--append-in-attention, median of 3"),
                          ("default", "default engine alternated with it, median of 3")):
        f = f"{out}/{s}-kiln-{variant}.txt"
        runs = sorted(float(x) for x in re.findall(r"decode ([\d.]+) tok/s", open(f).read() if os.path.exists(f) else ""))
        if runs:
            gf_ = f" = {runs[len(runs) // 2] / gf:.2f}x gpt-fast" if variant == "f32" else ""
            print(f"{s:6}   {what}: {runs[len(runs) // 2]:.1f} tok/s{gf_}")
PY
