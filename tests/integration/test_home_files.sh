#!/usr/bin/env bash
# Files under $DUMONT_HOME are private (issue 13 part 7; util/home.h HOME-H1 to HOME-H2;
# docs/security.md "Files"), whatever the umask and the mode of a home that
# existed before.
#
# P1: with umask 022 and a home made 0755 beforehand, after a server has made
#     a database, token, heartbeat secret, market, store objects, instances
#     (agents, logs), a snapshot and a failover, nothing under the home is
#     group- or world-accessible (`find -perm /077`), except what H2 leaves:
#     the home itself (warned about, not changed) and the workspaces'
#     content (the workload's own modes, which snapshots keep), both behind
#     0700 directories.
# P2: files an earlier run (or another tool) left readable are made private
#     at the next start, and the start says how many it fixed.
# P3: the warning about an accessible home is logged once per start.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init

umask 022
export DUMONT_HOME="$TEST_TMP/home"
mkdir "$DUMONT_HOME"
chmod 0755 "$DUMONT_HOME"
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M
echo "notes" >"$ws/notes.txt"

# open_to_others: what under the home others could read or enter (P1).
open_to_others() {
    find "$DUMONT_HOME" -mindepth 1 -perm /077 ! -path '*/instances/*/workspace' \
        ! -path '*/instances/*/workspace/*' -printf '%m %p\n' | sort
}
# warnings: how often the last start said the home is accessible (P3).
warnings() { awk '/^--- start/ { n = 0 } /event=home.accessible/ { n++ } END { print n + 0 }' "$SERVER_LOG"; }

start_server
assert_eq 1 "$(warnings)" "P3: the accessible home is said once at the first start"
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=1s
inst=$CLI_OUT
wait_for 30 "instance $inst healthy" instance_state_is "$inst" healthy
cli_ok chaos preempt "$inst"
wait_for 60 "the failover of $inst to finish" failover_done "$inst"
assert_json .success true "the failover succeeded" "$FO"
new=$(printf '%s' "$FO" | jq -r .new_instance_id)
wait_for 30 "instance $new healthy" instance_state_is "$new" healthy
for f in dumont.db dumont.db-wal dumont.db-shm token heartbeat.secret market.json; do
    [ -e "$DUMONT_HOME/$f" ] || fail "P1: $f was not made (the test would prove nothing)"
done
[ -n "$(find "$DUMONT_HOME/store" -type f | head -1)" ] || fail "P1: the store holds no object"
[ -s "$DUMONT_HOME/instances/$new/agent.log" ] || fail "P1: no agent log for $new"
left=$(open_to_others)
[ -z "$left" ] || fail "P1: readable by others under the home: $left"
assert_eq 755 "$(stat -c %a "$DUMONT_HOME")" "H2: the home itself is left as it was made"
stop_server TERM

# P2: an earlier run (or another tool) left it all readable.
chmod -R go+rX "$DUMONT_HOME"
echo "a file of the user" >"$DUMONT_HOME/mine.txt"
[ -n "$(open_to_others)" ] || fail "P2: the set-up did not open anything"
KEEP_PORT=$SERVER_PORT start_server # the agents keep sending to this server's heartbeat port
left=$(open_to_others | grep -v " $DUMONT_HOME/mine.txt\$" || true)
[ -z "$left" ] || fail "P2: still readable by others after the start: $left"
assert_eq 644 "$(stat -c %a "$DUMONT_HOME/mine.txt")" "H2: a file Dumont does not keep is left alone"
assert_contains "$(cat "$SERVER_LOG")" "event=home.permissions_fixed" "P2: the start says it fixed"
assert_eq 1 "$(warnings)" "P3: ... and once at the next"
cli_ok instances show "$new" --json
assert_json .state healthy "the instance still runs after the repair" "$CLI_OUT"
log "ok: nothing readable by others under $DUMONT_HOME"
