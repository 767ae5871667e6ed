#!/usr/bin/env bash
# A/B of PDL weight prefetch (session 31). SHAPES="l1b l8b" E_l1b="b256 pf32 ..." E_l8b="..." B_l1b="1 8 64" R_l1b=2
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
O=/tmp/o; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee $O/gpu.txt
mkdir -p .batch/engines
for f in .batch/*-e.txz; do tar xJf $f -C .batch/engines; done
for S in ${SHAPES:-l1b l8b}; do
  shape=$([ $S = l1b ] && echo llama3.2-1b || echo llama3.1-8b)
  [ -f /tmp/w-$S/config.json ] || (python3 .batch/peer_decode.py --shape $shape --save /tmp/w-$S --no-time > $O/$S-save.log 2>&1 || tail -5 $O/$S-save.log) &
done
if [ ! -x build-gpu/bin/kiln-run ]; then
  cmake -S . -B build-gpu -G Ninja -DKILN_BUILD_COMPILER=OFF -DKILN_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release > $O/cmake.log 2>&1 \
    && ninja -C build-gpu kiln-run > $O/build.log 2>&1 || { tail -30 $O/build.log; }
fi
wait
echo "ready $(( $(date +%s) - t0 )) s"
for S in ${SHAPES:-l1b l8b}; do
  W=/tmp/w-$S
  eng=E_$S; bat=B_$S; rnd=R_$S
  for r in $(seq ${!rnd:-1}); do
    for b in ${!bat:-1 8 64}; do
      for e in ${!eng}; do
        [ $(( $(date +%s) - t0 )) -gt ${BUDGET:-540} ] && { echo "out of time"; break 3; }
        line=$(timeout 120 build-gpu/bin/kiln-run .batch/engines/$S-$e.engine --weights $W --bench --batch $b --prompt-len 512 --gen 128 2>&1 | grep -E "^bench|rror" | tr '\n' ' ')
        echo "$S $e b$b r$r: $line" >> $O/ab-raw.txt
        echo "$S $e b$b r$r: $(echo "$line" | grep -oE "[0-9.]+ ms/step|[0-9.]+% of the measured|[0-9.]+ us per decode step with it, [0-9.]+ without" | tr "\n" " ")"
      done
    done
  done
  echo "t $(( $(date +%s) - t0 )) s"
  chk=C_$S
  if [ -n "${!chk:-}" ]; then
    ids=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(1000, 120000)) for _ in range(32)))")
    for e in ${!chk}; do
      timeout 150 build-gpu/bin/kiln-run .batch/engines/$S-$e.engine --weights $W --prompt-ids $ids --max-tokens 48 \
        --check-batching --max-tie-gap 2e-2 > $O/$S-$e-batching.txt 2>&1
      echo "$S $e check-batching rc=$?: $(tail -1 $O/$S-$e-batching.txt)"
    done
  fi
done
echo "t $(( $(date +%s) - t0 )) s"
cp $O/* $OUT/ 2>/dev/null
