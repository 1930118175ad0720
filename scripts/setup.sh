#!/usr/bin/env bash
# Quick start, step 1: install what tokmap needs (Debian 12), build it, and run the main job on
# the bundled model.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --bench
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build --target tokmap

mkdir -p out
./build/tokmap embed \
  --text "The bank of the river was muddy." \
  --text "I deposited money at the bank, then walked along the river bank." \
  --out out/embeddings.safetensors
./build/tokmap tokenize --text "I deposited money at the bank, then walked along the river bank."
