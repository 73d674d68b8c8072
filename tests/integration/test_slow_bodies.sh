#!/usr/bin/env bash
# Slow request bodies and ambiguous framing (issue 13 part 5; conn_guard.h
# CG-G5, server.h API-S6; docs/security.md "Slow clients"). 64 connections from
# 127.0.0.1 (the per-address cap) send a head announcing a 60,000-byte body,
# then one byte every 2 s: while they hold every slot of 127.0.0.1, /healthz
# from there is refused; they are cut 20-23 s after their heads, and
# /healthz from 127.0.0.1 answers again. A body sent slowly but complete
# within the deadline is served. Two Content-Length headers, or one with
# Transfer-Encoding, are a 400.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need ss
trap "" PIPE # writes to a connection the server cut fail (EPIPE) instead of ending the test

new_home
start_server

established() { # connections to the server's port in ESTABLISHED, seen from the client side
    ss -Htn state established "( dport = :$SERVER_PORT )" 2>/dev/null | wc -l
}

# ---- 1. ambiguous framing (API-S6) ----
raw() { # REQUEST: the status line of the answer to a raw request
    local fd
    exec {fd}<>"/dev/tcp/127.0.0.1/$SERVER_PORT" || fail "cannot connect"
    printf '%b' "$1" >&"$fd"
    local line=""
    IFS= read -r -t 5 line <&"$fd" || true
    exec {fd}>&-
    printf '%s' "${line%$'\r'}"
}
body='{"token":"x"}'
got=$(raw "POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\nContent-Length: 5\r\n\r\n$body")
assert_contains "$got" " 400 " "two Content-Length headers"
got=$(raw "POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Length: ${#body}\r\nTransfer-Encoding: chunked\r\n\r\n$body")
assert_contains "$got" " 400 " "Content-Length with Transfer-Encoding"
got=$(raw "POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${#body}\r\n\r\n$body")
assert_contains "$got" " 401 " "one Content-Length: the request is read (a wrong token)"

# ---- 2. a slow body that completes within the deadline is served ----
exec {slow}<>"/dev/tcp/127.0.0.1/$SERVER_PORT" || fail "cannot connect"
printf 'POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' \
    "${#body}" >&"$slow"
for ((i = 0; i < ${#body}; i++)); do
    printf '%s' "${body:i:1}" >&"$slow"
    sleep 0.3 # about 4 s in all
done
IFS= read -r -t 5 line <&"$slow" || line=""
exec {slow}>&-
assert_contains "$line" " 401 " "a body sent over 4 s is read and answered"

# ---- 3. 64 trickled bodies hold the address's slots, then are cut (CG-G5) ----
fds=()
t0=$(now_us)
for i in $(seq 1 64); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$SERVER_PORT" || fail "connection $i refused"
    printf 'POST /api/session HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{' >&"$fd"
    fds+=("$fd")
done
wait_for 5 "64 trickling connections established" test "$(established)" -ge 64
code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$DUMONT_URL/healthz" 2>/dev/null)
assert_ne 200 "$code" "/healthz from 127.0.0.1 while its 64 slots are held (the cap is per address)"
code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' --interface 127.0.0.2 \
    "http://127.0.0.1:$SERVER_PORT/healthz" 2>/dev/null)
assert_eq 200 "$code" "/healthz from 127.0.0.2 meanwhile"
cut_at=""
deadline=$(($(now_us) + 40 * 1000000))
while [ "$(now_us)" -lt "$deadline" ]; do
    for fd in "${fds[@]}"; do printf 'x' >&"$fd" 2>/dev/null || true; done
    if [ "$(established)" -eq 0 ]; then
        cut_at=$(( ($(now_us) - t0) / 1000 ))
        break
    fi
    sleep 2
done
for fd in "${fds[@]}"; do exec {fd}>&-; done
[ -n "$cut_at" ] || fail "the trickled bodies were not cut within 40 s"
[ "$cut_at" -ge 19000 ] && [ "$cut_at" -le 25000 ] ||
    fail "the trickled bodies were cut after $cut_at ms (expected 20-23 s after their heads)"
log "trickled bodies cut after $cut_at ms"
wait_for 5 "/healthz from 127.0.0.1 again" healthz_ok
log "ok"
