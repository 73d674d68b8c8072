#!/usr/bin/env bash
# The dashboard end to end: a real `dumont server`, filled with simulated
# failovers through the API (some failing, via fail_phase), one simulated
# failover so slow that it runs through the whole test (older than the 10
# newest), and real ones on the local provider: a test-real and a
# preemption's failover of an instance serving tiny-ollama. Then
#   - HTTP checks with curl: security headers of the static files, sign-in and
#     its cookie, cookie auth (and its X-Dumont-Request rule), sign-out, the
#     event stream, and a quick SIGTERM with an event stream open;
#   - tests/browser/dashboard.test.mjs in headless Chromium (playwright-core),
#     which writes dashboard.png (and dashboard-narrow.png) to the current
#     directory (CTest: the build directory).
# Skips (77) when node, Debian's chromium or node_modules/playwright-core
# (`npm ci`) is missing.
source "$(dirname "$0")/lib.sh"
lib_init
need node
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip "no Chromium at $CHROMIUM (apt-get install chromium)"
SRC=${DUMONT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -d "$SRC/node_modules/playwright-core" ] || skip "playwright-core is not installed: run 'npm ci' in $SRC"

new_home
# A server that also listens for agents' heartbeats (UDP, default port 8701)
# gets a free port for them, so that tests running side by side do not collide.
server_args=()
"$DUMONT_BIN" server --help 2>/dev/null | grep -q -- --heartbeat-listen &&
    server_args=(--heartbeat-listen 127.0.0.1:0)
start_server "${server_args[@]+"${server_args[@]}"}"

# ---- fill: a slow one, real ones, then two batches of simulated ones in ----
# ---- different wall-clock seconds (for the period filter) ----
for gpu in 101 102 103 104 105; do
    api POST /api/standby/failover/test-setup -d "{\"gpu_instance_id\": $gpu}"
    assert_status 201 "test-setup $gpu"
done

simulate_wait() { # GPU SEED [FAIL_PHASE]
    local body="{\"speed\": 1000000, \"seed\": $2"
    [ -z "${3:-}" ] || body+=", \"fail_phase\": \"$3\""
    api POST "/api/standby/failover/simulate/$1" -d "$body}"
    assert_status 202 "simulate $1"
    wait_terminal "$(printf '%s' "$HTTP_BODY" | jq -r .failover_id)" 30
}

# running all along, soon older than the 10 newest (W6: Live must still show it)
api POST /api/standby/failover/simulate/105 -d '{"speed": 0.001, "seed": 5}'
assert_status 202 "a slow simulated failover"
SLOW_ID=$(printf '%s' "$HTTP_BODY" | jq -r .failover_id)
# real: an instance serving a model, a test-real of it, then its preemption
tiny_workspace "$TEST_TMP/ws" 2M
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$TEST_TMP/ws" \
    name=dash snapshot_every=1s
REAL_INST=$CLI_OUT
wait_for 30 "instance $REAL_INST healthy" instance_state_is "$REAL_INST" healthy
has_snapshot() { api GET "/api/instances/$REAL_INST/snapshots"; [ "$(printf '%s' "$HTTP_BODY" | jq '.snapshots | length')" -gt 0 ]; }
wait_for 30 "a snapshot of $REAL_INST" has_snapshot
cli_ok failover test-real "$REAL_INST" --wait --json
cli_ok chaos preempt "$REAL_INST"
wait_for 60 "the failover of $REAL_INST" failover_done "$REAL_INST"
assert_json .success true "the real failover succeeded" "$FO"
n=0
for i in $(seq 1 13); do
    for gpu in 101 102; do
        n=$((n + 1))
        case $((n % 7)) in
        3) simulate_wait "$gpu" "$n" provisioning ;;
        5) simulate_wait "$gpu" "$n" restore ;;
        *) simulate_wait "$gpu" "$n" ;;
        esac
    done
done
first_second=$(date -u +%s)
second_changed() { [ "$(date -u +%s)" != "$first_second" ]; }
wait_for 3 "the next wall-clock second" second_changed
for i in 1 2 3; do simulate_wait 103 "$((100 + i))"; done

api GET /api/standby/failover/list?limit=1
assert_json .total 32 "failovers made"
api GET "/api/standby/failover/list?active=true"
assert_json '.failovers[0].failover_id' "$SLOW_ID" "the slow one is running"

# ---- HTTP checks ----
hdrs() { curl -sS -m 5 -D - -o /dev/null "$@" | tr -d '\r'; }
h=$(hdrs "$DUMONT_URL/")
assert_contains "$h" "HTTP/1.1 200" "GET /"
assert_contains "$h" "Content-Type: text/html" "GET / content type"
assert_contains "$h" "Content-Security-Policy: default-src 'self'" "GET / CSP"
assert_contains "$h" "X-Content-Type-Options: nosniff" "GET / nosniff"
h=$(hdrs "$DUMONT_URL/assets/app.js")
assert_contains "$h" "Content-Type: text/javascript" "app.js content type"
h=$(hdrs "$DUMONT_URL/assets/style.css")
assert_contains "$h" "Content-Type: text/css" "style.css content type"
h=$(hdrs "$DUMONT_URL/assets/../index.html")
assert_not_contains "$h" "HTTP/1.1 200" "no path traversal into assets"

api_noauth GET /api/events
assert_api_error 401 unauthorized "events need credentials"
api HEAD /api/events -I
assert_status 405 "an event stream has no HEAD"
api POST /api/events
assert_api_error 405 method_not_allowed "POST /api/events"
api_noauth POST /api/session -d '{"token": "wrong"}'
assert_api_error 401 unauthorized "a wrong token"
api_noauth POST /api/session -d '{"token": 5}'
assert_api_error 400 bad_request "a token that is not a string"

