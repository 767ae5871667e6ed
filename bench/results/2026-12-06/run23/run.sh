#!/usr/bin/env bash
# Device call (run 23): qwen3 bf16 --check-batching --kv-pages 6 failed in run 22 (prompt 4 at token 14):
# with and without the prefix cache, with larger pools (fewer preemptions), f32 compute.
cd "$(dirname "$0")/.."
tar xzf .device2/dq.tgz
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/cmake.log 2>&1 && ninja -C build-gpu kiln-run > /tmp/build.log 2>&1 || tail -20 /tmp/build.log
RUN=build-gpu/bin/kiln-run
for e in qwen3-bf16 qwen3-bf16-att qwen3-f32 llama-bf16; do
  m=${e%%-*}
  for pool in "--kv-pages 6" "--kv-pages 6 --no-prefix-cache" "--kv-pages 7" "--kv-pages 8" "--kv-pages 10" ""; do
    echo "$e [$pool]: $(timeout 20 $RUN .device/engines/$e.engine --golden test/models/hf/$m/golden.json --check-batching $pool 2>&1 | head -1 | cut -c1-120)"
  done
done | tee $OUT/dq.txt
