#!/usr/bin/env bash
# A protected workload that keeps crashing on its instance is failed over
# (issue 6 part 2, trigger `crashlooping`): the agent restarts it with
# backoff, reports crashlooping after 5 crashes in 60 s, and the controller
# moves the workload to a new instance where it runs.
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
cli_ok instances launch workload="sh -c 'test -e \"$flags/\$PORT\" && exit 3; exec $TINY'" \
    probe=ollama:tiny workspace_from="$ws" snapshot_every=0
first=$CLI_OUT
wait_for 30 "instance $first healthy" instance_state_is "$first" healthy
home="$DUMONT_HOME/instances/$first/home"
[ -d "$home" ] || fail "no instance home $home"
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
wait_for 30 "the model server of instance $first" model_server_of "$home"
# Kill it: the agent restarts it, and from now on it crashes at once.
cli_ok instances show "$first" --json
touch "$flags/$(printf '%s' "$CLI_OUT" | jq -r .address | cut -d: -f2)"
kill -KILL "$MODEL_PID" || fail "could not kill the model server $MODEL_PID of instance $first"
wait_for 90 "the failover of $first after its crash loop" failover_done "$first"
assert_json .trigger crashlooping "triggered by the crash loop" "$FO"
assert_json .success true "the failover succeeded" "$FO"
second=$(printf '%s' "$FO" | jq -r .new_instance_id)
wait_for 30 "instance $second healthy" instance_state_is "$second" healthy
cli_ok instances show "$second" --json
addr=$(printf '%s' "$CLI_OUT" | jq -r .address)
curl -fsS -m 5 -d '{"model":"tiny","prompt":"hi","stream":false}' "http://$addr/api/generate" |
    jq -e '.response | length > 0' >/dev/null || fail "the model does not answer on $second"
log "ok: crash loop on $first -> failover to $second"
