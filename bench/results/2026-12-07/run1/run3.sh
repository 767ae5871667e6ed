#!/usr/bin/env bash
# Device call 3: the sampler v2 (fixed-point masses, 11/11/10-bit digits) against the host,
# and decode at batch 1 and 64 on the 1B, greedy and sampled.
set -uo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name --format=csv,noheader | tee $OUT/gpu.txt
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $OUT/cmake.log 2>&1
ninja -C build-gpu kiln-run > $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
R=build-gpu/bin/kiln-run
W=.scratch/m1b
[ -f $W/config.json ] || python3 .batch/peer_decode.py --shape llama3.2-1b --save $W --no-time > $OUT/save.log 2>&1 || tail -5 $OUT/save.log
for e in llama-f32 llama-bf16 gpt2-bf16; do
  $R .batch/new/$e.engine --prompt-ids 1,2,3,4,5,6,7,8 --check-sampling > $OUT/$e-sampling.out 2> $OUT/$e-sampling.log
  echo "$e: $(cat $OUT/$e-sampling.out)"; grep differ $OUT/$e-sampling.log | head -8
done
ids=$(python3 -c "import random; r = random.Random(3); print(','.join(str(r.randrange(1000, 120000)) for _ in range(64)))")
$R .batch/new/l1b.engine --weights $W --prompt-ids $ids --check-sampling > $OUT/l1b-sampling.out 2> $OUT/l1b-sampling.log
echo "l1b: $(cat $OUT/l1b-sampling.out)"; grep differ $OUT/l1b-sampling.log | head -20
E=.batch/serve/l1b.engine
for mode in greedy sampled host-sampled; do
  case $mode in
    greedy) args="";;
    sampled) args="--temperature 0.8 --top-p 0.95 --top-k 0";;
    host-sampled) args="--temperature 0.8 --top-p 0.95 --top-k 0 --host-sampling";;
  esac
  for b in 1 64; do
    [ $mode = host-sampled ] && [ $b = 64 ] && continue
    timeout 60 $R $E --weights $W --bench --batch $b --prompt-len 512 --gen 128 $args > $OUT/$mode-b$b.txt 2> $OUT/$mode-b$b.log
    echo "$mode b$b: $(grep -m1 -i 'tok/s' $OUT/$mode-b$b.txt || tail -1 $OUT/$mode-b$b.log)"
  done
done
