#!/usr/bin/env bash
# The main job for a newcomer: build `kici`, put the example workflow (examples/hello) in a
# fresh git repository, compile it to .kici/kici.lock.json and run it on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

cargo build --quiet -p kici-cli
kici="$root/target/debug/kici"

work=$(mktemp -d -t kici-demo-XXXXXX)
cp -r examples/hello/. "$work"
cd "$work"
git init -q -b main
git add -A
git -c user.name=demo -c user.email=demo@kici.local commit -q -m "hello KiCI"

echo "==> kici compile (in $work)"
"$kici" compile
echo
echo "==> kici run local push"
"$kici" run local push
