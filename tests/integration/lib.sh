# shellcheck shell=bash
# Helpers for the integration tests (tests/integration/test_*.sh): each test
# sources this file, then starts real `dumont` programs and asserts on what
# they answer.
#
#   DUMONT_BIN           the built dumont program (set by CTest)
#   DUMONT_TEST_PG_URL   a PostgreSQL server (set by scripts/test.sh); tests
#                        that can also run on PostgreSQL do when it is set
#   DUMONT_TEST_KEEP=1   keep the scratch directory (logs, homes) after the test
#
# L1: nothing waits with a bare sleep: wait_for polls a condition against a
#     deadline and fails the test, saying what it waited for, when it passes.
# L2: every server a test starts is stopped by the EXIT trap (SIGKILL after a
#     grace period), and every PostgreSQL database it made is dropped.
# L3: an assertion that fails prints what it expected, what it got and the
#     tail of the server log, and ends the test with status 1; skip ends it
#     with 77 (CTest's SKIP_RETURN_CODE).
# L4: the API token is never put on a command line: curl reads the
#     Authorization header from a file of mode 0600.

set -u -o pipefail

TEST_NAME=$(basename "$0" .sh)
TEST_TMP=""
SERVER_PID=""
SERVER_LOG=""
SERVER_RC=""
SERVER_HUNG=0
SERVER_PORT=""
TOKEN=""
PG_DBS=()
PG_URL=""
CLI_OUT="" CLI_ERR="" CLI_RC=""
HTTP_STATUS="" HTTP_BODY="" HTTP_HEADERS=""

log() { printf '%s: %s\n' "$TEST_NAME" "$*" >&2; }

skip() {
    log "SKIP: $*"
    exit 77
}

fail() {
    log "FAIL: $*"
    if [ -n "$SERVER_LOG" ] && [ -s "$SERVER_LOG" ]; then
        log "last lines of the server log ($SERVER_LOG):"
        tail -n 25 "$SERVER_LOG" | sed 's/^/    /' >&2
    fi
    exit 1
}

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "'$c' is not installed"
    done
}

# kill_test_instances: SIGKILLs every process left by local instances of this
# test (agents and workloads detach from the server like real machines; they
# carry a DUMONT_HOME under TEST_TMP in their environment).
kill_test_instances() {
    [ -n "$TEST_TMP" ] || return 0
    local p pids=()
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" != "$$" ] || continue
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -q "^DUMONT_HOME=$TEST_TMP/"; then
            pids+=("${p#/proc/}")
        fi
    done
    [ "${#pids[@]}" = 0 ] || kill -KILL "${pids[@]}" 2>/dev/null
    return 0
}

