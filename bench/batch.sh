#!/usr/bin/env bash
# Batched decode (issue 17): the Llama-3.2-1B and Llama-3.1-8B shapes, each
# sequence a 512-token prompt then 128 generated tokens, at batch 1, 8, 32,
# 64, 128 and 256; kiln beside llama.cpp's llama-batched-bench on a BF16
# GGUF of the same random weights, in one device call.
#
#   bench/batch.sh --prepare [BIN]   here: compile the engines into
#                                    .batch/engines and copy the peers
#                                    (llama.cpp prebuilt, its gguf-py,
#                                    peer_decode.py) into .batch/; carry .batch
#   bench/batch.sh                   on the GPU machine (SHAPES="l1b l8b",
#                                    BATCHES="1 4 8 32 64 128 256", PEERS=0:
#                                    kiln alone, PROFILE="8 64": kiln-run
#                                    --profile at those batches, NCU="64":
#                                    ncu's per-kernel times of one step,
#                                    EXTRA="g64:8,32 g128:64": engines
#                                    .batch/engines/SHAPE-g64.engine ... at
#                                    those batches too, for A/B rows);
#                                    raw output and the table under $OUT
#   bench/batch.sh --table DIR       the table of a results folder (shapes
#                                    measured in separate calls, joined)
#
# kiln's figures are `kiln-run --bench --batch B --prompt-len 512 --gen 128`:
# every prompt prefilled before the batch decodes (as llama-batched-bench
# does it), decode tok/s = B x steps / time, and the bytes bound of a step =
# the weights + B x the KV of the mean decode context (512 + 64 tokens),
# read once at the copy bandwidth kiln-run measures in the same process.
# Engines: max-batch 256 with its decode buckets (every batch), the same
# with --decode-buckets none and with --no-rope-tables (batch 1 and 64) and
# max-batch 1 (batch 1), so one table also shows what an engine's largest
# batch costs a small one and what the step's RoPE table buys.
set -uo pipefail
cd "$(dirname "$0")/.."
table() {
  python3 - "$1" <<'PY'
import json, os, re, sys
out = sys.argv[1]
names = {"256": "256", "256nb": "256, no buckets", "256nt": "256, no RoPE tables", "1": "1"}
print("| shape | batch | engine max-batch | kiln tok/s | ms/step | MB/step | % of bytes bound | llama.cpp tok/s | kiln / llama.cpp |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for s in os.environ.get("SHAPES", "l1b l8b").split():
    if not any(f.startswith(s + "-") for f in os.listdir(out)):
        continue
    peer = {}
    try:
        for line in open(f"{out}/{s}-llamacpp.jsonl"):
            if line.startswith("{"):
                j = json.loads(line)
                peer[j["pl"]] = j["speed_tg"]
    except OSError:
        pass
    rows = []
    extra = sorted(f[len(s) + 2:-9] for f in os.listdir(out) if f.startswith(s + "-b") and f.endswith("-kiln.txt"))
    for e in ["256", "256nb", "256nt", "1"] + [x for x in extra if x not in names]:
        f = f"{out}/{s}-b{e}-kiln.txt"
        if not os.path.exists(f):
            continue
        for line in open(f):
            m = re.search(r"(?:batch (\d+), )?prompt \d+, .*decode ([\d.]+) tok/s.*?, ([\d.]+) ms/(?:step|token), "
                          r"(\d+) bytes.* = ([\d.]+)% of the measured copy", line)
            if m:
                rows.append((int(m[1] or 1), names.get(e, f"256, {e}"), float(m[2]), float(m[3]), int(m[4]), float(m[5])))
    for b, e, tps, ms, by, pct in sorted(rows):
        p = peer.get(b)
        print(f"| {s} | {b} | {e} | {tps:.1f} | {ms:.3f} | {by / 1e6:.1f} | {pct:.1f}% | "
              f"{p:.1f} | {tps / p:.2f} |" if p else f"| {s} | {b} | {e} | {tps:.1f} | {ms:.3f} | {by / 1e6:.1f} | {pct:.1f}% | - | - |")
PY
}
if [ "${1:-}" = "--table" ]; then
  table "${2:?results folder}"
  exit 0
fi
if [ "${1:-}" = "--prepare" ]; then
  set -e
  BIN=${2:-build/bin}
  SHARED=${SHARED:-../shared}
  mkdir -p .batch/engines .batch/peers .scratch
  python3 - <<'PY'
import sys
sys.path.insert(0, "scripts")
from make_shape_model import config_for, write_model
for shape, name, hd in (("llama-3.2-1b", "l1b", 64), ("llama-3.1-8b", "l8b", 128)):
    c = config_for(shape)
    c.pop("rope_scaling", None)
    c.update(rope_theta=500000.0, max_position_embeddings=8192, head_dim=hd, rms_norm_eps=1e-6)
    write_model(f".scratch/{name}-peer", c)
PY
  for m in ${SHAPES:-l1b l8b}; do
    # max-batch 256 with its decode buckets (1, 2, 4 ... 128: each step
    # runs through the smallest that holds it), the same without buckets
    # (every step through kernels chosen for 256), and max-batch 1.
    "$BIN/kiln" compile .scratch/$m-peer --max-batch 256 --max-seq 640 --quiet -o .batch/engines/$m-b256.engine
    "$BIN/kiln" compile .scratch/$m-peer --max-batch 256 --max-seq 640 --decode-buckets none --quiet \
      -o .batch/engines/$m-b256nb.engine
    "$BIN/kiln" compile .scratch/$m-peer --max-batch 1 --max-seq 640 --quiet -o .batch/engines/$m-b1.engine
    # Each rotation computing its own angles (no step table): what the table buys.
    "$BIN/kiln" compile .scratch/$m-peer --max-batch 256 --max-seq 640 --no-rope-tables --quiet \
      -o .batch/engines/$m-b256nt.engine
  done
  cp "$SHARED/bench/peer_decode.py" .batch/
  cp "$SHARED/peers/llamacpp.sh" "$SHARED/peers/hf_to_gguf.py" "$SHARED/peers/llama.cpp-cuda-sm90a-bin.tar.xz" .batch/peers/
  rm -rf .batch/peers/llama.cpp && mkdir -p .batch/peers/llama.cpp
  tar xzf "$SHARED/peers/llama.cpp-src.tgz" -C .batch/peers llama.cpp/gguf-py
  # Packed: the prebuilt llama.cpp takes 43 of the 64 MiB a device call carries.
  tar czf .batch/engines.tgz -C .batch engines && rm -rf .batch/engines
  du -sh .batch
  exit 0
fi

OUT=${OUT:-/tmp/kiln-batch}
BATCHES=${BATCHES:-1 4 8 32 64 128 256}
mkdir -p "$OUT"
[ -d .batch/engines ] || tar xzf .batch/engines.tgz -C .batch
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$OUT/cmake.log" 2>&1 && ninja -C build-gpu kiln-run > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
# llama.cpp: the prebuilt tools (built from source when they do not load);
# PEERS=0 skips it (kiln alone, say while the device machine is still warm
# from a run that measured it).
LL=/tmp/llamacpp
[ "${PEERS:-1}" = 0 ] || [ -x $LL/bin/llama-batched-bench ] || bash .batch/peers/llamacpp.sh install $LL > "$OUT/llamacpp-install.log" 2>&1 \
  || { tail -20 "$OUT/llamacpp-install.log"; }
head -3 "$OUT/llamacpp-install.log" 2>/dev/null
[ "${PEERS:-1}" = 0 ] || eval "$(bash .batch/peers/llamacpp.sh env $LL)"
npl=$(echo $BATCHES | tr ' ' ,)
for s in ${SHAPES:-l1b l8b}; do
  shape=$([ $s = l1b ] && echo llama3.2-1b || echo llama3.1-8b)
  W=/tmp/w-$s
  [ -f $W/config.json ] || python3 .batch/peer_decode.py --shape $shape --save $W --no-time > "$OUT/$s-save.log" 2>&1 \
    || tail -5 "$OUT/$s-save.log"
  # llama.cpp's GGUF of the same weights, written on the CPU while kiln runs.
  gguf=
  if [ "${PEERS:-1}" != 0 ] && [ ! -f /tmp/$s.gguf ]; then
    (LLAMACPP_DIR=$PWD/.batch/peers bash .batch/peers/llamacpp.sh gguf $W /tmp/$s.gguf.part > "$OUT/$s-gguf.log" 2>&1 \
      && mv /tmp/$s.gguf.part /tmp/$s.gguf || tail -5 "$OUT/$s-gguf.log") &
    gguf=$!
  fi
  for b in $BATCHES; do
    for e in 256 256nb 256nt 1; do
      # max-batch 256: every batch; without buckets or RoPE tables: batch 1 and 64; max-batch 1: batch 1.
      case $e in 256) ;; 256nb|256nt) [ $b = 1 ] || [ $b = 64 ] || continue;; 1) [ $b = 1 ] || continue;; esac
      [ -f .batch/engines/$s-b$e.engine ] || continue
      build-gpu/bin/kiln-run .batch/engines/$s-b$e.engine --weights $W --bench --batch $b --prompt-len 512 --gen 128 \
        >> "$OUT/$s-b$e-kiln.txt" 2>> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
    done
  done
  # A/B engines (EXTRA="NAME:B,B ..."): .batch/engines/$s-NAME.engine at those batches.
  for x in ${EXTRA-}; do
    e=${x%%:*}
    [ -f .batch/engines/$s-$e.engine ] || continue
    for b in $(echo ${x#*:} | tr , ' '); do
      build-gpu/bin/kiln-run .batch/engines/$s-$e.engine --weights $W --bench --batch $b --prompt-len 512 --gen 128 \
        >> "$OUT/$s-b$e-kiln.txt" 2>> "$OUT/$s-kiln.log" || tail -3 "$OUT/$s-kiln.log"
    done
  done
  # Where the time of a step goes, each kernel on its own (PROFILE: batches).
  for b in ${PROFILE-8 64}; do
    build-gpu/bin/kiln-run .batch/engines/$s-b256.engine --weights $W --bench --batch $b \
      --prompt-len 512 --gen 32 --profile > "$OUT/$s-profile$b.txt" 2>> "$OUT/$s-kiln.log"
  done
  # One decode step's kernels as Nsight Compute times them, each alone at the
  # GPU's clocks (NCU: batches): a Llama step launches 7 kernels a layer
  # (two norms, QKV, attention, O, gate/up, down) and 3 more (embedding,
  # final norm, LM head); two steps skipped.
  for b in ${NCU-}; do
    n=$(python3 -c "import json; print(7 * json.load(open('$W/config.json'))['num_hidden_layers'] + 3)")
    timeout 120 ncu --csv --clock-control none --cache-control none --kernel-name regex:^decode_ --launch-skip $((2 * n)) \
      --launch-count $n --metrics gpu__time_duration.sum,dram__bytes_read.sum build-gpu/bin/kiln-run \
      .batch/engines/$s-b256.engine --weights $W --bench --batch $b --prompt-len 512 --gen 6 \
      > "$OUT/$s-ncu$b.csv" 2> "$OUT/$s-ncu$b.log"
    python3 bench/ncu_step.py "$OUT/$s-ncu$b.csv" > "$OUT/$s-ncu$b.txt" 2>&1
  done
  [ "${PEERS:-1}" = 0 ] && continue
  # llama.cpp on the same weights: the KV of every batch size's sequences.
  [ -z "$gguf" ] || wait $gguf
  maxb=$(echo $BATCHES | tr ' ' '\n' | sort -n | tail -1)
  $LL/bin/llama-batched-bench -m /tmp/$s.gguf -ngl 99 -fa on -c $((maxb * 640)) -b 2048 -ub 512 \
    -npp 512 -ntg 128 -npl $npl --output-format jsonl > "$OUT/$s-llamacpp.jsonl" 2> "$OUT/$s-llamacpp.log" \
    || tail -5 "$OUT/$s-llamacpp.log"
done
table "$OUT" | tee "$OUT/table.md"
