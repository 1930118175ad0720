#!/usr/bin/env bash
# `tokmap viz` end to end, side by side with the notebook way (PyTorch forward with all hidden
# states + scikit-learn t-SNE per layer in 2D and 3D + a matplotlib PNG per layer), on the same
# ~100-token text (bench/viz/text100.txt), the same layers and the same weights. Run from the
# repository root:
#
#   bench/viz/run.sh [--rounds R] [--runs N] [--only bundled|small]
#
#   --rounds R   repeat the comparison R times (default 3) and report the spread
#   --runs N     runs per command and round; the best wall time counts (default 3)
#   --only C     one case: bundled (models/demo-brown-gpt2, 6 layers x 128) or small
#                (random GPT-2-small-shaped weights, 12 layers x 768, from
#                bench/forward/make_model.py into bench/out/gpt2-small-random)
#
# Needs Debian's /usr/bin/python3 with python3-torch, python3-sklearn, python3-matplotlib and
# python3-numpy. OPENBLAS_CORETYPE and the other environment variables are used as they are:
# both tools run under the same setting. Scratch files and results.jsonl: bench/out/viz/.
set -euo pipefail

ROUNDS=3 RUNS=3 ONLY=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
OUT=bench/out
SMALL=$OUT/gpt2-small-random
mkdir -p $OUT/viz

"$PY" -c 'import torch, sklearn, matplotlib, numpy' 2>/dev/null || {
  echo "run.sh: $PY lacks torch/sklearn/matplotlib (apt-get install -y python3-torch python3-sklearn python3-matplotlib)" >&2
  exit 1
}

# Build (configure once).
[[ -f build/build.ninja ]] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tokmap >/dev/null

CASES=()
[[ -z $ONLY || $ONLY == bundled ]] && CASES+=(--case bundled=demo-brown-gpt2)
if [[ -z $ONLY || $ONLY == small ]]; then
  "$PY" bench/forward/make_model.py "$SMALL"   # reused from the forward benchmark; skips when up to date
  CASES+=(--case "small=$SMALL")
fi
[[ ${#CASES[@]} -gt 0 ]] || { echo "run.sh: --only takes bundled or small" >&2; exit 2; }

"$PY" bench/viz/bench.py --tokmap build/tokmap --text bench/viz/text100.txt "${CASES[@]}" \
  --rounds "$ROUNDS" --runs "$RUNS" --work $OUT/viz --log $OUT/viz/results.jsonl
