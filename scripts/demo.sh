#!/usr/bin/env bash
# The main job, for now: set up, build, and evaluate the bundled tiny Llama
# (test/models/tiny_llama_1layer.mlir, random seeded weights) with the IR
# interpreter on the host, printing its logits and greedy next tokens.
# Later issues make this compile the bundled model and generate with it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
echo "== kiln-interp test/models/tiny_llama_1layer.mlir (8 random tokens, seed 0)"
build/bin/kiln-interp test/models/tiny_llama_1layer.mlir --seed 0 --dynamic-size 8 --int-range 512 --print
