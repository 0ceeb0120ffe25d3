#!/usr/bin/env bash
# Sets up Podman as the container engine for the "container" auto-scaler: installs podman and
# runc with apt when missing, makes sure /etc/containers/containers.conf selects runc and sets no
# default ulimits, and starts Podman's Docker-compatible API service on
# unix:///run/podman/podman.sock (log: /tmp/podman-service.log) unless it already answers.
# Idempotent: safe to run any number of times. Prints nothing but errors, or one line at the end.
set -euo pipefail

sock=/run/podman/podman.sock
conf=/etc/containers/containers.conf
log=/tmp/podman-service.log
pidfile=/run/podman/kici-podman-service.pid
wait_secs=${KICI_PODMAN_WAIT_SECS:-60}

die() { echo "podman.sh: error: $*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi

# --- packages ---------------------------------------------------------------------------------
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || missing+=(runc)
if [ ${#missing[@]} -gt 0 ]; then
  apt_log=$(mktemp /tmp/podman-apt.XXXXXX.log)
  if ! { "${sudo_cmd[@]}" apt-get update -qq \
         && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
              --no-install-recommends "${missing[@]}" netavark aardvark-dns iptables catatonit \
              uidmap slirp4netns; } >"$apt_log" 2>&1; then
    cat "$apt_log" >&2
    die "installing ${missing[*]} with apt-get failed (log above, also in $apt_log)"
  fi
  rm -f "$apt_log"
fi

# --- /etc/containers/containers.conf ------------------------------------------------------------
# ensure_key SECTION KEY VALUE: make `KEY = VALUE` the setting of KEY in [SECTION], replacing an
# existing (uncommented) setting of KEY there, adding the section when it is missing, and leaving
# every other line as it is.
ensure_key() {
  local section=$1 key=$2 value=$3 tmp
  tmp=$(mktemp)
  awk -v section="$section" -v key="$key" -v value="$value" '
    function header(line,   s) {
      s = line; sub(/^[ \t]*\[+[ \t]*/, "", s); sub(/[ \t]*\]+.*$/, "", s); return s
    }
    BEGIN { in_sec = 0; seen_sec = 0; done = 0; skip = 0 }
    skip > 0 {
      # the rest of a multi-line array value that is being replaced
      skip += gsub(/\[/, "[") - gsub(/\]/, "]"); next
    }
    /^[ \t]*\[/ {
      if (in_sec && !done) { print key " = " value; done = 1 }
      in_sec = (header($0) == section && $0 !~ /^[ \t]*\[\[/)
      if (in_sec) seen_sec = 1
      print
      next
    }
    in_sec && !done && $0 ~ "^[ \t]*" key "[ \t]*=" {
      v = $0; sub(/^[^=]*=/, "", v); skip = gsub(/\[/, "[", v) - gsub(/\]/, "]", v)
      print key " = " value; done = 1; next
    }
    { print }
    END {
      if (in_sec && !done) { print key " = " value; done = 1 }
      if (!seen_sec) { print ""; print "[" section "]"; print key " = " value }
    }
  ' "$conf" >"$tmp"
  if ! cmp -s "$tmp" "$conf"; then
    "${sudo_cmd[@]}" cp "$tmp" "$conf"
    conf_changed=1
  fi
  rm -f "$tmp"
}

conf_changed=0
if [ ! -f "$conf" ]; then
  "${sudo_cmd[@]}" mkdir -p "$(dirname "$conf")"
  printf '%s\n' \
    '# Written by KiCI scripts/podman.sh.' \
    '[containers]' \
    'default_ulimits = []' \
    '' \
    '[engine]' \
    'runtime = "runc"' | "${sudo_cmd[@]}" tee "$conf" >/dev/null
fi
ensure_key containers default_ulimits '[]'
ensure_key engine runtime '"runc"'

# --- API service --------------------------------------------------------------------------------
ping() { [ "$(curl -s --max-time 2 --unix-socket "$sock" http://d/_ping 2>/dev/null)" = OK ]; }
# our_service: the pid of the service this script started, if it is still running.
our_service() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "podman system service" \
    && echo "$pid"
}

# A service that is already running only reads containers.conf at its start.
if [ "$conf_changed" = 1 ] && ping; then
  if pid=$(our_service); then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  else
    echo "podman.sh: warning: $conf changed; restart the running Podman API service on $sock to apply it" >&2
  fi
fi

if ! ping; then
  # One started earlier and still coming up: just wait for it.
  running=$(our_service || true)
  if [ -z "$running" ]; then
    "${sudo_cmd[@]}" mkdir -p "$(dirname "$sock")"
    "${sudo_cmd[@]}" rm -f "$sock" # a stale socket left by a service that is gone
    # setsid + nohup: the service outlives this script and the shell (and process group) that ran it.
    setsid nohup "${sudo_cmd[@]}" podman system service --time=0 "unix://$sock" \
      >"$log" 2>&1 </dev/null &
    running=$!
    echo "$running" | "${sudo_cmd[@]}" tee "$pidfile" >/dev/null
  fi
  deadline=$((SECONDS + wait_secs))
  until ping; do
    if ! kill -0 "$running" 2>/dev/null; then
      tail -n 20 "$log" >&2 || true
      die "podman system service exited before $sock answered (log above, in $log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$log" >&2 || true
      die "podman system service (pid $running) did not answer on $sock within ${wait_secs}s (log: $log)"
    fi
    sleep 0.2
  done
fi

echo "podman $(podman version --format '{{.Server.Version}}' 2>/dev/null || podman --version | awk '{print $NF}') API ready on unix://$sock"
