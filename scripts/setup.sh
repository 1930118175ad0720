#!/usr/bin/env bash
# Quick start, step 1: install what tokmap needs (Debian 12), build it, install the Python package
# into .venv/, and run the main job on the bundled model: tokmap viz on samples/sentences.txt,
# written to out/report/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --bench
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build --target tokmap

# The Python package: the module built in build/ (TOKMAP_PYTHON, on when pybind11 is installed),
# installed into .venv/ with pip. Offline: the venv sees Debian's numpy and setuptools, and pip
# only copies the module build/ already has (TOKMAP_BUILD_DIR, see setup.py).
if grep -q '^TOKMAP_PYTHON:BOOL=ON' build/CMakeCache.txt; then
  cmake --build build --target tokmap_python
  [[ -x .venv/bin/python ]] || /usr/bin/python3 -m venv --system-site-packages .venv
  TOKMAP_BUILD_DIR="$PWD/build" .venv/bin/pip install --quiet --no-build-isolation .
  .venv/bin/python -c "import tokmap" && echo "Python: .venv/bin/python -c 'import tokmap' (see README)"
fi

mkdir -p out
# The main job: every layer of the bundled model mapped with t-SNE, as an interactive report.
./build/tokmap viz --file samples/sentences.txt --highlight bank --highlight play --out out/report
echo "Open out/report/index.html in a browser; figures are in out/report/figures/."
