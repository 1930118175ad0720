#!/usr/bin/env bash
# Installs the Debian 12 packages tokmap needs. Idempotent: only missing packages are installed.
#   scripts/install-deps.sh          build + test packages
#   scripts/install-deps.sh --bench  also the benchmark peers (PyTorch, scikit-learn, umap-learn,
#                                    Rtsne, Node)
#                                    and the demo atlas's corpus
#   scripts/install-deps.sh --demo   also the demo atlas's corpus (Jane Austen's novels, public
#                                    domain, packaged for R: scripts/austen-corpus.sh reads it)
set -euo pipefail

build_and_test=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-dev libpcre2-dev libicu-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libhnswlib-dev libfftw3-dev libcairo2-dev poppler-utils fonts-dejavu-core libxml2-utils
  # tokmap serve: cpp-httplib (the HTTP server llama.cpp uses too)
  libcpp-httplib-dev
  # Figure text: Pango lays it out and fontconfig falls back per character to a font that has it.
  # DejaVu covers Latin, Greek, Cyrillic and many symbols and emoji (monochrome); Droid Sans
  # Fallback (a 2 MB download) covers Chinese, Japanese and Korean; Noto Color Emoji (10 MB)
  # every emoji, in colour.
  libpango1.0-dev libpng-dev fonts-droid-fallback fonts-noto-color-emoji
  clang libclang-rt-14-dev
  chromium
  # The Python package (python/): pybind11 bindings, pip/venv for `pip install .`, numpy, and
  # its tests (pytest; a notebook run headless by nbclient on ipykernel; tqdm progress bars).
  pybind11-dev python3-dev python3-venv python3-pip python3-setuptools python3-wheel
  python3-numpy python3-pytest python3-nbclient python3-nbformat python3-ipykernel python3-tqdm
  python3-sklearn python3-scipy
)
bench=(python3 python3-numpy python3-torch python3-sklearn umap-learn r-cran-rtsne time)
demo=(r-base-core r-cran-janeaustenr)

packages=("${build_and_test[@]}")
if [[ "${1:-}" == "--bench" ]]; then packages+=("${bench[@]}" "${demo[@]}"); fi
if [[ "${1:-}" == "--demo" ]]; then packages+=("${demo[@]}"); fi

missing=()
# Node.js builds the report page (web/): Debian's nodejs + npm unless a node is already there
# (e.g. a nodesource build, which ships its own npm and conflicts with Debian's npm package).
# The benchmarks' npm packages are pinned in bench/*/package-lock.json and installed there by
# their run scripts (gitignored node_modules/): gpt-3-encoder 1.1.4 (bench/tokenizer) and
# node-llama-cpp 3.21.1 with its prebuilt linux-x64 CPU binaries (bench/forward/llamacpp, npm ci
# --ignore-scripts --omit=optional: no download or build at run time).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

echo "tokmap: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
