#!/usr/bin/env bash
# Device call (run 19: the same as run 18, wgmma no longer serialised): attentionPrefillWs variants (cooperative, ping-pong, 128-key tiles at D = 64) against the
# host on the head-dim 64/128 fixtures (golden prompt teacher-forced, 90-token prompt in one step and in
# 32-token chunks); the 1B at 1024 tokens against transformers; A/B at 4096 tokens in two rounds, orders
# swapped, with flash SDPA at 4k in the same call.
cd "$(dirname "$0")/.."
tar xzf .device2/dev.tgz
R=/tmp/res; mkdir -p $R
T0=$(date +%s); left() { echo $(( ${BUDGET:-420} - ($(date +%s) - T0) )); }
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $R/cmake.log 2>&1 && ninja -C build-gpu kiln-run > $R/build.log 2>&1 || tail -20 $R/build.log
RUN=build-gpu/bin/kiln-run
long=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(512)) for _ in range(90)))")
tie="--teacher-forced --min-agreement 0 --min-identical 0"
for e in $(cd .device/engines && ls llama-hd*.engine | sed 's/.engine//'); do
  d=${e#llama-hd}; d=${d%%-*}; g=test/models/hf/llama-hd$d/golden.json
  a=$(timeout 30 $RUN .device/engines/$e.engine --golden $g --reference host --tolerance 2e-2 $tie --max-tie-gap 2e-2 2>&1 | grep -m1 -E '^(PASS|FAIL)|rror')
  b=$(timeout 30 $RUN .device/engines/$e.engine --prompt-ids $long --max-tokens 16 --reference host --tolerance 2e-2 --min-identical 4 2>&1 | grep -m1 -E '^(PASS|FAIL)|rror')
  echo "$e golden: $a"; echo "$e 90: $b"
done | tee $R/tiny.txt
timeout 60 python3 .device/bench/peer_decode.py --shape llama3.2-1b --save $R/l1b --golden $R/l1b/golden.json --prompt 1024 --no-time > $R/g1024.log 2>&1 || tail -3 $R/g1024.log
for e in ws pp kv128 ppkv128; do
  echo "1024 $e: $(timeout 60 $RUN .device/engines/l1b-$e.engine --weights $R/l1b --golden $R/l1b/golden.json --tolerance 1e-1 --min-identical 0 --teacher-forced --min-agreement 0.85 2>&1 | grep -E '^(PASS|FAIL)|teacher|rror' | tr '\n' ' ')"
done | tee $R/big-check.txt
echo "after checks: $(left) s left" >> $R/times.txt
timeout 90 python3 .device/bench/peer_decode.py --shape llama3.1-8b --save $R/l8b --no-time > $R/l8b-save.log 2>&1 || tail -3 $R/l8b-save.log
echo "after save: $(left) s left" >> $R/times.txt
timeout 60 python3 bench/peer_kernels.py --shape llama3.1-8b --shape llama3.2-1b --tokens --sdpa-tokens 4096 > $R/sdpa.json 2>&1; tail -c 600 $R/sdpa.json; echo
for round in 1 2; do
  for s in l8b l1b; do
  if [ $s = l8b ]; then order="ws pp prev"; else order="ws pp kv128 ppkv128 prev"; fi
  [ $round = 2 ] && order=$(echo $order | tr ' ' '\n' | tac | tr '\n' ' ')
  for e in $order; do
  [ $(left) -gt 20 ] || continue
  timeout 40 $RUN .device/engines/$s-$e.engine --weights $R/$s --bench-prefill 4096 --reps 3 --profile > $R/$s-$e-r$round.txt 2>&1
  echo "r$round $s $e: $(grep -o 'TTFT [0-9.]* ms' $R/$s-$e-r$round.txt) $(grep -E 'attention' $R/$s-$e-r$round.txt | awk '{printf "%s=%s ", $1, $4}') $(grep -iE 'error' $R/$s-$e-r$round.txt | head -2)"
done; done; done | tee $R/ab.txt
rm -rf $R/l1b $R/l8b
cat $R/times.txt
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
