#!/usr/bin/env bash
# Durable-state faults (issue 13 part 6; orchestrator.h ORCH-O12; docs/failover.md
# "Durable-state faults"): the state directory on a small tmpfs, filled
# while a real failover (local provider) and a simulated one run, then freed.
# Needs root (mount); skipped with a message otherwise. SQLite.
#
# D1: while the disk is full /healthz answers 200 with status `degraded` and
#     the reason; the failovers wait where they were saved: each one's record
#     is the same in `dumont failover status` as in the database, and not
#     ended.
# D2: once the disk has room again /healthz is `ok`, both failovers go on
#     from their saved state and complete (never ended by the save error),
#     their records consistent (CLI == database).
# D3: the next failover of each GPU runs (no ghost `running` row refuses
#     it with 409).
# The real failover is held in gpu_search by DUMONT_TEST_PAUSE_PHASE (tests
# only; src/failover/real.c ORCH-R3) so that the disk fills after its first
# phases were saved and before its next save.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need sqlite3
[ "$(id -u)" = 0 ] || skip "needs root to mount a tmpfs for the state directory (run as root)"
command -v mount >/dev/null 2>&1 || skip "'mount' is not installed"

state="$TEST_TMP/state"
mkdir -p "$state"
mount -t tmpfs -o size=64m,mode=0700 tmpfs "$state" 2>/dev/null ||
    skip "cannot mount a tmpfs here (a container without CAP_SYS_ADMIN?)"
trap 'rc=$?; stop_server KILL; kill_test_instances; umount -l "$state" 2>/dev/null;
    (exit $rc); lib_cleanup' EXIT

export DUMONT_HOME="$state" # the server's log ($DUMONT_HOME.server.log) stays off the tmpfs
db="$DUMONT_HOME/dumont.db"
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M

export DUMONT_TEST_PAUSE_PHASE=gpu_search:5000
start_server --sim-speed 20
unset DUMONT_TEST_PAUSE_PHASE
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
inst=$CLI_OUT
wait_for 30 "instance $inst healthy" instance_state_is "$inst" healthy
cli_ok failover test-setup gpu_instance_id=777

health() { curl -s -m 2 "$DUMONT_URL/healthz"; }
health_is() { [ "$(health | jq -r .status)" = "$1" ]; }
db_state() { sqlite3 -cmd ".timeout 5000" "$db" "SELECT state FROM failovers WHERE failover_id = '$1'"; }
cli_state() {
    cli failover status "$1" --json
    [ "$CLI_RC" = 0 ] || fail "failover status $1: $CLI_ERR"
    printf '%s' "$CLI_OUT" | jq -r .state
}
consistent() { # ID WHAT: the CLI and the database say the same state; prints it
    local c d
    c=$(cli_state "$1")
    d=$(db_state "$1")
    assert_eq "$d" "$c" "$2: failover status and the database agree on $1"
    printf '%s' "$c"
}

# ---- the disk fills during both failovers ----
cli_ok chaos preempt "$inst"
wait_for 30 "the failover of $inst held in gpu_search" \
    grep -q "event=failover.test_pause at=gpu_search" "$SERVER_LOG"
failover_of "$inst" || fail "no failover of $inst"
fo=$(printf '%s' "$FO" | jq -r .failover_id)
cli_ok failover simulate 777
sim=$CLI_OUT
# Writes reuse the log's room once it has been checkpointed: empty it so the
# next commits need new blocks, then take every free block.
sqlite3 -cmd ".timeout 5000" "$db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null ||
    fail "could not checkpoint the database"
dd if=/dev/zero of="$state/fill" bs=1M status=none 2>/dev/null
dd if=/dev/zero of="$state/fill2" bs=4k status=none 2>/dev/null
wait_for 30 "D1: /healthz degraded while the disk is full" health_is degraded
h=$(health)
assert_contains "$(printf '%s' "$h" | jq -r .reason)" "cannot save" "D1: the reason says what"
assert_json '.degraded_since | type' string "D1: since when" "$h"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$DUMONT_URL/healthz")
assert_eq 200 "$code" "D1: /healthz still answers 200 (the body says degraded)"
# Both runners reach a save that cannot land (the real one when its hold in
# gpu_search ends) and wait there.
for id in "$fo" "$sim"; do
    wait_for 30 "D1: a failing save of $id" \
        grep -q "event=storage.write_failed what=failover $id " "$SERVER_LOG"
done
sleep 1 # the runners retry meanwhile; nothing may end
for id in "$fo" "$sim"; do
    s=$(consistent "$id" "D1")
    case "$s" in completed | failed) fail "D1: $id ended ($s) while its saves failed" ;; esac
done

# ---- room again ----
rm -f "$state/fill" "$state/fill2"
wait_for 30 "D2: /healthz ok again" health_is ok
wait_for 90 "D2: the failover of $inst to finish" failover_done "$inst"
assert_json .success true "D2: the real failover completed" "$FO"
wait_terminal "$sim" 60
assert_eq completed "$(consistent "$fo" D2)" "D2: real failover record"
assert_eq completed "$(consistent "$sim" D2)" "D2: simulated failover record"
for id in "$fo" "$sim"; do
    grep -q "event=storage.write_landed what=failover $id\$" "$SERVER_LOG" ||
        fail "D2: the save of $id that landed is not logged"
done

# ---- D3: the next failover of each GPU runs ----
new=$(printf '%s' "$FO" | jq -r .new_instance_id)
wait_for 30 "instance $new healthy" instance_state_is "$new" healthy
cli_ok failover simulate 777
sim2=$CLI_OUT
wait_terminal "$sim2" 60
assert_eq completed "$(consistent "$sim2" D3)" "D3: the next simulated failover of GPU 777"
cli_ok chaos preempt "$new"
wait_for 90 "D3: the failover of $new to finish" failover_done "$new"
assert_json .success true "D3: the next real failover completed" "$FO"
log "ok: $fo and $sim waited out a full disk and completed; then $sim2 and $(
    printf '%s' "$FO" | jq -r .failover_id) ran"
