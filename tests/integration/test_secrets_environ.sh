#!/usr/bin/env bash
# No Dumont secret reaches a workload, and agents hold only their own
# credential (docs/security.md "Secrets"; provider.h PROV-PV6, provider.c PROV-PD3,
# src/agent/workload.h AG-S5 to AG-S6).
#
# E1: the server runs with canaries in its environment (the admin token as
#     DUMONT_TOKEN, AWS_SECRET_ACCESS_KEY, B2_APPLICATION_KEY, VAST_API_KEY,
#     GOOGLE_APPLICATION_CREDENTIALS); a local instance's agent and its
#     workload hold none of them, nor the admin token, and the workload does
#     not hold the agent's credential either (/proc/PID/environ).
# E2: the local instance's agent credential acts for its instance only: it
#     cannot register or report for another instance, launch, destroy, read
#     /api/workloads or the tokens; after the instance is destroyed it is 401.
# E3: a hand-started agent (`dumont tokens create role=agent instance=N`,
#     --token-file) with canaries in its own environment hands none to its
#     workload; a DUMONT_TOKEN it was given is wiped from its own
#     /proc/PID/environ. Run as root, its workload runs as another uid, owns
#     the workspace, and cannot read the agent's /proc/PID/environ.
. "$(dirname "$0")/lib.sh"
lib_init

new_home
# The admin token exists before the server starts, so it can be a canary too.
ADMIN=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && printf '%s\n' "$ADMIN" >"$DUMONT_HOME/token")
CANARIES=(canary-aws-5ecret canary-b2-k3y canary-vast-k3y /canary/gcp-credentials.json "$ADMIN")
export AWS_SECRET_ACCESS_KEY=canary-aws-5ecret AWS_ACCESS_KEY_ID=canary-aws-id \
    B2_APPLICATION_KEY=canary-b2-k3y VAST_API_KEY=canary-vast-k3y \
    GOOGLE_APPLICATION_CREDENTIALS=/canary/gcp-credentials.json DUMONT_TOKEN=$ADMIN
start_server
assert_eq "$ADMIN" "$TOKEN" "the server uses the token file written before it started"

# no_secret PID WHAT [EXTRA...]: /proc/PID/environ holds no canary nor EXTRA.
no_secret() {
    local pid=$1 what=$2 env s
    shift 2
    env=$(tr '\0' '\n' <"/proc/$pid/environ") || fail "cannot read /proc/$pid/environ ($what)"
    [ -n "$env" ] || fail "the environment of $what is empty: the test would prove nothing"
    for s in "${CANARIES[@]}" "$@"; do
        assert_not_contains "$env" "$s" "the environment of $what"
    done
    for v in AWS_SECRET_ACCESS_KEY AWS_ACCESS_KEY_ID B2_APPLICATION_KEY VAST_API_KEY \
        GOOGLE_APPLICATION_CREDENTIALS DUMONT_TOKEN; do
        if grep -q "^$v=" <<<"$env"; then fail "$v is in the environment of $what"; fi
    done
}

# stat's field 4 is after the comm, which holds no space here (sleep, dumont)
sleep_child() { children "$1" | while read -r c; do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = sleep ] && echo "$c"
done | head -n1; }
has_sleep_child() { [ -n "$(sleep_child "$1")" ]; }

# ---- E1: a local instance
cli_ok instances launch workload="sh -c 'exec sleep 600'" snapshot_every=0 heartbeat_ms=100
id=$CLI_OUT
dir=$DUMONT_HOME/instances/$id
apid=$(jq -r .pid "$dir/instance.json")
wait_for 20 "the workload of instance $id runs" has_sleep_child "$apid"
wpid=$(sleep_child "$apid")
AGENT_TOK=$(cat "$dir/agent.token")
assert_match "$AGENT_TOK" '^[0-9a-f]{64}$' "the instance's agent credential"
no_secret "$apid" "the agent of instance $id"
no_secret "$wpid" "the workload of instance $id" "$AGENT_TOK"
tr '\0' '\n' <"/proc/$wpid/environ" | grep -qx "PORT=[0-9]*" || fail "the workload lost PORT"
wuid=$(stat -c %u "/proc/$wpid")
if [ "$(id -u)" = 0 ]; then
    # S6 with local.h PROV-LP6: the workspace lives outside the private home, so
    # the workload runs as a user of its own, owns the workspace, and cannot
    # read its agent's token file or environment.
    assert_ne 0 "$wuid" "the workload of a root agent runs as root"
    ws_real=$(readlink -f "$dir/workspace")
    assert_eq "$wuid" "$(stat -c %u "$ws_real")" "the workspace belongs to the workload's user"
    assert_eq "$ws_real" "$(readlink "/proc/$wpid/cwd")" "the workload runs in its workspace"
    if setpriv --reuid "$wuid" --regid "$(stat -c %g "/proc/$wpid")" --clear-groups \
        cat "$dir/agent.token" "/proc/$apid/environ" >/dev/null 2>&1; then
        fail "the workload's user can read the agent's token file or environment"
    fi
    grep -q 'event=agent.workload_as_root' "$dir/agent.log" &&
        fail "the agent fell back to running the workload as root"
