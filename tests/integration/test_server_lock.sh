#!/usr/bin/env bash
# One controller per state (docs/security.md "One controller"; cmd_server.c
# CLI-SV1, CLI-SV2; db.h DB-D5, DB-D6).
#
# C1: a second `dumont server` on the same DUMONT_HOME is refused before it
#     serves: exit 1, a message naming the holder's host and pid; the first
#     keeps serving. Commands that are not the server need no lock.
# C2: once the holder stops (SIGTERM, or kill -9), a new one starts: no
#     stale lock.
# C3: a second server on the same database from another home is refused,
#     naming the holder: SQLite (the same file) and PostgreSQL (the same
#     database, when DUMONT_TEST_PG_URL is set).
# C4: PostgreSQL: the holder's lock session killed with pg_terminate_backend
#     while another session takes the lock -> the server logs server.lock_lost,
#     then server.lock_refused naming that holder, and exits 3 within seconds;
#     the one refused before can then start (CLI-SV3).
# C5: PostgreSQL: the lock session killed and no one else taking it -> the
#     server logs server.lock_lost, takes the lock back (server.lock_retaken)
#     and serves on; a second server is still refused.
. "$(dirname "$0")/lib.sh"
lib_init

# second_server: runs another server on DUMONT_HOME (a free port) and waits
# for it to exit; SECOND_RC and SECOND_ERR (its output).
second_server() {
    local port out
    port=$(free_port)
    out="$TEST_TMP/second.$RANDOM.log"
    timeout 20 "$DUMONT_BIN" server --listen "127.0.0.1:$port" >"$out" 2>&1
    SECOND_RC=$?
    SECOND_ERR=$(grep '^dumont server:' "$out") # its log lines (a new home's token) apart
}

assert_refused() { # WHAT NEEDLE
    assert_eq 1 "$SECOND_RC" "$1: exit status of the second server"
    assert_contains "$SECOND_ERR" "$2" "$1: the refusal"
    assert_contains "$SECOND_ERR" "pid=$SERVER_PID" "$1: the holder's pid"
    assert_contains "$SECOND_ERR" "host=$(hostname)" "$1: the holder's host"
    assert_one_line "$SECOND_ERR" "$1: the refusal is one line"
    healthz_ok || fail "$1: the first server stopped answering"
}

same_home() {
    use_backend "$1"
    start_server
    second_server
    assert_refused "same home ($1)" "another dumont server runs on $DUMONT_HOME"
    mkdir -p "$TEST_TMP/ws" && echo data >"$TEST_TMP/ws/f"
    cli_ok snapshot create "$TEST_TMP/ws" # not the server: no lock needed (C1)
    cli_ok failover report
    stop_server TERM
    assert_eq 0 "$SERVER_RC" "the holder's clean stop ($1)"
    start_server # C2
    stop_server KILL
    start_server # C2: a holder killed -9 leaves no lock
    stop_server TERM
}

# other_home BACKEND: the same database from two homes (C3).
other_home() {
    use_backend "$1"
    local home1=$DUMONT_HOME
    if [ "$1" = sqlite ]; then
        export DUMONT_DATABASE_URL="$TEST_TMP/shared.db"
    fi
    start_server
    new_home
    second_server
    assert_refused "same database, other home ($1)" "another dumont server controls the database"
    if [ "$1" = postgresql ]; then
        pg_retake # C5
        pg_kill_holder
    else
        DUMONT_HOME=$home1 stop_server TERM
    fi
    start_server # the one refused before
    stop_server TERM
    assert_eq 0 "$SERVER_RC" "the second server's clean stop ($1)"
}

# The sessions that hold the controller lock on the test's database.
LOCK_SESSIONS="FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND l.granted AND d.datname = '%s'
        AND l.classid = x'64756d6f'::int::oid AND l.objid = x'6374726c'::int::oid"

# C5: the lock's session is terminated and no one else takes the lock.
pg_retake() {
    local db=${PG_DBS[${#PG_DBS[@]} - 1]} n sql
    # shellcheck disable=SC2059
    sql=$(printf "$LOCK_SESSIONS" "$db")
    n=$(psql "$DUMONT_TEST_PG_URL" -qAt -v ON_ERROR_STOP=1 \
        -c "SELECT count(pg_terminate_backend(l.pid)) $sql") || fail "cannot terminate the lock's session"
    assert_eq 1 "$n" "sessions holding the controller lock"
    wait_for 15 "the lock taken back" grep -q "event=server.lock_retaken" "$SERVER_LOG"
    server_alive || fail "the server exited after its lock session ended"
    assert_contains "$(cat "$SERVER_LOG")" "event=server.lock_lost lock=database" "the loss is logged"
    wait_for 10 "/healthz after the retake" healthz_ok
    DUMONT_HOME=$home1 cli_ok failover report # it serves and reads the database (home1: other_home's)
    second_server
    assert_refused "same database after a retake" "another dumont server controls the database"
}

# C4: the session that holds the lock is terminated while another takes it.
pg_kill_holder() {
    local db=${PG_DBS[${#PG_DBS[@]} - 1]} sql url=$DUMONT_DATABASE_URL
    # shellcheck disable=SC2059
    sql=$(printf "$LOCK_SESSIONS" "$db")
    psql "$url" -qAt -v ON_ERROR_STOP=1 \
        -c "SELECT count(pg_terminate_backend(l.pid)) $sql" \
        -c "SELECT pg_advisory_lock(x'64756d6f6374726c'::bigint)" \
        -c "UPDATE controller_lock SET holder = 'host=intruder pid=1 since=now',
            backend_pid = pg_backend_pid()" \
        -c "SELECT pg_sleep(6)" >/dev/null &
    local intruder=$!
    wait_for 15 "the server to exit after losing its lock" server_exited
    wait "$SERVER_PID" 2>/dev/null
    SERVER_RC=$?
    assert_eq 3 "$SERVER_RC" "exit status after losing the lock to another"
    assert_contains "$(cat "$SERVER_LOG")" "server.lock_lost" "the log says the lock is lost"
    assert_contains "$(cat "$SERVER_LOG")" "lock=database" "the log names the lock"
    assert_contains "$(cat "$SERVER_LOG")" "server.lock_refused" "the log says it is held"
    assert_contains "$(cat "$SERVER_LOG")" "host=intruder" "the refusal names the holder"
    SERVER_PID=""
    wait "$intruder" || fail "the session that took the lock failed"
}

for b in $(backends); do
    same_home "$b"
    other_home "$b"
done
log "PASS"
