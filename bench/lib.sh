# shellcheck shell=bash
# What the benchmarks that drive a real `dumont server` share (detect.sh,
# failover.sh, flood.sh, slowloris.sh): a scratch directory, a server on a
# random port of 127.0.0.1 with a fresh DUMONT_HOME and SQLite, and a cleanup
# that stops it and every process left by its local instances.
#
#   . "$(dirname "$0")/lib.sh"; bench_init NAME     # sets src, BIN, tmp
#   bench_start_server [SERVER ARGS...]             # sets port, server; exports DUMONT_URL
#   BENCH_PIDS+=(PID)                               # also SIGKILLed at exit
#   BENCH_KEEP_LOG=FILE                             # the server log is copied there at exit
#   api PATH; now_ms; state_of ID; wait_state ID STATE SECONDS   # once the server runs

BENCH_PIDS=()
BENCH_KEEP_LOG=""
server=""

bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]+"${BENCH_PIDS[@]}"}"; do
        kill -CONT "$p" 2>/dev/null || true
        kill -KILL "$p" 2>/dev/null || true
    done
    [ -z "$server" ] || { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    for p in /proc/[0-9]*; do # the instances outlive the server, like real machines
        { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -q "^DUMONT_HOME=$tmp/" &&
            kill -KILL "${p#/proc/}" 2>/dev/null || true
    done
    [ -z "$BENCH_KEEP_LOG" ] || cp "$tmp/server.log" "$BENCH_KEEP_LOG" 2>/dev/null || true
    local h # the workspaces a root server keeps outside its home (provider/local.h PROV-LP6)
    h=$(printf '%s' "$(realpath "$DUMONT_HOME" 2>/dev/null)" | sha256sum | cut -c1-12)
    [ ! -d "/var/lib/dumont/workspaces/$h" ] || rm -rf "/var/lib/dumont/workspaces/$h"
    rm -rf "$tmp"
}

bench_init() {
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    BIN=${DUMONT_BIN:-$src/build/dumont}
    case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac # instances run elsewhere: no relative paths
    [ -x "$BIN" ] || { echo "$1: build first ($BIN missing)" >&2; exit 1; }
    command -v jq >/dev/null || { echo "$1: jq is needed" >&2; exit 1; }
    tmp=$(mktemp -d "/tmp/dumont-bench-$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    export DUMONT_HOME=$tmp/home
    mkdir -m 700 "$DUMONT_HOME"
    unset DUMONT_DATABASE_URL DUMONT_TOKEN
}

bench_start_server() {
    port=$((20000 + RANDOM % 30000))
    export DUMONT_URL=http://127.0.0.1:$port
    "$BIN" server --listen "127.0.0.1:$port" "$@" >"$tmp/server.log" 2>&1 &
    server=$!
    local _
    for _ in $(seq 1 200); do
        if curl -sf "$DUMONT_URL/healthz" >/dev/null 2>&1 && [ -s "$DUMONT_HOME/token" ]; then
            (umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$DUMONT_HOME/token")" >"$tmp/auth")
            return 0
        fi
        sleep 0.05
    done
    echo "the server did not start; its log:" >&2
    tail -20 "$tmp/server.log" >&2
    exit 1
}

# The API with the server's token (from a file of mode 0600, never argv).
api() { curl -sf -H "@$tmp/auth" "$DUMONT_URL$1"; }
now_ms() { local t=$EPOCHREALTIME; echo $((${t%[.,]*} * 1000 + 10#${t#*[.,]} / 1000)); }
state_of() { api "/api/instances/$1" | jq -r .state; }
wait_state() { # ID STATE SECONDS
    local end=$(($(now_ms) + $3 * 1000))
    while [ "$(now_ms)" -lt "$end" ]; do
        [ "$(state_of "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    echo "instance $1 never became $2" >&2
    return 1
}
