#!/usr/bin/env bash
# The snapshot store is configuration, not input (issue 13 part 3;
# orchestrator.h ORCH-O10 to ORCH-O11, routes_snapshots.c API-RS3; docs/security.md "The
# store is configuration"), on the local provider with real processes:
#
# C1: a snapshot report naming another store is refused (422 foreign_store),
#     and so is one naming a snapshot the server's store does not hold
#     (422 unknown_snapshot), whether the snapshot exists elsewhere or not at
#     all; nothing is recorded for either.
# C2: a report of a snapshot that is in the server's store is recorded with
#     the server's store and the manifest's numbers (not the reporter's).
# C3: a record naming another store (written into the database by hand, the
#     way an older server recorded what agents said) is never restored: the
#     failover restores the newest snapshot of the configured store, byte
#     for byte, and the data of the other store reaches no instance.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need sqlite3

new_home
start_server
store="file://$DUMONT_HOME/store"

ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M
echo "from the launch" >"$ws/marker.txt"
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
inst=$CLI_OUT
assert_match "$inst" '^[0-9]+$' "instances launch prints the new id"
wait_for 30 "instance $inst healthy" instance_state_is "$inst" healthy
cli_ok instances show "$inst" --json
inst_ws=$(printf '%s' "$CLI_OUT" | jq -r .workspace)
p="/api/instances/$inst/snapshots"
count() {
    api GET "$p?limit=1000"
    printf '%s' "$HTTP_BODY" | jq '.snapshots | length'
}
n0=$(count)
assert_eq 1 "$n0" "the launch's snapshot is recorded"

# ---- C1: another store, an unknown snapshot ----
evil="$TEST_TMP/evil"
mkdir -p "$evil"
cp -a "$ws/." "$evil/"
echo "chosen by the reporter" >"$evil/marker.txt"
cli_ok snapshot create "$evil" --store "file://$TEST_TMP/evil-store"
evil_id=$CLI_OUT
report() { # ID [STORE]
    local b
    b=$(jq -nc --arg id "$1" --arg st "${2-}" \
        '{snapshot_id: $id, epoch: 0, trigger: "manual", size_bytes: 1, files: 1}
         + (if $st == "" then {} else {store: $st} end)')
    api POST "$p" -H 'Content-Type: application/json' -d "$b"
}
report "$evil_id" "file://$TEST_TMP/evil-store"
assert_api_error 422 foreign_store "C1: a report naming another store"
assert_contains "$HTTP_BODY" "evil-store" "C1: the detail names the store"
report "$evil_id" "s3://attacker-bucket/x"
assert_api_error 422 foreign_store "C1: a report naming an s3 store"
report "$evil_id"
assert_api_error 422 unknown_snapshot "C1: a snapshot of another store, store not named"
report "$evil_id" "$store"
assert_api_error 422 unknown_snapshot "C1: a snapshot of another store, named as ours"
report "$(printf 'f%.0s' $(seq 64))"
assert_api_error 422 unknown_snapshot "C1: an id no store holds"
assert_eq "$n0" "$(count)" "C1: nothing recorded for the refused reports"

# ---- C2: a snapshot of the configured store ----
echo "written on the instance" >"$inst_ws/marker.txt"
cli_ok snapshot create "$inst_ws"
good_id=$CLI_OUT
report "$good_id" "$store"
assert_status 201 "C2: a snapshot of the server's store"
assert_json .store "$store" "C2: recorded with the server's store"
assert_json '.size_bytes > 1000000' true "C2: the manifest's size, not the report's 1"
assert_json '.files > 1' true "C2: the manifest's file count, not the report's 1"
assert_eq $((n0 + 1)) "$(count)" "C2: recorded"

# ---- C3: a record naming another store is never restored ----
sqlite3 "$DUMONT_HOME/dumont.db" "INSERT INTO snapshots (snapshot_id, instance_id, workload_id,
    epoch, store_url, size_bytes, stored_bytes, files, created_at_ms, creation_time_ms,
    reported_at_ms, trigger_kind) SELECT '$evil_id', instance_id, workload_id, epoch,
    'file://$TEST_TMP/evil-store', 1, 1, 1, created_at_ms + 3600000, 1, reported_at_ms + 3600000,
    'manual' FROM snapshots WHERE snapshot_id = '$good_id'" ||
    fail "could not write the foreign record"
cli_ok chaos preempt "$inst"
wait_for 60 "the failover of $inst to finish" failover_done "$inst"
assert_json .success true "C3: the failover succeeded" "$FO"
assert_json .snapshot_id "$good_id" "C3: it restored the newest snapshot of the configured store" \
    "$FO"
new=$(printf '%s' "$FO" | jq -r .new_instance_id)
cli_ok instances show "$new" --json
new_ws=$(printf '%s' "$CLI_OUT" | jq -r .workspace)
assert_eq "written on the instance" "$(cat "$new_ws/marker.txt")" "C3: the restored data"
cli_ok snapshot restore "$good_id" "$TEST_TMP/check"
diff -r "$TEST_TMP/check" "$new_ws" >/dev/null || fail "C3: the new workspace differs from $good_id"
grep -rqs "chosen by the reporter" "$new_ws" && fail "C3: data of the other store was restored"
log "ok: refused $evil_id (other store, unknown id); restored $good_id on $new"
