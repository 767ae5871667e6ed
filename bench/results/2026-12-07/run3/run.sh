#!/usr/bin/env bash
# 2026-12-07 session 27 call 2 (issue 17): --pdl-trigger (every kernel triggers the next after its wait; GEMMs prefetch
# their first tile's weights into L2 before theirs) against the base engine, 1B and 8B at batch 1/8/64, overlap on/off;
# ncu of the GPU sampler at batch 1 (where sampled decode costs ~1 ms a token).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p /tmp/o
nvidia-smi --query-gpu=name --format=csv,noheader | tee /tmp/o/gpu.txt
t0=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/o/cmake.log 2>&1
ninja -C build-gpu kiln-run > /tmp/o/build.log 2>&1 || { tail -30 /tmp/o/build.log; exit 1; }
R=build-gpu/bin/kiln-run
E=.batch/engines
python3 .batch/peer_decode.py --shape llama3.2-1b --save /tmp/w1b --no-time > /tmp/o/save.log 2>&1 || tail -5 /tmp/o/save.log
(python3 .batch/peer_decode.py --shape llama3.1-8b --save /tmp/w8b --no-time > /tmp/o/save8.log 2>&1) &
P8=$!
echo "build+save 1b $(( $(date +%s) - t0 )) s"
bench() { # name engine weights batch args...
  local name=$1 e=$2 w=$3 b=$4; shift 4
  timeout 90 $R $E/$e.engine --weights $w --bench --batch $b --prompt-len 512 --gen 128 "$@" > /tmp/o/$name.txt 2> /tmp/o/$name.log
  echo "$name: $(grep -m1 -o 'decode.*' /tmp/o/$name.txt | sed 's/bytes\/step (weights + KV), //; s/(host-timed)//' || tail -1 /tmp/o/$name.log)"
}
# Correctness first: the trigger engine's GPU tokens against the host's.
timeout 120 $R $E/l1b-pdl.engine --weights /tmp/w1b --prompt-ids 1,2,3,4,5,6,7,8 --max-tokens 8 --reference host --overlap on > /tmp/o/l1b-pdl-ref.txt 2>&1; tail -2 /tmp/o/l1b-pdl-ref.txt
timeout 120 $R $E/l1b-pdl.engine --weights /tmp/w1b --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12 --max-tokens 16 --check-batching --overlap on > /tmp/o/l1b-pdl-cb.txt 2>&1; tail -1 /tmp/o/l1b-pdl-cb.txt
for r in 1 2; do
  for b in 1 8 64; do
    bench l1b-b$b-base-off-r$r l1b-base /tmp/w1b $b --overlap off
    bench l1b-b$b-base-on-r$r l1b-base /tmp/w1b $b --overlap on
    bench l1b-b$b-pdl-on-r$r l1b-pdl /tmp/w1b $b --overlap on
  done
done
echo "t $(( $(date +%s) - t0 )) s"
timeout 100 ncu --kernel-name kiln_sample --launch-skip 2 --launch-count 1 --section SpeedOfLight --section WarpStateStats \
  --section LaunchStats --section Occupancy --section SchedulerStats \
  $R $E/l1b-base.engine --weights /tmp/w1b --bench --batch 1 --prompt-len 64 --gen 6 --temperature 0.8 --top-p 0.95 --top-k 0 > /tmp/o/ncu-sample.txt 2>&1
grep -E "kiln_sample|Duration|Elapsed Cycles|SM Active|DRAM Throughput|Warp Cycles Per Issued|Stall|Issue Slot|No Eligible|Block Size|Grid Size|Registers Per" /tmp/o/ncu-sample.txt | head -30
echo "t $(( $(date +%s) - t0 )) s"
wait $P8
for b in 1 8 64; do
  bench l8b-b$b-base-on l8b-base /tmp/w8b $b --overlap on
  bench l8b-b$b-pdl-on l8b-pdl /tmp/w8b $b --overlap on
done
bench l8b-b64-base-off l8b-base /tmp/w8b 64 --overlap off
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && tar czf $OUT/o.tgz . ; ls $OUT
