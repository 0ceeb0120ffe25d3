#!/usr/bin/env bash
# Runs every test: Rust unit and end-to-end tests (real git, real Node.js, real Podman, the
# dashboard in headless Chromium) and the JavaScript runner's own tests. Installs what is
# missing first; safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests must not change tracked files: what differs from the last commit now is compared at the end.
tracked_before=$(git diff --name-only 2>/dev/null || true)

need_apt=()
command -v git >/dev/null || need_apt+=(git)
command -v node >/dev/null || need_apt+=(nodejs)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v curl >/dev/null || need_apt+=(curl)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "==> installing ${need_apt[*]}"
  if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}"
  # Only promtool is wanted from the prometheus package; a server it may have started listens
  # on all interfaces, so stop it.
  "${sudo_cmd[@]}" service prometheus stop >/dev/null 2>&1 || true
  # Likewise the SSH tests start their own sshd on 127.0.0.1; the package's listens on port 22.
  "${sudo_cmd[@]}" service ssh stop >/dev/null 2>&1 || true
fi
export KICI_TEST_REQUIRE_SSHD=1
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "error: Node.js $node_major found; KiCI needs Node.js 20 or newer" >&2
  exit 1
fi

echo "==> PostgreSQL for the store and end-to-end tests (127.0.0.1 only)"
KICI_TEST_POSTGRES_URL=$(./scripts/postgres.sh)
# Every test makes a database of its own; those an earlier run left would fill the disk run by run.
psql "$KICI_TEST_POSTGRES_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'kici\_%'" |
  while read -r db; do psql -q "$KICI_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null; done
export KICI_TEST_POSTGRES_URL KICI_TEST_REQUIRE_POSTGRES=1 KICI_TEST_REQUIRE_PROMTOOL=1 KICI_TEST_REQUIRE_CHROMIUM=1

echo "==> An S3-compatible server for the object storage tests (moto, 127.0.0.1 only)"
KICI_TEST_S3_ENDPOINT=$(./scripts/s3.sh)
export KICI_TEST_S3_ENDPOINT KICI_TEST_REQUIRE_S3=1

echo "==> A private npm registry for the dependency tests (verdaccio, 127.0.0.1 only)"
KICI_TEST_NPM_REGISTRY=$(./scripts/npm-registry.sh)
export KICI_TEST_NPM_REGISTRY KICI_TEST_REQUIRE_NPM_REGISTRY=1

echo "==> mise for the init preset tests (npm @jdxcode/mise)"
KICI_TEST_MISE=$(./scripts/mise.sh)
export KICI_TEST_MISE KICI_TEST_REQUIRE_MISE=1

echo "==> axe-core for the dashboard's accessibility checks (npm axe-core)"
KICI_TEST_AXE=$(./scripts/axe.sh)
export KICI_TEST_AXE KICI_TEST_REQUIRE_AXE=1

echo "==> TypeScript for the SDK type checks (npm typescript, @types/node)"
KICI_TEST_TSC=$(./scripts/tsc.sh)
export KICI_TEST_TSC KICI_TEST_REQUIRE_TSC=1

echo "==> JavaScript runner tests (node --test)"
node --test sdk/tests/

echo "==> Building the binaries the end-to-end tests start"
cargo build --workspace --bins
echo "==> The Debian packages of these binaries (cargo-deb) for the single-host quickstart"
./scripts/packages.sh debug >/dev/null
echo "==> Podman and the agent image for the container auto-scaler tests"
./scripts/agent-image.sh "${CARGO_TARGET_DIR:-target}/debug/kici-agent"
export KICI_TEST_REQUIRE_PODMAN=1
echo "==> podman-compose for the containers quickstart (PyPI podman-compose)"
KICI_TEST_PODMAN_COMPOSE=$(./scripts/podman-compose.sh)
export KICI_TEST_PODMAN_COMPOSE
if cargo nextest --version >/dev/null 2>&1; then runner=(cargo nextest run --no-fail-fast); else runner=(cargo test --no-fail-fast); fi
echo "==> Rust tests (end-to-end on SQLite)"
"${runner[@]}" --workspace
echo "==> End-to-end tests again on PostgreSQL"
# The image, systemd service and quickstart tests use no stack database: once is enough.
if [ "${runner[1]}" = nextest ]; then
  KICI_TEST_E2E_DATABASE=postgres "${runner[@]}" -p kici-testkit -E 'not (binary(images) | binary(services) | binary(quickstart))'
else
  KICI_TEST_E2E_DATABASE=postgres "${runner[@]}" -p kici-testkit
fi
echo "==> The documentation book (mdBook) and its links"
./scripts/book.sh
echo "==> The README's shell blocks, pasted as a newcomer would"
# With the debug build the tests made: a release build would add minutes and test nothing more here.
KICI_INSTALL_PROFILE=debug ./scripts/readme-test.sh
if git rev-parse --git-dir >/dev/null 2>&1; then
  changed=$(comm -13 <(printf '%s\n' "$tracked_before" | sort) <(git diff --name-only | sort))
  if [ -n "$changed" ]; then
    echo "error: the tests changed tracked files:" >&2
    echo "$changed" >&2
    exit 1
  fi
fi
