#!/usr/bin/env bash
# Quick start, step 2: the whole test suite — a Release build and an AddressSanitizer +
# UndefinedBehaviorSanitizer build, each running every test (and the fuzz targets briefly on
# their committed corpora when clang is available).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
jobs=$(nproc)

echo "== Release build and tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKMAP_BENCH=OFF >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

echo "== Report page in headless Chromium (file://, network blocked)"
TOKMAP_BINARY="$PWD/build/tokmap" web/run-tests.sh

echo "== ASan + UBSan build and tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DTOKMAP_SANITIZE=ON \
  -DTOKMAP_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

if [[ -x fuzz/run.sh ]]; then
  echo "== Fuzz targets (short runs on the committed corpora)"
  fuzz/run.sh --seconds 10
fi
