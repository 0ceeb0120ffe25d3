#!/usr/bin/env bash
# Prints the path of a podman-compose (PyPI `podman-compose` 1.0.x, the series for Podman 4.3),
# installing it with pip under target/tools the first time. Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target="$(pwd)/$target" ;; esac
dir="$target/tools/podman-compose"
compose="$dir/podman-compose"
if ! "$compose" version >/dev/null 2>&1; then
  echo "==> installing podman-compose into $dir" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --upgrade --target "$dir/lib" 'podman-compose>=1.0.6,<1.1' >&2
  printf '#!/bin/sh\nPYTHONPATH=%s exec python3 -m podman_compose "$@"\n' "$dir/lib" > "$compose"
  chmod 755 "$compose"
fi
echo "$compose"
