#!/usr/bin/env bash
# Slow clients (issue 13, part 5; docs/security.md "Slow clients"): 400
# connections from 127.0.0.1 that trickle their request heads (a header line
# every 5 s, never finished, reopened when closed) must not make the server
# unreachable for others.
#
# C1: /healthz from another address (127.0.0.2) answers 200 within 1 s, every
#     time, probed every 250 ms for 22 s while the tricklers run.
# C2: the per-address cap (server.h API-S3): most of the 400 are refused at once,
#     and no more than API_PER_IP_CONNECTIONS (64) are held at a time.
# C3: the head deadline (server.h API-S5, conn_guard.h CG-G1): the held tricklers are
#     cut 10 s after their accept (not before 9.5 s, not after 11.5 s), and
#     cut again when they reconnect; the server logs http.head_deadline.
# C4: an ordinary request from the tricklers' own address works again once
#     they are gone, and a request whose head is complete in time is served
#     even when it is sent slowly (one line per second).
. "$(dirname "$0")/lib.sh"
lib_init

TOOL="$(dirname "$DUMONT_BIN")/bench/bench_slowloris"
[ -x "$TOOL" ] || fail "bench_slowloris is not built ($TOOL)"
curl -s -o /dev/null --interface 127.0.0.2 -m 2 http://127.0.0.1:9/ 2>/dev/null
[ $? != 45 ] || skip "cannot use 127.0.0.2 as a source address here"

new_home
start_server --log-level info

out=$("$TOOL" --port "$SERVER_PORT" --conns 400 --seconds 22 --line-ms 5000 \
    --source 127.0.0.1 --probe-source 127.0.0.2 --probe-ms 250) || fail "bench_slowloris failed"
log "$out"
kv() { # LINE-PREFIX KEY
    sed -n "s/^$1 .*\b$2=\(-\?[0-9]*\).*/\1/p" <<<"$out"
}
server_alive || fail "the server died under the slow clients"

# ---- C1
n=$(kv healthz n) ok=$(kv healthz ok) over=$(kv healthz over_1s)
[ "$n" -ge 40 ] || fail "only $n healthz probes ran in 22 s"
assert_eq "$n" "$ok" "healthz probes answered 200 (of $n)"
assert_eq 0 "$over" "healthz probes slower than 1 s"
[ "$(kv healthz max_ms)" -lt 1000 ] || fail "slowest healthz probe: $(kv healthz max_ms) ms"

# ---- C2
[ "$(kv slowloris refused)" -ge 336 ] || fail "per-address cap: only $(kv slowloris refused) refused"
[ "$(kv slowloris open_end)" -le 64 ] || fail "per-address cap: $(kv slowloris open_end) held at the end"

# ---- C3
cut=$(kv slowloris cut)
[ "$cut" -ge 64 ] || fail "head deadline: only $cut tricklers were cut in 22 s"
[ "$(kv slowloris min_cut_ms)" -ge 9500 ] || fail "a trickler was cut after $(kv slowloris min_cut_ms) ms (< 9.5 s)"
[ "$(kv slowloris max_life_ms)" -le 11500 ] || fail "a trickler lived $(kv slowloris max_life_ms) ms (> 11.5 s)"
wait_for 12 "http.head_deadline in the server log" grep -q 'event=http.head_deadline' "$SERVER_LOG"

# ---- C4
api_noauth GET /healthz
assert_status 200 "/healthz from 127.0.0.1 after the attack"
slow=$( { printf 'GET /healthz HTTP/1.1\r\n'; sleep 1; printf 'Host: 127.0.0.1\r\n'; sleep 1
          printf 'Connection: close\r\n'; sleep 1; printf '\r\n'; sleep 1; } |
    curl -s -m 10 "telnet://127.0.0.1:$SERVER_PORT" 2>/dev/null | head -1 | tr -d '\r')
assert_eq "HTTP/1.1 200 OK" "$slow" "a head sent over 3 s (inside the deadline)"
log "ok"
