#!/usr/bin/env bash
# Installs what kiln needs to build and test, skipping what is already there:
# Debian packages (LLVM/MLIR 22, CMake, Ninja, ccache, GoogleTest, libonnx)
# and a Python virtual environment (.venv) with numpy, onnx and onnxruntime
# for the numerics tests.
# Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  cmake ninja-build g++ ccache pkg-config clang-14 libclang-rt-14-dev
  libgtest-dev
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  libonnx-dev libprotobuf-dev protobuf-compiler
  libcpp-httplib-dev libssl-dev zlib1g-dev libbrotli-dev
)
PIP_PACKAGES=(numpy onnx==1.23.2 onnxruntime tokenizers jinja2 openai)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${KILN_BOOTSTRAP_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import numpy, onnx, onnxruntime, tokenizers, jinja2, openai; assert onnx.__version__ == '1.23.2'" 2>/dev/null; then
  echo "setup: installing ${PIP_PACKAGES[*]} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
fi
