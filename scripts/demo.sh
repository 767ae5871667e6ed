#!/usr/bin/env bash
# The main job: set up, build, compile the bundled tiny Llama
# (test/models/hf/llama: 2 layers, random weights, its transformers golden
# alongside) into an engine, and generate 32 tokens from the golden's prompt
# with the runtime: on the GPU when there is one, else on the host device.
# The tokens are the golden's (transformers, float32).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build
echo "== kiln compile test/models/hf/llama -o build/tiny-llama.engine"
build/bin/kiln compile test/models/hf/llama --dtype f32 --max-seq 256 -o build/tiny-llama.engine
build/bin/kiln inspect build/tiny-llama.engine | head -8
echo "== kiln-run build/tiny-llama.engine (32 greedy tokens; the GPU if present, else the host)"
build/bin/kiln-run build/tiny-llama.engine --device auto --golden test/models/hf/llama/golden.json --tolerance 1e-3
echo "== kiln-run with a text prompt (the bundled tokenizer.json; random weights, so random text)"
build/bin/kiln-run build/tiny-llama.engine --device auto --prompt "The quick brown fox" --max-tokens 16
