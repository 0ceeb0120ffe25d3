#!/usr/bin/env bash
# Every benchmark, on release builds: `kici compile` and `kici run local` (crates/kici-cli),
# the orchestrator + agent loop, the auto-scalers, the dashboard's run page and the load
# harness's figures (crates/kici-testkit).
# Each prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --workspace --bins
cargo bench --quiet -p kici-cli --bench cli
cargo bench --quiet -p kici-testkit --bench pipeline
cargo bench --quiet -p kici-testkit --bench dashboard
./scripts/agent-image.sh "${CARGO_TARGET_DIR:-target}/release/kici-agent" >/dev/null
cargo bench --quiet -p kici-testkit --bench scalers
# Fleet-size figures with simulated agents (scripts/load.sh has the PostgreSQL, cluster and
# acceptance scenarios).
./scripts/load.sh sqlite
