#!/usr/bin/env bash
# The local provider with the real agent (docs/provider.md; provider.h
# PV2-PV6, local.h PROV-LP1 to PROV-LP5). test_failover_real.sh covers failovers; this
# test covers what a local instance is:
#
# P1: layout: instances/<id>/{workspace,home,agent.log,instance.json,
#     metadata/.../preempted = FALSE}; the workspace is a copy of
#     workspace_from (modes, mtimes, symlinks); the workload answers on the
#     instance's own address (OLLAMA_HOST), with the workspace as its cwd.
# P2 (PV6, LP5): the agent's credential is its own (agent-<id>, not the
#     admin token), in a 0600 file named by --token-file, never in its
#     command line, environment, instance.json or agent.log.
# P3: the instance is its own session, detached from the server: after
#     kill -9 of the server it still runs (its agent's parent is not the
#     server) and the restarted server sees it RUNNING (healthy again).
# P4 (PV3, LP4): destroy leaves no process of the session and renames the
#     directory to <id>.destroyed-<ms>, keeping instance.json and agent.log.
. "$(dirname "$0")/lib.sh"
lib_init
TINY=$(dirname "$DUMONT_BIN")/tiny-ollama
[ -x "$TINY" ] || skip "$TINY is not built"

new_home
start_server

ws=$TEST_TMP/ws
"$TINY" --make-model "$ws" --size 2M >/dev/null || fail "--make-model failed"
echo notes >"$ws/notes.txt"
chmod 0640 "$ws/notes.txt"
touch -d '2001-09-09 01:46:40 UTC' "$ws/notes.txt"
ln -s models/tiny.bin "$ws/link"

cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" \
    snapshot_every=0 heartbeat_ms=100
id=$CLI_OUT
assert_match "$id" '^[0-9]+$' "launch prints the id"
dir=$DUMONT_HOME/instances/$id

# P1
for f in workspace home agent.log instance.json \
    metadata/computeMetadata/v1/instance/preempted; do
    [ -e "$dir/$f" ] || fail "$dir/$f is missing"
done
assert_eq FALSE "$(cat "$dir/metadata/computeMetadata/v1/instance/preempted")" "preempted flag"
assert_eq "640 1000000000" "$(stat -c '%a %Y' "$dir/workspace/notes.txt")" "mode and mtime kept"
assert_eq models/tiny.bin "$(readlink "$dir/workspace/link")" "symlink kept"
port=$(jq -r .port "$dir/instance.json")
pid=$(jq -r .pid "$dir/instance.json")
sid=$(jq -r .sid "$dir/instance.json")
assert_match "$port" '^[0-9]+$' "port recorded"
answers() {
    curl -fsS -m 5 -d '{"model":"tiny","prompt":"hi","stream":false}' \
        "http://127.0.0.1:$port/api/generate" 2>/dev/null | jq -e '.done == true' >/dev/null
}
wait_for 20 "the workload answers on 127.0.0.1:$port" answers
session_pids() { # the live processes of session $1
    local p s st
    for p in /proc/[0-9]*; do
        read -r s st < <(sed 's/^.*) //' "$p/stat" 2>/dev/null | awk '{print $4, $1}') || continue
        [ "$s" = "$1" ] && [ "$st" != Z ] && echo "${p#/proc/}"
    done
    return 0
}
wl=""
for p in $(session_pids "$sid"); do
    [ "$(readlink "/proc/$p/exe")" = "$(readlink -f "$TINY")" ] && wl=$p
done
[ -n "$wl" ] || fail "the workload is not in the instance's session $sid"
assert_eq "$(readlink -f "$dir/workspace")" "$(readlink "/proc/$wl/cwd")" "workload cwd"
tr '\0' '\n' <"/proc/$wl/environ" | grep -qx "OLLAMA_HOST=127.0.0.1:$port" ||
    fail "the workload's OLLAMA_HOST is not its own address"

# P2
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--hold" || fail "the agent runs without --hold"
assert_not_contains "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "$TOKEN" "agent argv"
assert_not_contains "$(tr '\0' '\n' <"/proc/$pid/environ")" "DUMONT_TOKEN" "agent environment"
tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- "--token-file" || fail "the agent has no --token-file"
assert_eq 600 "$(stat -c %a "$dir/agent.token")" "the agent's token file mode"
agent_tok=$(cat "$dir/agent.token")
assert_match "$agent_tok" '^[0-9a-f]{64}$' "the agent's credential"
assert_ne "$TOKEN" "$agent_tok" "the agent's credential is not the admin token"
assert_not_contains "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "$agent_tok" "agent argv"
assert_not_contains "$(tr '\0' '\n' <"/proc/$pid/environ")" "$agent_tok" "agent environment"
cli_ok tokens list --json
assert_eq agent "$(jq -r --arg n "agent-$id" '.tokens[] | select(.name == $n) | .role' \
    <<<"$CLI_OUT")" "the instance's agent token is listed"
assert_not_contains "$(cat "$dir/instance.json" "$dir/agent.log")" "$TOKEN" \
    "instance.json and agent.log"
assert_not_contains "$(cat "$dir/instance.json" "$dir/agent.log" "$SERVER_LOG")" "$agent_tok" \
    "instance.json, agent.log and the server log"
assert_not_contains "$(cat "$SERVER_LOG")" "$TOKEN" "server log"

# P3
ppid=$(awk '{print $4}' <(sed 's/^.*) //' "/proc/$pid/stat") 2>/dev/null)
assert_ne "$SERVER_PID" "$ppid" "the agent's parent"
port_server=$SERVER_PORT
stop_server KILL
kill -0 "$pid" 2>/dev/null || fail "the agent died with the server"
answers || fail "the workload stopped answering when the server died"
KEEP_PORT=$port_server start_server
instance_healthy() {
    cli instances show "$id" --json
    [ "$CLI_RC" = 0 ] && [ "$(jq -r .state <<<"$CLI_OUT")" = healthy ]
}
wait_for 20 "instance $id healthy after the server restart" instance_healthy
assert_eq "$pid" "$(jq -r .pid "$dir/instance.json")" "the same agent (nothing relaunched)"

# P4
ws_real=$(readlink -f "$dir/workspace") # local.h PROV-LP6: outside the home when root
cli_ok instances destroy "$id"
[ -z "$(session_pids "$sid")" ] || fail "processes of session $sid survived destroy"
[ ! -e "$dir" ] || fail "$dir is still there"
gone=$(ls -d "$DUMONT_HOME/instances/$id".destroyed-* 2>/dev/null | head -n1)
[ -n "$gone" ] || fail "no $id.destroyed-* directory"
[ -f "$gone/instance.json" ] && [ -f "$gone/agent.log" ] || fail "record and log not kept"
[ ! -e "$gone/workspace" ] || fail "the destroyed workspace was kept"
wait_for 10 "the destroyed workspace $ws_real removed" test ! -e "$ws_real"
[ ! -e "$gone/agent.token" ] || fail "the destroyed instance's credential file was kept"
answers && fail "the workload still answers after destroy"
log "ok"
