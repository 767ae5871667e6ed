#!/usr/bin/env bash
# 2026-12-07 session 27 call 1: quant goldens + GPU vs host; sampler v4 vs host and vs v2 cost; decode GEMM ring depth 4/6/8 at batch 8/64 on 1B and 8B; ncu on 1B decode GEMMs.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p /tmp/o
nvidia-smi --query-gpu=name --format=csv,noheader | tee /tmp/o/gpu.txt
t0=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/o/cmake.log 2>&1
ninja -C build-gpu kiln-run > /tmp/o/build.log 2>&1 || { tail -30 /tmp/o/build.log; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
R=build-gpu/bin/kiln-run
E=.batch/engines
W=/tmp/w1b
python3 .batch/peer_decode.py --shape llama3.2-1b --save $W --no-time > /tmp/o/save.log 2>&1 || tail -5 /tmp/o/save.log
(python3 .batch/peer_decode.py --shape llama3.1-8b --save /tmp/w8b --no-time > /tmp/o/save8.log 2>&1) &
P8=$!
echo "saved 1b $(( $(date +%s) - t0 )) s"
# Issue 19: the quantised tiny models' transformers goldens (float32 on the numpy-dequantised weights) and the GPU engines against the host.
python3 test/models/hf/make_quant_models.py --out /tmp/qm --golden-prompt > /tmp/o/quant-make.log 2>&1 || tail -3 /tmp/o/quant-make.log
python3 test/models/hf/make_tiny_models.py --golden-for /tmp/qm/*-ref > /tmp/o/quant-golden.log 2>&1 || tail -5 /tmp/o/quant-golden.log
mkdir -p /tmp/o/quant-goldens; for d in /tmp/qm/*-ref; do cp $d/golden.json /tmp/o/quant-goldens/$(basename $d).json; done
for e in $E/q-*.engine; do
  timeout 60 $R $e --prompt-ids 1,17,300,42,7,511,128,64,3,99,250,12,480,33,5,200 --max-tokens 32 --reference host > /tmp/o/$(basename $e).ref.txt 2>&1
  echo "$(basename $e) vs host: $(tail -2 /tmp/o/$(basename $e).ref.txt | tr '\n' ' ')"
done
for v in v2 v4; do for e in llama-f32 llama-bf16 gpt2-bf16; do
  timeout 60 $R $E/$e-$v.engine --prompt-ids 1,2,3,4,5,6,7,8 --check-sampling > /tmp/o/$e-$v-sampling.out 2> /tmp/o/$e-$v-sampling.log
  echo "$e sampler $v: $(cat /tmp/o/$e-$v-sampling.out) $(tail -1 /tmp/o/$e-$v-sampling.log)"; grep differ /tmp/o/$e-$v-sampling.log | head -3
done; done
ids=$(python3 -c "import random; r = random.Random(3); print(','.join(str(r.randrange(1000, 120000)) for _ in range(64)))")
for v in s0 v4; do
timeout 60 $R $E/l1b-$v.engine --weights $W --prompt-ids $ids --check-sampling > /tmp/o/l1b-$v-sampling.out 2> /tmp/o/l1b-$v-sampling.log
echo "l1b sampler $v: $(cat /tmp/o/l1b-$v-sampling.out) $(tail -1 /tmp/o/l1b-$v-sampling.log)"; grep differ /tmp/o/l1b-$v-sampling.log | head -3
done
bench() { # name engine weights batch args...
  local name=$1 e=$2 w=$3 b=$4; shift 4
  timeout 90 $R $E/$e.engine --weights $w --bench --batch $b --prompt-len 512 --gen 128 "$@" > /tmp/o/$name.txt 2> /tmp/o/$name.log
  echo "$name: $(grep -m1 -o 'decode.*' /tmp/o/$name.txt || tail -1 /tmp/o/$name.log)"
}
S="--temperature 0.8 --top-p 0.95 --top-k 0"
bench v2-sampled-b1 l1b-s0 $W 1 $S; bench v4-sampled-b1 l1b-v4 $W 1 $S; bench greedy-b1 l1b-s0 $W 1
bench v2-sampled-b64 l1b-s0 $W 64 $S; bench v4-sampled-b64 l1b-v4 $W 64 $S
for s in 0 8 0 8; do bench l1b-b64-s$s l1b-s$s $W 64; done
for s in 0 8; do bench l1b-b8-s$s l1b-s$s $W 8; done
for s in 0 8; do
  timeout 60 $R $E/l1b-s$s.engine --weights $W --bench --batch 64 --prompt-len 512 --gen 32 --profile > /tmp/o/prof-l1b-s$s.txt 2>&1
  echo "== profile l1b s$s"; sed -n '/kernel /,$p' /tmp/o/prof-l1b-s$s.txt | head -10
done
echo "t $(( $(date +%s) - t0 )) s"
timeout 100 ncu --kernel-name regex:'^decode_(18|20|22)_matmul$' --launch-skip 48 --launch-count 3 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
  $R $E/l1b-s0.engine --weights $W --bench --batch 64 --prompt-len 512 --gen 4 > /tmp/o/ncu-gemm.txt 2>&1
grep -E 'decode_(18|20|22)_matmul|Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Grid Size|Block Size|Warp Cycles Per Issued|Theoretical Occ|Dynamic Shared' /tmp/o/ncu-gemm.txt | head -45
echo "t $(( $(date +%s) - t0 )) s"
wait $P8
for s in 0 8 0 8; do bench l8b-b64-s$s l8b-s$s /tmp/w8b 64; done
for s in 0 8; do bench l8b-b8-s$s l8b-s$s /tmp/w8b 8; done
timeout 60 $R $E/l8b-s8.engine --weights /tmp/w8b --bench --batch 64 --prompt-len 512 --gen 32 --profile > /tmp/o/prof-l8b-s8.txt 2>&1
echo "== profile l8b s8"; sed -n '/kernel /,$p' /tmp/o/prof-l8b-s8.txt | head -10
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && tar czf $OUT/o.tgz . ; ls $OUT
