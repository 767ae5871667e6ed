#!/usr/bin/env bash
cd "$(dirname "$0")/.."
timeout 250 bash .batch/run3.sh 2>&1 | tee $OUT/run3.txt
timeout 300 bash .batch/run2.sh 2>&1 | tee $OUT/run2.txt
cd $OUT && tar czf results.tgz --exclude='*.safetensors' . 2>/dev/null; ls
