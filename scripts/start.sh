#!/usr/bin/env bash
# Installs what is missing, builds, and runs the Dumont server in the
# foreground with the embedded defaults (local provider, file:// store,
# SQLite), plus one protected local "GPU" instance serving a small model, so
# that a real failover can be tried at once.
#
#   bash scripts/start.sh [server flags...]     # e.g. --listen 127.0.0.1:8700
#   bash scripts/start.sh --no-demo [flags...]  # the server alone
#
# The flags go to `build/dumont server` unchanged. The demo instance runs
# build/tiny-ollama (a small Ollama-API-compatible server, tests/fixtures/)
# over a workspace holding a 16 MiB test model; with real Ollama installed,
# launch `workload="ollama serve" probe=ollama:qwen2.5:0.5b` instead (README).
# On a restart a demo workload that still serves (launching, running or
# failing over) is kept, not launched twice; a demo that failed or was
# stopped is launched again. While a server already answers at the address,
# start.sh says so and exits 1. It installs only the build packages
# (scripts/install-deps.sh without --test) and talks to the API through
# bash's /dev/tcp (no curl needed). DUMONT_START_BUILT=DIR runs the programs
# already built in DIR and installs and builds nothing (a prebuilt tree).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
demo=1
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
if [ "${1:-}" = --no-demo ]; then
    demo=0
    shift
fi
home="${DUMONT_HOME:-${HOME:-.}/.dumont}"
listen="${DUMONT_LISTEN:-127.0.0.1:8700}"
prev=""
for arg in "$@"; do # the server's --home / --listen flags override the environment
    case "$arg" in
    --home=*) home=${arg#--home=} ;;
    --listen=*) listen=${arg#--listen=} ;;
    esac
    [ "$prev" = --home ] && home=$arg
    [ "$prev" = --listen ] && listen=$arg
    prev=$arg
done
export DUMONT_HOME="$home"
export DUMONT_URL="http://${listen/0.0.0.0/127.0.0.1}"
bin="${DUMONT_START_BUILT:-$root/build}"
dumont="$bin/dumont"

# http_get PATH [TOKEN_FILE]: the body of GET $DUMONT_URL/PATH; fails unless
# the answer is 200. Bash's /dev/tcp, so that start.sh needs no curl (the
# token travels in the request, never on a command line).
api_host=${DUMONT_URL#http://}
api_port=${api_host##*:}
api_host=${api_host%:*}
api_host=${api_host#[}
api_host=${api_host%]}
http_get() {
    local auth="" status line
    if [ -n "${2:-}" ]; then
        [ -r "$2" ] || return 1
        auth="Authorization: Bearer $(cat "$2")"$'\r\n'
    fi
    exec 3<>"/dev/tcp/$api_host/$api_port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n%sConnection: close\r\n\r\n' \
        "$1" "$api_host:$api_port" "$auth" >&3
    IFS=' ' read -r -t 5 _ status _ <&3 || { exec 3<&-; return 1; }
    while IFS= read -r -t 5 line <&3 && [ "${line%$'\r'}" != "" ]; do :; done
    [ "$status" = 200 ] && cat <&3
    exec 3<&-
    [ "$status" = 200 ]
}

if http_get /healthz >/dev/null 2>&1; then
    echo "dumont: a server already answers at $DUMONT_URL (an earlier start.sh?);" \
        "stop it first, or pick another address (--listen 127.0.0.1:PORT)" >&2
    exit 1
fi
if [ -z "${DUMONT_START_BUILT:-}" ]; then
    bash "$root/scripts/install-deps.sh"
    bash "$root/scripts/build.sh"
elif [ ! -x "$dumont" ] || [ ! -x "$bin/tiny-ollama" ]; then
    echo "dumont: DUMONT_START_BUILT=$bin holds no built dumont and tiny-ollama" >&2
    exit 1
fi

if [ "$demo" = 0 ]; then
    echo "dumont: API token in $home/token; for the CLI: export PATH=$bin:\$PATH" >&2
    exec "$dumont" server "$@"
fi

"$dumont" server "$@" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit $?' INT TERM
up=0
for _ in $(seq 1 300); do # up to 30 s for the API
    if http_get /healthz >/dev/null 2>&1; then
        up=1
        break
    fi
    kill -0 "$server" 2>/dev/null || { wait "$server"; exit $?; }
    sleep 0.1
done
if [ "$up" = 0 ]; then
    echo "dumont: the API did not answer at $DUMONT_URL/healthz within 30 s; no demo" >&2
    wait "$server"
    exit $?
fi

# demo_serving: 0 when a workload named demo still serves (the server's
# compact JSON renders a workload's name, protect and state in that order).
demo_serving() {
    http_get /api/workloads "$home/token" 2>/dev/null |
        grep -oE '"name":"demo","protect":(true|false),"state":"[a-z_]+"' |
        grep -qE '"state":"(launching|running|failing_over)"'
}

workspace="$home/demo-workspace"
if demo_serving; then
    echo "dumont: the demo workload from an earlier start is still serving (dumont instances)" >&2
else
    if [ ! -f "$workspace/models/tiny.bin" ]; then
        mkdir -p "$workspace"
        "$bin/tiny-ollama" --make-model "$workspace" --size 16M >/dev/null
        echo "Notes written here survive a failover." >"$workspace/notes.txt"
    fi
    if id=$("$dumont" instances launch name=demo workload="$bin/tiny-ollama" \
        probe=ollama:tiny workspace_from="$workspace" snapshot_every=10s); then
        cat >&2 <<EOF

dumont: protected local GPU instance $id is serving the model "tiny".
Try, in another terminal:

  export PATH=$bin:\$PATH DUMONT_HOME=$home DUMONT_URL=$DUMONT_URL
  dumont instances                          # the instance, healthy
  dumont chaos preempt $id                # kill it like a spot preemption
  dumont failover list gpu_instance_id=$id  # the failover that follows
  dumont failover status <failover_id>      # phase by phase, with times
  dumont failover test-real <instance_id>   # a real test; the original keeps serving
  dumont failover report

Dashboard: $DUMONT_URL/ (sign in with the token in $home/token)
EOF
    else
        echo "dumont: could not launch the demo instance (the server keeps running)" >&2
    fi
fi
wait "$server"
