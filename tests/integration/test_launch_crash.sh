#!/usr/bin/env bash
# A server killed (kill -9) during `dumont instances launch` rolls the launch
# back on its next start (orchestrator.h ORCH-O13; docs/failover.md "Crash
# safety"; issue 13 part 6), on the local provider with real processes.
#
# K1: for a kill after each step of a launch - the machine row reserved, the
#     instance provisioned (its agent running), the workload started - the
#     restarted server leaves no workload `launching`: the workload is
#     `failed`, every machine it had is `destroyed`, no instance is listed
#     `provisioning` or `running`, and no process of its instances is left.
# K2: a launch on the restarted server then works.
# The kill points come from DUMONT_TEST_PAUSE_LAUNCH=STEP:MS (tests only;
# src/failover/real.c ORCH-R3), which pauses the launch after STEP.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init

new_home
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M

# procs_of ID: pids of processes that belong to local instance ID.
procs_of() {
    local p
    for p in /proc/[0-9]*; do
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null |
            grep -qx "DUMONT_HOME=$DUMONT_HOME/instances/$1/home"; then
            printf '%s\n' "${p#/proc/}"
        fi
    done
}
workloads() {
    api GET /api/workloads
    assert_status 200 "list workloads"
    WL=$HTTP_BODY
}
launching_count() {
    workloads
    printf '%s' "$WL" | jq '[.workloads[] | select(.state == "launching")] | length'
}
machines_of() { # WORKLOAD: instance ids made for it
    sqlite3 "$DUMONT_HOME/dumont.db" "SELECT instance_id FROM machines WHERE workload_id = '$1'"
}
need sqlite3

for step in reserved provisioned started; do
    log "--- kill -9 after the launch step '$step'"
    export DUMONT_TEST_PAUSE_LAUNCH="$step:60000"
    start_server
    unset DUMONT_TEST_PAUSE_LAUNCH
    "$DUMONT_BIN" instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" \
        snapshot_every=0 name="crash-$step" >"$TEST_TMP/launch.out" 2>&1 &
    cli_pid=$!
    wait_for 60 "the launch paused after '$step'" \
        grep -q "event=failover.test_pause at=$step " "$SERVER_LOG"
    workloads
    wl=$(printf '%s' "$WL" | jq -r ".workloads[] | select(.name == \"crash-$step\") | .workload_id")
    assert_match "$wl" '^wl-' "the launch's workload exists"
    assert_eq 1 "$(launching_count)" "the workload is launching before the kill"
    ids=$(machines_of "$wl")
    [ -n "$ids" ] || fail "no machine reserved for $wl"
    if [ "$step" != reserved ]; then
        for id in $ids; do
            [ -n "$(procs_of "$id")" ] || fail "instance $id has no process before the kill"
        done
    fi
    stop_server KILL
    wait "$cli_pid" && fail "the launch succeeded although its server was killed"

    start_server
    no_launching() { [ "$(launching_count)" = 0 ]; }
    wait_for 30 "K1 ($step): no workload stays launching" no_launching
    workloads
    assert_json ".workloads[] | select(.workload_id == \"$wl\") | .state" failed \
        "K1 ($step): the interrupted launch is failed" "$WL"
    assert_contains "$(cat "$SERVER_LOG")" "event=launch.rolled_back workload_id=$wl" \
        "K1 ($step): the rollback is logged"
    for id in $ids; do
        cli_ok instances show "$id" --json
        assert_json .machine_state destroyed "K1 ($step): machine $id destroyed" "$CLI_OUT"
        left=$(procs_of "$id")
        [ -z "$left" ] || fail "K1 ($step): instance $id still has processes: $left"
    done
    api GET /api/instances
    assert_json '[.instances[] | select(.machine_state == "provisioning" or
        .machine_state == "running")] | length' 0 "K1 ($step): no instance left without its process"
    stop_server TERM
done

# K2: the restarted server launches normally.
start_server
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
inst=$CLI_OUT
wait_for 30 "instance $inst healthy" instance_state_is "$inst" healthy
workloads
assert_eq 0 "$(launching_count)" "K2: nothing launching after a launch"
log "ok: launches killed after reserved, provisioned and started were rolled back"
