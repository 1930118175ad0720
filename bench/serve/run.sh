#!/usr/bin/env bash
# tokmap serve under load, on loopback: a 30-token sentence placed into a 20,000-token atlas,
# request to response, after warm-up (sequential: p50/p95), then 20 concurrent clients x 25
# requests alternating place and map (p50/p95 per kind, errors, the server's RSS before/after).
# Run from the repository root after building:
#
#   bench/serve/run.sh [--requests N] [--clients C] [--per-client R]
#
# The atlas is built once into bench/out/serve/ from the demo corpus (scripts/austen-corpus.sh
# 400, needs r-cran-janeaustenr: scripts/install-deps.sh --demo). Results: stdout and
# bench/out/serve/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/out/serve
mkdir -p "$out"
atlas="$out/austen20k.tokmap-atlas"
if [[ ! -f "$atlas" ]]; then
  scripts/austen-corpus.sh 400 > "$out/austen400.jsonl"
  build/tokmap atlas build --file "$out/austen400.jsonl" --max-tokens 20000 --out "$atlas" -q
fi
build/tokmap serve --port 0 --atlas "$atlas" -q > "$out/url.txt" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s "$out/url.txt" ]] && break; sleep 0.1; done
/usr/bin/python3 bench/serve/load.py --url "$(head -n 1 "$out/url.txt")" --pid "$server" \
  --out "$out/results.json" "$@"
