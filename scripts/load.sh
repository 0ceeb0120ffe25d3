#!/usr/bin/env bash
# Figures at fleet size with simulated agents (crates/kici-testkit/benches/load.rs has every
# parameter). Usage:
#   scripts/load.sh [sqlite|postgres|cluster|acceptance] [KEY=VALUE ...]
#     sqlite      (default) one orchestrator on SQLite: jobs/s, 1,000 idle agents, log MB/s to
#                 the local disk, a webhook burst
#     postgres    the same on PostgreSQL (scripts/postgres.sh), log MB/s to S3 (scripts/s3.sh)
#     cluster     jobs/s through 1 and then 3 orchestrators on PostgreSQL and S3
#     acceptance  10,000 jobs through 3 orchestrators and 50 agents, 5 % dropped connections,
#                 one orchestrator SIGKILLed half-way, every guarantee checked
#   KEY=VALUE pairs override the scenario's settings, e.g. KICI_LOAD_JOBS=5000.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-sqlite}"
shift || true
cargo build --release --quiet --workspace --bins
echo "commit $(git rev-parse --short HEAD); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(free -g | awk '/Mem:/ {print $2}') GiB"

postgres() {
  export KICI_TEST_POSTGRES_URL="${KICI_TEST_POSTGRES_URL:-$(scripts/postgres.sh)}"
  export KICI_TEST_E2E_DATABASE=postgres
}
s3() { export KICI_TEST_S3_ENDPOINT="${KICI_TEST_S3_ENDPOINT:-$(scripts/s3.sh)}"; }
bench() { env "$@" cargo bench --quiet -p kici-testkit --bench load; }

case "$mode" in
  sqlite) bench "$@" ;;
  postgres)
    postgres
    bench KICI_LOAD_SCENARIOS=jobs,agents,webhooks "$@"
    s3
    bench KICI_LOAD_SCENARIOS=logs "$@" ;;
  cluster)
    postgres; s3
    bench KICI_LOAD_SCENARIOS=jobs KICI_LOAD_ORCHESTRATORS=1 "$@"
    bench KICI_LOAD_SCENARIOS=jobs KICI_LOAD_ORCHESTRATORS=3 "$@" ;;
  acceptance)
    postgres; s3
    bench KICI_LOAD_SCENARIOS=jobs KICI_LOAD_ORCHESTRATORS=3 KICI_LOAD_AGENTS=50 KICI_LOAD_JOBS=10000 \
      KICI_LOAD_DISCONNECT=0.05 KICI_LOAD_KILL=1 KICI_LOAD_CHECK=1 "$@" ;;
  *) echo "usage: scripts/load.sh [sqlite|postgres|cluster|acceptance] [KEY=VALUE ...]" >&2; exit 2 ;;
esac
