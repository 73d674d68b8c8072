#!/usr/bin/env bash
# A server killed in the middle of failovers loses nothing and leaves nothing
# running (docs/failover.md "Persist, then act"); one
# stopped by SIGTERM or SIGINT exits cleanly. On SQLite and, when
# DUMONT_TEST_PG_URL is set, on PostgreSQL.
#
# K1: after kill -9 and a restart on the same DUMONT_HOME, every failover
#     recorded before is still there; the finished ones unchanged.
# K2: a failover interrupted by the crash is `failed` (success false, reason
#     naming the interruption), never `running`; the phases it finished keep
#     their times; no phase is left `running`.
# K3: a new simulate on the interrupted GPU works (nothing stays locked).
# K4: SIGTERM and SIGINT stop the server with exit status 0, and what ran is
#     not left running either.
. "$(dirname "$0")/lib.sh"
lib_init

F=/api/standby/failover

# start_slow GPU: a failover at speed=1 (minutes of wall time); waits until its
# first phase is recorded ok. Sets SLOW_ID.
start_slow() {
    cli_ok failover simulate "$1" speed=1
    SLOW_ID=$CLI_OUT
    wait_for 30 "failover $SLOW_ID to finish its first phase" first_phase_ok "$SLOW_ID"
    assert_ne completed "$(fo_state "$SLOW_ID")" "slow failover $SLOW_ID"
    assert_ne failed "$(fo_state "$SLOW_ID")" "slow failover $SLOW_ID"
}

first_phase_ok() {
    api GET "$F/status/$1"
    [ "$(printf '%s' "$HTTP_BODY" | jq -r '.phases[0].status')" = ok ]
}

# check_not_running ID WHAT [REASON_RE]: K2 for one failover.
check_not_running() {
    local id=$1 what=$2 re=${3:-.}
    api GET "$F/status/$id"
    assert_status 200 "$what: status"
    assert_json .state failed "$what: state"
    assert_json .success false "$what: success"
    assert_json .current_phase null "$what: current_phase"
    assert_json ".reason | type == \"string\" and test(\"$re\"; \"i\")" true "$what: reason /$re/"
    assert_json '[.phases[] | select(.status == "running")] | length' 0 "$what: no phase running"
    assert_json '.finished_at | type' string "$what: finished_at"
    assert_json '.phases[0] | .status == "ok" and .duration_ms != null' true \
        "$what: the phase finished before is kept"
    assert_json '.total_time_ms == ([.phases[].duration_ms | select(. != null)] | add)' true \
        "$what: total_time_ms (I3)"
}

all_terminal() {
    api GET "$F/list?limit=1000"
    assert_status 200 "list"
    assert_json '[.failovers[] | select(.state != "completed" and .state != "failed")] | length' 0 \
        "no failover left running"
}

run_recovery() {
    use_backend "$1"
    start_server
    local token=$TOKEN id
    cli_ok failover test-setup gpu_instance_id=100
    cli_ok failover test-setup gpu_instance_id=200

    cli_ok failover simulate 100 seed=1
    local done_ok=$CLI_OUT
    wait_terminal "$done_ok"
    cli_ok failover simulate 100 fail_phase=restore
    local done_failed=$CLI_OUT
    wait_terminal "$done_failed"
    start_slow 200
    local slow1=$SLOW_ID
    start_slow 100
    local slow2=$SLOW_ID

    api GET "$F/list?limit=1000"
    local before_total
    before_total=$(printf '%s' "$HTTP_BODY" | jq .total)
    assert_eq 4 "$before_total" "failovers before the crash"
    for id in "$done_ok" "$done_failed"; do
        api GET "$F/status/$id"
        printf '%s' "$HTTP_BODY" | jq -S . >"$TEST_TMP/before-$id.json"
    done

    # ---- K1, K2: kill -9 mid-failover
    stop_server KILL
    assert_eq 137 "$SERVER_RC" "exit status of the killed server"
    start_server
    assert_eq "$token" "$TOKEN" "the token survives a crash"
    api GET "$F/list?limit=1000"
    assert_json .total "$before_total" "failovers after the restart"
    for id in "$done_ok" "$done_failed"; do
        api GET "$F/status/$id"
        assert_eq "$(cat "$TEST_TMP/before-$id.json")" "$(printf '%s' "$HTTP_BODY" | jq -S .)" \
            "finished failover $id after the crash"
    done
    check_not_running "$slow1" "failover interrupted by kill -9" interrupt
    check_not_running "$slow2" "second failover interrupted by kill -9" interrupt
    all_terminal

    # ---- K3: the GPUs are free again
    for id in 200 100; do
        cli_ok failover simulate "$id" --wait
        assert_match "$(printf '%s\n' "$CLI_OUT" | tail -n 1)" '^completed in ' \
            "simulate $id after the crash"
    done

    # ---- K4: clean stops
    local sig
    for sig in TERM INT; do
        start_slow 200
        stop_server "$sig"
        assert_eq 0 "$SERVER_HUNG" "server stopped by SIG$sig in time"
        assert_eq 0 "$SERVER_RC" "exit status on SIG$sig"
        start_server
        check_not_running "$SLOW_ID" "failover running at SIG$sig"
        all_terminal
    done
    stop_server TERM
    assert_eq 0 "$SERVER_RC" "exit status on SIGTERM when idle"
}

for b in $(backends); do
    run_recovery "$b"
done
log "PASS"
