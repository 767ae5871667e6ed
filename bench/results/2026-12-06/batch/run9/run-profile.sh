#!/usr/bin/env bash
# Per-kernel profiles of a batch-64 step, RoPE tables on and off (tarred).
cd "$(dirname "$0")/.."
R=/tmp/res27; mkdir -p $R
[ -d .batch/engines ] || tar xzf .batch/engines.tgz -C .batch
[ -x build-gpu/bin/kiln-run ] || { cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $R/cmake.log 2>&1 && ninja -C build-gpu kiln-run > $R/build.log 2>&1; }
for s in l1b l8b; do
  shape=$([ $s = l1b ] && echo llama3.2-1b || echo llama3.1-8b)
  W=/tmp/w-$s
  [ -f $W/config.json ] || python3 .batch/peer_decode.py --shape $shape --save $W --no-time > $R/$s-save.log 2>&1
  for e in 256 256nt; do
    timeout 60 build-gpu/bin/kiln-run .batch/engines/$s-b$e.engine --weights $W --bench --batch 64 --prompt-len 512 --gen 32 --profile > $R/$s-b$e-profile64.txt 2>&1
  done
done
nvidia-smi --query-gpu=name --format=csv,noheader > $R/gpu.txt
tar czf $OUT/res27.tgz -C /tmp res27
