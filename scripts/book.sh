#!/usr/bin/env bash
# Builds the documentation (docs/, an mdBook) into target/book and checks its links. Installs
# mdBook from crates.io into target/tools the first time (a few minutes); safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${CARGO_TARGET_DIR:-target}/tools"
mdbook="$tools/bin/mdbook"
if ! "$mdbook" --version 2>/dev/null | grep -q '^mdbook v0\.4\.'; then
  echo "==> installing mdBook into $tools" >&2
  cargo install --quiet mdbook --version '~0.4' --locked --no-default-features --features search --root "$tools"
fi
"$mdbook" build docs
python3 scripts/linkcheck.py target/book docs
