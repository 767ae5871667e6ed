#!/usr/bin/env bash
# Run here (the compiler machine) before test/gpu/run.sh on the GPU machine:
# compiles the engines the GPU checks run into .device/engines (ignored by
# git; carry `.device` to the device) and copies the peers' script.
#
#   test/gpu/prepare.sh [BIN]      # BIN: the build's bin/ (default build/bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/bin}
OUT=.device/engines
mkdir -p "$OUT" .device/bench .scratch
for m in llama llama31 mistral qwen2 qwen3 gpt2; do
  for dt in f32 bf16; do
    "$BIN/kiln" compile test/models/hf/$m --dtype $dt --max-batch 4 --max-seq 128 --quiet -o "$OUT/$m-$dt.engine"
  done
  # RoPE and the KV append inside decode's attention kernel (opt-in).
  "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --append-in-attention --quiet \
    -o "$OUT/$m-bf16-att.engine"
done
# Head dims 24 to 256: f32, bf16, --append-in-attention, and prefill in
# chunks of 32 tokens.
for d in 24 32 48 64 80 96 112 128 256; do
  m=llama-hd$d
  for dt in f32 bf16; do
    "$BIN/kiln" compile test/models/hf/$m --dtype $dt --max-batch 4 --max-seq 128 --quiet -o "$OUT/$m-$dt.engine"
  done
  "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --append-in-attention --quiet \
    -o "$OUT/$m-bf16-att.engine"
  "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --max-num-tokens 32 --quiet \
    -o "$OUT/$m-bf16-c32.engine"
  # P V to f32 precision in the prefill attention: the sharp check of its
  # logic against the host (which keeps P in f32).
  "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --exact-attention --quiet \
    -o "$OUT/$m-bf16-exact.engine"
  # The prefill GEMMs through gemmMma instead of the TMA-fed gemmWs (the
  # default), and through ping-pong gemmWs.
  "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --no-warp-specialize --quiet \
    -o "$OUT/$m-bf16-nows.engine"
  "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --warp-specialize=pingpong \
    --quiet -o "$OUT/$m-bf16-pp.engine"
  # Head dims 64 and 128 take the warp-specialised prefill attention
  # (attentionPrefillWs): its ping-pong over 32-token chunks, and the
  # previous kernel (attentionPrefillMma) in its place.
  if [ $d = 64 ] || [ $d = 128 ]; then
    "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --max-num-tokens 32 \
      --attention-ws=pingpong --quiet -o "$OUT/$m-bf16-ppc32.engine"
    "$BIN/kiln" compile test/models/hf/$m --dtype bf16 --max-batch 4 --max-seq 128 --no-attention-ws --quiet \
      -o "$OUT/$m-bf16-mmaatt.engine"
  fi
done
# Current torch.onnx (dynamo) exports, plain and with past/present KV
# (test/models/onnx/dynamo; f32, the dtype they hold): run.sh binds their
# weights from the export with --weights.
for m in llama mistral qwen2 qwen3 gpt2 llama-kv qwen2-kv qwen3-kv gpt2-kv; do
  "$BIN/kiln" compile test/models/onnx/dynamo/$m/model.onnx --max-seq 128 --quiet -o "$OUT/onnx-$m-f32.engine"
done
# Room for 32 sequences: decode's projections (RoPE and the KV append in
# the QKV epilogue) take the tensor-core GEMM path instead of the GEMV.
"$BIN/kiln" compile test/models/hf/llama --dtype bf16 --max-batch 32 --max-seq 128 --quiet -o "$OUT/llama-bf16-b32.engine"
# The same with gemmMma instead of the TMA-fed gemmWs, and ping-pong gemmWs.
"$BIN/kiln" compile test/models/hf/llama --dtype bf16 --max-batch 32 --max-seq 128 --no-warp-specialize --quiet \
  -o "$OUT/llama-bf16-b32-nows.engine"
"$BIN/kiln" compile test/models/hf/llama --dtype bf16 --max-batch 32 --max-seq 128 --warp-specialize=pingpong \
  --quiet -o "$OUT/llama-bf16-b32-pp.engine"
# Room for 256 positions: decode attention splits a row's keys over up to 4
# blocks (64 keys a split), as many as its context needs each step; with and
# without the append in the attention kernel.
"$BIN/kiln" compile test/models/hf/llama --dtype bf16 --max-batch 4 --max-seq 256 --quiet -o "$OUT/llama-bf16-s256.engine"
"$BIN/kiln" compile test/models/hf/llama --dtype bf16 --max-batch 4 --max-seq 256 --append-in-attention --quiet \
  -o "$OUT/llama-bf16-s256-att.engine"
# GPTQ and AWQ checkpoints (issue 19; test/models/hf/make_quant_models.py,
# written into .device so the engines find them there too): f32 and bf16.
QUANT_VARIANTS="gptq-4bit-g32-sym gptq-4bit-g64-actorder gptq-4bit-perchannel gptq-8bit-g128-v2 gptq-8bit-g32-actorder-sym awq-4bit-g64 awq-4bit-g128"
PY=${KILN_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
"$PY" test/models/hf/make_quant_models.py --out .device/quant --only $QUANT_VARIANTS > /dev/null
rm -rf .device/quant/*-ref
for v in $QUANT_VARIANTS; do
  for dt in f32 bf16; do
    "$BIN/kiln" compile .device/quant/$v --dtype $dt --max-batch 4 --max-seq 128 --quiet -o "$OUT/quant-$v-$dt.engine"
  done
done
# Built for the A100 only: the H100 must compile its sources again (re-JIT).
"$BIN/kiln" compile test/models/hf/llama --dtype bf16 --max-batch 4 --max-seq 128 --target sm_80 --quiet \
  -o "$OUT/llama-bf16-sm80.engine"
# The Llama-3.2-1B shape exactly as peer_decode.py builds it (rope theta 5e5
# without scaling, tied embeddings), header-only: the engine reads no weights.
python3 - <<'PY'
import os, sys
sys.path.insert(0, "scripts")
from make_shape_model import config_for, write_model
c = config_for("llama-3.2-1b")
c.pop("rope_scaling", None)
c.update(rope_theta=500000.0, max_position_embeddings=8192, head_dim=64, tie_word_embeddings=True,
         rms_norm_eps=1e-6)
write_model(".scratch/l1b-peer", c)
PY
"$BIN/kiln" compile .scratch/l1b-peer --max-batch 1 --max-seq 512 --quiet -o "$OUT/l1b.engine"
# The same in f32 compute over the model's bf16 weights, for the 99% check.
"$BIN/kiln" compile .scratch/l1b-peer --dtype f32 --max-batch 1 --max-seq 512 --quiet -o "$OUT/l1b-f32.engine"
cp ../shared/bench/peer_decode.py .device/bench/ 2>/dev/null || cp /work/shared/bench/peer_decode.py .device/bench/
ls -la "$OUT"
