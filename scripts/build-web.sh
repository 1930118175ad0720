#!/usr/bin/env bash
# Builds the report page (web/) into one self-contained HTML template and copies it to $1.
# npm packages come from web/package-lock.json (installed only when missing or changed).
set -euo pipefail
out="$1"
cd "$(dirname "$0")/../web"
stamp=node_modules/.tokmap-lock
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  cp package-lock.json "$stamp"
fi
node build.mjs >&2
cp dist/report-template.html "$out"
