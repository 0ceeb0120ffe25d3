#!/usr/bin/env bash
# Installs axe-core (npm, the accessibility engine) for the browser tests under
# $KICI_TEST_TOOLS and prints the path of `axe.min.js`, which the dashboard tests inject into
# every page and run: no serious or critical violation may remain. Safe to run twice.
set -euo pipefail
tools=${KICI_TEST_TOOLS:-/tmp/kici-test-tools}
dir="$tools/axe"
axe="$dir/node_modules/axe-core/axe.min.js"
if [ ! -f "$axe" ]; then
  echo "==> installing axe-core" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error axe-core@4 >&2
fi
echo "$axe"
