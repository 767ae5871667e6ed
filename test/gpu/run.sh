#!/usr/bin/env bash
# GPU checks, run on the GPU machine from the repository root with .device
# carried (test/gpu/prepare.sh made it here):
#
#   1. builds the runtime and kiln-run without the compiler (no MLIR there);
#   2. every tiny model's engine against its transformers golden: f32
#      activations must give the golden's 32 greedy tokens and last logits
#      within 1e-3 of the largest; bf16 activations within 5e-2, tokens
#      reported;
#   3. the Llama-3.2-1B shape with peer_decode.py's random weights: loads,
#      generates, and its greedy tokens are compared with transformers'.
#
# Prints a table last; logs go to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kiln-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

echo "== build (runtime only)"
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release > "$OUT/cmake.log" 2>&1 || { cat "$OUT/cmake.log"; exit 1; }
ninja -C build-gpu kiln-run > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }

declare -a rows
fail=0
for m in llama llama31 mistral qwen2 qwen3 gpt2; do
  for dt in f32 bf16; do
    tol=1e-3; [ $dt = bf16 ] && tol=5e-2
    line=$(build-gpu/bin/kiln-run .device/engines/$m-$dt.engine --golden test/models/hf/$m/golden.json \
             --tolerance $tol 2> "$OUT/$m-$dt.log" | head -1)
    rc=$?
    [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-$dt.log")"
    rows+=("$(printf '%-8s %-5s %s' $m $dt "$line")")
    if [ $dt = f32 ] && [[ "$line" != PASS* ]]; then fail=1; fi
  done
done

if [ "${SKIP_1B:-0}" != 1 ] && [ -f .device/engines/l1b.engine ]; then
  echo "== Llama-3.2-1B shape with random weights (peer_decode.py)"
  python3 .device/bench/peer_decode.py --shape llama3.2-1b --save "$OUT/m1b" --golden "$OUT/m1b/golden.json" \
    --prompt 128 --no-time > "$OUT/peer1b.log" 2>&1 || tail -20 "$OUT/peer1b.log"
  line=$(build-gpu/bin/kiln-run .device/engines/l1b.engine --weights "$OUT/m1b" --golden "$OUT/m1b/golden.json" \
           --tolerance 5e-2 2> "$OUT/l1b.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/l1b.log")"
  rows+=("$(printf '%-8s %-5s %s' l1b bf16 "$line")")
  tail -1 "$OUT/l1b.log"
fi

echo
echo "model    dtype result"
for r in "${rows[@]}"; do echo "$r"; done
exit $fail
