#!/usr/bin/env bash
# Fencing fails closed (docs/failover.md "Fencing fails closed"; provider.h PROV-PV3,
# local.h PROV-LP7, real.c ORCH-R7), end to end with real processes: the instance
# serving a protected workload stops answering, but the provider cannot confirm it
# gone because it never made it (its directory belongs to another home, as an
# instance another controller made would): the failover fails with the reason, no
# replacement is provisioned or promoted, the old instance stays recorded running
# (not fenced) and its processes are left alone. Before, a destroy of an unknown id
# "succeeded" and a second instance was promoted while the first kept running.
. "$(dirname "$0")/lib.sh"
lib_init

new_home
start_server
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
first=$CLI_OUT
wait_for 30 "instance $first healthy" instance_state_is "$first" healthy

# Another home's instance, as far as this server's provider can tell.
other="$TEST_TMP/other-home/instances"
mkdir -p "$other"
mv "$DUMONT_HOME/instances/$first" "$other/$first"
pid=$(jq -r .pid "$other/$first/instance.json")
kill -0 "$pid" || fail "the agent of $first runs"
kill -STOP "$pid" # silent, not gone
wait_for 60 "the failover of $first to end" failover_done "$first"
kill -CONT "$pid"

assert_json .success false "no failover completes without a confirmed fence" "$FO"
assert_json .new_instance_id null "nothing was provisioned" "$FO"
reason=$(printf '%s' "$FO" | jq -r .reason)
assert_contains "$reason" "could not fence instance $first" "the reason names the instance"
assert_contains "$reason" "never made by this provider" "the reason says why"
assert_contains "$reason" "no replacement is promoted" "the reason says what follows"
fo_id=$(printf '%s' "$FO" | jq -r .failover_id)
cli_ok failover status "$fo_id" --json
assert_json '.phases[] | select(.phase == "standby_activation") | .status' failed \
    "it failed in standby_activation" "$CLI_OUT"
assert_json '.phases[] | select(.phase == "gpu_search") | .status' pending \
    "no offer was searched" "$CLI_OUT"
cli_ok instances show "$first" --json
assert_json .machine_state running "the old instance stays recorded not fenced" "$CLI_OUT"
api GET /api/workloads
assert_json '.workloads[0].state' failed "the workload is failed" "$HTTP_BODY"
assert_json '.workloads[0].serving_instance_id' "$first" "no one else serves it" "$HTTP_BODY"
n=$(find "$DUMONT_HOME/instances" -mindepth 1 -maxdepth 1 | wc -l)
assert_eq 0 "$n" "no new instance was made"
kill -0 "$pid" || fail "nothing killed the instance it could not fence"
grep -q "event=failover.fence_failed .*instance_id=$first" "$SERVER_LOG" ||
    fail "failover.fence_failed is logged"
log "ok"
