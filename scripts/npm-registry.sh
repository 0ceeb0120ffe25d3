#!/usr/bin/env bash
# Starts a private npm registry for the tests on 127.0.0.1 (port $KICI_TEST_NPM_PORT, default
# 59010) and prints its URL. It is verdaccio (npm `verdaccio@6`, installed under
# $KICI_TEST_TOOLS when missing): the registry teams self-host, with real token auth. It holds
# one package, `@kici-test/greet@1.0.0`, that only an authenticated user may read, and it has no
# uplink, so nothing reaches the public registry. Tests log in as user `kici-test`, password
# `kici-test-password` (`PUT /-/user/org.couchdb.user:kici-test`) to get a token. Safe to run
# twice: a registry already answering there is reused.
set -euo pipefail
port=${KICI_TEST_NPM_PORT:-59010}
url="http://127.0.0.1:$port"
tools=${KICI_TEST_TOOLS:-/tmp/kici-test-tools}
home=${KICI_TEST_NPM_HOME:-/tmp/kici-test-npm-registry}
user=kici-test
password=kici-test-password

up() { curl -fs -o /dev/null --max-time 1 "$url/-/ping"; }
# Signs the user up on a fresh registry, logs in (basic auth) on one that has it; prints a token.
login() {
  local body="{\"name\":\"$user\",\"password\":\"$password\"}" endpoint="$url/-/user/org.couchdb.user:$user"
  { curl -fsS -X PUT -u "$user:$password" -H 'content-type: application/json' -d "$body" "$endpoint" 2>/dev/null ||
    curl -fsS -X PUT -H 'content-type: application/json' -d "$body" "$endpoint"; } |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).token))'
}

if ! up; then
  if [ ! -x "$tools/verdaccio/node_modules/.bin/verdaccio" ]; then
    echo "==> installing verdaccio" >&2
    mkdir -p "$tools/verdaccio"
    npm install --prefix "$tools/verdaccio" --no-audit --no-fund --loglevel=error verdaccio@6 >&2
  fi
  mkdir -p "$home/storage"
  cat >"$home/config.yaml" <<EOF
storage: $home/storage
auth:
  htpasswd:
    file: $home/htpasswd
    max_users: 10
uplinks: {}
packages:
  '@kici-test/*':
    access: \$authenticated
    publish: \$authenticated
  '**':
    access: \$all
    publish: \$authenticated
log: { type: stdout, format: pretty, level: warn }
EOF
  nohup "$tools/verdaccio/node_modules/.bin/verdaccio" --config "$home/config.yaml" --listen "127.0.0.1:$port" \
    >"$home/verdaccio.log" 2>&1 &
  for _ in $(seq 1 100); do
    up && break
    sleep 0.2
  done
  up || { echo "error: verdaccio did not start on $url (see $home/verdaccio.log)" >&2; exit 1; }
fi

token=$(login)
if ! curl -fs -o /dev/null -H "authorization: Bearer $token" "$url/@kici-test%2fgreet"; then
  package=$(mktemp -d)
  trap 'rm -rf "$package"' EXIT
  cat >"$package/package.json" <<'EOF'
{ "name": "@kici-test/greet", "version": "1.0.0", "type": "module", "main": "index.js" }
EOF
  echo 'export const greet = (name) => `hello, ${name}, from the private registry`;' >"$package/index.js"
  printf '//127.0.0.1:%s/:_authToken=%s\n' "$port" "$token" >"$package/.npmrc"
  (cd "$package" && npm publish --registry "$url" --userconfig "$package/.npmrc" --loglevel=error >&2)
fi
echo "$url"