fi
log "E1: agent $apid and workload $wpid (uid $wuid) hold no secret"

# ---- E2: that credential acts for its own instance only
printf 'Authorization: Bearer %s\n' "$AGENT_TOK" >"$TEST_TMP/agent.header"
as_agent() { api_as "$TEST_TMP/agent.header" "$@" -H 'Content-Type: application/json'; }
other=$((id + 1000))
as_agent POST /api/instances/register -d "{\"instance_id\": $other}"
assert_api_error 403 forbidden "agent of $id registers $other"
as_agent POST "/api/instances/$other/snapshots" -d '{}'
assert_api_error 403 forbidden "agent of $id reports for $other"
as_agent POST /api/instances/launch -d '{"workload": "true"}'
assert_api_error 403 forbidden "agent launches"
as_agent DELETE "/api/instances/$id"
assert_api_error 403 forbidden "agent destroys its own instance"
as_agent GET /api/workloads
assert_api_error 403 forbidden "agent reads /api/workloads"
as_agent GET /api/tokens
assert_api_error 403 forbidden "agent reads the tokens"
as_agent POST /api/instances/register -d "{\"instance_id\": $id}"
assert_status 201 "agent of $id registers itself"
cli_ok instances destroy "$id"
as_agent POST /api/instances/register -d "{\"instance_id\": $id}"
assert_api_error 401 unauthorized "the agent credential after destroy"
cli_ok tokens list --json
assert_eq 0 "$(jq --arg n "agent-$id" '[.tokens[] | select(.name == $n)] | length' <<<"$CLI_OUT")" \
    "no token of the destroyed instance is left"

# ---- E3: a hand-started agent, canaries in its own environment
ws=$(mktemp -d /tmp/dumont-ws.XXXXXX) || fail "mktemp"
chmod 755 "$ws"
cleanup_ws() { rm -rf "$ws"; }
trap 'cleanup_ws; lib_cleanup' EXIT
hid=$((id + 2000))
cli_ok tokens create role=agent "instance=$hid" name=hand --json
HAND=$(jq -r .token <<<"$CLI_OUT")
(umask 077 && printf '%s\n' "$HAND" >"$TEST_TMP/hand.token")
unset DUMONT_TOKEN
DUMONT_TOKEN=$HAND "$DUMONT_BIN" agent --server "$DUMONT_URL" --instance "$hid" \
    --workspace "$ws" --store "file://$TEST_TMP/store" --snapshot-every 0 \
    --workload "sh -c 'id -u >uid.txt; cat /proc/\$PPID/environ >penv.txt 2>penv.err; exec sleep 600'" \
    >"$TEST_TMP/hand.log" 2>&1 &
hpid=$!
wait_for 20 "the hand-started agent's workload runs" has_sleep_child "$hpid"
hw=$(sleep_child "$hpid")
# its own environment is its operator's (store keys included); the token it
# was handed in DUMONT_TOKEN is wiped from it
assert_not_contains "$(tr '\0' '\n' <"/proc/$hpid/environ")" "$HAND" "the hand-started agent's environment"
no_secret "$hw" "the hand-started agent's workload" "$HAND"
if [ "$(id -u)" = 0 ]; then
    wuid=$(stat -c %u "/proc/$hw")
    assert_ne 0 "$wuid" "the workload's uid when the agent is root"
    wait_for 10 "uid.txt" test -s "$ws/uid.txt"
    assert_eq "$wuid" "$(cat "$ws/uid.txt")" "the workload's own view of its uid"
    assert_eq "$wuid" "$(stat -c %u "$ws")" "the workspace belongs to the workload's user"
    [ ! -s "$ws/penv.txt" ] || fail "the workload read the agent's /proc/PID/environ"
    log "E3: the workload runs as uid $wuid and cannot read its agent's environment"
else
    log "E3: not root: the workload runs as the agent's user ($(id -u)); uid checks skipped"
fi
kill -TERM "$hpid"
wait "$hpid" 2>/dev/null
log "PASS"
