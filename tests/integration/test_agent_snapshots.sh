#!/usr/bin/env bash
# The agent's workspace snapshots, hold and local preemption notice against a
# real `dumont server` (docs/detect.md "Agent snapshots"; issue 6). On SQLite
# and, when DUMONT_TEST_PG_URL is set, on PostgreSQL.
#
# N1: with --workspace and --snapshot-every 1s the agent snapshots the
#     workspace to the store and reports it: GET /api/instances/ID/snapshots
#     grows when files change, and not while nothing changes (snapshots.h AG-N2).
#     The newest snapshot restores (`dumont snapshot restore`) to a tree equal
#     to the workspace (diff -r).
# N2: the workload runs in the workspace with DUMONT_WORKSPACE set.
# N3: --hold: registered and heartbeating, the workload starts only on
#     SIGUSR1, and no scheduled snapshot is taken before (agent.h AG-A8,
#     snapshots.h AG-N6).
# N4: --preempt-cloud local: TRUE in the metadata file is a notice; a snapshot
#     with trigger "preempt" is reported before the instance shows
#     `preempting` (agent.h AG-A6, snapshots.h AG-N4).
# N5: each heartbeat's second copy is counted `duplicate`, never `replay`
#     (agent.h AG-A7, listener.h HB-L7).
# N7: an agent whose machine is destroyed (fenced) gets 409 for its
#     snapshots: after one was accepted it is a zombie and stops; before, it
#     says so once and retries quietly; nothing is recorded (snapshots.h AG-N3,
#     db_fleet.h FLEET-F3).
# N6: POST /api/instances/ID/snapshots validates what the agent sends: bad
#     JSON, missing fields, huge numbers are 400; an unknown instance 404; a
#     report naming another store, or a snapshot the server's store does not
#     hold, 422 (routes_snapshots.c API-RS3).
. "$(dirname "$0")/lib.sh"
lib_init

AGENT_PIDS=()
agents_cleanup() {
    local p
    for p in "${AGENT_PIDS[@]+"${AGENT_PIDS[@]}"}"; do kill -KILL "$p" 2>/dev/null; done
}
trap 'rc=$?; agents_cleanup; (exit $rc); lib_cleanup' EXIT

# start_agent ID [ARGS...]: sets AGENT_PID; the token comes from DUMONT_TOKEN.
start_agent() {
    local id=$1
    shift
    DUMONT_TOKEN=$TOKEN "$DUMONT_BIN" agent --instance "$id" --log-level debug "$@" \
        >>"$DUMONT_HOME/agent-$id.log" 2>&1 &
    AGENT_PID=$!
    AGENT_PIDS+=("$AGENT_PID")
}

inst_field() {
    api GET "/api/instances/$1"
    [ "$HTTP_STATUS" = 200 ] && printf '%s' "$HTTP_BODY" | jq -r "$2"
}
field_is() { [ "$(inst_field "$1" "$2")" = "$3" ]; }
snap_count() {
    api GET "/api/instances/$1/snapshots?limit=1000"
    printf '%s' "$HTTP_BODY" | jq '.snapshots | length'
}
snaps_at_least() { [ "$(snap_count "$1")" -ge "$2" ] 2>/dev/null; }
log_count() { grep -c "$2" "$DUMONT_HOME/agent-$1.log" 2>/dev/null || true; }
log_at_least() { [ "$(log_count "$1" "$2")" -ge "$3" ]; }

check_scheduled() {
    local ws=$DUMONT_HOME/ws201 store=file://$DUMONT_HOME/store n skipped id
    mkdir -p "$ws/models"
    head -c 300000 /dev/urandom >"$ws/models/model.bin"
    echo "hello" >"$ws/notes.txt"
    start_agent 201 --workspace "$ws" --store "$store" --snapshot-every 1s --epoch 4 \
        --workload "sh -c 'pwd >cwd.txt; printenv DUMONT_WORKSPACE >env.txt; exec sleep 600'"
    wait_for 20 "instance 201 healthy" field_is 201 .state healthy
    wait_for 20 "the workload wrote cwd.txt" test -s "$ws/env.txt"
    assert_eq "$ws" "$(cat "$ws/cwd.txt")" "N2: the workload's working directory"
    assert_eq "$ws" "$(cat "$ws/env.txt")" "N2: DUMONT_WORKSPACE"
    wait_for 20 "a first snapshot of 201" snaps_at_least 201 1
    # Once a period was skipped as unchanged, the workload's files are in.
    wait_for 20 "an unchanged period" log_at_least 201 agent.snapshot_skipped 1
    n=$(snap_count 201)
    skipped=$(log_count 201 agent.snapshot_skipped)
    wait_for 20 "two more unchanged periods" log_at_least 201 agent.snapshot_skipped $((skipped + 2))
    assert_eq "$n" "$(snap_count 201)" "N1: no snapshot while nothing changed"
    echo "changed" >>"$ws/notes.txt"
    head -c 1000 /dev/urandom >"$ws/new.bin"
    wait_for 20 "a snapshot of the change" snaps_at_least 201 $((n + 1))
    api GET "/api/instances/201/snapshots?limit=1"
    assert_status 200 "list snapshots"
    assert_json '.snapshots[0].trigger' scheduled "trigger"
    assert_json '.snapshots[0].epoch' 4 "epoch"
    assert_json '.snapshots[0].files >= 5' true "files counted"
    assert_json '.snapshots[0].size_bytes >= 301000' true "size"
    assert_json '.snapshots[0].store' "$store" "store"
    id=$(printf '%s' "$HTTP_BODY" | jq -r '.snapshots[0].snapshot_id')
    DUMONT_STORE=$store cli_ok snapshot restore "$id" "$DUMONT_HOME/restored"
    diff -r "$ws" "$DUMONT_HOME/restored" >/dev/null || fail "N1: the restored tree differs"
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
    assert_eq 0 "$?" "agent 201 exit status"
}

