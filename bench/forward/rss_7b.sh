#!/bin/sh
# Peak RSS and time of `tokmap embed` on a random Llama-2-7B-shaped BF16 model (13.2 GB of
# safetensors, written by make_llama.py --hf-only into a temporary folder and deleted after):
# issue #12's goal is <= 20 GB peak RSS on a 24 GB machine. Results: docs/BENCHMARKS.md.
#
#   bench/forward/rss_7b.sh [TOKENS] [DIR]     (from the repository root, after the build)
# TOKENS: 64 by default; DIR: /tmp by default (needs ~14 GB free).
set -eu
tokens=${1:-64}
dir=${2:-/tmp}/tokmap-rss-7b
[ -f "$dir/hf/model.safetensors" ] ||
  /usr/bin/python3 bench/forward/make_llama.py --shape llama-2-7b --hf-only "$dir"
ids=$(head -n 1 "$dir/ids.txt" | cut -d ' ' -f 1-"$tokens" | tr ' ' ',')
/usr/bin/time -v build/tokmap embed --model "$dir/hf" --ids "$ids" --layers all --threads 2 \
  --out "$dir/out.safetensors" 2> "$dir/time.txt" || { cat "$dir/time.txt"; exit 1; }
grep -E "Maximum resident|Elapsed|User time|System time|Major" "$dir/time.txt"
ls -l "$dir/out.safetensors"
[ "${KEEP:-0}" = 1 ] || rm -rf "$dir"
