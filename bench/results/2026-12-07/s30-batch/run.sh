#!/usr/bin/env bash
# session 30 call 2/3: SHAPES=l1b or l8b: bench/batch.sh beside llama.cpp (every batch; A/B engines g64/g128
# where they exist), the per-kernel profile at batch 64, --check-batching of the max-batch-256 engine.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
s=${S:?}
O=/tmp/o-$s; mkdir -p $O
[ -d .batch/engines ] || tar xJf .batch/eng.txz -C .batch
[ $s = l1b ] && [ -f /tmp/suite/m1b/config.json ] && ln -sfn /tmp/suite/m1b /tmp/w-l1b
SHAPES=$s EXTRA="g64:8,32,64 g128:64" PROFILE=64 OUT=$O/batch timeout $(( ${BUDGET:-540} - 60 )) bash bench/batch.sh > $O/batch.txt 2>&1
echo "batch.sh rc=$? t $(( $(date +%s) - t0 )) s"
cat $O/batch/table.md 2>/dev/null || tail -20 $O/batch.txt
ids=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(1000, 120000)) for _ in range(32)))")
timeout $(( ${BUDGET:-540} + 40 - ($(date +%s) - t0) )) build-gpu/bin/kiln-run .batch/engines/$s-b256.engine --weights /tmp/w-$s \
  --prompt-ids $ids --max-tokens 48 --check-batching --max-tie-gap 2e-2 > $O/$s-batching.txt 2>&1
echo "$s check-batching rc=$?: $(tail -2 $O/$s-batching.txt | cut -c1-400)"
echo "t $(( $(date +%s) - t0 )) s"
cd $O && tar czf $OUT/o-$s.tgz . ; ls -la $OUT