check_hold() {
    local ws=$DUMONT_HOME/ws202
    mkdir -p "$ws"
    echo restored-data >"$ws/restored.txt"
    start_agent 202 --workspace "$ws" --snapshot-every 1s --hold \
        --workload "sh -c 'echo up >started.txt; exec sleep 600'"
    wait_for 20 "instance 202 healthy" field_is 202 .state healthy
    wait_for 20 "heartbeats of 202" log_at_least 202 agent.registered 1
    local until=$(($(now_us) + 2500000))
    while [ "$(now_us)" -lt "$until" ]; do
        [ ! -e "$ws/started.txt" ] || fail "N3: the workload started before SIGUSR1"
        sleep 0.1
    done
    assert_eq none "$(inst_field 202 .workload)" "N3: no workload while held"
    assert_eq 0 "$(snap_count 202)" "N3: no snapshot while held"
    kill -USR1 "$AGENT_PID"
    wait_for 20 "the workload started on SIGUSR1" test -s "$ws/started.txt"
    wait_for 20 "instance 202 workload running" field_is 202 .workload running
    wait_for 20 "a snapshot once released" snaps_at_least 202 1
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
}

check_preempt_local() {
    local ws=$DUMONT_HOME/ws203 md=$DUMONT_HOME/md203
    mkdir -p "$ws" "$md/computeMetadata/v1/instance"
    echo FALSE >"$md/computeMetadata/v1/instance/preempted"
    head -c 100000 /dev/urandom >"$ws/data.bin"
    start_agent 203 --workspace "$ws" --snapshot-every 0 --preempt-cloud local \
        --metadata-url "file://$md"
    wait_for 20 "instance 203 healthy" field_is 203 .state healthy
    echo "written before the notice" >"$ws/last.txt"
    echo TRUE >"$md/computeMetadata/v1/instance/preempted"
    wait_for 30 "instance 203 preempting" field_is 203 .state preempting
    # A6: the final snapshot was reported before the flag was set.
    api GET /api/instances/203/snapshots
    assert_json '.snapshots | length' 1 "N4: one (final) snapshot"
    assert_json '.snapshots[0].trigger' preempt "N4: its trigger"
    local id
    id=$(printf '%s' "$HTTP_BODY" | jq -r '.snapshots[0].snapshot_id')
    DUMONT_STORE=file://$DUMONT_HOME/store cli_ok snapshot restore "$id" "$DUMONT_HOME/restored203"
    diff -r "$ws" "$DUMONT_HOME/restored203" >/dev/null || fail "N4: data written before the notice lost"
    kill -KILL "$AGENT_PID"
    wait_for 20 "instance 203 failed once silent" field_is 203 .state failed
}

# db_exec SQL: runs SQL on the server's database (SQLite file or PostgreSQL).
db_exec() {
    if [ -n "${DUMONT_DATABASE_URL:-}" ]; then
        psql "$DUMONT_DATABASE_URL" -q -v ON_ERROR_STOP=1 -c "$1" >/dev/null
    else
        sqlite3 "$DUMONT_HOME/dumont.db" "PRAGMA busy_timeout=5000; $1" >/dev/null
    fi || fail "db_exec: $1"
}

