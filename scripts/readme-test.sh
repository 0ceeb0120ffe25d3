#!/usr/bin/env bash
# Runs the README's shell blocks as a newcomer would paste them, in order, in one shell, with a
# fresh HOME: "Running it yourself" (services, agent, repository, push), "When something fails"
# (with the run it made), "Dashboard" (the Platform, the orchestrator restarted onto it) and
# "Writing workflows". Fails on the first command that fails. Two substitutions, both said
# here: `./scripts/install.sh` puts the already built debug binaries on PATH instead of a
# release build (minutes on CI), and `<runId>` is the run the push started. Needs the ports
# 4000 and 4100 free; stops every service it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
[ -x "$bin/kici" ] || { echo "error: build first (cargo build --workspace --bins)" >&2; exit 1; }
home=$(mktemp -d)
stop() {
  for service in kici-orchestrator kici-agent kici-platform; do pkill -f "^$service" || true; done
  rm -rf "$home"
}
trap stop EXIT
script="$home/readme.sh"
python3 - "$root/README.md" "$script" "$bin" <<'PY'
import re, sys
readme, out, bin_dir = sys.argv[1:]
text = open(readme).read()
def block(heading):
    start = text.index(heading)
    body = re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)
    return f"echo '==> README: {heading}'\n" + body
script = block("## Running it yourself")
script = script.replace("./scripts/install.sh", f"ln -sf {bin_dir}/kici {bin_dir}/kici-admin {bin_dir}/kici-orchestrator {bin_dir}/kici-agent {bin_dir}/kici-platform -t \"$HOME/.local/bin\"")
script += 'run_id=$(kici runs list | awk \'NR == 2 {print $1}\')\n'
failing = block("When something fails:").replace("<runId>", "$run_id")
# diagnose exits 1 for warnings (no TLS certificate here); anything else is a failure.
failing = "\n".join(l + " || [ $? -le 1 ]" if l.startswith("kici-admin diagnose") else l for l in failing.splitlines()) + "\n"
script += failing + block("## Dashboard")
script += 'cd "$HOME" && mkdir workflows && cd workflows && git init -q\n' + block("## Writing workflows")
open(out, "w").write("set -euo pipefail\nmkdir -p \"$HOME/.local/bin\"\n" + script)
PY
cd "$home"
env -i PATH="/usr/local/bin:/usr/bin:/bin" HOME="$home" LANG=C.UTF-8 \
  GIT_AUTHOR_NAME=readme GIT_AUTHOR_EMAIL=readme@kici.local GIT_COMMITTER_NAME=readme GIT_COMMITTER_EMAIL=readme@kici.local \
  bash "$script"
echo "README blocks ran"
