#!/usr/bin/env bash
# Makes the data directory an earlier build leaves behind, for the upgrade test
# (testkit operations::a_data_directory_of_an_earlier_release_is_migrated_and_keeps_its_runs):
# builds COMMIT in a worktree, starts its orchestrator and an agent, pushes a workflow that runs,
# adds an admin token, stops both and packs the data directory and that token into
# crates/kici-testkit/tests/fixtures/data-<commit>.tar.gz. Needs git, Node.js and curl.
#   scripts/upgrade-fixture.sh COMMIT   (KICI_FIXTURE_TARGET: a cargo target directory to reuse)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$root" rev-parse --short=7 "${1:?usage: scripts/upgrade-fixture.sh COMMIT}")
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  git -C "$root" worktree remove --force "$work/src" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git -C "$root" worktree add -q --detach "$work/src" "$commit"
target=$(realpath -m "${KICI_FIXTURE_TARGET:-$work/target}")
# The orchestrator refuses KICI_* variables it does not know.
unset KICI_FIXTURE_TARGET
echo "==> building $commit" >&2
(cd "$work/src" && CARGO_TARGET_DIR=$target cargo build -q -p kici-orchestrator -p kici-agent -p kici-cli -p kici-admin --bins)
export PATH="$target/debug:$PATH"
token=upgrade-fixture-admin-token-0123456789
mkdir -p "$work/kici/data"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KICI_DATA_DIR="$work/kici/data" KICI_PORT=$port KICI_BOOTSTRAP_ADMIN_TOKEN=$token \
  kici-orchestrator > "$work/orchestrator.log" 2>&1 &
orchestrator=$!
until curl -sf "http://127.0.0.1:$port/ready" > /dev/null; do
  kill -0 "$orchestrator" 2>/dev/null || { cat "$work/orchestrator.log" >&2; exit 1; }
  sleep 0.2
done
export KICI_ADMIN_URL="http://127.0.0.1:$port" KICI_URL="http://127.0.0.1:$port" KICI_ADMIN_TOKEN=$token KICI_TOKEN=$token
kici-admin token create --label "made-by-$commit" | sed -n 's/^Token created: *//p' > "$work/kici/made-by-token"
agent_token=$(kici-admin agent register --label builder --labels linux | sed -n 's/^Token: *//p')
KICI_ORCHESTRATOR_URL="ws://127.0.0.1:$port/ws" KICI_AGENT_TOKEN=$agent_token KICI_LABELS=linux \
  KICI_WORK_DIR="$work/agent" kici-agent > "$work/agent.log" 2>&1 &
agent=$!
git init -q --bare -b main "$work/app.git" && git clone -q "$work/app.git" "$work/app" 2>/dev/null && cd "$work/app"
mkdir -p .kici/workflows
cat > .kici/workflows/upgrade.ts <<'TS'
import { workflow, job, step, push } from '@kici-dev/sdk';

export default workflow('upgrade', {
  on: push(),
  jobs: [job('greet', { runsOn: 'linux', steps: [step('hello', async ({ $ }) => { await $`echo hello from an earlier build`; })] })],
});
TS
kici compile > /dev/null && git add -A && git -c user.name=ops -c user.email=ops@example.com commit -qm "the earlier build's run"
kici-admin source add local --name app --path "$work/app.git" > /dev/null
kici-admin source install-hook app > /dev/null
git push -q origin HEAD:main
for _ in $(seq 1 100); do
  if kici runs list | grep -q success; then break; fi
  sleep 0.2
done
kici runs list | grep -q success || { cat "$work/orchestrator.log" "$work/agent.log" >&2; echo "error: the run did not succeed" >&2; exit 1; }
kill -TERM "$agent" "$orchestrator" && wait "$agent" "$orchestrator" 2>/dev/null || true
out="$root/crates/kici-testkit/tests/fixtures/data-$commit.tar.gz"
tar -C "$work/kici" --owner=0 --group=0 --sort=name -czf "$out" data made-by-token
echo "$out"
