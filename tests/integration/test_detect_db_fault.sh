#!/usr/bin/env bash
# No detection is lost to a database fault (listener.h HB-L12): the server's
# PostgreSQL connections are cut and refused for a few seconds (ALTER
# DATABASE ... ALLOW_CONNECTIONS false, then pg_terminate_backend) and a
# protected instance's processes are killed (-9, a spot loss without notice)
# while it lasts, so the detector's state changes cannot be stored when it
# makes them (cutting after the kill races the detector on a loaded machine).
# The session that holds the controller lock (db_pg.c DB-P7) is left alone:
# losing it fences the server until it takes the lock back (cmd_server.c
# CLI-SV3, tests/integration/test_failover_db_outage.sh); the working
# connection is what a dropped connection or a restarted pooler takes. The server retries them, /healthz says
# degraded meanwhile, and once the database takes connections again the
# changes land in order and the failover starts and completes.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
[ -n "${DUMONT_TEST_PG_URL:-}" ] || skip "DUMONT_TEST_PG_URL is not set"
need psql
use_backend postgresql
db=${PG_DBS[-1]}
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 2M

pg() { psql "$DUMONT_TEST_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
cut_db() {
    pg "alter database \"$db\" allow_connections false" >/dev/null &&
        pg "select count(pg_terminate_backend(pid)) from pg_stat_activity
            where datname = '$db' and pid <> pg_backend_pid() and pid not in
            (select pid from pg_locks where locktype = 'advisory' and granted)"
}
health() { curl -s -m 2 "$DUMONT_URL/healthz"; }
degraded() { [ "$(health | jq -r .status)" = degraded ]; }
# kill_instance ID: SIGKILL to every process of local instance ID (each
# carries its instance's home in its environment).
kill_instance() {
    local p pids=()
    for p in /proc/[0-9]*; do
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null |
            grep -Eq "^DUMONT_HOME=$DUMONT_HOME/instances/$1(/|\$)"; then
            pids+=("${p#/proc/}")
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || fail "no process of instance $1 found"
    kill -KILL "${pids[@]}"
}
record_failed() { grep -q "event=instance.record_failed instance=$old " "$SERVER_LOG"; }

start_server
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
old=$CLI_OUT
wait_for 30 "instance $old healthy" instance_state_is "$old" healthy

n=$(cut_db) || fail "cannot cut the server's connections"
kill_instance "$old"
log "cut $n connection(s) of the server, killed instance $old"
wait_for 10 "a record of $old failing" record_failed
# The detector's change was not stored when it was made (else the test
# proves nothing): no change of $old to failed was recorded before.
first_fail=$(grep -n "event=instance.record_failed instance=$old " "$SERVER_LOG" | head -1)
first_fail=${first_fail%%:*}
changed_failed=$(grep -n "event=instance.changed instance=$old what=state from=[a-z]* to=failed" \
    "$SERVER_LOG" | head -1)
changed_failed=${changed_failed%%:*}
[ -z "$changed_failed" ] || [ "$changed_failed" -gt "$first_fail" ] ||
    fail "the change to failed was stored before the cut (the fault came too late)"
wait_for 10 "/healthz degraded while the record is retried" degraded
assert_contains "$(health | jq -r .reason)" "instance change" "/healthz says why"
sleep 3 # an outage longer than the detector's deadline: the instance is failed meanwhile
server_alive || fail "the server died during the outage"
pg "alter database \"$db\" allow_connections true" >/dev/null

wait_for 30 "the records of $old to land" grep -q "event=instance.record_landed instance=$old " \
    "$SERVER_LOG"
wait_for 90 "the failover of $old to finish" failover_done "$old"
assert_json .success true "the failover after the outage succeeded" "$FO"
new=$(printf '%s' "$FO" | jq -r .new_instance_id)
wait_for 30 "instance $new healthy" instance_state_is "$new" healthy
assert_eq ok "$(health | jq -r .status)" "/healthz ok once the records landed"
cli_ok instances show "$old" --json
assert_json .machine_state destroyed "the old instance is fenced" "$CLI_OUT"
stop_server
kill_test_instances
log "failover after a database outage at detection: $old -> $new"
