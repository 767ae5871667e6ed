#!/usr/bin/env bash
# Device call (issue 16, run 25): the 8B and 1B prefill engines at 956833d -- default (gemmWs, whole-tile
# epilogue staging), --cluster (gemmWs in block pairs, operand multicast; never run on a GPU before) and
# --epilogue-warpgroup -- the 1B at 1024 tokens against transformers for each, cuBLAS (hot and L2-cold) before
# and after kiln, A/B at 4096 tokens in two rounds, orders swapped.
cd "$(dirname "$0")/.."
R=/tmp/res; mkdir -p $R
T0=$(date +%s); left() { echo $(( ${BUDGET:-420} - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader > $R/gpu.txt
cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $R/cmake.log 2>&1 && ninja -C build-gpu kiln-run > $R/build.log 2>&1 || tail -20 $R/build.log
RUN=build-gpu/bin/kiln-run
E=.batch/ab
echo "after build: $(left) s left" >> $R/times.txt
timeout 90 python3 .batch/peer_decode.py --shape llama3.2-1b --save $R/l1b --golden $R/l1b/golden.json --prompt 1024 --no-time > $R/g1024.log 2>&1 || tail -3 $R/g1024.log
for e in def cl ewg; do
  echo "1024 $e: $(timeout 60 $RUN $E/l1b-$e.engine --weights $R/l1b --golden $R/l1b/golden.json --tolerance 1e-1 --min-identical 0 --teacher-forced --min-agreement 0.85 2>&1 | grep -E '^(PASS|FAIL)|teacher|max|rror' | tr '\n' ' ')"
done | tee $R/check.txt
echo "after checks: $(left) s left" >> $R/times.txt
timeout 120 python3 .batch/peer_decode.py --shape llama3.1-8b --save $R/l8b --no-time > $R/l8b-save.log 2>&1 || tail -3 $R/l8b-save.log
echo "after save: $(left) s left" >> $R/times.txt
cub() {
  timeout 100 python3 bench/peer_kernels.py --shape llama3.1-8b --shape llama3.2-1b --tokens 4096 --sdpa-tokens 4096 > $R/peer-kernels-$1.json 2> $R/peer-kernels-$1.log || tail -3 $R/peer-kernels-$1.log
  python3 -c "
import json; d=json.load(open('$R/peer-kernels-$1.json')); print('peak', d['peak_tflops'])
for s in ('llama3.1-8b','llama3.2-1b'):
  for r in d[s]['gemm']: print(s, r['name'], r['M'], r['N'], r['K'], 'hot us', round(r['ms']*1e3,1), 'cold us', round(r['ms_cold']*1e3,1))
" | tee $R/cublas-$1.txt
}
cub before
echo "after cublas: $(left) s left" >> $R/times.txt
for round in 1 2; do
  for s in l8b l1b; do
    order="def cl ewg"
    [ $round = 2 ] && order="ewg cl def"
    for e in $order; do
      [ $(left) -gt 60 ] || continue
      timeout 40 $RUN $E/$s-$e.engine --weights $R/$s --bench-prefill 4096 --reps 3 --profile > $R/$s-$e-r$round.txt 2>&1
      echo "r$round $s $e: $(grep -o 'TTFT [0-9.]* ms' $R/$s-$e-r$round.txt) $(grep -E '_matmul +gemm ' $R/$s-$e-r$round.txt | awk '{printf "%s=%s ", $1, $4}') $(grep -iE 'error' $R/$s-$e-r$round.txt | head -2)"
    done
  done
done | tee $R/ab.txt
[ $(left) -gt 50 ] && cub after
rm -rf $R/l1b $R/l8b
cat $R/times.txt
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
