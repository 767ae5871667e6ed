#!/usr/bin/env bash
# Device call 1: the GPU suite (with the 1B shape: its sampler check at 128256 logits),
# then decode at batch 64 on the 1B, greedy and sampled (GPU sampler / host sampler).
set -uo pipefail
cd "$(dirname "$0")/.."
tar xJf .batch/device.txz
S=$OUT/suite; mkdir -p $S
SKIP_1B=0 OUT=$S timeout 420 bash test/gpu/run.sh > $S/run.txt 2>&1
echo "suite rc=$?"
tail -75 $S/run.txt
W=$S/m1b
E=.batch/serve/l1b.engine
R=build-gpu/bin/kiln-run
B=$OUT/bench; mkdir -p $B
for mode in greedy sampled host-sampled; do
  case $mode in
    greedy) args="";;
    sampled) args="--temperature 0.8 --top-p 0.95 --top-k 0";;
    host-sampled) args="--temperature 0.8 --top-p 0.95 --top-k 0 --host-sampling";;
  esac
  for b in 1 64; do
    timeout 60 $R $E --weights $W --bench --batch $b --prompt-len 512 --gen 128 $args > $B/$mode-b$b.txt 2> $B/$mode-b$b.log
    echo "$mode b$b: $(grep -m1 -i 'tok/s' $B/$mode-b$b.txt || tail -1 $B/$mode-b$b.log)"
  done
done
cd $OUT && tar czf results1.tgz suite/*.txt suite/*.log suite/*.out bench 2>/dev/null; rm -rf suite bench
