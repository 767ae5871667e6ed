#!/usr/bin/env bash
# session 29 call 1: KV layout read test; 1B batch-64 baseline; ncu full on attention + GEMMs
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p /tmp/o
nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader | tee /tmp/o/gpu.txt
t0=$(date +%s)
(cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/o/cmake.log 2>&1 && ninja -C build-gpu kiln-run > /tmp/o/build.log 2>&1; echo $? > /tmp/o/build.rc) &
PB=$!
(python3 .batch/peer_decode.py --shape llama3.2-1b --save /tmp/w1b --no-time > /tmp/o/save.log 2>&1) &
PS=$!
nvcc -arch=sm_90a -O3 -std=c++17 -o /tmp/kvb bench/kv_read_bench.cu > /tmp/o/nvcc.log 2>&1 || tail -5 /tmp/o/nvcc.log
for p in 16 32; do /tmp/kvb 64 576 $p | tee -a /tmp/o/kv-read.txt; done
/tmp/kvb 8 576 16 | tee -a /tmp/o/kv-read.txt
wait $PB; wait $PS
echo "build+save $(( $(date +%s) - t0 )) s rc $(cat /tmp/o/build.rc)"
R=build-gpu/bin/kiln-run
E=.batch/engines
for r in 1 2; do
timeout 90 $R $E/l1b-b64.engine --weights /tmp/w1b --bench --batch 64 --prompt-len 512 --gen 128 > /tmp/o/l1b-b64-r$r.txt 2>&1
grep -m1 -o 'decode.*' /tmp/o/l1b-b64-r$r.txt
done
timeout 120 ncu --kernel-name regex:'^decode_(18|19|20|22)_' --launch-skip 64 --launch-count 4 --set full --import-source no \
  $R $E/l1b-b64.engine --weights /tmp/w1b --bench --batch 64 --prompt-len 512 --gen 4 > /tmp/o/ncu-full.txt 2>&1
grep -E '^  decode_|Duration|DRAM Throughput|SM Active|Elapsed Cycles|Stall|L2 Hit|Achieved Occ' /tmp/o/ncu-full.txt | head -60
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && tar czf $OUT/o.tgz . ; ls $OUT
