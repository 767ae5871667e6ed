#!/usr/bin/env bash
# Device call: kiln serve under load on the 1B shape (kiln alone: llama-server's
# figures are serve run 1's), greedy loads and a sampled one.
set -uo pipefail
cd "$(dirname "$0")/.."
export SHAPES=l1b MAXB=64 PEERS=0 KEEP_WEIGHTS=1
mkdir -p $OUT/serve
W=.scratch/m1b
[ -f $W/config.json ] || python3 .batch/peer_decode.py --shape llama3.2-1b --save $W --no-time > $OUT/save.log 2>&1
ln -s $PWD/$W $OUT/serve/l1b
LOADS="burst inf 512 fixed
poisson8 8 256 fixed
sharegpt inf 512 sharegpt
sampled inf 512 fixed 0.8" OUT=$OUT/serve timeout 280 bash bench/serve.sh > $OUT/serve.txt 2>&1
echo "serve rc=$?"
tail -30 $OUT/serve.txt
rm -f $OUT/serve/l1b
