#!/usr/bin/env bash
# Installs mise for the tests (npm `@jdxcode/mise`, under $KICI_TEST_TOOLS) and prints the
# directory holding the `mise` binary. The tests' mise configs install tools with mise's npm
# backend (`MISE_NPM_PACKAGE_MANAGER=npm`), so nothing is downloaded from GitHub. Safe to run
# twice.
set -euo pipefail
tools=${KICI_TEST_TOOLS:-/tmp/kici-test-tools}
bin="$tools/mise/node_modules/.bin"
if ! "$bin/mise" --version >/dev/null 2>&1; then
  echo "==> installing mise" >&2
  mkdir -p "$tools/mise"
  # Its install script fetches the binary for this platform from npm.
  npm install --prefix "$tools/mise" --no-audit --no-fund --loglevel=error --foreground-scripts @jdxcode/mise@2026 >&2
fi
"$bin/mise" --version >/dev/null
echo "$bin"
