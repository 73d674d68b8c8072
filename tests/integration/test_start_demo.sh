#!/usr/bin/env bash
# scripts/start.sh and the demo it launches (issue 16, "State that is stale"):
# a demo workload left `failed` by an earlier start (no instance serves it) is
# launched again; one that still serves is kept, not launched twice.
# DUMONT_START_BUILT points start.sh at this tree's programs, so that it
# installs and builds nothing here.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
[ -n "${DUMONT_SRC:-}" ] || skip "DUMONT_SRC is not set (run through ctest)"
new_home

# demo_states: the states of the workloads named demo, one per line.
demo_states() {
    api GET /api/workloads
    [ "$HTTP_STATUS" = 200 ] || return 1
    DEMO_STATES=$(printf '%s' "$HTTP_BODY" | jq -r '.workloads[] | select(.name == "demo") | .state')
}
demo_running() { demo_states && printf '%s\n' "$DEMO_STATES" | grep -qx running; }

START_PID=""
START_LOG=""
# run_start N: scripts/start.sh in the background on $PORT, its output in start.N.log.
run_start() {
    START_LOG="$TEST_TMP/start.$1.log"
    DUMONT_START_BUILT=$(dirname "$DUMONT_BIN") \
        bash "$DUMONT_SRC/scripts/start.sh" --listen "127.0.0.1:$PORT" >"$START_LOG" 2>&1 &
    START_PID=$!
    export DUMONT_URL="http://127.0.0.1:$PORT"
    wait_for 30 "start.sh's server to answer" healthz_ok
    wait_for 10 "the token file" test -s "$DUMONT_HOME/token"
    write_auth_header "$(cat "$DUMONT_HOME/token")"
}
start_said() { grep -q "$1" "$START_LOG"; }
stop_start() {
    kill -TERM "$START_PID" 2>/dev/null
    wait_for 30 "start.sh to exit" bash -c "! kill -0 $START_PID 2>/dev/null"
    wait "$START_PID" 2>/dev/null
    START_PID=""
}

# 1. A server of its own leaves a demo workload that failed at launch (no
#    offer under the price cap), as a failed demo launch of start.sh does.
start_server
PORT=$SERVER_PORT
cli instances launch name=demo workload=sleep probe=exec:true max_price=0.001
[ "$CLI_RC" = 1 ] || fail "a launch with no offer exited $CLI_RC: $CLI_ERR"
demo_states || fail "GET /api/workloads"
[ "$DEMO_STATES" = failed ] || fail "the first demo should be failed, got: $DEMO_STATES"
stop_server TERM

# 2. start.sh launches the demo again: the failed one does not serve.
KEEP_PORT=$PORT
run_start 1
wait_for 120 "start.sh to launch a demo that serves" demo_running
wait_for 30 "start.sh to say the demo serves" start_said "is serving the model"
if start_said "still serving"; then
    fail "start.sh took the failed demo for a serving one: $(cat "$START_LOG")"
fi
stop_start

# 3. A second start keeps the demo that serves and launches none.
run_start 2
wait_for 30 "start.sh to keep the serving demo" start_said "still serving"
demo_states || fail "GET /api/workloads"
n=$(printf '%s\n' "$DEMO_STATES" | grep -cx running)
[ "$n" = 1 ] || fail "one running demo expected, got $n: $DEMO_STATES"
stop_start
log "ok: a failed demo is launched again; a serving one is kept"
