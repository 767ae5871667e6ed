#!/usr/bin/env bash
# GPU checks, run on the GPU machine from the repository root with .device
# carried (test/gpu/prepare.sh made it here):
#
#   1. builds the runtime and kiln-run without the compiler (no MLIR there);
#   2. every tiny model's f32 engine against its transformers golden: the 32
#      greedy tokens and the last logits within 1e-3 of the largest;
#   3. every tiny model's bf16 engine, CUDA against the host device (the
#      reference kernels): logits within 2e-2 of the largest, the first 16
#      greedy tokens identical (and, for information, against transformers).
#      2e-2, not 0: the tensor-core prefill attention rounds the softmax
#      probabilities to bf16 before P V (as FlashAttention does), the host
#      keeps them in f32 (measured: 1.04e-2 on the tiny Llama, whose peaked
#      logits make attention sharp);
#   4. the same with the engines compiled --append-in-attention (RoPE and
#      the KV append inside decode's attention kernel), against the host;
#   5. an engine compiled for sm_80 only: the runtime compiles its CUDA
#      sources for the H100 with NVRTC (re-JIT), then as 3.; and three
#      requests through the C API's executor (the step loop on its own
#      thread, as in kiln serve) against the host device's tokens;
#   6. continuous batching on the GPU (llama, qwen3, gpt2 bf16, and with
#      --append-in-attention): six prompts in one call, with the engine's
#      pool and with 6 pages, give each prompt's greedy tokens from a run
#      alone; and a llama engine with room for 32 sequences (decode through
#      the tensor-core GEMM, RoPE and the KV append in its epilogue), alone
#      against the host and batched, and compiled --no-warp-specialize and
#      --warp-specialize=pingpong;
#      and a 200-token prompt on an engine for 256 positions, whose decode
#      attention splits each row's keys over 4 blocks, against the host;
#   6b. the current torch.onnx (dynamo) exports of test/models/onnx/dynamo,
#      plain and with past/present KV (f32): against transformers, and CUDA
#      against the host;
#   7. head dims 24 to 256 (llama-hdD): see below; and the seven GPTQ/AWQ
#      tiny checkpoints, f32 against their transformers goldens and bf16
#      against the host;
#   8. the Llama-3.2-1B shape with peer_decode.py's random weights, against
#      transformers' float32 greedy golden (from the bf16 weights, 128
#      positions, end-of-sequence masked on both sides):
#      - the engine compiled --dtype f32 (f32 compute over the bf16
#        weights): teacher-forced top-1 agreement at least 99% of all
#        positions;
#      - the bf16 engine: at least 90% of the positions where transformers'
#        own bf16 keeps its f32 argmax (golden_long.py records it). On these
#        near-flat logits (init 0.02, 128256 ids) the top two are often
#        within bf16 noise: transformers bf16 itself agrees on ~96%, so 99%
#        is out of reach of any bf16 computation; 90% catches real faults
#        (a broken attention gave 0%). Both figures print;
#      - the device memory in use against the manifest.
#
# Prints a table last; logs go to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kiln-gpu}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"

echo "== build (runtime only)"
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Release > "$OUT/cmake.log" 2>&1 || { cat "$OUT/cmake.log"; exit 1; }
ninja -C build-gpu kiln-run > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
RUN=build-gpu/bin/kiln-run

declare -a rows
fail=0
row() { rows+=("$(printf '%-8s %-14s %s' "$1" "$2" "$3")"); }
for m in ${TINY_MODELS-llama llama31 mistral qwen2 qwen3 gpt2}; do
  g=test/models/hf/$m/golden.json
  line=$($RUN .device/engines/$m-f32.engine --golden $g --tolerance 1e-3 2> "$OUT/$m-f32.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-f32.log")"
  row $m "f32-vs-hf" "$line"; [[ "$line" != PASS* ]] && fail=1
  line=$($RUN .device/engines/$m-bf16.engine --golden $g --reference host --tolerance 2e-2 --min-identical 16 \
           2> "$OUT/$m-vs-host.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-vs-host.log")"
  row $m "bf16-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
  line=$($RUN .device/engines/$m-bf16.engine --golden $g --tolerance 5e-2 --min-identical 0 \
           2> "$OUT/$m-bf16.log" | head -1)
  row $m "bf16-vs-hf" "$line"
  line=$($RUN .device/engines/$m-bf16-att.engine --golden $g --reference host --tolerance 2e-2 --min-identical 16 \
           2> "$OUT/$m-att-vs-host.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-att-vs-host.log")"
  row $m "att-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
