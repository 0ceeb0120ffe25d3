#!/usr/bin/env bash
# Installs the TypeScript compiler for the tests (npm `typescript@5`, with `@types/node@20` so
# workflows that use `node:fs` or `process` type-check, under $KICI_TEST_TOOLS) and prints the
# path of the `tsc` binary. sdk/tests/types.test.js runs it over sdk/types, so an `index.d.ts`
# that disagrees with how workflows are written fails. Safe to run twice.
set -euo pipefail
tools=${KICI_TEST_TOOLS:-/tmp/kici-test-tools}
dir="$tools/typescript"
tsc="$dir/node_modules/.bin/tsc"
if ! "$tsc" --version >/dev/null 2>&1 || [ ! -f "$dir/node_modules/@types/node/package.json" ]; then
  echo "==> installing typescript" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error typescript@5 @types/node@20 >&2
fi
"$tsc" --version >/dev/null
echo "$tsc"
