#!/usr/bin/env bash
# No decision is lost, and MTTR counts the whole outage (issue 15 part 4;
# cmd_server.c CLI-SV3, db.h DB-D7, orchestrator.h ORCH-O14, core/failover.h
# FO-I6): PostgreSQL is stopped for 10 s while a real failover is in its restore
# phase. The server does not exit: it loses its lock, stops acting (the runner
# pauses at its next write), takes the lock back once PostgreSQL is up again,
# and the failover completes. Then the record is consistent in the database
# (completed, its runs and downtime summing to its total), the workload is
# served by the new instance (running, not failing_over), and total_time_ms
# covers the outage, with controller_down_ms beside the phases.
#
# The test runs its own PostgreSQL cluster (scripts/pg-test-cluster.sh), so
# stopping it touches no other test.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
[ -n "${DUMONT_TEST_PG_URL:-}" ] || skip "DUMONT_TEST_PG_URL is not set (no PostgreSQL here)"
need psql
cluster=$(cd "$(dirname "$0")/../.." && pwd)/scripts/pg-test-cluster.sh
pgdir=$(mktemp -d /tmp/dpg.XXXXXX) || fail "mktemp failed"
rmdir "$pgdir"
stop_cluster() { bash "$cluster" stop "$pgdir" >/dev/null 2>&1 || true; }
# the cluster goes first; lib_cleanup then sees the test's own status
trap 'rc_=$?; stop_cluster; (exit "$rc_"); lib_cleanup' EXIT
url=$(bash "$cluster" start "$pgdir") || fail "cannot start a PostgreSQL cluster"
new_home
export DUMONT_DATABASE_URL=$url
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 2M

in_phase() { failover_of "$1" && [ "$(printf '%s' "$FO" | jq -r .current_phase)" = "$2" ]; }
logged() { grep -q "event=$1" "$SERVER_LOG"; }

DUMONT_TEST_PAUSE_PHASE="restore:3000" start_server
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
old=$CLI_OUT
wait_for 30 "instance $old healthy" instance_state_is "$old" healthy
cli_ok chaos preempt "$old"
wait_for 30 "the failover of $old in restore" in_phase "$old" restore
fo_id=$(printf '%s' "$FO" | jq -r .failover_id)

t0=$(now_us)
bash "$cluster" pause "$pgdir" || fail "cannot stop PostgreSQL"
log "PostgreSQL stopped during the restore of $fo_id"
wait_for 15 "the server to see its lock lost" logged server.lock_lost
while [ $(($(now_us) - t0)) -lt 10000000 ]; do
    server_alive || fail "the server exited during the outage (it must wait and take its lock back)"
    sleep 0.2
done
bash "$cluster" resume "$pgdir" || fail "cannot start PostgreSQL again"
outage_ms=$((($(now_us) - t0) / 1000))
log "PostgreSQL back after $outage_ms ms"

wait_for 30 "the lock taken back" logged server.lock_retaken
wait_for 60 "failover $fo_id to finish" failover_done "$old"
server_alive || fail "the server exited"
assert_json .failover_id "$fo_id" "the same failover went on" "$FO"
assert_json .success true "the failover completed after the outage" "$FO"
api GET "/api/standby/failover/status/$fo_id"
assert_status 200 "status of $fo_id"
rec=$HTTP_BODY
new=$(printf '%s' "$rec" | jq -r .new_instance_id)
total=$(printf '%s' "$rec" | jq -r .total_time_ms)
down=$(printf '%s' "$rec" | jq -r .controller_down_ms)
log "total_time_ms=$total controller_down_ms=$down outage_ms=$outage_ms"
[ "$total" -ge "$outage_ms" ] || fail "total_time_ms=$total does not cover the ${outage_ms} ms outage"
# the runner was paused from the end of the test pause (at most 3 s in) to the retake
[ "$down" -ge $((outage_ms - 3500)) ] ||
    fail "controller_down_ms=$down does not count the pause (outage ${outage_ms} ms)"
assert_json '([.phase_runs[].duration_ms // 0] | add) + .controller_down_ms == .total_time_ms' \
    true "the runs and the downtime sum to the total" "$rec"
assert_json '[.phases[] | .status] | all(. == "ok")' true "every phase ok" "$rec"
# An outage longer than the agents' lease (10 s) makes the new instance's agent
# fence itself (the controller cannot renew a lease while it does not hold its
# lock), so the failover may go on with another offer: every attempt but the
# last ended failed.
assert_json '. as $a | [.phase_runs[] | select(.attempt < $a.attempt and .status == "failed")]
    | length == ($a.attempt - 1)' true "each earlier attempt ended failed" "$rec"
# the workload is served by the new instance, not stuck failing_over
api GET /api/workloads
assert_json ".workloads[0].state" running "the workload runs again" "$HTTP_BODY"
assert_json ".workloads[0].serving_instance_id" "$new" "the new instance serves" "$HTTP_BODY"
wait_for 30 "instance $new healthy" instance_state_is "$new" healthy
# the record in the database itself says the same (nothing only in memory)
state=$(psql "$url" -qAt -c "select state || ' ' || total_time_ms || ' ' || controller_down_ms
    from failovers where failover_id = '$fo_id'")
assert_eq "completed $total $down" "$state" "the record in PostgreSQL"
assert_eq "running" "$(psql "$url" -qAt -c "select state from workloads")" "the workload row"
stop_server
log "PASS"