check_zombie() {
    local ws=$DUMONT_HOME/ws204 until
    mkdir -p "$ws" "$DUMONT_HOME/ws205"
    echo data >"$ws/f"
    # 204: registered while its machine was provisioning, then fenced before its
    # first snapshot: its snapshots are refused, said once, retried quietly;
    # nothing is ever recorded. It cannot register again (listener.h HB-L13).
    db_exec "INSERT INTO machines (instance_id, provider, epoch, state, test, created_at_ms)
             VALUES (204, 'local', 0, 'provisioning', 0, 1)"
    start_agent 204 --workspace "$ws" --snapshot-every 1s
    local pid204=$AGENT_PID
    wait_for 20 "instance 204 registered" log_at_least 204 agent.registered 1
    db_exec "UPDATE machines SET state = 'destroyed' WHERE instance_id = 204"
    wait_for 20 "the refusal logged" log_at_least 204 agent.snapshot_refused 1
    api POST /api/instances/register -d '{"instance_id": 204}'
    assert_eq 409 "$HTTP_STATUS" "HB-L13: a destroyed instance never registers again"
    grep -q 'event=instance.register_refused instance=204' "$SERVER_LOG" ||
        fail "HB-L13: the refused registration is logged"
    # 205: serving, snapshots accepted; then fenced: a zombie, it stops.
    db_exec "INSERT INTO machines (instance_id, provider, epoch, state, test, created_at_ms)
             VALUES (205, 'local', 0, 'running', 0, 1)"
    echo one >"$DUMONT_HOME/ws205/f"
    start_agent 205 --workspace "$DUMONT_HOME/ws205" --snapshot-every 1s
    wait_for 20 "a snapshot of 205 accepted" snaps_at_least 205 1
    db_exec "UPDATE machines SET state = 'destroyed' WHERE instance_id = 205"
    echo two >>"$DUMONT_HOME/ws205/f"
    wait_for 20 "205 stops on the refusal" log_at_least 205 snapshots=stopped 1
    echo more >>"$ws/f"
    echo three >>"$DUMONT_HOME/ws205/f"
    until=$(($(now_us) + 2500000))
    while [ "$(now_us)" -lt "$until" ]; do # two more periods, with changes
        [ "$(log_count 204 'event=agent.snapshot ')" = 0 ] || fail "N7: a fenced agent's snapshot"
        sleep 0.1
    done
    assert_eq 1 "$(log_count 204 agent.snapshot_refused)" "N7: a refusal is said once"
    assert_eq 0 "$(snap_count 204)" "N7: nothing recorded for 204"
    assert_eq 1 "$(log_count 205 agent.snapshot_refused)" "N7: the zombie tried once"
    assert_eq 1 "$(snap_count 205)" "N7: only what 205 took while serving"
    kill -TERM "$pid204" "$AGENT_PID"
    wait "$pid204" "$AGENT_PID"
}

check_duplicates() {
    api GET /api/instances
    assert_json '.heartbeats.dropped.duplicate > 0' true "N5: second copies counted"
    assert_json '.heartbeats.dropped.replay' 0 "N5: no copy counted as a replay"
}

check_validation() {
    local p=/api/instances/202/snapshots
    api POST "$p" -d '{oops'
    assert_api_error 400 bad_request "bad JSON"
    api POST "$p" -d '{"snapshot_id": "ab"}'
    assert_api_error 400 bad_request "missing fields"
    local body='{"snapshot_id": "ab", "epoch": 0, "size_bytes": 123456789012345678901234567890,
      "stored_bytes": 1, "files": 1, "created_at_ms": 1, "creation_time_ms": 1,
      "store": "file:///x", "trigger": "manual"}'
    api POST "$p" -d "$body"
    assert_api_error 400 bad_request "huge number"
    api POST "$p" -d "${body/123456789012345678901234567890/5}"
    assert_api_error 422 foreign_store "a report naming another store"
    local good=${body/123456789012345678901234567890/5}
    local foreign='"store": "file:///x", '
    good=${good/"$foreign"/}
    api POST "$p" -d "$good"
    assert_api_error 422 unknown_snapshot "a snapshot the store does not hold"
    mkdir -p "$DUMONT_HOME/manual" && echo manual >"$DUMONT_HOME/manual/f"
    cli_ok snapshot create "$DUMONT_HOME/manual"
    api POST "/api/instances/777/snapshots" -d "${good/\"ab\"/\"$CLI_OUT\"}"
    assert_api_error 404 not_found "unknown instance"
    api POST "$p" -d "${good/\"ab\"/\"$CLI_OUT\"}"
    assert_status 201 "a manual report of a snapshot in the server's store"
    api_noauth GET "$p"
    assert_api_error 401 unauthorized "list without token"
}

for backend in $(backends); do
    use_backend "$backend"
    start_server --heartbeat-listen 127.0.0.1:0
    check_scheduled
    check_hold
    check_preempt_local
    check_zombie
    check_duplicates
    check_validation
    stop_server TERM
    assert_eq 0 "$SERVER_RC" "server exit status"
done
log "PASS"
