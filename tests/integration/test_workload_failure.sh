#!/usr/bin/env bash
# A user's mistake is not an infrastructure failure (issue 16, "A user's
# mistake burns GPUs"; docs/failover.md "Workload failures"):
#   1. a placeholder or empty workload command is refused by the CLI and the
#      API, and nothing is rented;
#   2. a program that does not exist is restarted in place
#      max_restarts_on_errors times, then the workload is `failed` with the
#      reason and the agent's last output; no failover, no new instance;
#   3. an exit code marked in error_exit_codes fails the workload with that
#      code and the last lines it wrote; no failover.
# (A crash loop after being healthy: test_failover_crashloop.sh. A preemption
# still fails over: test_cli_fleet.sh, test_failover_real.sh.)
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
new_home
start_server

rented() { # the number of machines ever made
    api GET "/api/instances?all=true"
    printf '%s' "$HTTP_BODY" | jq '[.instances[] | select(.provider != null)] | length'
}
workload_of() { # WL: the workload JSON of instance $1
    api GET /api/workloads
    WL=$(printf '%s' "$HTTP_BODY" | jq -c --argjson id "$1" \
        '[.workloads[] | select(.serving_instance_id == $id)][0] // empty')
}
workload_failed() { workload_of "$1" && [ "$(printf '%s' "$WL" | jq -r .state)" = failed ]; }
no_failover_of() {
    cli failover list gpu_instance_id="$1" --json
    assert_json '.failovers | length' 0 "no failover of instance $1" "$CLI_OUT"
}

# ---- 1. placeholders -------------------------------------------------------
for w in "…" "..." "<cmd>" "<your command>" "COMMAND" "cmd --flag" "   " "ollama serve …"; do
    cli instances launch workload="$w" probe=exec:true
    assert_cli_rc 2 "instances launch workload='$w'"
    assert_contains "$CLI_ERR" "workload" "launch workload='$w': the reason names the workload"
    assert_match "$CLI_ERR" "placeholder|empty" "launch workload='$w': why"
done
cli instances launch workload= probe=exec:true
assert_cli_rc 2 "instances launch workload= (empty)"
assert_contains "$CLI_ERR" "empty" "launch workload=: why"
for body in '{"workload":"…"}' '{"workload":"<cmd>"}' '{"workload":""}' '{"workload":"COMMAND"}' \
    '{"workload":"sleep 1","host_check":"..."}' '{"workload":"sleep 1","error_exit_codes":"0"}'; do
    api POST /api/instances/launch -H 'Content-Type: application/json' -d "$body"
    assert_status 400 "POST launch $body"
done
[ "$(rented)" = 0 ] || fail "a refused launch rented an instance"
api GET /api/workloads
assert_json .total 0 "a refused launch leaves no workload" "$HTTP_BODY"

# ---- 2. a program that does not exist --------------------------------------
cli_ok instances launch workload="/nonexistent/dir/serve --port 1" probe=exec:true \
    max_restarts_on_errors=1 snapshot_every=0
id=$CLI_OUT
wait_for 60 "the workload of $id to be failed" workload_failed "$id"
printf '%s' "$WL" | jq -r .failure >"$TEST_TMP/failure.1"
assert_contains "$(cat "$TEST_TMP/failure.1")" "never became healthy on instance $id" \
    "the reason: never healthy"
assert_contains "$(cat "$TEST_TMP/failure.1")" "restarted in place 1 times" "the restarts in place"
assert_contains "$(cat "$TEST_TMP/failure.1")" "cannot start /nonexistent/dir/serve" \
    "the last output: why it did not start"
assert_json .max_restarts_on_errors 1 "the workload's max_restarts_on_errors" "$WL"
no_failover_of "$id"
[ "$(rented)" = 1 ] || fail "a workload failure rented another instance ($(rented) machines)"
cli_ok instances show "$id"
assert_contains "$CLI_OUT" "Workload failed:" "show: the failure"
assert_contains "$CLI_OUT" "cannot start /nonexistent/dir/serve" "show: its last output"
cli_ok instances show "$id" --json
assert_json .workload_state failed "show --json: workload_state" "$CLI_OUT"
assert_json .state healthy "the instance is kept (its agent runs)" "$CLI_OUT"

# ---- 3. an exit code the user marked as the workload's own error -------------
cli_ok instances launch workload="sh -c 'echo starting up; echo model file is corrupt >&2; exit 7'" \
    probe=exec:true error_exit_codes=2,7 max_restarts_on_errors=2 snapshot_every=0
id2=$CLI_OUT
wait_for 60 "the workload of $id2 to be failed" workload_failed "$id2"
failure=$(printf '%s' "$WL" | jq -r .failure)
assert_contains "$failure" "exited with code 7 on instance $id2" "the reason: exit code 7"
assert_contains "$failure" "error_exit_codes" "the reason: marked by the user"
assert_contains "$failure" "restarted in place 2 times" "restarted in place twice"
assert_contains "$failure" "model file is corrupt" "the last output lines"
assert_contains "$failure" "starting up" "the last output lines (stdout too)"
no_failover_of "$id2"
[ "$(rented)" = 2 ] || fail "an exit-code failure rented another instance ($(rented) machines)"
grep -q 'event=workload.failed' "$SERVER_LOG" || fail "no workload.failed in the server log"
log "ok: placeholders refused; a missing program and an error exit fail the workload, no GPU rented"
