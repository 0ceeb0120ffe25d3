#!/usr/bin/env bash
# Runs the README's shell blocks as a newcomer would paste them, in order, in one shell, with a
# fresh HOME: the first block's `./scripts/demo.sh` (with `--once`, so it returns), then
# "Running it yourself" (the real `scripts/install.sh` into ~/.local/bin: a release build, or
# the debug one with KICI_INSTALL_PROFILE=debug, as scripts/test.sh runs it,
# services, agent, repository, push), "When something fails" (with the run it made),
# "Dashboard" (the Platform, the orchestrator restarted onto it) and "Writing workflows".
# Fails on the first command that fails. What is substituted: `<runId>` is the run the push
# started, and `./scripts/` is this checkout's (the blocks assume its root as the directory).
# `./scripts/test.sh`, the first block's other line, is what runs this. Needs the ports 4000
# and 4100 free; stops every service it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
home=$(mktemp -d)
stop() {
  for service in kici-orchestrator kici-agent kici-platform; do pkill -f "^$service" || true; done
  rm -rf "$home"
}
trap stop EXIT
# Given to install.sh alone: the services the blocks start refuse KICI_* variables they do not know.
profile=${KICI_INSTALL_PROFILE:-release}
unset KICI_INSTALL_PROFILE
script="$home/readme.sh"
python3 - "$root/README.md" "$script" "$root" "$profile" <<'PY'
import re, shlex, sys
readme, out, root, profile = sys.argv[1:]
text = open(readme).read()
def block(heading):
    start = text.index(heading)
    body = re.search(r"```sh\n(.*?)```", text[start:], re.S).group(1)
    return f"echo '==> README: {heading}'\n" + body
first = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
demo = next(line for line in first.splitlines() if line.startswith("./scripts/demo.sh"))
script = "echo '==> README: the first block'\n" + demo.replace("./scripts/demo.sh", f"{root}/scripts/demo.sh --once --state-dir \"$HOME/demo\"", 1) + "\n"
running = block("## Running it yourself").replace("./scripts/", f"{root}/scripts/")
assert f"{root}/scripts/install.sh" in running
script += running.replace(f"{root}/scripts/install.sh", f"KICI_INSTALL_PROFILE={shlex.quote(profile)} {root}/scripts/install.sh")
script += 'run_id=$(kici runs list | awk \'NR == 2 {print $1}\')\n'
failing = block("When something fails:").replace("<runId>", "$run_id")
# diagnose exits 1 for warnings (no TLS certificate here); anything else is a failure.
failing = "\n".join(l + " || [ $? -le 1 ]" if l.startswith("kici-admin diagnose") else l for l in failing.splitlines()) + "\n"
script += failing + block("## Dashboard")
script += 'cd "$HOME" && mkdir workflows && cd workflows && git init -q\n' + block("## Writing workflows")
open(out, "w").write("set -euo pipefail\n" + script)
PY
cd "$home"
# Rust as rustup installs it (the README's prerequisite), from this machine's installation.
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
env -i PATH="$cargo_home/bin:/usr/local/bin:/usr/bin:/bin" HOME="$home" LANG=C.UTF-8 \
  CARGO_HOME="$cargo_home" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} \
  GIT_AUTHOR_NAME=readme GIT_AUTHOR_EMAIL=readme@kici.local GIT_COMMITTER_NAME=readme GIT_COMMITTER_EMAIL=readme@kici.local \
  bash "$script"
echo "README blocks ran"
