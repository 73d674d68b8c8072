#!/usr/bin/env bash
# A protected workload that was healthy and then keeps crashing on its
# instance (issue 16; docs/failover.md "Workload failures"): the agent
# restarts it in place max_restarts_on_errors times, then reports the crash
# loop with its host checks.
#   - The host passes its checks: the workload is `failed` where it is, with
#     the reason; no failover, no new instance.
#   - The host fails its check (host_check=CMD exits non-zero): a failover
#     (trigger `crashlooping`) moves the workload to a new instance where it runs.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M
new_home
start_server

# The workload crashes on an instance whose port has a file in $flags (the
# agent's words: no shell reads the command line; sh is the workload here).
# $flags is readable by the workload's own user (a root agent drops to it).
chmod 0711 "$TEST_TMP"
flags="$TEST_TMP/flags"
mkdir -m 0755 "$flags"
cp "$TINY" "$flags/tiny-ollama" # a repository under /root is out of the workload user's reach
TINY="$flags/tiny-ollama"
# Each crash first plants a link, in its workspace (its working directory),
# at the name the agent's workspace check once used (.dumont-host-check.PID,
# PID the agent's, the workload's parent) to a file the workload cannot write:
# the agent (root in CI) must never write through it (wl_report.h AG-R5).
canary="$flags/canary"
echo "canary" >"$canary"
chmod 0644 "$canary"
# The host check fails on an instance whose port has a file PORT.host there.
launch() { # sets FIRST
    cli_ok instances launch \
        workload="sh -c 'test -e \"$flags/\$PORT\" && { ln -sf \"$canary\" .dumont-host-check.\$PPID; exit 3; }; exec $TINY'" \
        host_check="sh -c 'test ! -e \"$flags/\$PORT.host\"'" max_restarts_on_errors=2 \
        probe=ollama:tiny workspace_from="$ws" snapshot_every=0
    FIRST=$CLI_OUT
    wait_for 30 "instance $FIRST healthy" instance_state_is "$FIRST" healthy
}
# The running model server of that instance: "healthy" comes from the
# agent's heartbeats and may precede the workload (the agent restores the
# workspace first, then sh execs tiny-ollama), so it is looked for until it
# is there. A crash file written before would make the very first start crash.
model_server_of() { # sets MODEL_PID to the tiny-ollama of DUMONT_HOME=$1
    local p
    for p in /proc/[0-9]*; do
        [ "$(cat "$p/comm" 2>/dev/null)" = tiny-ollama ] || continue
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "DUMONT_HOME=$1"; then
            MODEL_PID=${p#/proc/}
            return 0
        fi
    done
    return 1
}
probe_ok() { cli instances show "$1" --json && [ "$(printf '%s' "$CLI_OUT" | jq -r .probe)" = ok ]; }
# crash_loop ID [host]: kills the model server of ID; from then on it crashes
# at once (and with "host", the host check of ID fails too).
crash_loop() {
    local home="$DUMONT_HOME/instances/$1/home" port
    [ -d "$home" ] || fail "no instance home $home"
    wait_for 30 "the model server of instance $1" model_server_of "$home"
    wait_for 30 "the probe of instance $1 to answer" probe_ok "$1" # it was healthy
    cli_ok instances show "$1" --json
    port=$(printf '%s' "$CLI_OUT" | jq -r .address | cut -d: -f2)
    [ "${2:-}" != host ] || touch "$flags/$port.host"
    touch "$flags/$port"
    kill -KILL "$MODEL_PID" || fail "could not kill the model server $MODEL_PID of instance $1"
}
workload_state_of() { # WL_STATE, WL_FAILURE of the workload instance $1 serves or served
    cli instances show "$1" --json
    WL_STATE=$(printf '%s' "$CLI_OUT" | jq -r .workload_state)
    WL_FAILURE=$(printf '%s' "$CLI_OUT" | jq -r .workload_failure)
}
workload_failed_on() { workload_state_of "$1" && [ "$WL_STATE" = failed ]; }

# 1. The host passes its checks: restarted in place twice, then failed there.
launch
first=$FIRST
crash_loop "$first"
wait_for 60 "the workload of $first to be failed" workload_failed_on "$first"
assert_contains "$WL_FAILURE" "crash-looped on instance $first (exit code 3) after 2 restarts in place" \
    "the reason: restarted in place, then given up"
assert_contains "$WL_FAILURE" "the host passed its checks" "the reason: the host is fine"
cli_ok failover list gpu_instance_id="$first" --json
assert_json '.failovers | length' 0 "no failover for a crash loop the host is not at fault for" "$CLI_OUT"
assert_json .state healthy "the instance is kept" "$(cli instances show "$first" --json; printf '%s' "$CLI_OUT")"
assert_eq canary "$(cat "$canary")" "the file a crashing workload linked to (AG-R5)"

# 2. The host fails its check: a failover to a new instance.
launch
first=$FIRST
crash_loop "$first" host
wait_for 90 "the failover of $first after its crash loop" failover_done "$first"
assert_json .trigger crashlooping "triggered by the crash loop" "$FO"
assert_json .success true "the failover succeeded" "$FO"
second=$(printf '%s' "$FO" | jq -r .new_instance_id)
wait_for 30 "instance $second healthy" instance_state_is "$second" healthy
cli_ok instances show "$second" --json
addr=$(printf '%s' "$CLI_OUT" | jq -r .address)
curl -fsS -m 5 -d '{"model":"tiny","prompt":"hi","stream":false}' "http://$addr/api/generate" |
    jq -e '.response | length > 0' >/dev/null || fail "the model does not answer on $second"
assert_eq canary "$(cat "$canary")" "the file a crashing workload linked to (AG-R5)"
log "ok: crash loop on $first -> failover to $second"
