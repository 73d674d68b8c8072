#!/usr/bin/env bash
# Slow clients against the API (issue 13, part 5): CONNS connections from
# 127.0.0.1 trickling their request heads (a header line every LINE_MS, never
# finished, reopened when closed) while /healthz is probed from 127.0.0.2;
# prints the healthz latency under the attack and what became of the
# tricklers (bench/bench_slowloris.c has the fields).
#
#   bench/slowloris.sh [CONNS [SECONDS [LINE_MS]]]     default 400 60 5000
#
# Uses $DUMONT_BIN (default build/dumont), a fresh DUMONT_HOME and SQLite.
set -euo pipefail

CONNS=${1:-400}
SECONDS_=${2:-60}
LINE_MS=${3:-5000}
. "$(dirname "$0")/lib.sh"
bench_init slowloris
TOOL=$(dirname "$BIN")/bench/bench_slowloris
[ -x "$TOOL" ] || { echo "slowloris.sh: build first ($TOOL missing)" >&2; exit 1; }
bench_start_server --heartbeat-listen 127.0.0.1:0 --log-level warn
echo "slowloris: $CONNS connections from 127.0.0.1, a header line every $LINE_MS ms, ${SECONDS_}s;" \
    "/healthz from 127.0.0.2 every 250 ms (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
"$TOOL" --port "$port" --conns "$CONNS" --seconds "$SECONDS_" --line-ms "$LINE_MS"
