#!/usr/bin/env bash
# Device call (run 22): the GPU checks (test/gpu/run.sh: every tiny model and head dim against the host and
# transformers, the 1B against transformers) and the README's tables at HEAD: bench/prefill.sh (prefill against
# transformers + SDPA, GEMMs against cuBLAS, attention against flash SDPA) and bench/decode.sh (batch-1 decode).
cd "$(dirname "$0")/.."
tar xzf .device2/dev.tgz
R=/tmp/res; mkdir -p $R
T0=$(date +%s)
OUT=$R/gpu timeout 200 bash test/gpu/run.sh > $R/gpu.txt 2>&1
echo "gpu rc=$? after $(( $(date +%s) - T0 )) s" >> $R/times.txt
tail -75 $R/gpu.txt | grep -vE "^\s*$" | tail -70
rm -rf $R/gpu/m1b
KEEP_WEIGHTS=1 LENS="512 2048 4096" REPS=3 OUT=$R/p timeout $(( 520 - ($(date +%s) - T0) )) bash bench/prefill.sh > $R/prefill.txt 2>&1
echo "prefill.sh rc=$? after $(( $(date +%s) - T0 )) s" >> $R/times.txt
rm -rf $R/p/l1b $R/p/l8b
OUT=$R/d timeout $(( 570 - ($(date +%s) - T0) )) bash bench/decode.sh > $R/decode.txt 2>&1
echo "decode.sh rc=$? after $(( $(date +%s) - T0 )) s" >> $R/times.txt
rm -rf $R/d/l1b $R/d/l8b
cat $R/times.txt; tail -40 $R/prefill.txt; tail -20 $R/decode.txt
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