done

# Current torch.onnx (dynamo) exports (issue 21; f32, the dtype they hold):
# the engine against the transformers golden of the same model, and CUDA
# against the host device.
for m in ${ONNX_EXPORTS-llama mistral qwen2 qwen3 gpt2 llama-kv qwen2-kv qwen3-kv gpt2-kv}; do
  w=test/models/onnx/dynamo/$m/model.onnx
  g=test/models/hf/${m%-kv}/golden.json
  [ -f .device/engines/onnx-$m-f32.engine ] || continue
  line=$($RUN .device/engines/onnx-$m-f32.engine --weights $w --golden $g --tolerance 1e-3 \
           2> "$OUT/onnx-$m-f32.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/onnx-$m-f32.log")"
  row "x-$m" "onnx-f32-vs-hf" "$line"; [[ "$line" != PASS* ]] && fail=1
  line=$($RUN .device/engines/onnx-$m-f32.engine --weights $w --golden $g --reference host --tolerance 1e-3 \
           2> "$OUT/onnx-$m-vs-host.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/onnx-$m-vs-host.log")"
  row "x-$m" "onnx-f32-host" "$line"; [[ "$line" != PASS* ]] && fail=1
done

# GPTQ and AWQ checkpoints (dequantized when the engine loads): f32 against
# transformers on the dequantized weights (test/models/hf/quant), bf16
# against the host device.
for e in .device/engines/quant-*-f32.engine; do
  [ -f "$e" ] || continue
  v=$(basename "$e" -f32.engine); v=${v#quant-}
  line=$($RUN "$e" --golden test/models/hf/quant/$v.golden.json --tolerance 1e-3 2> "$OUT/quant-$v-f32.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/quant-$v-f32.log")"
  row "${v:0:8}" "q-f32-vs-hf" "$v: $line"; [[ "$line" != PASS* ]] && fail=1
  line=$($RUN .device/engines/quant-$v-bf16.engine --golden test/models/hf/quant/$v.golden.json --reference host \
           --tolerance 2e-2 --min-identical 16 2> "$OUT/quant-$v-bf16.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/quant-$v-bf16.log")"
  row "${v:0:8}" "q-bf16-vs-host" "$v: $line"; [[ "$line" != PASS* ]] && fail=1
done

# SiLU's and sigmoid's branch-free reciprocal against the correctly rounded one.
if nvcc -std=c++17 -arch=sm_90a -I codegen/cuda test/gpu/rcp_one_plus.cu -o "$OUT/rcp_one_plus" \
     > "$OUT/rcp.log" 2>&1; then
  line=$("$OUT/rcp_one_plus" 2>&1 | head -1)
else
  line="ERROR $(tail -1 "$OUT/rcp.log")"
fi
row device "rcpOnePlus" "$line"; [[ "$line" != PASS* ]] && fail=1

# An engine built for sm_80 only: re-JIT with NVRTC, then the same check.
line=$($RUN .device/engines/llama-bf16-sm80.engine --golden test/models/hf/llama/golden.json --reference host \
         --tolerance 2e-2 --min-identical 16 2> "$OUT/llama-sm80.log" | head -1)
[ -z "$line" ] && line="ERROR $(tail -1 "$OUT/llama-sm80.log")"
grep -q "with NVRTC" "$OUT/llama-sm80.log" || line="FAIL not re-JIT: $(grep -m1 kiln-run "$OUT/llama-sm80.log")"
row llama "sm80-rejit" "$line"; [[ "$line" != PASS* ]] && fail=1

# The C API's request executor runs the step loop on a thread of its own, as
# kiln serve does: on the GPU, three requests get the host device's greedy
# tokens (2026-12-06 serve run 1: every request failed there, the CUDA
# context current only on the thread that loaded the model).
EX=build-gpu/bin/kiln-example-generate
ninja -C build-gpu kiln-example-generate >> "$OUT/build.log" 2>&1
ask() { $EX .device/engines/llama-f32.engine --ids 1,2,3,4,5 --max-tokens 16 --requests 3 --device $1 \
          2> "$OUT/executor-$1.log" | grep '^request' | sort; }
want=$(ask host)
got=$(ask cuda)
if [ -n "$want" ] && [ "$want" = "$got" ]; then
  line="PASS 3 requests through the executor's thread: the host device's greedy tokens"
else
  line="FAIL cuda: ${got:-$(tail -1 "$OUT/executor-cuda.log")} / host: ${want:-$(tail -1 "$OUT/executor-host.log")}"
fi
row llama "executor" "${line:0:150}"; [[ "$line" != PASS* ]] && fail=1

# The engine's GPU sampler against the host's sampler on the same logits
# (kiln-run --check-sampling: the model's logits and synthetic rows with
# ties, flat and spiky, under greedy, temperature, top-k, top-p, min-p,
# penalties, bans and log-probabilities): at least 99% of the draws agree
# (the host's probabilities are double, the kernel's float), the
# log-probabilities within 2e-3 and the top lists identical.
for e in llama-f32 llama-bf16 gpt2-bf16; do
  m=${e%-*}
  line=$($RUN .device/engines/$e.engine --golden test/models/hf/$m/golden.json --check-sampling \
           2> "$OUT/$e-sampling.log" | tee "$OUT/$e-sampling.out" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$e-sampling.log")"
  row $m "${e#*-} sampling" "${line:0:200}"; [[ "$line" != PASS* ]] && fail=1
done
# Seeded sampling end to end: the same request sampled on the GPU and
# with the logits brought back to the host sampler, on the GPU's logits.
samp="--prompt-ids 1,2,3,4,5 --max-tokens 24 --temperature 0.9 --top-p 0.95 --top-k 40 --repetition-penalty 1.2 --seed 11"
a=$($RUN .device/engines/llama-bf16.engine $samp 2> "$OUT/sample-gpu.log" | head -1)
b=$($RUN .device/engines/llama-bf16.engine $samp --host-sampling 2> "$OUT/sample-host.log" | head -1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then line="PASS seeded request: the same 24 tokens sampled on the GPU and on the host"
else line="FAIL gpu: ${a:-$(tail -1 "$OUT/sample-gpu.log")} / host: ${b:-$(tail -1 "$OUT/sample-host.log")}"; fi
row llama "seeded-sample" "${line:0:200}"; [[ "$line" != PASS* ]] && fail=1

# A sequence preempted and resumed recomputes its KV by prefill, not decode
# (other kernels, other bf16 rounding): its tokens may part from its run
# alone at a near-tie, the two tokens' logits within 2e-2 of the largest
# (H100 2026-12-06 run 23: qwen3 with 6-8 pages, llama with 7; f32 compute
# and pools without preemption identical).
ties="--max-tie-gap 2e-2"
for m in ${BATCH_MODELS-llama qwen3 gpt2}; do
  for e in bf16 bf16-att; do
    for pool in "" "--kv-pages 6"; do
      line=$($RUN .device/engines/$m-$e.engine --golden test/models/hf/$m/golden.json --check-batching $pool $ties \
               2> "$OUT/$m-$e-batching.log" | head -1)
      [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-$e-batching.log")"
      row $m "$e batching${pool:+ 6p}" "${line:0:150}"; [[ "$line" != PASS* ]] && fail=1
    done
  done
done

# Decode through the tensor-core GEMM (max batch 32).
line=$($RUN .device/engines/llama-bf16-b32.engine --golden test/models/hf/llama/golden.json --reference host \
         --tolerance 2e-2 --min-identical 16 2> "$OUT/llama-b32.log" | head -1)
[ -z "$line" ] && line="ERROR $(tail -1 "$OUT/llama-b32.log")"
row llama "b32-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
line=$($RUN .device/engines/llama-bf16-b32.engine --golden test/models/hf/llama/golden.json --check-batching $ties \
         2> "$OUT/llama-b32-batching.log" | head -1)
[ -z "$line" ] && line="ERROR $(tail -1 "$OUT/llama-b32-batching.log")"
row llama "b32 batching" "${line:0:150}"; [[ "$line" != PASS* ]] && fail=1
# Long contexts: a 200-token prompt and 48 decode steps (contexts 200 to
# 248, so each decode row's keys take 4 splits of the engine's 64-key
# chunks, merged by the last split), against the host.
long200=$(python3 -c "import random; r = random.Random(7); print(','.join(str(r.randrange(512)) for _ in range(200)))")
for e in s256 s256-att; do
  line=$($RUN .device/engines/llama-bf16-$e.engine --prompt-ids $long200 --max-tokens 48 --reference host \
           --tolerance 2e-2 --min-identical 8 2> "$OUT/llama-$e.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/llama-$e.log")"
  row llama "$e-200-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
done
# gemmMma (kiln compile --no-warp-specialize) and ping-pong gemmWs
# (--warp-specialize=pingpong) in place of the default cooperative gemmWs,
# prefill and decode projections.
for e in nows pp; do
  line=$($RUN .device/engines/llama-bf16-b32-$e.engine --golden test/models/hf/llama/golden.json --reference host \
           --tolerance 2e-2 --min-identical 16 2> "$OUT/llama-b32-$e.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/llama-b32-$e.log")"
  row llama "b32-$e-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
done

# Head dims 24 to 256 (test/models/hf/llama-hdD; issue 16: lanes once
# dropped the dims of a head not a multiple of 32): f32 against transformers,
# bf16 and --append-in-attention against the host at the golden's prompt
# (prefill, then 31 decode steps teacher-forced on the host's tokens, see
# below), and a 90-token prompt against the host in
# one prefill step and in chunks of 32 tokens (the prefill attention over
# several key tiles, and over keys already in the cache; at head dims 64
# and 128 also the warp-specialised kernel's ping-pong in chunks, and
# attentionPrefillMma in its place, --no-attention-ws): logits within 2e-2,
# the first 4 greedy tokens identical (after 90 positions of bf16 rounding
# in a different order, a near-tie may part the continuations later).
long=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(512)) for _ in range(90)))")
for d in ${HEAD_DIMS-24 32 48 64 80 96 112 128 256}; do
  m=llama-hd$d; g=test/models/hf/$m/golden.json
  [ -f .device/engines/$m-bf16.engine ] || continue
  line=$($RUN .device/engines/$m-f32.engine --golden $g --tolerance 1e-3 2> "$OUT/$m-f32.log" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-f32.log")"
  row hd$d "f32-vs-hf" "$line"; [[ "$line" != PASS* ]] && fail=1
  # Decode against the host: teacher-forced on the host's greedy tokens,
  # every disagreement a near-tie: the host's token within the logits'
  # tolerance of the engine's argmax (each logit may be off by it; H100
  # 2026-12-06 run 6: gaps 0 but hd32's 1.19e-2, whose logits are within
  # 9.9e-3). Free-running greedy continuations part at the first such tie
  # the two devices break differently (run 4: every such step's gap 0).
  # The row shows the verdict line, then the agreement.
  tie="--teacher-forced --min-agreement 0 --min-identical 0"
  verdict() { echo "$(grep -m1 -E '^(PASS|FAIL)' "$1") ($(head -1 "$1"))"; }
  for e in bf16 bf16-att; do
    $RUN .device/engines/$m-$e.engine --golden $g --reference host --tolerance 2e-2 $tie --max-tie-gap 2e-2 \
      > "$OUT/$m-$e-vs-host.out" 2> "$OUT/$m-$e-vs-host.log"
    line=$(verdict "$OUT/$m-$e-vs-host.out")
    [[ "$line" == " ("* ]] && line=""
    [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-$e-vs-host.log")"
    row hd$d "$e-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
  done
  # --exact-attention (P V in two bf16 parts, f32 precision): the prompt's
  # logits within 6.5e-3 of the host's (measured: 0 on hd48, hd64 and
  # hd112, 4.5-6.2e-3 on the others; the rounded-P engines 0.7-1.7e-2), a
  # disagreement within 8e-3 (run 6: at most 6.0e-3).
  if [ -f .device/engines/$m-bf16-exact.engine ]; then
    $RUN .device/engines/$m-bf16-exact.engine --golden $g --reference host --tolerance 6.5e-3 $tie \
      --max-tie-gap 8e-3 > "$OUT/$m-exact-vs-host.out" 2> "$OUT/$m-exact-vs-host.log"
    line=$(verdict "$OUT/$m-exact-vs-host.out")
    [[ "$line" == " ("* ]] && line=""
    [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-exact-vs-host.log")"
    row hd$d "exact-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
  fi
  for e in bf16 bf16-c32 bf16-nows bf16-pp bf16-ppc32 bf16-mmaatt; do
    [ -f .device/engines/$m-$e.engine ] || continue
    line=$($RUN .device/engines/$m-$e.engine --prompt-ids $long --max-tokens 16 --reference host --tolerance 2e-2 \
             --min-identical 4 2> "$OUT/$m-$e-long.log" | head -1)
    [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/$m-$e-long.log")"
    row hd$d "$e-90-vs-host" "$line"; [[ "$line" != PASS* ]] && fail=1
  done
done

if [ "${SKIP_1B:-0}" != 1 ] && [ -f .device/engines/l1b.engine ]; then
  echo "== Llama-3.2-1B shape with random weights (peer_decode.py)"
  python3 .device/bench/peer_decode.py --shape llama3.2-1b --save "$OUT/m1b" --golden "$OUT/m1b/golden.json" \
    --prompt 128 --no-time > "$OUT/peer1b.log" 2>&1 || tail -20 "$OUT/peer1b.log"
  python3 test/gpu/golden_long.py "$OUT/m1b" "$OUT/m1b/golden.json" "$OUT/m1b/golden128.json" --new 128 \
    > "$OUT/golden128.log" 2>&1 || tail -20 "$OUT/golden128.log"
  row l1b "hf-bf16" "$(tail -1 "$OUT/golden128.log")"
  $RUN .device/engines/l1b.engine --weights "$OUT/m1b" --golden "$OUT/m1b/golden128.json" --tolerance 1e-1 \
    --min-identical 0 --teacher-forced --min-agreement 0.9 --memory-report > "$OUT/l1b.out" 2> "$OUT/l1b.log"
  rc=$?
  cat "$OUT/l1b.out"
  tail -2 "$OUT/l1b.log"
  row l1b "bf16-vs-hf" "$(grep -E '^(PASS|FAIL)' "$OUT/l1b.out" || echo "ERROR $(tail -1 "$OUT/l1b.log")")"
  row l1b "bf16 teacher" "$(grep teacher "$OUT/l1b.out" | tr '\n' ' ')"
  row l1b "memory" "$(grep memory "$OUT/l1b.out")"
  $RUN .device/engines/l1b-f32.engine --weights "$OUT/m1b" --golden "$OUT/m1b/golden128.json" --tolerance 1e-3 \
    --min-identical 0 --teacher-forced --min-agreement 0.99 > "$OUT/l1b-f32.out" 2> "$OUT/l1b-f32.log"
  rc32=$?
  cat "$OUT/l1b-f32.out"
  tail -2 "$OUT/l1b-f32.log"
  row l1b "f32-vs-hf" "$(grep -E '^(PASS|FAIL)' "$OUT/l1b-f32.out" || echo "ERROR $(tail -1 "$OUT/l1b-f32.log")")"
  row l1b "f32 teacher" "$(grep teacher "$OUT/l1b-f32.out")"
  line=$($RUN .device/engines/l1b.engine --weights "$OUT/m1b" --golden "$OUT/m1b/golden128.json" --check-sampling \
           2> "$OUT/l1b-sampling.log" | tee "$OUT/l1b-sampling.out" | head -1)
  [ -z "$line" ] && line="ERROR $(tail -1 "$OUT/l1b-sampling.log")"
  row l1b "sampling" "${line:0:200}"; [[ "$line" != PASS* ]] && fail=1
  [ $rc32 -ne 0 ] && fail=1
  [ $rc -ne 0 ] && fail=1
fi

echo
echo "model    check          result"
for r in "${rows[@]}"; do echo "$r"; done
exit $fail