# The token goes in a body read from a file (L4), never on a command line.
(umask 077; jq -n --rawfile t "$DUMONT_HOME/token" '{token: ($t | rtrimstr("\n"))}' >"$TEST_TMP/signin.json")
api_noauth POST /api/session --data-binary "@$TEST_TMP/signin.json"
assert_status 204 "sign-in"
set_cookie=$(printf '%s\n' "$HTTP_HEADERS" | grep -i '^Set-Cookie:')
assert_match "$set_cookie" 'dumont_session=[0-9a-f]{64};' "session cookie value"
assert_contains "$set_cookie" "HttpOnly" "cookie HttpOnly"
assert_contains "$set_cookie" "SameSite=Strict" "cookie SameSite"
assert_contains "$set_cookie" "Path=/" "cookie Path"
cookie=$(printf '%s' "$set_cookie" | grep -oE 'dumont_session=[0-9a-f]{64}')
(umask 077; printf 'Cookie: %s\n' "$cookie" >"$TEST_TMP/cookie.header")

api_as "$TEST_TMP/cookie.header" GET /api/standby/failover/report
assert_status 200 "report with the cookie"
api_as "$TEST_TMP/cookie.header" GET /api/session
assert_json .authenticated true "session probe"
api_as "$TEST_TMP/cookie.header" POST /api/standby/failover/test-setup -d '{"gpu_instance_id": 9}'
assert_api_error 401 unauthorized "cookie POST without X-Dumont-Request"
api_as "$TEST_TMP/cookie.header" POST /api/standby/failover/test-setup -H 'X-Dumont-Request: 1' \
    -d '{"gpu_instance_id": 9}'
assert_status 201 "cookie POST with X-Dumont-Request"
api_noauth GET /api/standby/failover/report -H 'Cookie: dumont_session=0000000000000000000000000000000000000000000000000000000000000000'
assert_api_error 401 unauthorized "a made-up session id"

# The event stream: hello first, then a failover's transitions.
curl -sS -N -m 20 -H "@$TEST_TMP/cookie.header" "$DUMONT_URL/api/events" >"$TEST_TMP/sse.out" 2>/dev/null &
sse_pid=$!
sse_has() { grep -q "$1" "$TEST_TMP/sse.out"; }
wait_for 5 "the hello event" sse_has '^event: hello'
simulate_wait 104 1 gpu_search
sse_id=$(printf '%s' "$HTTP_BODY" | jq -r .failover_id)
wait_for 5 "a failed event of $sse_id" sse_has "\"failover_id\":\"$sse_id\",.*\"state\":\"failed\""
for st in detection standby_activation gpu_search; do
    sse_has "\"failover_id\":\"$sse_id\",[^}]*\"state\":\"$st\"" || fail "no '$st' event for $sse_id"
done
kill "$sse_pid" 2>/dev/null
wait "$sse_pid" 2>/dev/null

api_as "$TEST_TMP/cookie.header" DELETE /api/session
assert_status 204 "sign-out"
assert_contains "$(printf '%s\n' "$HTTP_HEADERS" | grep -i '^Set-Cookie:')" "Max-Age=0" "sign-out clears the cookie"
api_as "$TEST_TMP/cookie.header" GET /api/standby/failover/report
assert_api_error 401 unauthorized "the cookie after sign-out"

# ---- the browser (meanwhile, one stream stays open to see a keepalive) ----
curl -sS -N -m 40 -H "@$TEST_TMP/auth.header" "$DUMONT_URL/api/events" >"$TEST_TMP/sse-keep.out" 2>/dev/null &
keep_pid=$!
shot="$PWD/dashboard.png"
log "browser test; screenshot: $shot"
DUMONT_TOKEN_FILE="$DUMONT_HOME/token" DASHBOARD_SCREENSHOT="$shot" LIVE_GPU=103 SLOW_ID="$SLOW_ID" \
    CHROMIUM="$CHROMIUM" \
    timeout 240 node "$SRC/tests/browser/dashboard.test.mjs" || fail "the browser test failed"
[ -s "$shot" ] || fail "no screenshot at $shot"
keepalive_seen() { grep -q '^: keepalive' "$TEST_TMP/sse-keep.out"; }
wait_for 25 "a keepalive comment on an idle event stream (every 15 s)" keepalive_seen
grep -q '"state":"completed"' "$TEST_TMP/sse-keep.out" || fail "the open stream missed the live failover"
kill "$keep_pid" 2>/dev/null
wait "$keep_pid" 2>/dev/null

# ---- SIGTERM with event streams open still stops at once (events.h API-EV4) ----
for i in 1 2 3; do
    curl -sS -N -m 30 -H "@$TEST_TMP/auth.header" "$DUMONT_URL/api/events" >/dev/null 2>&1 &
    eval "sse$i=\$!"
done
streams_open() { [ "$(ss -Htn state established "( sport = :$SERVER_PORT )" 2>/dev/null | wc -l)" -ge 3 ]; }
if command -v ss >/dev/null 2>&1; then wait_for 5 "three open event streams" streams_open; fi
t0=$(now_us)
stop_server TERM
elapsed_ms=$((($(now_us) - t0) / 1000))
assert_eq 0 "$SERVER_HUNG" "the server stopped without SIGKILL"
assert_eq 0 "$SERVER_RC" "server exit status"
[ "$elapsed_ms" -lt 5000 ] || fail "SIGTERM took ${elapsed_ms} ms with event streams open"
log "SIGTERM with 3 event streams open: stopped in ${elapsed_ms} ms"
kill "$sse1" "$sse2" "$sse3" 2>/dev/null
log "ok"
