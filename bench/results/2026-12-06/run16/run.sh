#!/usr/bin/env bash
# Device call: after the memory-plan change (prefill per-sequence buffers for max_batch sequences): tiny engines
# against the host, the 1B at 1024 tokens against transformers, and an 8 x 512 prefill step on the 1B.
cd "$(dirname "$0")/.."
tar xzf .device2/dev.tgz
R=/tmp/res; mkdir -p $R
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $R/cmake.log 2>&1 && ninja -C build-gpu kiln-run > $R/build.log 2>&1 || tail -20 $R/build.log
RUN=build-gpu/bin/kiln-run
long=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(512)) for _ in range(90)))")
for m in llama gpt2 qwen2; do
  echo "$m bf16: $(timeout 30 $RUN .device/engines/$m-bf16.engine --golden test/models/hf/$m/golden.json --reference host --tolerance 2e-2 --min-identical 16 2>&1 | grep -E '^(PASS|FAIL)|rror' | head -2 | tr '\n' ' ')" >> $R/smoke.txt
done
echo "llama b32: $(timeout 30 $RUN .device/engines/llama-bf16-b32.engine --golden test/models/hf/llama/golden.json --reference host --tolerance 2e-2 --min-identical 16 2>&1 | grep -E '^(PASS|FAIL)|rror' | head -2 | tr '\n' ' ')" >> $R/smoke.txt
for d in 64 128; do
  echo "hd$d bf16: $(timeout 30 $RUN .device/engines/llama-hd$d-bf16.engine --prompt-ids $long --max-tokens 16 --reference host --tolerance 2e-2 --min-identical 4 2>&1 | grep -E '^(PASS|FAIL)|rror' | head -2 | tr '\n' ' ')" >> $R/smoke.txt
done
cat $R/smoke.txt
timeout 60 python3 .device/bench/peer_decode.py --shape llama3.2-1b --save $R/l1b --golden $R/l1b/golden.json --prompt 1024 --no-time > $R/g1024.log 2>&1 || tail -3 $R/g1024.log
echo "1024 p4k: $(timeout 60 $RUN .device/engines/l1b-p4k.engine --weights $R/l1b --golden $R/l1b/golden.json --tolerance 1e-1 --min-identical 0 --teacher-forced --min-agreement 0.85 2>&1 | grep -E '^(PASS|FAIL)|teacher|rror' | tr '\n' ' ')" | tee $R/big-check.txt
timeout 60 $RUN .device/engines/l1b-p4k.engine --weights $R/l1b --bench-prefill 512 --batch 8 --reps 3 2>&1 | tail -2 | tee $R/p8x512.txt
rm -rf $R/l1b
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
