#!/usr/bin/env bash
# session 30 call 1: the GPU suite (SKIP_1B=0); the 1B's batched rows (bench/batch.sh, SHAPES=l1b PEERS=0:
# llama.cpp in call 2), the gate/up column tile's A/B (g64, g128), ncu of a batch-64 step; --check-batching.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
mkdir -p /tmp/o/suite-logs
tar xJf .batch/e1.txz -C .batch && tar xJf .batch/device.txz
SKIP_1B=0 OUT=/tmp/suite bash test/gpu/run.sh > /tmp/o/suite.txt 2>&1
echo "suite $(( $(date +%s) - t0 )) s: $(grep -c 'PASS' /tmp/o/suite.txt) PASS lines, $(grep -c 'FAIL\|ERROR' /tmp/o/suite.txt) FAIL/ERROR lines"
find /tmp/suite -maxdepth 1 -type f \( -name '*.log' -o -name '*.out' -o -name '*.txt' -o -name '*.json' \) -size -2M -exec cp {} /tmp/o/suite-logs/ \;
[ -f /tmp/suite/m1b/config.json ] && ln -sfn /tmp/suite/m1b /tmp/w-l1b
ids=$(python3 -c "import random; r = random.Random(5); print(','.join(str(r.randrange(1000, 120000)) for _ in range(32)))")
timeout 150 build-gpu/bin/kiln-run .batch/engines/l1b-b256.engine --weights /tmp/w-l1b --prompt-ids $ids --max-tokens 48 \
  --check-batching --max-tie-gap 2e-2 > /tmp/o/l1b-batching.txt 2>&1
echo "l1b check-batching rc=$?: $(tail -2 /tmp/o/l1b-batching.txt)"
echo "t $(( $(date +%s) - t0 )) s"
PEERS=0 SHAPES=l1b EXTRA="g64:8,32,128,256 g128:64" NCU=64 OUT=/tmp/o/batch timeout $(( 580 - ($(date +%s) - t0) )) bash bench/batch.sh > /tmp/o/batch.txt 2>&1
cat /tmp/o/batch/table.md 2>/dev/null || tail -20 /tmp/o/batch.txt
echo "t $(( $(date +%s) - t0 )) s"
cd /tmp/o && tar czf $OUT/o.tgz . ; ls -la $OUT
