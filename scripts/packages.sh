#!/usr/bin/env bash
# Builds the Debian packages of the binaries already built: kici-orchestrator and kici-agent (the
# services, with their units, users and default settings) and kici (kici and kici-admin), into
# target/debian/<profile>. Installs cargo-deb from crates.io into target/tools the first time.
#   scripts/packages.sh [release|debug] [REVISION]   (REVISION: the Debian revision, default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
revision="${2:-1}"
# Release packages are for hosts (xz: about 40 % smaller, 20 s a package); debug ones for the
# tests (gzip, fast). The system's compressors: cargo-deb's own are far slower in this build.
case "$profile" in
  release) cargo_profile=release; compress=(--compress-type xz) ;;
  debug) cargo_profile=dev; compress=(--compress-type gz --fast) ;;
  *) echo "error: unknown profile \`$profile\` (hint: release or debug)" >&2; exit 1 ;;
esac
target="${CARGO_TARGET_DIR:-target}"
tools="$target/tools"
cargo_deb="$tools/bin/cargo-deb"
if ! "$cargo_deb" --version 2>/dev/null | grep -q '^cargo-deb 3\.'; then
  echo "==> installing cargo-deb into $tools" >&2
  cargo install --quiet cargo-deb --version '^3' --locked --no-default-features --root "$tools"
fi
for bin in kici-orchestrator kici-agent kici kici-admin; do
  if [ ! -x "$target/$profile/$bin" ]; then
    echo "error: $target/$profile/$bin is not built (hint: cargo build --workspace --bins${profile/debug/}${profile/release/ --release})" >&2
    exit 1
  fi
done
if [ "$profile" = release ] && ! command -v xz >/dev/null; then
  echo "error: release packages are xz-compressed and there is no xz (hint: apt-get install xz-utils)" >&2
  exit 1
fi
out="$target/debian/$profile"
mkdir -p "$out"
# Only this build's packages of that revision: an older version's would match the same globs.
rm -f "$out"/*_*-"$revision"_*.deb
for package in kici-orchestrator kici-agent kici-cli; do
  "$cargo_deb" --quiet --no-build --profile "$cargo_profile" --deb-revision "$revision" \
    "${compress[@]}" --compress-system -p "$package" -o "$out" >/dev/null
done
ls "$out"/*_*-"$revision"_*.deb
