#!/usr/bin/env bash
# Builds the orchestrator, dashboard and agent images from the repository's Containerfile:
#
#   scripts/images.sh [release|debug]   (default: release; builds the binaries first)
#
# Tags localhost/kici-orchestrator:dev, localhost/kici-platform:dev and localhost/kici-agent:dev.
# The base comes from scripts/base-image.sh (no registry needed). Prints one line per image.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-release}
case $profile in
  release) cargo build --release --quiet --workspace --bins ;;
  debug) cargo build --quiet --workspace --bins ;;
  *) echo "usage: scripts/images.sh [release|debug]" >&2; exit 2 ;;
esac
bash scripts/base-image.sh
for stage in orchestrator platform agent; do
  podman build --quiet --pull=never --layers --target "$stage" --build-arg "PROFILE=$profile" \
    -t "localhost/kici-$stage:dev" -f Containerfile . >/dev/null
  echo "built localhost/kici-$stage:dev ($profile binaries)"
done
