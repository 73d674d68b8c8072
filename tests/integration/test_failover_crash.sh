#!/usr/bin/env bash
# A controller killed (kill -9) in each phase of a real failover resumes it on
# restart: the failover completes, exactly one new instance serves, the old
# one stays fenced, and no instance is left over (orchestrator.h ORCH-O6, R3 of
# src/failover/real.c). Also: a provisioning that fails on one offer is
# retried on the next one (O8). The record counts the time the controller was
# down (core/failover.h FO-I6): controller_down_ms beside the phases, and the
# runs plus the downtime sum to total_time_ms.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 2M
echo "state" >"$ws/state.txt"

failover_in_phase() { # ID PHASE
    failover_of "$1" && [ "$(printf '%s' "$FO" | jq -r .current_phase)" = "$2" ]
}

# live_instances: how many local instances still have processes (their
# instance directories name them; a process carries its instance's home).
live_instances() {
    local d n=0
    for d in "$DUMONT_HOME"/instances/*/; do
        [ -d "$d" ] || continue
        local p found=0
        for p in /proc/[0-9]*; do
            if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -q "^DUMONT_HOME=${d%/}"; then
                found=1
                break
            fi
        done
        n=$((n + found))
    done
    echo "$n"
}

for phase in standby_activation provisioning ssh_ready restore inference; do
    new_home
    DUMONT_TEST_PAUSE_PHASE="$phase:5000" start_server
    cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" \
        snapshot_every=0
    old=$CLI_OUT
    wait_for 30 "instance $old healthy" instance_state_is "$old" healthy
    cli_ok chaos preempt "$old"
    wait_for 30 "the failover of $old in $phase" failover_in_phase "$old" "$phase"
    fo_id=$(printf '%s' "$FO" | jq -r .failover_id)
    port=$SERVER_PORT
    stop_server KILL
    sleep 1 # the controller stays down a while: the record must count it
    KEEP_PORT=$port start_server # no pause now; the agents know this port
    wait_for 60 "failover $fo_id to finish after the restart" failover_done "$old"
    assert_json .failover_id "$fo_id" "the same failover resumed ($phase)" "$FO"
    assert_json .success true "failover resumed from $phase completed" "$FO"
    # FO-I6: the downtime is beside the phases, and the total covers it
    api GET "/api/standby/failover/status/$fo_id"
    assert_json '.controller_down_ms >= 1000' true "controller_down_ms counts the downtime ($phase)" \
        "$HTTP_BODY"
    assert_json '([.phase_runs[].duration_ms // 0] | add) + .controller_down_ms == .total_time_ms' \
        true "runs + downtime = total_time_ms ($phase)" "$HTTP_BODY"
    new=$(printf '%s' "$FO" | jq -r .new_instance_id)
    wait_for 30 "instance $new healthy" instance_state_is "$new" healthy
    # exactly one instance runs: the new one (the old fenced, no second new one)
    one_live() { [ "$(live_instances)" = 1 ]; }
    wait_for 10 "exactly one live instance after resuming from $phase" one_live
    assert_eq 1 "$(live_instances)" "live instances after resuming from $phase"
    stop_server
    kill_test_instances
    log "resumed from $phase: $old -> $new"
done
