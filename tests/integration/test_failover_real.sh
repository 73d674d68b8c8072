#!/usr/bin/env bash
# Real failovers on the local provider, end to end with real processes
# (issue 6; docs/failover.md): a protected instance serving a model from its
# workspace is killed like a spot preemption; the server detects it, fences
# it, finds an offer, provisions a new instance, restores the newest
# snapshot, starts the model and checks it answers. Then: a preemption with
# notice loses nothing written before the notice; test-real leaves the
# original serving; no compatible offer fails with its reason; two instances
# failing at once both recover.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need sha256sum

new_home
start_server

# A workspace with a small model and some data.
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 4M
mkdir -p "$ws/data"
head -c 3000000 /dev/urandom >"$ws/data/weights.bin"
echo "hello" >"$ws/data/notes.txt"

launch() { # ARGS...: launches an instance, sets INST
    cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" "$@"
    INST=$CLI_OUT
    assert_match "$INST" '^[0-9]+$' "instances launch prints the new id"
}

show() { # ID: `instances show ID --json` into SHOW
    cli_ok instances show "$1" --json
    SHOW=$CLI_OUT
}

generate() { # ADDRESS: the model answers a prompt
    curl -fsS -m 5 -d '{"model":"tiny","prompt":"hi","stream":false}' \
        "http://$1/api/generate" 2>/dev/null | jq -e '.response | length > 0' >/dev/null
}

snapshots_of() { # ID: number of snapshots the server recorded for it
    api GET "/api/instances/$1/snapshots"
    printf '%s' "$HTTP_BODY" | jq -r '.snapshots | length'
}

# ---- 1. launch: a protected instance serving the model ----
launch name=first snapshot_every=1s
first=$INST
wait_for 30 "instance $first healthy" instance_state_is "$first" healthy
show "$first"
addr=$(printf '%s' "$SHOW" | jq -r .address)
first_ws=$(printf '%s' "$SHOW" | jq -r .workspace)
[ -d "$first_ws" ] || fail "the instance's workspace $first_ws is not a directory"
wait_for 30 "the model answering on $addr" generate "$addr"
cmp "$ws/data/weights.bin" "$first_ws/data/weights.bin" || fail "workspace_from was not copied"

# Data written on the instance reaches a snapshot the server records.
n0=$(snapshots_of "$first")
echo "written on $first" >"$first_ws/data/new.txt"
more_snapshots() { [ "$(snapshots_of "$1")" -gt "$2" ]; }
wait_for 30 "a scheduled snapshot after the write" more_snapshots "$first" "$n0"
sleep 1.2 # one more period: the write is surely in the newest snapshot

# ---- 2. kill it like a spot preemption: automatic failover ----
cli_ok chaos preempt "$first"
wait_for 60 "the failover of $first to finish" failover_done "$first"
assert_json .success true "the failover succeeded" "$FO"
assert_json .kind real "a real failover" "$FO"
assert_json .old_instance_id "$first" "old instance" "$FO"
second=$(printf '%s' "$FO" | jq -r .new_instance_id)
assert_match "$second" '^[0-9]+$' "a new instance id"
assert_ne "$first" "$second" "the new instance is another one"
fo_id=$(printf '%s' "$FO" | jq -r .failover_id)
cli_ok failover status "$fo_id" --json
st=$CLI_OUT
for p in detection standby_activation gpu_search provisioning ssh_ready restore inference; do
    assert_json ".phases[] | select(.phase == \"$p\") | .status" ok "phase $p" "$st"
    assert_json ".phases[] | select(.phase == \"$p\") | .duration_ms | type" number \
        "phase $p timed" "$st"
done
assert_json '.phases[] | select(.phase == "detection") | .duration_ms < 1000' true \
    "detected in under a second" "$st"
