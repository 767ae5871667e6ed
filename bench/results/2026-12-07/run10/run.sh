#!/usr/bin/env bash
# session 29 call 4: QKV (RoPE pairs, gemmMma) split over clusters (new3), and gate/up in 64x128 tiles too (new4), against old and new2.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
mkdir -p /tmp/o
(cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > /tmp/o/cmake.log 2>&1 && ninja -C build-gpu kiln-run > /tmp/o/build.log 2>&1; echo $? > /tmp/o/build.rc) &
PB=$!
python3 .batch/peer_decode.py --shape llama3.2-1b --save /tmp/w1b --no-time > /tmp/o/save1.log 2>&1
(python3 .batch/peer_decode.py --shape llama3.1-8b --save /tmp/w8b --no-time > /tmp/o/save8.log 2>&1) &
P8=$!
wait $PB
echo "build+save1 $(( $(date +%s) - t0 )) s rc $(cat /tmp/o/build.rc)"
R=build-gpu/bin/kiln-run
E=.batch/engines
bench() { # name engine weights batch
  timeout 90 $R $E/$2.engine --weights $3 --bench --batch $4 --prompt-len 512 --gen 128 > /tmp/o/$1.txt 2>&1
  echo "$1: $(grep -m1 -o 'decode.*' /tmp/o/$1.txt | sed 's/bytes\/step (weights + KV), //; s/(host-timed)//' || tail -2 /tmp/o/$1.txt)"
}
ids=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(1000, 120000)) for _ in range(32)))")
for v in new3 new4; do
  timeout 120 $R $E/l1b-$v.engine --weights /tmp/w1b --prompt-ids $ids --max-tokens 48 --check-batching --max-tie-gap 2e-2 > /tmp/o/l1b-$v-batching.txt 2>&1
  echo "l1b $v check-batching rc=$?: $(tail -2 /tmp/o/l1b-$v-batching.txt)"
done
for r in 1 2; do
  vs="old new2 new3 new4"; [ $r = 2 ] && vs="new4 new3 new2 old"
  for v in $vs; do for b in 64 8; do bench l1b-$v-b$b-r$r l1b-$v /tmp/w1b $b; done; done
done
echo "t $(( $(date +%s) - t0 )) s"
timeout 60 $R $E/l1b-new3.engine --weights /tmp/w1b --bench --batch 64 --prompt-len 512 --gen 32 --profile > /tmp/o/prof-l1b-new3.txt 2>&1
echo "== profile l1b new3"; sed -n '/kernel /,$p' /tmp/o/prof-l1b-new3.txt | head -11
wait $P8
echo "saved 8b $(( $(date +%s) - t0 )) s"
timeout 150 $R $E/l8b-new3.engine --weights /tmp/w8b --prompt-ids $ids --max-tokens 48 --check-batching --max-tie-gap 2e-2 > /tmp/o/l8b-new3-batching.txt 2>&1
echo "l8b new3 check-batching rc=$?: $(tail -2 /tmp/o/l8b-new3-batching.txt)"
for r in 1 2; do
  vs="old new2 new3 new4"; [ $r = 2 ] && vs="new4 new3 new2 old"
  for v in $vs; do for b in 64; do bench l8b-$v-b$b-r$r l8b-$v /tmp/w8b $b; done; done
done
timeout 90 $R $E/l8b-new3.engine --weights /tmp/w8b --bench --batch 64 --prompt-len 512 --gen 32 --profile > /tmp/o/prof-l8b-new3.txt 2>&1
echo "== profile l8b new3"; sed -n '/kernel /,$p' /tmp/o/prof-l8b-new3.txt | head -11
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && tar czf $OUT/o.tgz --exclude='*.safetensors' . ; ls -la $OUT
