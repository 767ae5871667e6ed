#!/usr/bin/env bash
# Device call: bench/prefill.sh (the README's prefill table, GEMMs against cuBLAS, attention against flash SDPA)
# and bench/decode.sh (batch-1 decode against v8), default engines at HEAD.
cd "$(dirname "$0")/.."
tar xzf .device2/dev.tgz
R=/tmp/res; mkdir -p $R
T0=$(date +%s)
KEEP_WEIGHTS=1 LENS="512 2048 4096" REPS=3 OUT=$R/p bash bench/prefill.sh > $R/prefill.txt 2>&1
echo "prefill.sh rc=$? after $(( $(date +%s) - T0 )) s" >> $R/times.txt
rm -rf $R/p/l1b $R/p/l8b
OUT=$R/d timeout $(( 560 - ($(date +%s) - T0) )) bash bench/decode.sh > $R/decode.txt 2>&1
echo "decode.sh rc=$? after $(( $(date +%s) - T0 )) s" >> $R/times.txt
rm -rf $R/d/l1b $R/d/l8b
cat $R/times.txt; tail -40 $R/prefill.txt; tail -20 $R/decode.txt
tar czf $OUT/res.tgz --exclude='*.safetensors' -C /tmp res
