#!/usr/bin/env bash
# 2026-12-07 session 27 call 5: the sampler v7 (mass histograms in three 14-bit pieces by native 32-bit atomics) against v6 (main).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p /tmp/o
nvidia-smi --query-gpu=name --format=csv,noheader | tee /tmp/o/gpu.txt
t0=$(date +%s)
(cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/o/cmake.log 2>&1 && ninja -C build-gpu kiln-run > /tmp/o/build.log 2>&1; echo $? > /tmp/o/build.rc) &
PB=$!
(python3 .batch/peer_decode.py --shape llama3.2-1b --save /tmp/w1b --no-time > /tmp/o/save.log 2>&1) &
PS=$!
nvcc -arch=sm_90a -O3 -std=c++17 -o /tmp/sb7 bench/sampler_bench.cu > /tmp/o/nvcc68.log 2>&1 || tail -5 /tmp/o/nvcc68.log
nvcc -arch=sm_90a -O3 -std=c++17 -o /tmp/sb6 .batch/sampler_bench_v6.cu > /tmp/o/nvcc64.log 2>&1 || tail -5 /tmp/o/nvcc64.log
for v in 6 7 6 7; do echo "== v$v"; /tmp/sb$v 128256 1,32 | tee -a /tmp/o/sb$v.txt; done
wait $PB; wait $PS
echo "build+save $(( $(date +%s) - t0 )) s rc $(cat /tmp/o/build.rc)"
R=build-gpu/bin/kiln-run
E=.batch/engines
ids=$(python3 -c "import random; r = random.Random(3); print(','.join(str(r.randrange(1000, 120000)) for _ in range(64)))")
for v in v7; do
  for e in llama-f32 llama-bf16 gpt2-bf16; do
    timeout 60 $R $E/$e-$v.engine --prompt-ids 1,2,3,4,5,6,7,8 --check-sampling > /tmp/o/$e-$v-sampling.out 2> /tmp/o/$e-$v-sampling.log
    echo "$e sampler $v: $(cat /tmp/o/$e-$v-sampling.out) $(tail -1 /tmp/o/$e-$v-sampling.log)"; grep -i differ /tmp/o/$e-$v-sampling.log | head -3
  done
  timeout 90 $R $E/l1b-$v.engine --weights /tmp/w1b --prompt-ids $ids --check-sampling > /tmp/o/l1b-$v-sampling.out 2> /tmp/o/l1b-$v-sampling.log
  echo "l1b sampler $v: $(cat /tmp/o/l1b-$v-sampling.out) $(tail -1 /tmp/o/l1b-$v-sampling.log)"; grep -i differ /tmp/o/l1b-$v-sampling.log | head -3
done
bench() { # name engine batch args...
  local name=$1 e=$2 b=$3; shift 3
  timeout 90 $R $E/$e.engine --weights /tmp/w1b --bench --batch $b --prompt-len 512 --gen 128 "$@" > /tmp/o/$name.txt 2> /tmp/o/$name.log
  echo "$name: $(grep -m1 -o 'decode.*' /tmp/o/$name.txt | sed 's/bytes\/step (weights + KV), //; s/(host-timed)//' || tail -1 /tmp/o/$name.log)"
}
S="--temperature 0.8 --top-p 0.95 --top-k 0"
for r in 1 2; do
  bench greedy-b1-r$r l1b-base 1
  for v in v6 v7; do bench $v-sampled-b1-r$r l1b-$v 1 $S; done
  bench greedy-b64-r$r l1b-base 64
  for v in v6 v7; do bench $v-sampled-b64-r$r l1b-$v 64 $S; done
done
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && tar czf $OUT/o.tgz . ; ls $OUT
