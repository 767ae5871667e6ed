#!/usr/bin/env bash
# Serving under load (issue 18): kiln serve beside llama.cpp's llama-server on
# the same random weights (the Llama-3.1-8B shape, or SHAPES=l1b), the same
# requests from bench/serve.py, in one device call.
#
#   bench/serve.sh --prepare [BIN]   here: compile the engine into
#                                    .batch/serve, copy cpp-httplib's
#                                    header and shared libraries (Debian's,
#                                    with the brotli libraries they need)
#                                    there and the peers into .batch/peers
#                                    (as bench/batch.sh --prepare does);
#                                    carry .batch/serve and .batch/peers
#   bench/serve.sh                   on the GPU machine; raw output and the
#                                    table under $OUT
#
# Loads (LOADS, each "NAME RATE NUM_PROMPTS MIX [TEMPERATURE]"; greedy unless
# a temperature is given, then top_p 0.95 and a seed per request): an offline burst of 512
# requests of 512 random prompt tokens and 256 output tokens (ignore_eos),
# Poisson arrivals at moderate rates, and a ShareGPT-like length mix. Both
# servers hold MAXB sequences at once: kiln's engine is compiled with
# --max-batch MAXB; llama-server runs -ngl 99 -fa on -np MAXB -c MAXB x 768
# -b 2048 -ub 512.
set -uo pipefail
cd "$(dirname "$0")/.."
MAXB=${MAXB:-256}
if [ "${1:-}" = "--prepare" ]; then
  set -e
  BIN=${2:-build/bin}
  mkdir -p .batch/serve/lib .batch/serve/include .batch/serve/pkgconfig .batch/peers .scratch
  [ -d .scratch/l8b-peer ] || bash bench/prepare.sh "$BIN" > /dev/null
  for s in ${SHAPES-l8b}; do
    "$BIN/kiln" compile .scratch/$s-peer --max-batch "$MAXB" --max-seq 1024 --quiet -o .batch/serve/$s.engine
  done
  cp /usr/include/httplib.h .batch/serve/include/
  for l in libcpp-httplib.so.0.11 libbrotlienc.so.1 libbrotlidec.so.1 libbrotlicommon.so.1; do
    cp -L /usr/lib/x86_64-linux-gnu/$l .batch/serve/lib/
  done
  cp .batch/serve/lib/libcpp-httplib.so.0.11 .batch/serve/lib/libcpp-httplib.so  # (a copy: links may not travel)
  # A pkg-config file with a relative prefix: CMake's find works from
  # wherever the folder lands.
  cat > .batch/serve/pkgconfig/cpp-httplib.pc <<'PC'
prefix=${pcfiledir}/..
includedir=${prefix}/include
libdir=${prefix}/lib

Name: cpp-httplib
Description: cpp-httplib (Debian's build), carried to the GPU machine
Version: 0.11.4
Libs: -L${libdir} -lcpp-httplib -pthread
Cflags: -I${includedir}
PC
  # (Without Debian's -DCPPHTTPLIB_OPENSSL_SUPPORT and friends: the GPU
  # machine may lack OpenSSL's headers. The server's classes are laid out
  # the same either way -- the one member the define adds to Request comes
  # last -- and the library still loads libssl and libcrypto there.)
  SHARED=${SHARED:-../shared}
  [ -d "$SHARED" ] || SHARED=/work/shared
  cp "$SHARED/peers/llamacpp.sh" "$SHARED/peers/hf_to_gguf.py" "$SHARED/peers/llama.cpp-cuda-sm90a-bin.tar.xz" .batch/peers/
  rm -rf .batch/peers/llama.cpp && mkdir -p .batch/peers/llama.cpp
  tar xzf "$SHARED/peers/llama.cpp-src.tgz" -C .batch/peers llama.cpp/gguf-py
  cp "$SHARED/bench/peer_decode.py" .batch/
  du -sh .batch/serve .batch/peers
  exit 0
fi

OUT=${OUT:-/tmp/kiln-serve-bench}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
export PKG_CONFIG_PATH=$PWD/.batch/serve/pkgconfig LD_LIBRARY_PATH=$PWD/.batch/serve/lib:${LD_LIBRARY_PATH:-}
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
  > "$OUT/cmake.log" 2>&1 && ninja -C build-gpu kiln-serve > "$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/cmake.log" "$OUT/build.log"; exit 1; }
