#!/usr/bin/env bash
# Device call (issues 18 and 17): bench/serve.sh on the 1B shape (kiln serve beside llama-server, reduced loads),
# then Nsight Compute's details of a batch-64 decode step's QKV, O and down GEMMs and attention.
cd "$(dirname "$0")/.."
S=/tmp/serve-out; mkdir -p $S
T0=$(date +%s)
OUT=$S SHAPES=l1b MAXB=64 KEEP_WEIGHTS=1 LOADS="burst inf 256 fixed
poisson8 8 128 fixed
sharegpt inf 256 sharegpt" timeout 370 bash bench/serve.sh > $S/run.log 2>&1
echo "serve.sh rc $? after $(( $(date +%s) - T0 )) s" >> $S/run.log
tail -12 $S/run.log
ninja -C build-gpu kiln-run > $S/build-run.log 2>&1
timeout 130 ncu --set detailed --kernel-name regex:'decode_(18|20|22)_matmul|decode_19_paged_attention' --launch-skip 8 \
  --launch-count 4 build-gpu/bin/kiln-run .batch/serve/l1b.engine --weights $S/l1b --bench --batch 64 --prompt-len 512 \
  --gen 4 > $S/ncu-details.txt 2>&1
echo "ncu rc $? after $(( $(date +%s) - T0 )) s" >> $S/run.log
grep -E "decode_|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Registers Per|Achieved Occupancy|Block Limit" $S/ncu-details.txt | head -60
rm -rf $S/l1b/*.safetensors
tar czf $OUT/serve.tgz --exclude='*.safetensors' --exclude='*.gguf' -C /tmp serve-out
