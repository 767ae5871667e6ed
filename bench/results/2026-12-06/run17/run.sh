#!/usr/bin/env bash
# Device call: attentionPrefillWs (warp-specialised, both products on wgmma) against the host on the
# head-dim 64/128 fixtures; the 1B at 1024 tokens against transformers; A/B at 4096 tokens
# (ws vs the previous attention) in two rounds, orders swapped; flash SDPA at 4k in the same call.
cd "$(dirname "$0")/.."
tar xzf .device2/dev.tgz
R=/tmp/res; mkdir -p $R
T0=$(date +%s); left() { echo $(( ${BUDGET:-420} - ($(date +%s) - T0) )); }
HEAD_DIMS="64 128" TINY_MODELS="" BATCH_MODELS="" SKIP_1B=1 OUT=$R/gpu timeout 150 bash test/gpu/run.sh > $R/gpu.txt 2>&1
echo "gpu rc=$? $(left) s left" >> $R/times.txt
tail -22 $R/gpu.txt
for d in 64 128; do
  line=$(timeout 30 build-gpu/bin/kiln-run .device/engines/llama-hd$d-bf16-nows.engine --prompt-ids $(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(512)) for _ in range(90)))") --max-tokens 16 --reference host --tolerance 2e-2 --min-identical 4 2>&1 | head -1)
  echo "hd$d nows-90-vs-host $line"
done
RUN=build-gpu/bin/kiln-run
timeout 60 python3 .device/bench/peer_decode.py --shape llama3.2-1b --save $R/l1b --golden $R/l1b/golden.json --prompt 1024 --no-time > $R/g1024.log 2>&1 || tail -3 $R/g1024.log
for e in p4k p4k-prev; do
  echo "1024 $e: $(timeout 60 $RUN .device/engines/l1b-$e.engine --weights $R/l1b --golden $R/l1b/golden.json --tolerance 1e-1 --min-identical 0 --teacher-forced --min-agreement 0.85 2>&1 | grep -E '^(PASS|FAIL)|teacher|rror' | tr '\n' ' ')"
done | tee $R/big-check.txt
echo "after checks: $(left) s left" >> $R/times.txt
timeout 90 python3 .device/bench/peer_decode.py --shape llama3.1-8b --save $R/l8b --no-time > $R/l8b-save.log 2>&1 || tail -3 $R/l8b-save.log
echo "after save: $(left) s left" >> $R/times.txt
timeout 60 python3 bench/peer_kernels.py --shape llama3.1-8b --shape llama3.2-1b --tokens --sdpa-tokens 4096 > $R/sdpa.json 2>&1; tail -c 600 $R/sdpa.json; echo
for round in 1 2; do
  if [ $round = 1 ]; then order="p4k p4k-prev"; else order="p4k-prev p4k"; fi
  for s in l8b l1b; do for e in $order; do
  [ $(left) -gt 20 ] || continue
  timeout 40 $RUN .device/engines/$s-$e.engine --weights $R/$s --bench-prefill 4096 --reps 3 --profile > $R/$s-$e-r$round.txt 2>&1
  echo "r$round $s $e: $(grep -o 'TTFT [0-9.]* ms' $R/$s-$e-r$round.txt) $(grep -E 'attention' $R/$s-$e-r$round.txt | awk '{printf "%s=%s ", $1, $4}') $(grep -iE 'error' $R/$s-$e-r$round.txt | head -2)"
done; done; done | tee $R/ab.txt
rm -rf $R/l1b $R/l8b
cat $R/times.txt
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
