#!/usr/bin/env bash
# Quick start, step 1: install what tokmap needs (Debian 12), build it, and run the main job on
# the bundled model: tokmap viz on samples/sentences.txt, written to out/report/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --bench
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tokmap

mkdir -p out
# The main job: every layer of the bundled model mapped with t-SNE, as an interactive report.
./build/tokmap viz --file samples/sentences.txt --highlight bank --highlight play --out out/report
echo "Open out/report/index.html in a browser; figures are in out/report/figures/."
