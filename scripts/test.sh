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

# Numeric results depend on the OpenBLAS kernel (blocking and summation order differ by shape
# and CPU), so the numeric tests run again under a second kernel: an assumption that only holds
# on this CPU's kernel fails here rather than on a user's machine. The main run above keeps
# OPENBLAS_CORETYPE as the machine has it.
default_core=$(OPENBLAS_VERBOSE=2 build/tests/neighbors/neighbors_test --gtest_list_tests 2>&1 |
  sed -n 's/^Core: *//p' | head -n 1)
second_core=Prescott
if [[ "$default_core" == "Prescott" ]]; then
  if grep -qw avx2 /proc/cpuinfo; then second_core=Haswell; else second_core=Nehalem; fi
fi
echo "== Model, neighbors and t-SNE tests under OpenBLAS's $second_core kernel (default: ${default_core:-unknown})"
for binary in model/model_test neighbors/neighbors_test tsne/tsne_test tsne/tsne_command_test; do
  # (The map grid above 190 points, 1.5 min, runs in the main pass only.)
  OPENBLAS_CORETYPE=$second_core "build/tests/$binary" --gtest_brief=1 --gtest_filter=-*SmallMaps*n400:*SmallMaps*n600:*SmallMaps*n1000:*SmallMaps*n2000
done

echo "== Report page in headless Chromium (file://, network blocked)"
TOKMAP_BINARY="$PWD/build/tokmap" web/run-tests.sh

echo "== Python package (python/tests, pytest against the module in build/python)"
# The module is part of the Release build above (TOKMAP_PYTHON, on when pybind11 is installed);
# Debian's python3 has the numpy, pytest and nbclient from install-deps.sh.
PYTHONPATH="$PWD/build/python" TOKMAP_BINARY="$PWD/build/tokmap" \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider python/tests

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
