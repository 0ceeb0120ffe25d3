#!/usr/bin/env bash
# The main job for a newcomer: build KiCI, then `kici up`: the dashboard, an orchestrator
# (embedded SQLite) and an agent on this machine, a demo repository (`kici init`'s hello world,
# compiled and committed) registered as a local source, a real `git push`, and the run it
# started, printed with its logs, its dashboard URL and commands to try. The stack stays up
# until Ctrl-C; `./scripts/demo.sh --once` stops after the run. State goes under a temporary
# directory unless `--state-dir DIR` names one (running again on it pushes a new commit).
# Needs git and Node.js 20+.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --workspace --bins
exec target/debug/kici up "$@"
