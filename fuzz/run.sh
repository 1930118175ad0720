#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each on its committed corpus.
#   fuzz/run.sh [--seconds N] [target ...]     default: 10 seconds each, every target
# New interesting inputs go to a scratch corpus (the committed one is only read); a crash is
# saved under fuzz/artifacts/ and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  targets=(fuzz_safetensors fuzz_config fuzz_tokenizer_json fuzz_vocab_merges fuzz_bpe_encode
    fuzz_pipeline_json fuzz_pipeline_encode fuzz_npy fuzz_tsv fuzz_gguf fuzz_atlas fuzz_serve)
fi

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Sanitize \
  -DTOKMAP_FUZZ=ON -DTOKMAP_SANITIZE=ON -DTOKMAP_TESTS=OFF -DTOKMAP_BENCH=OFF >/dev/null
cmake --build build-fuzz --target "${targets[@]}" -j "$(nproc)"

mkdir -p fuzz/artifacts
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build-fuzz/fuzz/$target" "$scratch/$target" "fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$target-" >"$log" 2>&1; then
    echo "$target: FAILED (log follows)"
    tail -n 40 "$log"
    status=1
    continue
  fi
  runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  echo "$target: ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}, no crash"
done
exit $status