LL=/tmp/llamacpp
[ "${PEERS:-1}" = 0 ] || [ -x $LL/bin/llama-server ] || bash .batch/peers/llamacpp.sh install $LL \
  > "$OUT/llamacpp-install.log" 2>&1 || tail -20 "$OUT/llamacpp-install.log"
[ "${PEERS:-1}" = 0 ] || eval "$(bash .batch/peers/llamacpp.sh env $LL)"
LOADS=${LOADS:-"burst inf 512 fixed
poisson4 4 256 fixed
poisson8 8 256 fixed
sharegpt inf 512 sharegpt
sampled inf 512 fixed 0.8"}

# wait_for URL LOG PID: until the server answers /health (or exits).
wait_for() {
  for _ in $(seq 600); do
    curl -sf "$1/health" > /dev/null 2>&1 && return 0
    kill -0 "$3" 2> /dev/null || { tail -20 "$2"; return 1; }
    sleep 0.5
  done
  tail -20 "$2"
  return 1
}
# load SERVER URL: every load against one server.
load() {
  echo "$LOADS" | while read -r name rate n mix temp; do
    [ -n "$name" ] || continue
    timeout 900 python3 bench/serve.py --url "$2" --num-prompts "$n" --input-len 512 --output-len 256 --mix "$mix" \
      --rate "$rate" --vocab "$VOCAB" --temperature "${temp:-0}" --label "$1 $name" --json "$OUT/results.jsonl" 2>&1 \
      | tee -a "$OUT/$1.txt"
  done
}
for s in ${SHAPES-l8b}; do
  shape=$([ $s = l1b ] && echo llama3.2-1b || echo llama3.1-8b)
  W=$OUT/$s
  [ -f "$W/config.json" ] || python3 .batch/peer_decode.py --shape $shape --save "$W" --no-time > "$OUT/$s-save.log" 2>&1 \
    || tail -5 "$OUT/$s-save.log"
  VOCAB=$(python3 -c "import json; print(json.load(open('$W/config.json'))['vocab_size'])")
  # The random-weight model has no tokenizer: a placeholder one decodes ids to text.
  python3 bench/placeholder_tokenizer.py "$W" > /dev/null
  build-gpu/bin/kiln-serve .batch/serve/$s.engine --weights "$W" --tokenizer "$W/tokenizer.json" --port 8100 \
    > "$OUT/$s-kiln-serve.log" 2>&1 &
  pid=$!
  if wait_for http://127.0.0.1:8100 "$OUT/$s-kiln-serve.log" $pid; then
    load "$s-kiln" http://127.0.0.1:8100
  fi
  kill -TERM $pid; wait $pid
  if [ "${PEERS:-1}" != 0 ]; then
    [ -f /tmp/$s.gguf ] || LLAMACPP_DIR=$PWD/.batch/peers bash .batch/peers/llamacpp.sh gguf "$W" /tmp/$s.gguf \
      > "$OUT/$s-gguf.log" 2>&1 || tail -5 "$OUT/$s-gguf.log"
    $LL/bin/llama-server -m /tmp/$s.gguf -ngl 99 -fa on -np "$MAXB" -c $((MAXB * 768)) -b 2048 -ub 512 \
      --host 127.0.0.1 --port 8101 > "$OUT/$s-llama-server.log" 2>&1 &
    pid=$!
    if wait_for http://127.0.0.1:8101 "$OUT/$s-llama-server.log" $pid; then
      load "$s-llama-server" http://127.0.0.1:8101
    fi
    kill -TERM $pid; wait $pid
  fi
  [ -n "${KEEP_WEIGHTS-}" ] || rm -rf "$W"/*.safetensors
done
python3 - "$OUT/results.jsonl" <<'PY' | tee "$OUT/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'server load':32} {'ok':>5} {'req/s':>7} {'out tok/s':>10} {'TTFT p50':>9} {'p90':>8} {'p99':>8} "
      f"{'TPOT p50':>9} {'p99':>7} {'ITL p99':>8}")
for r in rows:
    print(f"{r['label']:32} {r['completed']:5} {r['request_per_s']:7.2f} {r['output_tok_per_s']:10.1f} "
          f"{r['ttft_ms_p50']:9.1f} {r['ttft_ms_p90']:8.1f} {r['ttft_ms_p99']:8.1f} {r['tpot_ms_p50']:9.2f} "
          f"{r['tpot_ms_p99']:7.2f} {r['itl_ms_p99']:8.2f}")
PY
