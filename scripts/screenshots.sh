#!/usr/bin/env bash
# Refreshes the README's dashboard screenshots (docs/screenshots/*.png) from the dashboard's
# browser tests; the tests alone write theirs under target/screenshots/. Needs Chromium and
# ChromeDriver (scripts/test.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --bins
KICI_E2E_SCREENSHOTS_DIR="$PWD/docs/screenshots" KICI_TEST_REQUIRE_CHROMIUM=1 \
  cargo nextest run -p kici-testkit --test dashboard
git status --short docs/screenshots
