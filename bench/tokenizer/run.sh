#!/usr/bin/env bash
# Side-by-side throughput of tokmap's GPT-2 tokenizer and the npm package gpt-3-encoder on the
# same deterministic English text (built from tests/data/tokenizer_golden.jsonl; no downloads
# except gpt-3-encoder itself from the npm registry, pinned by package-lock.json).
#
# usage: bench/tokenizer/run.sh [MEGABYTES]        (default 4; run from anywhere)
# env:   TOKMAP_BENCH_BUILD  build folder (default build-bench-tokenizer in the repo)
#        GPT3_CAP_SECONDS    stop gpt-3-encoder's one-string prefixes past about this (default 60)
# Writes bench/out/tokenizer/{corpus.txt,tokmap.txt,gpt3.txt} and prints a Markdown table.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/bench/tokenizer
build=${TOKMAP_BENCH_BUILD:-$root/build-bench-tokenizer}
out=$root/bench/out/tokenizer
megabytes=${1:-4}
mkdir -p "$out"

node "$here/make_corpus.js" "$root/tests/data/tokenizer_golden.jsonl" "$out/corpus.txt" "$megabytes"

if [ ! -f "$here/node_modules/gpt-3-encoder/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKMAP_TESTS=OFF > /dev/null
cmake --build "$build" --target bench_tokenizer > /dev/null

echo "== tokmap"
"$build/bench/tokenizer/bench_tokenizer" "$root/models/demo-brown-gpt2" "$out/corpus.txt" \
  | tee "$out/tokmap.txt"
echo "== gpt-3-encoder $(node -p "require('$here/node_modules/gpt-3-encoder/package.json').version")"
node "$here/bench_gpt3_encoder.js" "$out/corpus.txt" "${GPT3_CAP_SECONDS:-60}" | tee "$out/gpt3.txt"
echo
node "$here/compare.js" "$out/tokmap.txt" "$out/gpt3.txt"
