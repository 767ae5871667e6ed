#!/usr/bin/env bash
# Prefill speed (time to first token, bf16), kiln and its peers on the same
# random weights in one device call (issue 16). bench/prepare.sh compiles the
# engines here first; carry `.device`.
#
#   - peer_kernels.py: the measured bf16 peak (an 8192^3 torch.matmul),
#     cuBLAS at kiln's prefill GEMM shapes, flash SDPA at 4k tokens;
#   - for each shape: peer_decode.py --save writes the random-weight model,
#     peer_prefill.py times transformers + SDPA on it at 512, 2048 and 4096
#     tokens; kiln-run --bench-prefill times the engine that prefills a
#     whole prompt in one step (max_num_tokens 4096) at the same lengths, a
#     batch of 8 x 512 (engines planned before 2026-12-06 held one
#     sequence a prefill step, and their 8 x 512 rows wrote past it; the
#     runtime now refuses that), and the default engine (chunks of 512), with the
#     per-kernel profile of the 4096-token prefill; and the one-step engine
#     compiled --no-wgmma (GEMMs on mma.sync), --no-warp-specialize
#     (gemmMma's wgmma in place of the TMA-fed gemmWs),
#     --warp-specialize=pingpong and --cluster (gemmWs in block pairs)
#     at the longest length, where their engines were compiled.
#
# Prints the tables (bench/prefill_table.py); raw output under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kiln-prefill}
mkdir -p "$OUT"
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$OUT/cmake.log" 2>&1 && ninja -C build-gpu kiln-run > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
RUN=build-gpu/bin/kiln-run
LENS=${LENS-512 2048 4096}
args=()
for s in ${SHAPES-l1b l8b}; do args+=(--shape $([ $s = l1b ] && echo llama3.2-1b || echo llama3.1-8b)); done
python3 bench/peer_kernels.py "${args[@]}" --tokens $LENS > "$OUT/peer-kernels.json" 2> "$OUT/peer-kernels.log" \
  || tail -5 "$OUT/peer-kernels.log"
for s in ${SHAPES-l1b l8b}; do
  shape=$([ $s = l1b ] && echo llama3.2-1b || echo llama3.1-8b)
  python3 .device/bench/peer_decode.py --shape $shape --save "$OUT/$s" --no-time > "$OUT/$s-save.log" 2>&1 \
    || tail -5 "$OUT/$s-save.log"
  python3 .device/bench/peer_prefill.py "$OUT/$s" $LENS > "$OUT/$s-peer-prefill.json" 2> "$OUT/$s-peer-prefill.log" \
    || tail -5 "$OUT/$s-peer-prefill.log"
  lens=$(echo $LENS | tr ' ' ,)
  $RUN .device/engines/$s-p4k.engine --weights "$OUT/$s" --bench-prefill $lens --reps ${REPS-5} --profile \
    > "$OUT/$s-kiln-prefill.txt" 2> "$OUT/$s-kiln-prefill.log" || tail -3 "$OUT/$s-kiln-prefill.log"
  $RUN .device/engines/$s-p4k.engine --weights "$OUT/$s" --bench-prefill 512 --batch 8 --reps ${REPS-5} \
    >> "$OUT/$s-kiln-prefill.txt" 2>> "$OUT/$s-kiln-prefill.log" || tail -3 "$OUT/$s-kiln-prefill.log"
  $RUN .device/engines/$s-p512.engine --weights "$OUT/$s" --bench-prefill $lens --reps ${REPS-5} \
    > "$OUT/$s-kiln-prefill-chunked.txt" 2>> "$OUT/$s-kiln-prefill.log" || tail -3 "$OUT/$s-kiln-prefill.log"
  # GEMMs through mma.sync instead of wgmma, and the warp-specialised
  # wgmma GEMMs, at the longest length.
  [ -f .device/engines/$s-p4k-mma.engine ] && timeout 120 $RUN .device/engines/$s-p4k-mma.engine --weights "$OUT/$s" \
    --bench-prefill ${LENS##* } --reps ${REPS-5} --profile > "$OUT/$s-kiln-prefill-mma.txt" 2>> "$OUT/$s-kiln-prefill.log"
  [ -f .device/engines/$s-p4k-nows.engine ] && timeout 120 $RUN .device/engines/$s-p4k-nows.engine --weights "$OUT/$s" \
    --bench-prefill ${LENS##* } --reps ${REPS-5} --profile > "$OUT/$s-kiln-prefill-nows.txt" 2>> "$OUT/$s-kiln-prefill.log"
  [ -f .device/engines/$s-p4k-pp.engine ] && timeout 120 $RUN .device/engines/$s-p4k-pp.engine --weights "$OUT/$s" \
    --bench-prefill ${LENS##* } --reps ${REPS-5} --profile > "$OUT/$s-kiln-prefill-pp.txt" 2>> "$OUT/$s-kiln-prefill.log"
  [ -f .device/engines/$s-p4k-cl.engine ] && timeout 120 $RUN .device/engines/$s-p4k-cl.engine --weights "$OUT/$s" \
    --bench-prefill ${LENS##* } --reps ${REPS-5} --profile > "$OUT/$s-kiln-prefill-cl.txt" 2>> "$OUT/$s-kiln-prefill.log"
  [ -n "${KEEP_WEIGHTS-}" ] || rm -rf "$OUT/$s"/*.safetensors
done
python3 bench/prefill_table.py "$OUT" | tee "$OUT/table.txt"
