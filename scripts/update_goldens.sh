#!/usr/bin/env bash
# Regenerates the committed goldens that guard code generation
# (test/lit/codegen/*.golden) from the current build. Review the diff.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/bin}
"$BIN/kiln" compile test/models/hf/llama --emit cuda --max-seq 128 --max-batch 4 --quiet \
  -o test/lit/codegen/tiny-llama.cu.golden
"$BIN/kiln" compile test/models/hf/llama --emit cuda --max-seq 128 --max-batch 4 --append-in-attention --quiet \
  -o test/lit/codegen/tiny-llama-att.cu.golden
git diff --stat -- test/lit/codegen || true
