#!/usr/bin/env bash
# Llama-architecture forward pass: tokmap vs llama.cpp (node-llama-cpp 3.21.1, prebuilt CPU
# binary) on the same random weights, 4 x 256 token ids, and OpenBLAS's sgemm peak at the same
# shapes. Run from the repository root:
#
#   bench/forward/llama.sh [--shape smollm2-135m|llama-3.2-1b] [--threads 1,2] [--runs 2]
#
# Writes the model (BF16 safetensors for tokmap, F32 and F16 GGUF for both tools) into a
# temporary folder that is removed at the end (never committed). Installs node-llama-cpp from
# bench/forward/llamacpp/package-lock.json into bench/forward/llamacpp/node_modules/ (gitignored)
# with --ignore-scripts: nothing is downloaded or built at run time (getLlama build "never").
# Prints one JSON object per measurement, then a table; the log is kept in bench/out/.
set -euo pipefail

SHAPE=smollm2-135m THREADS=1,2 RUNS=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --shape) SHAPE="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "llama.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
HERE=bench/forward
mkdir -p bench/out
LOG=bench/out/llama-$SHAPE.jsonl
TMP=$(mktemp -d "${TMPDIR:-/tmp}/tokmap-bench-llama-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

if [[ ! -f build/build.ninja ]] || ! grep -q bench_sgemm build/build.ninja; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKMAP_BENCH=ON >/dev/null
fi
cmake --build build --target bench_forward bench_sgemm >/dev/null
if [[ ! -d $HERE/llamacpp/node_modules/node-llama-cpp ]]; then
  (cd $HERE/llamacpp && npm ci --no-audit --no-fund --ignore-scripts --omit=optional >/dev/null)
fi

echo "writing the $SHAPE model to $TMP ..." >&2
"$PY" $HERE/make_llama.py --shape "$SHAPE" "$TMP"
{
  printf '{"machine": {"nproc": %s, "cpu": "%s", "OPENBLAS_CORETYPE": "%s", "date": "%s", "commit": "%s", "load": "%s"}}\n' \
    "$(nproc)" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "${OPENBLAS_CORETYPE-<unset>}" \
    "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '{"config": %s}\n' "$(tr -d '\n ' < "$TMP/hf/config.json")"
} > "$LOG"

# tokmap on the BF16 folder and on the F16 GGUF; the last hidden state of the BF16 run and of
# the F32 GGUF (same values) must be identical.
build/bench/forward/bench_forward --model "$TMP/hf" --ids "$TMP/ids.txt" --threads "$THREADS" --runs "$RUNS" \
  --dump-last "$TMP/last-hf.f32" | sed 's/^{/{"weights": "BF16 safetensors", /' >> "$LOG"
build/bench/forward/bench_forward --model "$TMP/f16.gguf" --ids "$TMP/ids.txt" --threads "$THREADS" --runs "$RUNS" \
  | sed 's/^{/{"weights": "F16 GGUF", /' >> "$LOG"
build/bench/forward/bench_forward --model "$TMP/f32.gguf" --ids "$TMP/ids.txt" --threads "$THREADS" --runs "$RUNS" \
  --dump-last "$TMP/last-gguf.f32" | sed 's/^{/{"weights": "F32 GGUF", /' >> "$LOG"
if [[ -f $TMP/last-gguf.f32 ]]; then
  if cmp -s "$TMP/last-hf.f32" "$TMP/last-gguf.f32"; then same=true; else same=false; fi
  printf '{"check": "tokmap last hidden state, BF16 safetensors vs F32 GGUF of the same values", "identical": %s}\n' "$same" >> "$LOG"
fi

# llama.cpp: prompt evaluation of the same ids, F32 and F16 GGUF, same thread counts.
IFS=, read -ra counts <<< "$THREADS"
for kind in f32 f16; do
  for t in "${counts[@]}"; do
    node $HERE/llamacpp/eval.mjs --model "$TMP/$kind.gguf" --ids "$TMP/ids.txt" --threads "$t" --runs "$RUNS" \
      | sed "s/^{/{\"weights\": \"$(echo $kind | tr a-z A-Z) GGUF\", /" >> "$LOG"
  done
done

# OpenBLAS sgemm at the model's matmul shapes, 256-row pieces as tokmap runs them.
shapes=$("$PY" - "$TMP/hf/config.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
C, H, KV, I = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"], c["intermediate_size"]
D = C // H
print(",".join(f"256x{k}x{n}" for k, n in [(C, H * D), (C, KV * D), (H * D, C), (C, I), (I, C)]))
PYEOF
)
build/bench/forward/bench_sgemm --shapes "$shapes" --threads "1,$THREADS" --runs 10 >> "$LOG"

"$PY" $HERE/summarize_llama.py "$LOG"