# remove_workspaces DIR: the workspaces that the local provider, run as root,
# keeps outside the homes under DIR (provider/local.h PROV-LP6): one directory per
# home, named by the first 12 hex digits of the SHA-256 of the home's path.
remove_workspaces() {
    local d h
    for d in "$1"/*/; do
        [ -d "$d/instances" ] || continue
        h=$(printf '%s' "$(realpath "$d")" | sha256sum | cut -c1-12)
        [ ! -d "/var/lib/dumont/workspaces/$h" ] || rm -rf "/var/lib/dumont/workspaces/$h"
    done
    return 0
}

lib_cleanup() {
    local rc=$?
    trap - EXIT
    stop_server KILL 2>/dev/null
    kill_test_instances
    local db
    for db in "${PG_DBS[@]+"${PG_DBS[@]}"}"; do
        psql "$DUMONT_TEST_PG_URL" -q -v ON_ERROR_STOP=1 \
            -c "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 ||
            log "warning: could not drop database $db"
    done
    if [ -n "$TEST_TMP" ] && [ -d "$TEST_TMP" ]; then
        if [ "${DUMONT_TEST_KEEP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 77 ]; }; then
            log "scratch files kept in $TEST_TMP"
        else
            remove_workspaces "$TEST_TMP"
            rm -rf "$TEST_TMP"
        fi
    fi
    exit "$rc"
}

lib_init() {
    [ -n "${DUMONT_BIN:-}" ] || skip "DUMONT_BIN is not set (run through ctest)"
    [ -x "$DUMONT_BIN" ] || fail "DUMONT_BIN=$DUMONT_BIN is not an executable"
    need curl jq
    TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/dumont-$TEST_NAME.XXXXXX") || fail "mktemp failed"
    trap lib_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # The CLI and server must not pick up the caller's settings.
    unset DUMONT_URL DUMONT_TOKEN DUMONT_DATABASE_URL DUMONT_STORE DUMONT_LISTEN \
        DUMONT_SIM_SPEED DUMONT_LOG_LEVEL DUMONT_CA_FILE DUMONT_TLS_CERT DUMONT_TLS_KEY
}

# tiny_workspace DIR SIZE: sets TINY (the Ollama stand-in built next to
# dumont) and makes DIR a workspace holding its model of SIZE (e.g. 2M).
tiny_workspace() {
    TINY="$(dirname "$DUMONT_BIN")/tiny-ollama"
    [ -x "$TINY" ] || fail "tiny-ollama is not built next to $DUMONT_BIN"
    mkdir -p "$1"
    "$TINY" --make-model "$1" --size "$2" >/dev/null || fail "tiny-ollama --make-model failed"
}

# new_home: a fresh, private DUMONT_HOME (exported).
new_home() {
    DUMONT_HOME=$(mktemp -d "$TEST_TMP/home.XXXXXX") || fail "mktemp failed"
    chmod 700 "$DUMONT_HOME"
    export DUMONT_HOME
    TOKEN=""
}

now_us() { printf '%s' "${EPOCHREALTIME//[.,]/}"; }

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 50 ms until it succeeds;
# fails the test after SECONDS (L1).
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$(($(now_us) + secs * 1000000))
    until "$@"; do
        if [ "$(now_us)" -ge "$deadline" ]; then
            fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.05
    done
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# free_port: prints a port nothing listens on (a server may still race us to
# it; start_server then tries another one).
free_port() {
    local i p
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        if command -v ss >/dev/null 2>&1 && ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            continue
        fi
        port_in_use "$p" || {
            echo "$p"
            return 0
        }
    done
    fail "no free TCP port found"
}

# children PID: the pids whose parent is PID.
children() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(awk '{print $4}' "$p/stat" 2>/dev/null | head -n1)" = "$1" ] && echo "${p#/proc/}"
    done
    return 0
}

healthz_ok() {
    [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' ${DUMONT_CA_FILE:+--cacert "$DUMONT_CA_FILE"} \
        "$DUMONT_URL/healthz" 2>/dev/null)" = 200 ]
}

server_alive() { [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; }

# start_server [ARGS...]: starts `dumont server` on a free port of 127.0.0.1
# (KEEP_PORT=PORT: on that one, for a restart the agents must find) with
# DUMONT_HOME, exports DUMONT_URL, waits for /healthz and loads TOKEN.
# SERVER_SCHEME=https (a server given --tls-cert/--tls-key; curl trusts
# $DUMONT_CA_FILE) and SERVER_HOST=0.0.0.0 (listen on every address; the test
# still talks to 127.0.0.1) change how it is started and reached.
start_server() {
    local attempt
    [ -z "$SERVER_PID" ] || fail "start_server: a server is already running"
    SERVER_LOG="$DUMONT_HOME.server.log"
    for attempt in 1 2 3 4 5; do
        if [ -n "${KEEP_PORT:-}" ]; then # a restart where the agents know the server
            SERVER_PORT=$KEEP_PORT
        else
            SERVER_PORT=$(free_port) || fail "no free TCP port found"
        fi
        export DUMONT_URL="${SERVER_SCHEME:-http}://127.0.0.1:$SERVER_PORT"
        echo "--- start (attempt $attempt) on port $SERVER_PORT: $*" >>"$SERVER_LOG"
        "$DUMONT_BIN" server --listen "${SERVER_HOST:-127.0.0.1}:$SERVER_PORT" "$@" \
            >>"$SERVER_LOG" 2>&1 &
        SERVER_PID=$!
        local deadline=$(($(now_us) + 20 * 1000000))
        while server_alive && ! healthz_ok; do
            [ "$(now_us)" -lt "$deadline" ] || fail "server did not answer /healthz within 20s"
            sleep 0.05
        done
        if server_alive; then
            wait_for 10 "the token file $DUMONT_HOME/token" test -s "$DUMONT_HOME/token"
            TOKEN=$(cat "$DUMONT_HOME/token")
            write_auth_header "$TOKEN"
            return 0
        fi
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
        # Another process may have taken the port between free_port and bind.
        grep -qiE 'address.*in use|bind' "$SERVER_LOG" || fail "the server exited at start"
    done
    fail "the server could not start on a free port in 5 attempts"
}

# stop_server [SIGNAL]: sends SIGNAL (default TERM), waits for the server to
# exit (SIGKILL after 20 s) and leaves its exit status in SERVER_RC.
stop_server() {
    local sig=${1:-TERM}
    SERVER_RC=""
    [ -n "$SERVER_PID" ] || return 0
    kill -s "$sig" "$SERVER_PID" 2>/dev/null
    local deadline=$(($(now_us) + 20 * 1000000))
    while ! server_exited; do
        if [ "$(now_us)" -ge "$deadline" ]; then
            log "the server did not exit within 20s of SIG$sig; killing it"
            kill -s KILL "$SERVER_PID" 2>/dev/null
            SERVER_HUNG=1
            break
        fi
        sleep 0.05
    done
    wait "$SERVER_PID" 2>/dev/null
    SERVER_RC=$?
    SERVER_PID=""
    return 0
}

# server_exited: the server process is gone or a zombie waiting to be reaped.
server_exited() {
    local st
    st=$(sed 's/^.*) //' "/proc/$SERVER_PID/stat" 2>/dev/null | cut -d' ' -f1)
    [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]
}

write_auth_header() {
    (
        umask 077
        printf 'Authorization: Bearer %s\n' "$1" >"$TEST_TMP/auth.header"
    )
}

# api METHOD PATH [CURL ARGS...]: a request with the right token (L4). Sets
# HTTP_STATUS, HTTP_BODY, HTTP_HEADERS.
api() {
    api_as "$TEST_TMP/auth.header" "$@"
}

# api_noauth METHOD PATH [CURL ARGS...]: the same without Authorization.
api_noauth() {
    api_as "" "$@"
}

# api_as HEADER_FILE METHOD PATH [CURL ARGS...]
api_as() {
    local hfile=$1 method=$2 path=$3
    shift 3
    local auth=()
    [ -z "$hfile" ] || auth=(-H "@$hfile")
    HTTP_STATUS=$(curl -sS -m 20 -o "$TEST_TMP/http.body" -D "$TEST_TMP/http.headers" \
        ${DUMONT_CA_FILE:+--cacert "$DUMONT_CA_FILE"} -w '%{http_code}' -X "$method" \
        "${auth[@]+"${auth[@]}"}" "$@" "$DUMONT_URL$path") ||
        fail "curl $method $path failed"
    HTTP_BODY=$(cat "$TEST_TMP/http.body")
    HTTP_HEADERS=$(tr -d '\r' <"$TEST_TMP/http.headers")
}

# cli ARGS...: runs dumont; sets CLI_OUT, CLI_ERR, CLI_RC. Never fails itself.
cli() {
    "$DUMONT_BIN" "$@" >"$TEST_TMP/cli.out" 2>"$TEST_TMP/cli.err"
    CLI_RC=$?
    CLI_OUT=$(cat "$TEST_TMP/cli.out")
    CLI_ERR=$(cat "$TEST_TMP/cli.err")
}

# cli_ok ARGS...: runs dumont and fails the test unless it exits 0.
cli_ok() {
    cli "$@"
    [ "$CLI_RC" = 0 ] || fail "dumont $* exited $CLI_RC (expected 0); stderr: $CLI_ERR"
}

assert_eq() { # EXPECTED ACTUAL WHAT
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_ne() { # UNEXPECTED ACTUAL WHAT
    [ "$1" != "$2" ] || fail "$3: got '$2', which it must not be"
}

assert_contains() { # HAYSTACK NEEDLE WHAT
    case "$1" in
    *"$2"*) ;;
    *) fail "$3: expected to contain '$2', got: $1" ;;
    esac
}

assert_not_contains() { # HAYSTACK NEEDLE WHAT
    case "$1" in
    *"$2"*) fail "$3: must not contain '$2', got: $1" ;;
    *) ;;
    esac
}

assert_match() { # STRING ERE WHAT
    [[ $1 =~ $2 ]] || fail "$3: expected to match /$2/, got: $1"
}

# assert_status CODE WHAT: the last api call answered CODE.
assert_status() {
    [ "$HTTP_STATUS" = "$1" ] || fail "$2: expected HTTP $1, got $HTTP_STATUS: $HTTP_BODY"
}

# assert_json FILTER EXPECTED WHAT [JSON]: jq -r FILTER of JSON (default the
# last HTTP body) prints EXPECTED.
assert_json() {
    local got
    got=$(printf '%s' "${4-$HTTP_BODY}" | jq -r "$1" 2>&1) || fail "$3: not JSON ($got): ${4-$HTTP_BODY}"
    [ "$got" = "$2" ] || fail "$3: jq '$1' expected '$2', got '$got' in: ${4-$HTTP_BODY}"
}

# assert_api_error STATUS ERROR WHAT: an error answer as docs/api.md has it.
assert_api_error() {
    assert_status "$1" "$3"
    assert_json '.error' "$2" "$3 (error code)"
    assert_json '.detail | type' string "$3 (detail)"
}

# assert_cli_rc RC WHAT: the last cli call exited RC.
assert_cli_rc() {
    [ "$CLI_RC" = "$1" ] || fail "$2: dumont exited $CLI_RC, expected $1; stdout: $CLI_OUT; stderr: $CLI_ERR"
}

# assert_one_line TEXT WHAT
assert_one_line() {
    [ -n "$1" ] && [ "$(printf '%s\n' "$1" | wc -l)" = 1 ] || fail "$2: expected one line, got: $1"
}

# ---- instances and real failovers (issue 6) --------------------------------

# instance_state_is ID STATE: `dumont instances show ID` says STATE.
instance_state_is() {
    cli instances show "$1" --json
    [ "$CLI_RC" = 0 ] && [ "$(printf '%s' "$CLI_OUT" | jq -r .state)" = "$2" ]
}

# failover_of ID: sets FO to the newest failover of instance ID (as the old
# one), as JSON; false when there is none.
failover_of() {
    cli failover list gpu_instance_id="$1" --json
    [ "$CLI_RC" = 0 ] || return 1
    FO=$(printf '%s' "$CLI_OUT" | jq -c '.failovers[0] // empty')
    [ -n "$FO" ]
}

# failover_done ID: the newest failover of instance ID is terminal (sets FO).
failover_done() {
    failover_of "$1" && [ "$(printf '%s' "$FO" | jq -r .success)" != null ]
}

# ---- PostgreSQL ------------------------------------------------------------

# pg_new_database: creates an empty database on DUMONT_TEST_PG_URL and sets
# PG_URL to its URL (dropped at exit, L2).
pg_new_database() {
    local db="dumont_${TEST_NAME#test_}_$$_${RANDOM}"
    db=$(printf '%s' "$db" | tr -c 'a-z0-9_' '_')
    psql "$DUMONT_TEST_PG_URL" -q -v ON_ERROR_STOP=1 -c "create database \"$db\"" >/dev/null ||
        fail "cannot create database $db on the PostgreSQL test server"
    PG_DBS+=("$db")
    local url=$DUMONT_TEST_PG_URL
    if [[ $url =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]]; then
        PG_URL="${BASH_REMATCH[1]}/$db${BASH_REMATCH[4]}"
    else
        PG_URL="$url dbname=$db" # key=value connection string
    fi
}

# backends: "sqlite", plus "postgresql" when DUMONT_TEST_PG_URL is set.
backends() {
    echo sqlite
    if [ -n "${DUMONT_TEST_PG_URL:-}" ]; then
        command -v psql >/dev/null 2>&1 && echo postgresql ||
            log "DUMONT_TEST_PG_URL is set but psql is missing: PostgreSQL run skipped"
    fi
}

# use_backend NAME: a fresh home, and DUMONT_DATABASE_URL for that back end.
use_backend() {
    new_home
    unset DUMONT_DATABASE_URL
    if [ "$1" = postgresql ]; then
        pg_new_database
        export DUMONT_DATABASE_URL="$PG_URL"
    fi
    SERVER_LOG=""
    log "--- back end: $1"
}

# ---- failovers ---------------------------------------------------------------

# fo_state ID: prints the failover's state (empty if the request failed).
fo_state() {
    api GET "/api/standby/failover/status/$1"
    [ "$HTTP_STATUS" = 200 ] && printf '%s' "$HTTP_BODY" | jq -r .state
}

fo_is_terminal() {
    local s
    s=$(fo_state "$1")
    [ "$s" = completed ] || [ "$s" = failed ]
}

# wait_terminal ID [SECONDS]: waits until the failover has ended.
wait_terminal() {
    wait_for "${2:-60}" "failover $1 to end" fo_is_terminal "$1"
}
