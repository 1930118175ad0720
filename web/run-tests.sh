#!/usr/bin/env bash
# Builds and tests the report page (web/): installs the pinned npm packages when needed,
# builds dist/report-template.html, writes the sample data and runs the browser tests in
# Debian's headless Chromium (file://, network blocked). Exits non-zero on any failure.
#   web/run-tests.sh            everything (about 20-40 s)
#   TOKMAP_WEB_NO_BIG=1 ...     skip the 100,000-point performance check
set -euo pipefail
cd "$(dirname "$0")"

command -v node >/dev/null || { echo "web: node is missing (scripts/install-deps.sh)" >&2; exit 1; }
stamp=node_modules/.tokmap-lock
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
if [[ -z "${TOKMAP_CHROMIUM:-}" && ! -x /usr/bin/chromium ]]; then
  echo "web: /usr/bin/chromium is missing (apt-get install chromium, or set TOKMAP_CHROMIUM)" >&2
  exit 1
fi

node build.mjs
if [[ -n "${TOKMAP_WEB_NO_BIG:-}" ]]; then
  rm -f dist/sample-big.json
  node make-sample.mjs --no-big
else
  node make-sample.mjs
fi
node build.mjs >/dev/null   # again, for dist/report-sample.html with the fresh sample
node --test --test-reporter=spec tests/
