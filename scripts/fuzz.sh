#!/usr/bin/env bash
# Fuzzes KiCI's parsers on an optimized build: `scripts/fuzz.sh [seconds-per-target] [target…]`
# (default 60 s, every target). Prints inputs executed, panics, crashes and time per target;
# findings are saved under target/fuzz/findings/ and make the script exit 1. Set
# KICI_FUZZ_SEED to repeat a run. Targets: lockfile webhook agent-protocol platform-protocol
# runner-protocol scalers patterns triggers.
#
# Like cargo-fuzz, the build keeps debug assertions and overflow checks, so an arithmetic
# overflow is a panic here even though release binaries wrap; it has its own target directory
# so the ordinary release build is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(all)
seed_args=()
[ -z "${KICI_FUZZ_SEED:-}" ] || seed_args=(--seed "$KICI_FUZZ_SEED")
fuzz_dir="${CARGO_TARGET_DIR:-target}/fuzz"
CARGO_TARGET_DIR="$fuzz_dir" CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
  cargo build --release --quiet -p kici-fuzz
exec "$fuzz_dir/release/kici-fuzz" "${targets[@]}" --seconds "$seconds" --crash-dir "$fuzz_dir/findings" "${seed_args[@]}"
