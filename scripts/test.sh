#!/usr/bin/env bash
# Sets up, builds and runs every test through ctest: the unit tests
# (GoogleTest), the lit suite and the numerics tests. All of them also run in
# an ASan + UBSan build (build-asan/), and the readers of untrusted
# files are fuzzed briefly (build-fuzz/). Ends with ctest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== sanitizer build (ASan + UBSan): every test"
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON
# allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons and unpoisons its
# slabs in header code, which is instrumented in our objects but not in the
# Debian libMLIR.so that shares the allocators, so its manual poisoning
# reports reads of live MLIR attributes as use-after-poison. ASan's own
# checks (heap, stack, globals, leaks) are unaffected.
# use_tls=0: gcc 12's LeakSanitizer crashes scanning the dynamic
# thread-local storage of a process that ran NVRTC ("Tracer caught signal
# 11" at exit, by the memory layout: Nvrtc.CompilesForHopperAndAmpere under
# ctest every time, 2026-12-06); scripts/lsan.supp names what only TLS
# holds (not listed at exit: print_suppressions=0, as tests match output).
( cd build-asan &&
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allow_user_poisoning=0 \
  LSAN_OPTIONS=use_tls=0:print_suppressions=0:suppressions="$PWD/../scripts/lsan.supp" \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j 2 )

echo "== fuzz build (clang, libFuzzer + ASan + UBSan): 20 s per reader"
CC=clang-14 CXX=clang++-14 scripts/build.sh build-fuzz -DKILN_BUILD_COMPILER=OFF \
  -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_FUZZERS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
( cd build-fuzz && ctest --output-on-failure )

echo "== release build: all tests"
scripts/build.sh build
cd build
ctest --output-on-failure -j 2
