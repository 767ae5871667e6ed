#!/usr/bin/env bash
# Device call: build; epilogue-warp engines (-ew) against the host on tiny models; 1B 1024-token check against
# transformers; A/B at 4096 tokens (one step and 512-token chunks) in two rounds, orders swapped.
cd "$(dirname "$0")/.."
tar xzf .device2/dev.tgz
R=/tmp/res; mkdir -p $R
T0=$(date +%s); left() { echo $(( ${BUDGET:-300} - ($(date +%s) - T0) )); }
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $R/cmake.log 2>&1 && ninja -C build-gpu kiln-run > $R/build.log 2>&1 || tail -20 $R/build.log
echo "built: $(left) s left" >> $R/times.txt
RUN=build-gpu/bin/kiln-run
long=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(512)) for _ in range(90)))")
for d in 32 64 80 128; do for e in bf16 bf16-c32; do
  echo "hd$d $e: $(timeout 30 $RUN .device/engines/llama-hd$d-$e.engine --prompt-ids $long --max-tokens 16 --reference host --tolerance 2e-2 --min-identical 4 2>&1 | grep -E '^(PASS|FAIL)|rror' | head -2 | tr '\n' ' ')" >> $R/smoke.txt
done; done
cat $R/smoke.txt
timeout 60 python3 .device/bench/peer_decode.py --shape llama3.2-1b --save $R/l1b --golden $R/l1b/golden.json --prompt 1024 --no-time > $R/g1024.log 2>&1 || tail -3 $R/g1024.log
for e in p4k p4k-wg1 p4k-prev; do
  echo "1024 $e: $(timeout 60 $RUN .device/engines/l1b-$e.engine --weights $R/l1b --golden $R/l1b/golden.json --tolerance 1e-1 --min-identical 0 --teacher-forced --min-agreement 0.85 2>&1 | grep -E '^(PASS|FAIL)|teacher|rror' | tr '\n' ' ')" >> $R/big-check.txt
done
cat $R/big-check.txt
echo "after checks: $(left) s left" >> $R/times.txt
timeout 90 python3 .device/bench/peer_decode.py --shape llama3.1-8b --save $R/l8b --no-time > $R/l8b-save.log 2>&1 || tail -3 $R/l8b-save.log
echo "after save: $(left) s left" >> $R/times.txt
for round in 1 2; do
  if [ $round = 1 ]; then order="p4k p4k-wg1 p4k-prev p512 p512-prev"; else order="p4k-prev p4k-wg1 p4k p512-prev p512"; fi
  for s in l8b l1b; do for e in $order; do
  [ $(left) -gt 20 ] || continue
  timeout 40 $RUN .device/engines/$s-$e.engine --weights $R/$s --bench-prefill 4096 --reps 3 --profile > $R/$s-$e-r$round.txt 2>&1
  echo "r$round $s $e: $(grep -o 'TTFT [0-9.]* ms' $R/$s-$e-r$round.txt) $(grep -E '_matmul|attention' $R/$s-$e-r$round.txt | awk '{printf "%s=%s ", $1, $4}')"
done; done; done | tee $R/ab.txt
rm -rf $R/l1b $R/l8b
echo "after A/B: $(left) s left" >> $R/times.txt
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
