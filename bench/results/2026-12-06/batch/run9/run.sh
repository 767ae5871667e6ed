#!/usr/bin/env bash
# Device call (issue 17, batch run 9): the step's RoPE table (e578599). The GPU suite (SKIP_1B: every tiny model,
# CUDA against the host, with and without --append-in-attention, 32-sequence batches through the tensor-core
# GEMM's RoPE-pair epilogue), then bench/batch.sh kiln alone at batch 1, 8, 64 with the A/B engine compiled
# --no-rope-tables, and the per-kernel profile at 64.
cd "$(dirname "$0")/.."
R=$OUT/res; mkdir -p $R
T0=$(date +%s)
[ -d .device/engines ] || tar xJf .batch/device.txz
SKIP_1B=1 OUT=$R/gpu timeout 280 bash test/gpu/run.sh > $R/gpu-suite.txt 2>&1
echo "gpu suite rc $? after $(( $(date +%s) - T0 )) s" | tee $R/times.txt
grep -c PASS $R/gpu-suite.txt; grep -E "FAIL|rror" $R/gpu-suite.txt | head -10
OUT=$R/batch SHAPES="l1b l8b" BATCHES="1 8 64" PEERS=0 PROFILE="64" timeout 290 bash bench/batch.sh
echo "batch rc $? after $(( $(date +%s) - T0 )) s" | tee -a $R/times.txt
rm -rf /tmp/w-l1b /tmp/w-l8b
