#!/usr/bin/env bash
# Builds the agent container image `localhost/kici-agent:dev` for the "container" auto-scaler.
#
#   scripts/agent-image.sh [path/to/kici-agent]   (default: target/debug/kici-agent)
#
# A relative path is taken from the repo root. Builds the base first (scripts/base-image.sh,
# which sets up Podman), then the `agent` stage of the repo's Containerfile, with a temporary
# directory holding only the binary as the build context (never the huge target/ dir).
# Idempotent; takes a few seconds once the base exists. Prints one line per image built.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
image_ref=${KICI_AGENT_IMAGE:-localhost/kici-agent:dev}

die() { echo "agent-image.sh: error: $*" >&2; exit 1; }

agent=${1:-target/debug/kici-agent}
case $agent in /*) ;; *) agent=$root/$agent ;; esac
if [ ! -f "$agent" ] || [ ! -x "$agent" ]; then
  die "agent binary $agent not found or not executable (hint: cargo build -p kici-agent)"
fi

bash "$root/scripts/base-image.sh"

work=$(mktemp -d /tmp/kici-agent-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Build context: only the binary, where the Containerfile takes it (a hard link when possible,
# else a copy).
old_id=$(podman image inspect --format '{{.Id}}' "$image_ref" 2>/dev/null || true)
mkdir -p "$work/context/target/release"
ln "$agent" "$work/context/target/release/kici-agent" 2>/dev/null || cp "$agent" "$work/context/target/release/kici-agent"
if ! podman build --quiet --pull=never --layers --target agent -f "$root/Containerfile" -t "$image_ref" \
    "$work/context" >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  die "podman build of $image_ref failed"
fi
new_id=$(podman image inspect --format '{{.Id}}' "$image_ref")
# The image this tag named before (an older binary) is dangling now: drop it unless a
# container still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "built $image_ref (${new_id:0:12})"
