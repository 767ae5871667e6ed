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
# LeakSanitizer's stop-the-world itself sometimes crashes at the exit of a
# process that ran NVRTC ("Tracer caught signal 11", no leak reported; seen
# in CI under load, 2026-12-05 and 2026-12-06, not reproduced alone): when
# the failures came with that crash, the failed tests run once more, and
# that run decides (a leak or a sanitizer error fails again).
( cd build-asan
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allow_user_poisoning=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  set +e
  ctest --output-on-failure -j 2 2>&1 | tee ctest-asan.log
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    grep -q "Tracer caught signal" ctest-asan.log || exit "$rc"
    echo "== LeakSanitizer's tracer crashed in the run above: the failed tests once more"
    ctest --rerun-failed --output-on-failure
  fi )

echo "== fuzz build (clang, libFuzzer + ASan + UBSan): 20 s per reader"
CC=clang-14 CXX=clang++-14 scripts/build.sh build-fuzz -DKILN_BUILD_COMPILER=OFF \
  -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_FUZZERS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
( cd build-fuzz && ctest --output-on-failure )

echo "== release build: all tests"
scripts/build.sh build
cd build
ctest --output-on-failure -j 2
