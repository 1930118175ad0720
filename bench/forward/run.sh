#!/usr/bin/env bash
# Forward-pass benchmark: tokmap vs a PyTorch GPT-2 on the same random GPT-2-small weights,
# batch 4 x 256 tokens, all 13 hidden states. Run from the repository root:
#
#   bench/forward/run.sh [--rounds R] [--runs N] [--memory] [--breakdown]
#
#   --rounds R   repeat the whole comparison R times (tokmap and PyTorch back to back in
#                every round) and report the spread; default 3
#   --runs N     timed forward passes per thread count (best and median of N, after a warm-up);
#                default 3
#   --memory     also measure peak RSS of `tokmap embed --layers all` on 10,000 tokens
#                (40 texts x 250 tokens, and one 10,000-token text through the window path)
#   --breakdown  also time each kernel of one block at the benchmark's shapes
#
# Needs /usr/bin/python3 with python3-torch and python3-numpy, and /usr/bin/time (package
# `time`). OPENBLAS_CORETYPE and the other environment variables are used as they are: both
# tools link the same OpenBLAS and run under the same setting. Scratch files: bench/out/.
set -euo pipefail

ROUNDS=3 RUNS=3 MEMORY=0 BREAKDOWN=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --memory) MEMORY=1; shift ;;
    --breakdown) BREAKDOWN=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
HERE=bench/forward
OUT=bench/out
MODEL=$OUT/gpt2-small-random
WORDS=${TOKMAP_BENCH_WORDS:-../shared/datasets/brown-demo-L6-20k.labels.tsv}
# One log per OpenBLAS setting, so runs under different settings do not overwrite each other.
LOG=$OUT/forward-results${OPENBLAS_CORETYPE:+-$OPENBLAS_CORETYPE}.jsonl
mkdir -p "$OUT"

for need in "$PY" /usr/bin/time; do
  [[ -x $need ]] || { echo "run.sh: $need is missing (apt-get install -y python3-torch python3-numpy time)" >&2; exit 1; }
done
"$PY" -c 'import torch, numpy' 2>/dev/null || { echo "run.sh: $PY lacks torch/numpy (apt-get install -y python3-torch python3-numpy)" >&2; exit 1; }

# 1. Build (configure once; bench/*/ with a CMakeLists.txt are picked up at configure time).
if [[ ! -f build/build.ninja ]] || ! grep -q bench_forward build/build.ninja; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build --target tokmap bench_forward >/dev/null
TOKMAP=build/tokmap
BENCH=build/bench/forward/bench_forward

# 2. Model and inputs.
"$PY" $HERE/make_model.py "$MODEL"
"$PY" $HERE/make_inputs.py --tokmap $TOKMAP --model "$MODEL" --words "$WORDS" --texts 4 --tokens 256 $OUT/batch4x256

# Machine facts, recorded with the results.
{
  printf '{"machine": {"nproc": %s, "cpu": "%s", "OPENBLAS_CORETYPE": "%s", "date": "%s", "commit": "%s"}}\n' \
    "$(nproc)" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" "${OPENBLAS_CORETYPE-<unset>}" \
    "$(date -u +%FT%TZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} > "$LOG"

# Runs a command under /usr/bin/time; appends {"embed": label, "wall_s", "max_rss_kb", "tokens"}.
timed_embed() {
  local label=$1 tokens=$2; shift 2
  /usr/bin/time -f '%e %M' -o $OUT/time.txt "$@"
  read -r wall rss < $OUT/time.txt
  printf '{"embed": "%s", "tokens": %s, "wall_s": %s, "max_rss_kb": %s}\n' "$label" "$tokens" "$wall" "$rss" >> "$LOG"
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS ..." >&2
  echo "{\"round\": $round}" >> "$LOG"
  # 3. The whole command (process start, model load, tokenizing, forward, writing 13 layers).
  timed_embed "4x256 all layers, default threads" 1024 \
    $TOKMAP embed --model "$MODEL" --file $OUT/batch4x256.txt --layers all --out $OUT/embed_4x256.safetensors --quiet
  timed_embed "4x256 all layers, --threads 1" 1024 \
    $TOKMAP embed --model "$MODEL" --file $OUT/batch4x256.txt --layers all --threads 1 --out $OUT/embed_4x256_t1.safetensors --quiet
  #    The forward pass alone, 1 and 2 threads.
  $BENCH --model "$MODEL" --ids $OUT/batch4x256.ids --threads 1,2 --runs "$RUNS" >> "$LOG"
  # 4.-5. PyTorch on the same weights and ids, then agreement with tokmap's output.
  "$PY" $HERE/torch_forward.py --model "$MODEL" --ids $OUT/batch4x256.ids --threads 1,2 --runs "$RUNS" \
    --check $OUT/embed_4x256.safetensors >> "$LOG"
done

if [[ $BREAKDOWN == 1 ]]; then
  $BENCH --model "$MODEL" --ids $OUT/batch4x256.ids --threads 1 --runs 0 --breakdown | grep breakdown >> "$LOG"
fi

if [[ $MEMORY == 1 ]]; then
  echo "memory ..." >&2
  "$PY" $HERE/make_inputs.py --tokmap $TOKMAP --model "$MODEL" --words "$WORDS" --texts 40 --tokens 250 $OUT/mem40x250
  "$PY" $HERE/make_inputs.py --tokmap $TOKMAP --model "$MODEL" --words "$WORDS" --texts 1 --tokens 10000 $OUT/mem1x10000
  timed_embed "memory: 40 texts x 250 tokens, all layers" 10000 \
    $TOKMAP embed --model "$MODEL" --file $OUT/mem40x250.txt --layers all --out $OUT/embed_mem40x250.safetensors --quiet
  timed_embed "memory: 1 text x 10000 tokens (windows), all layers" 10000 \
    $TOKMAP embed --model "$MODEL" --file $OUT/mem1x10000.txt --layers all --out $OUT/embed_mem1x10000.safetensors --quiet
  for f in $OUT/embed_mem40x250.safetensors $OUT/embed_mem1x10000.safetensors; do
    printf '{"output_file": "%s", "bytes": %s}\n' "$f" "$(stat -c %s "$f")" >> "$LOG"
  done
  rm -f $OUT/embed_mem40x250.safetensors $OUT/embed_mem1x10000.safetensors
fi

# 6. The table.
"$PY" $HERE/summarize.py "$LOG"
