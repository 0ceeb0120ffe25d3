#!/usr/bin/env bash
# The main job for a newcomer: build KiCI, then `kici up --once`: the dashboard, an
# orchestrator (embedded SQLite) and an agent on this machine, a demo repository (`kici init`'s
# hello world, compiled and committed) registered as a local source, a real `git push`, and the
# run it started, printed with its logs and its dashboard URL. Everything stays under a
# temporary directory. Needs git and Node.js 20+. Run `target/debug/kici up` instead to keep
# the stack running.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --bins
exec target/debug/kici up --once "$@"
