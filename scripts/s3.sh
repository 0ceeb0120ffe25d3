#!/usr/bin/env bash
# Starts a throwaway S3-compatible server for the tests on 127.0.0.1 (port $KICI_TEST_S3_PORT,
# default 59000) and prints its endpoint. It is moto's server (PyPI `moto[server]`, installed
# with pip when missing): a maintained, in-memory implementation of the S3 API, signatures and
# presigned URLs included, that starts in a second without a build. Safe to run twice: a server
# already answering there is reused.
set -euo pipefail
port=${KICI_TEST_S3_PORT:-59000}
endpoint="http://127.0.0.1:$port"
log=${KICI_TEST_S3_LOG:-/tmp/kici-test-s3.log}

up() { python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$endpoint/moto-api/" 2>/dev/null; }
if up; then
  echo "$endpoint"
  exit 0
fi
if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "==> installing moto[server]" >&2
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2
fi
# As a module: pip may put the `moto_server` script in a directory that is not on PATH.
nohup python3 -m moto.server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
for _ in $(seq 1 100); do
  if up; then
    echo "$endpoint"
    exit 0
  fi
  sleep 0.1
done
echo "error: moto_server did not start on $endpoint (see $log)" >&2
exit 1
