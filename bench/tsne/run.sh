#!/bin/sh
# t-SNE benchmark: tokmap vs scikit-learn, Rtsne and FIt-SNE, side by side on the same data.
#
#   bench/tsne/run.sh                      # N = 10,000 rows of the Brown set, 2-D
#   SIZES=10000,20000 DIMS=2 bench/tsne/run.sh
#   FITSNE_BIN=/work/peers/FIt-SNE/bin/fast_tsne bench/tsne/run.sh
#
# Needs Debian's python3-sklearn and r-cran-rtsne; FIt-SNE 1.2.1 is built outside the repo
# and found through FITSNE_BIN (skipped when unset). Data: DATA (a float32 .npy), by default
# the Brown embedding set in ../shared, copied into WORK (outside git) first.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
export WORK=${WORK:-/tmp/tokmap-bench-tsne}
mkdir -p "$WORK"
if [ -z "${DATA:-}" ]; then
  cp "$root/../shared/datasets/brown-demo-L6-20k.npy" "$WORK/brown-20k.npy"
  DATA=$WORK/brown-20k.npy
fi
export DATA
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKMAP_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target tokmap >/dev/null
export TOKMAP_BIN="$build/tokmap"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(git -C "$root" rev-parse --short HEAD)"
exec /usr/bin/python3 "$root/bench/tsne/bench.py"
