#!/usr/bin/env bash
# Run here before bench/decode.sh on the GPU machine: compiles the Llama-3.2-1B
# and Llama-3.1-8B shapes exactly as peer_decode.py builds them (header-only
# weights; the engines read none) into .device/engines, and copies the peers'
# script. Carry `.device` to the device.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/bin}
mkdir -p .device/engines .device/bench .scratch
python3 - <<'PY'
import sys
sys.path.insert(0, "scripts")
from make_shape_model import config_for, write_model
for shape, name, hd in (("llama-3.2-1b", "l1b", 64), ("llama-3.1-8b", "l8b", 128)):
    c = config_for(shape)
    c.pop("rope_scaling", None)
    c.update(rope_theta=500000.0, max_position_embeddings=8192, head_dim=hd, rms_norm_eps=1e-6)
    write_model(f".scratch/{name}-peer", c)
PY
for m in l1b l8b; do
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 1 --max-seq 512 --quiet -o .device/engines/$m.engine
done
# For the A/B in decode.sh: RoPE and the KV append inside the attention.
for m in l1b l8b; do
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 1 --max-seq 512 --append-in-attention --quiet \
    -o .device/engines/$m-att.engine
done
# f32 compute over the same bf16 weights (the precise engine: 128/128
# teacher-forced on the 1B shape, test/gpu/run.sh).
for m in l1b l8b; do
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 1 --max-seq 512 --dtype f32 --quiet -o .device/engines/$m-f32.engine
done
cp ../shared/bench/peer_decode.py .device/bench/ 2>/dev/null || cp /work/shared/bench/peer_decode.py .device/bench/
ls -la .device/engines
# bench/prefill.sh: the whole prompt (up to 4096 tokens, or 8 x 512) in one
# prefill step, and the default chunking (512 tokens per step).
for m in l1b l8b; do
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 8 --max-seq 4096 --max-num-tokens 4096 --quiet \
    -o .device/engines/$m-p4k.engine
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 1 --max-seq 4096 --quiet -o .device/engines/$m-p512.engine
  # The same one-step engine with mma.sync GEMMs instead of wgmma, with
  # gemmMma's wgmma main loop instead of the TMA-fed gemmWs (the default),
  # and with ping-pong gemmWs (A/B).
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 8 --max-seq 4096 --max-num-tokens 4096 --no-wgmma --quiet \
    -o .device/engines/$m-p4k-mma.engine
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 8 --max-seq 4096 --max-num-tokens 4096 --no-warp-specialize \
    --quiet -o .device/engines/$m-p4k-nows.engine
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 8 --max-seq 4096 --max-num-tokens 4096 \
    --warp-specialize=pingpong --quiet -o .device/engines/$m-p4k-pp.engine
  # Cooperative gemmWs in block pairs sharing an operand by multicast.
  "$BIN/kiln" compile .scratch/$m-peer --max-batch 8 --max-seq 4096 --max-num-tokens 4096 --cluster \
    --quiet -o .device/engines/$m-p4k-cl.engine
done
cp ../shared/bench/peer_prefill.py .device/bench/ 2>/dev/null || cp /work/shared/bench/peer_prefill.py .device/bench/
