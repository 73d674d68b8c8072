#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests and benchmarks.
#
#   scripts/pg-test-cluster.sh start DIR   # prints postgresql://postgres@127.0.0.1:PORT/dumont_test
#   scripts/pg-test-cluster.sh stop DIR    # stops it and removes DIR
#   scripts/pg-test-cluster.sh url DIR     # prints the URL of a running one again
#   scripts/pg-test-cluster.sh pause DIR   # stops the server, keeps DIR (a database outage)
#   scripts/pg-test-cluster.sh resume DIR  # starts it again on the same port
#
# The cluster lives entirely in DIR: data in DIR/data, its unix socket in DIR,
# its log in DIR/log. It listens on that socket and on 127.0.0.1 only (a free
# port), trusts every local connection (it is for tests: never expose it), and
# runs with fsync off. initdb refuses to run as root, so as root the cluster
# belongs to the `postgres` OS user (DIR is chowned to it); as anyone else it
# belongs to the caller.
#
# C1: stop removes DIR only if it holds the marker file that start wrote, so a
#     wrong argument can never delete an unrelated directory.
# C2: start refuses a DIR that exists and is not empty.
# C3: stdout carries the URL and nothing else; progress and errors go to stderr.
# C4: DIR is made absolute first, so the commands run as postgres from / (not
#     from the caller's directory, which postgres may not enter) find it.
set -euo pipefail

MARKER=.dumont-pg-test-cluster

die() { echo "pg-test-cluster: $*" >&2; exit 1; }

find_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do # newest version last in glob order
        [ -x "$d/initdb" ] && PGBIN=$d
    done
    if [ -z "${PGBIN:-}" ] && command -v pg_config >/dev/null; then
        d=$(pg_config --bindir)
        [ -x "$d/initdb" ] && PGBIN=$d
    fi
    if [ -z "${PGBIN:-}" ] && command -v initdb >/dev/null; then
        PGBIN=$(dirname "$(command -v initdb)")
    fi
    [ -n "${PGBIN:-}" ] || die "initdb not found (install postgresql, e.g. apt-get install postgresql)"
}

# Runs a PostgreSQL program as the cluster's owner; as root from /, a
# directory user postgres can enter (every path given is absolute, C4).
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_server() {
    local dir=$1 port want=${2:-}
    for _ in $(seq 1 20); do
        port=${want:-$((20000 + RANDOM % 40000))}
        [ -z "$want" ] && port_busy "$port" && continue
        if as_owner "$PGBIN/pg_ctl" start -w -t 60 -s -D "$dir/data" -l "$dir/log" -o \
            "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >&2; then
            echo "$port" >"$dir/port"
            return 0
        fi
        grep -q "could not bind\|Address already in use" "$dir/log" 2>/dev/null || break
        [ -z "$want" ] || sleep 0.5 # the same port: wait for it to be free
    done
    tail -n 20 "$dir/log" >&2 2>/dev/null || true
    die "postgres did not start (log: $dir/log)"
}

cmd_start() {
    local dir=$1
    find_bindir
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir exists and is not empty" # C2
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ${#dir} -lt 80 ] || die "$dir: path too long for a unix socket"
    touch "$dir/$MARKER"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user"
        chown postgres: "$dir" "$dir/$MARKER"
        as_owner test -w "$dir" ||
            die "user postgres cannot reach $dir (a parent directory is private?)"
    fi
    as_owner "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    start_server "$dir"
    as_owner "$PGBIN/createdb" -h "$dir" -p "$(cat "$dir/port")" -U postgres dumont_test ||
        die "createdb failed"
    cmd_url "$dir"
}

cmd_url() {
    local dir=$1
    [ -f "$dir/port" ] || die "$dir: no cluster"
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/dumont_test"
}

cmd_stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    [ -f "$dir/$MARKER" ] || die "$dir was not made by this script; not touching it" # C1
    find_bindir
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" stop -w -s -m fast -D "$dir/data" >&2 || true
    fi
    rm -rf "$dir"
}

# pause: a fast shutdown (sessions are cut, as when a server stops); resume:
# the same data, the same port, so the URL given out stays right.
cmd_pause() {
    local dir=$1
    [ -f "$dir/$MARKER" ] || die "$dir was not made by this script; not touching it" # C1
    find_bindir
    as_owner "$PGBIN/pg_ctl" stop -w -s -m fast -D "$dir/data" >&2
}

cmd_resume() {
    local dir=$1
    [ -f "$dir/$MARKER" ] && [ -f "$dir/port" ] || die "$dir: no paused cluster"
    find_bindir
    start_server "$dir" "$(cat "$dir/port")"
}

[ $# -eq 2 ] || die "usage: $0 start|stop|url|pause|resume DIR"
dir=$2
[ "${dir#/}" != "$dir" ] || dir="$PWD/$dir" # C4
case $1 in
start) cmd_start "$dir" ;;
stop) cmd_stop "$dir" ;;
url) cmd_url "$dir" ;;
pause) cmd_pause "$dir" ;;
resume) cmd_resume "$dir" ;;
*) die "usage: $0 start|stop|url|pause|resume DIR" ;;
esac
