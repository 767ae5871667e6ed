#!/usr/bin/env bash
# Configures and builds kiln into a build directory.
#   scripts/build.sh [BUILD_DIR] [extra cmake args...]
# BUILD_DIR defaults to build/. Uses Ninja, -j2 (a MLIR translation unit needs
# ~450 MB) and ccache.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
# ccache: share hits between checkouts in different directories (CI clones).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
shift || true
cmake -S . -B "$dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release \
  -DMLIR_DIR=/usr/lib/llvm-22/lib/cmake/mlir \
  -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit \
  -DKILN_PYTHON="$PWD/.venv/bin/python" \
  "$@" >/dev/null
cmake --build "$dir" -j "${KILN_JOBS:-2}"
