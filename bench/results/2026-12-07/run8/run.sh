#!/usr/bin/env bash
# session 29 call 2: GPU suite with attentionDecodeMma + decode GEMMs in clusters; A/B/C on 1B/8B:
#   old = --decode-attention=tiled --no-decode-cluster-split, att = --no-decode-cluster-split, new = default
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
tar xJf .batch/device.txz
mkdir -p /tmp/o
(python3 .batch/peer_decode.py --shape llama3.1-8b --save /tmp/w8b --no-time > /tmp/o/save8.log 2>&1) &
P8=$!
S=/tmp/o/suite; mkdir -p $S
SKIP_1B=0 OUT=$S timeout 300 bash test/gpu/run.sh > /tmp/o/suite.txt 2>&1
echo "suite rc=$? after $(( $(date +%s) - t0 )) s"
tail -80 /tmp/o/suite.txt | grep -vE "^\s*$" | tail -75
W1=$S/m1b
[ -f $W1/config.json ] || { python3 .batch/peer_decode.py --shape llama3.2-1b --save /tmp/w1b --no-time > /tmp/o/save1.log 2>&1; W1=/tmp/w1b; }
R=build-gpu/bin/kiln-run
E=.batch/engines
bench() { # name engine weights batch
  timeout 90 $R $E/$2.engine --weights $3 --bench --batch $4 --prompt-len 512 --gen 128 > /tmp/o/$1.txt 2>&1
  echo "$1: $(grep -m1 -o 'decode.*' /tmp/o/$1.txt | sed 's/bytes\/step (weights + KV), //; s/(host-timed)//' || tail -2 /tmp/o/$1.txt)"
}
for r in 1 2; do
  vs="old att new"; [ $r = 2 ] && vs="new att old"
  for v in $vs; do for b in 64 8 1; do bench l1b-$v-b$b-r$r l1b-$v $W1 $b; done; done
done
echo "t $(( $(date +%s) - t0 )) s"
timeout 60 $R $E/l1b-new.engine --weights $W1 --bench --batch 64 --prompt-len 512 --gen 32 --profile > /tmp/o/prof-l1b-new.txt 2>&1
timeout 60 $R $E/l1b-old.engine --weights $W1 --bench --batch 64 --prompt-len 512 --gen 32 --profile > /tmp/o/prof-l1b-old.txt 2>&1
for v in old new; do echo "== profile $v"; sed -n '/kernel /,$p' /tmp/o/prof-l1b-$v.txt | head -11; done
timeout 100 ncu --kernel-name regex:'^decode_(19|20|22)_' --launch-skip 48 --launch-count 3 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  $R $E/l1b-new.engine --weights $W1 --bench --batch 64 --prompt-len 512 --gen 4 > /tmp/o/ncu-l1b-new.txt 2>&1
grep -E '^  decode_|Duration|DRAM Throughput|SM Active|Elapsed Cycles|Registers Per|Achieved Occ' /tmp/o/ncu-l1b-new.txt | head -24
wait $P8
echo "saved 8b $(( $(date +%s) - t0 )) s"
for r in 1 2; do
  vs="old att new"; [ $r = 2 ] && vs="new att old"
  for v in $vs; do for b in 64 8; do bench l8b-$v-b$b-r$r l8b-$v /tmp/w8b $b; done; done
done
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && rm -rf suite/m1b && tar czf $OUT/o.tgz --exclude='*.safetensors' --exclude='*.engine' --exclude='*.bin' . ; ls -la $OUT