show "$second"
assert_json .state healthy "the new instance is healthy" "$SHOW"
second_ws=$(printf '%s' "$SHOW" | jq -r .workspace)
second_addr=$(printf '%s' "$SHOW" | jq -r .address)
generate "$second_addr" || fail "the model does not answer on the new instance"
# Byte for byte: the new workspace is the snapshot it was restored from.
snap=$(printf '%s' "$FO" | jq -r .snapshot_id)
cli_ok snapshot restore "$snap" "$TEST_TMP/check1" --store "file://$DUMONT_HOME/store"
diff -r "$TEST_TMP/check1" "$second_ws" >/dev/null || fail "restored workspace differs from $snap"
cmp "$ws/data/weights.bin" "$second_ws/data/weights.bin" || fail "weights lost"
assert_eq "written on $first" "$(cat "$second_ws/data/new.txt")" "data written before the loss"
# The old instance is fenced: destroyed, no process left.
show "$first"
assert_json .machine_state destroyed "the old instance is destroyed" "$SHOW"
assert_json .failover_id "$fo_id" "the old instance names its failover" "$SHOW"

# ---- 3. a preemption with notice loses nothing written before it ----
echo "just before the notice" >"$second_ws/data/last-words.txt"
cli_ok chaos preempt "$second" notice=20s
wait_for 60 "the failover of $second to finish" failover_done "$second"
assert_json .success true "failover after notice succeeded" "$FO"
assert_json .trigger preempting "triggered by the notice" "$FO"
third=$(printf '%s' "$FO" | jq -r .new_instance_id)
show "$third"
third_ws=$(printf '%s' "$SHOW" | jq -r .workspace)
assert_eq "just before the notice" "$(cat "$third_ws/data/last-words.txt" 2>/dev/null)" \
    "data written before the notice"

# ---- 4. test-real: the original keeps serving ----
cli_ok failover test-real "$third" --wait --json
tr=$CLI_OUT
test_id=$(printf '%s' "$tr" | jq -r .failover_id)
assert_match "$test_id" '^real-' "test-real id"
cli_ok failover test-real-report "$test_id" --json
rep=$CLI_OUT
assert_json .success true "test-real succeeded" "$rep"
assert_json .inference_success true "inference answered" "$rep"
for k in snapshot_id snapshot_size_bytes snapshot_creation_time_ms restore_time_ms \
    restore_download_time_ms restore_decompress_time_ms inference_ready_time_ms total_time_ms \
    gpu_search_time_ms gpu_provision_time_ms gpu_ready_wait_time_ms inference_test_time_ms; do
    assert_json ".$k | type" "$(case $k in snapshot_id) echo string ;; *) echo number ;; esac)" \
        "FailoverTestEvent.$k" "$rep"
done
assert_json .gpu_instance_id "$third" "test of the right instance" "$rep"
instance_state_is "$third" healthy || fail "the original is not healthy after test-real"
generate "$(printf '%s' "$SHOW" | jq -r .address)" || fail "the original stopped answering"
cli_ok failover test-real-history --json
assert_contains "$CLI_OUT" "$test_id" "history lists the test"

# ---- 5. two instances failing at once both recover ----
launch name=a snapshot_every=0
a=$INST
launch name=b snapshot_every=0
b=$INST
wait_for 30 "instance $a healthy" instance_state_is "$a" healthy
wait_for 30 "instance $b healthy" instance_state_is "$b" healthy
cli_ok chaos preempt "$a"
cli_ok chaos preempt "$b"
wait_for 60 "the failover of $a" failover_done "$a"
assert_json .success true "failover of $a" "$FO"
na=$(printf '%s' "$FO" | jq -r .new_instance_id)
wait_for 60 "the failover of $b" failover_done "$b"
assert_json .success true "failover of $b" "$FO"
nb=$(printf '%s' "$FO" | jq -r .new_instance_id)
assert_ne "$na" "$nb" "two distinct new instances"

# ---- 6. no compatible offer: a clear failure and reason ----
cli instances launch workload="$TINY" probe=ollama:tiny min_vram_gb=4000
assert_cli_rc 1 "launch with no compatible offer"
assert_contains "$CLI_ERR" "no compatible offer" "the reason"

log "ok: $first -> $second -> $third; $a -> $na and $b -> $nb; test $test_id"
