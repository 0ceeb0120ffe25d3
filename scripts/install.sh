#!/usr/bin/env bash
# Builds KiCI in release mode and installs its five binaries (kici, kici-admin,
# kici-orchestrator, kici-agent, kici-platform) into ${PREFIX:-~/.local}/bin. Needs Rust 1.95+
# (https://rustup.rs); the services and `kici` also need git and Node.js 20+ at run time.
# KICI_INSTALL_PROFILE=debug installs the debug build instead (scripts/test.sh, which built it).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-$HOME/.local}"
case "${KICI_INSTALL_PROFILE:-release}" in
  release) cargo build --release --quiet --bins; profile=release ;;
  debug) cargo build --quiet --bins; profile=debug ;;
  *) echo "error: KICI_INSTALL_PROFILE=${KICI_INSTALL_PROFILE} (hint: release or debug)" >&2; exit 1 ;;
esac
target="${CARGO_TARGET_DIR:-target}/$profile"
mkdir -p "$prefix/bin"
for binary in kici kici-admin kici-orchestrator kici-agent kici-platform; do
  install -m 0755 "$target/$binary" "$prefix/bin/$binary"
done
echo "installed kici, kici-admin, kici-orchestrator, kici-agent and kici-platform in $prefix/bin"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "add it to PATH: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
