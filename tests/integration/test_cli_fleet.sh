#!/usr/bin/env bash
# The CLI of real failovers (issue 6; docs/cli.md): `dumont instances
# launch|show|destroy`, `dumont chaos preempt`, `dumont failover test-real*`,
# against a real server. Argument handling, help, errors and --json shapes;
# the failover itself is test_failover_real.sh's.
#
# K1: every command and subcommand has --help: usage on stdout, exit 0,
#     nothing on stderr.
# K2: a bad argument is exit 2, the reason on the first line of stderr, then
#     the usage; nothing is sent (the server is not even needed).
# K3: a failure is exit 1 with one line "dumont: ..." on stderr; with --json
#     the server's error object is on stdout.
# K4: `instances launch` prints the new id alone; --json gives instance_id,
#     workload_id, workspace, address; `instances show --json` gives state,
#     workspace, failover_id; `chaos preempt` and `destroy` act on it.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init

new_home
ws="$TEST_TMP/ws"
mkdir -p "$ws"
echo "hello" >"$ws/notes.txt"
touch "$TEST_TMP/afile"

# ---- K1 -------------------------------------------------------------------
check_help() {
    local args
    for args in "instances" "instances list" "instances show" "instances launch" \
        "instances destroy" "chaos" "chaos preempt" "failover test-real" \
        "failover test-real-report" "failover test-real-history" "failover status"; do
        # shellcheck disable=SC2086
        cli $args --help
        assert_cli_rc 0 "$args --help"
        assert_contains "$CLI_OUT" "usage: dumont" "$args --help: usage"
        assert_eq "" "$CLI_ERR" "$args --help: stderr"
    done
    cli_ok instances launch --help
    for k in workload probe workspace_from model heartbeat_ms snapshot_every protect \
        min_vram_gb min_cuda region max_price; do
        assert_contains "$CLI_OUT" "$k" "launch --help names $k"
    done
    cli_ok chaos preempt --help
    assert_contains "$CLI_OUT" "notice" "chaos preempt --help names notice"
    cli_ok failover test-real --help
    assert_contains "$CLI_OUT" "keep" "test-real --help names keep"
    cli_ok --help
    assert_contains "$CLI_OUT" "chaos" "dumont --help lists chaos"
}

# ---- K2 -------------------------------------------------------------------
check_usage_errors() {
    local -a bad=(
        "instances bogus" "instances show" "instances show abc" "instances show 1 2"
        "instances destroy" "instances destroy 0" "instances destroy x"
        "instances launch" "instances launch probe=exec:true"
        "instances launch workload=x heartbeat_ms=5" "instances launch workload=x heartbeat_ms=x"
        "instances launch workload=x snapshot_every=fast"
        "instances launch workload=x snapshot_every=8d"
        "instances launch workload=x snapshot_every=30"
        "instances launch workload=x protect=maybe" "instances launch workload=x kind=tpu"
        "instances launch workload=x region=eu/west" "instances launch workload=x min_vram_gb=-1"
        "instances launch workload=x min_cuda=abc" "instances launch workload=x max_price=0"
        "instances launch workload=x color=red" "instances launch workload=x extra"
        "instances launch workload=x workspace_from=$TEST_TMP/nonexistent"
        "instances launch workload=x workspace_from=$TEST_TMP/afile"
        "instances launch workload=x --wait"
        "chaos" "chaos bogus" "chaos preempt" "chaos preempt abc" "chaos preempt 1 2"
        "chaos preempt 1 notice=30x" "chaos preempt 1 notice=2h" "chaos preempt 1 notice=-1s"
        "chaos preempt 1 delay=1s" "chaos preempt 1 --wait"
        "failover test-real" "failover test-real abc" "failover test-real 1 keep=maybe"
        "failover test-real 1 model=" "failover test-real 1 color=red"
        "failover test-real-report" "failover test-real-report a/b"
        "failover test-real-history limit=0" "failover test-real-history extra"
        "failover status x --wait"
    )
    local args
    for args in "${bad[@]}"; do
        # shellcheck disable=SC2086
        DUMONT_URL=http://127.0.0.1:1 cli $args
        assert_cli_rc 2 "dumont $args"
        assert_match "$(printf '%s' "$CLI_ERR" | head -1)" '^dumont [a-z]+' "dumont $args: reason"
        assert_contains "$CLI_ERR" "usage: dumont" "dumont $args: usage on stderr"
        assert_eq "" "$CLI_OUT" "dumont $args: stdout"
    done
}

# ---- K3 -------------------------------------------------------------------
check_failures() {
    DUMONT_URL=http://127.0.0.1:1 cli instances launch workload=x
    assert_cli_rc 1 "launch with no server"
    assert_one_line "$CLI_ERR" "launch with no server"
    assert_contains "$CLI_ERR" "cannot reach" "launch with no server"

    local args
    for args in "instances show 424242" "instances destroy 424242" "chaos preempt 424242" \
        "failover test-real 424242" "failover test-real-report real-000000000000"; do
        # shellcheck disable=SC2086
        cli $args
        assert_cli_rc 1 "dumont $args"
        assert_one_line "$CLI_ERR" "dumont $args"
        assert_match "$CLI_ERR" '^dumont: .+' "dumont $args: reason"
        # shellcheck disable=SC2086
        cli $args --json
        assert_cli_rc 1 "dumont $args --json"
        assert_json .error not_found "dumont $args --json: the error object" "$CLI_OUT"
    done
    cli_ok failover test-real-history --json
    assert_json '.total' 0 "history --json: total" "$CLI_OUT"
    assert_json '.events | length' 0 "history --json: events" "$CLI_OUT"
    cli_ok failover test-real-history since=24h limit=5
    assert_contains "$CLI_OUT" "no real failover tests" "empty history"
    cli_ok instances
    cli_ok instances list --json
    assert_json '.instances | length' 0 "no instances" "$CLI_OUT"
}

# ---- K4 -------------------------------------------------------------------
check_launch() {
    # a relative workspace_from is resolved by the CLI (the server runs elsewhere)
    cd "$TEST_TMP" || fail "cd $TEST_TMP"
    cli instances launch workload="sleep 1000" probe=exec:true workspace_from=ws \
        snapshot_every=5s heartbeat_ms=100 name=cli-test --json
    cd - >/dev/null || fail "cd -"
    [ "$CLI_RC" = 0 ] || fail "instances launch --json exited $CLI_RC: $CLI_ERR $CLI_OUT"
    assert_json 'keys | sort | join(",")' "address,instance_id,workload_id,workspace" \
        "launch --json keys" "$CLI_OUT"
    local id wl wsp
    id=$(printf '%s' "$CLI_OUT" | jq -r .instance_id)
    wl=$(printf '%s' "$CLI_OUT" | jq -r .workload_id)
    wsp=$(printf '%s' "$CLI_OUT" | jq -r .workspace)
    assert_match "$id" '^[0-9]+$' "launch: instance_id"
    assert_match "$wl" '^wl-' "launch: workload_id"
    [ -f "$wsp/notes.txt" ] || fail "launch: workspace $wsp has no copy of workspace_from"

    cli_ok instances show "$id" --json
    assert_json .instance_id "$id" "show --json: id" "$CLI_OUT"
    assert_json .workspace "$wsp" "show --json: workspace" "$CLI_OUT"
    assert_json .workload_id "$wl" "show --json: workload_id" "$CLI_OUT"
    assert_json .provider local "show --json: provider" "$CLI_OUT"
    assert_json 'has("failover_id") and has("state") and has("epoch")' true \
        "show --json: state, failover_id, epoch" "$CLI_OUT"
    cli_ok instances show "$id"
    assert_match "$CLI_OUT" "workspace +$wsp" "show: workspace line"
    cli_ok instances
    assert_match "$CLI_OUT" "$id +gpu" "list: the new instance"
    api GET /api/workloads
    assert_status 200 "GET /api/workloads"
    assert_json "[.workloads[] | select(.workload_id == \"$wl\")] | length" 1 "the workload"
    assert_json ".workloads[0].serving_instance_id" "$id" "the workload's serving instance"

    # a plain launch prints the id alone
    cli instances launch workload="sleep 1000" probe=exec:true protect=false
    assert_cli_rc 0 "plain launch"
    assert_match "$CLI_OUT" '^[0-9]+$' "plain launch prints the id alone"
    local id2=$CLI_OUT

    cli_ok chaos preempt "$id2" notice=500ms --json
    assert_json .instance_id "$id2" "chaos --json: instance_id" "$CLI_OUT"
    assert_json .notice_ms 500 "chaos --json: notice_ms" "$CLI_OUT"

    # the protected one, killed: a real failover; its status names both instances
    cli_ok chaos preempt "$id"
    assert_contains "$CLI_OUT" "killed" "chaos preempt: what it did"
    wait_for 90 "the failover of $id to finish" failover_done "$id"
    local fo new
    fo=$(printf '%s' "$FO" | jq -r .failover_id)
    new=$(printf '%s' "$FO" | jq -r .new_instance_id)
    assert_json .old_instance_id "$id" "failover list --json: old_instance_id" "$FO"
    assert_match "$new" '^[0-9]+$' "failover list --json: new_instance_id"
    cli_ok failover status "$fo"
    assert_match "$CLI_OUT" "instances +$id -> $new" "failover status: old -> new"
    assert_match "$CLI_OUT" "workload +$wl" "failover status: workload"
    cli_ok failover list gpu_instance_id="$id"
    assert_contains "$CLI_OUT" "$fo" "failover list gpu_instance_id=: the failover"
    cli_ok instances show "$id" --json
    assert_json .state destroyed "the old instance is destroyed (fenced)" "$CLI_OUT"
    assert_json .failover_id "$fo" "show --json: the newest failover" "$CLI_OUT"

    cli_ok instances destroy "$new" --json
    assert_json .state destroyed "destroy --json" "$CLI_OUT"
    cli_ok instances show "$new" --json
    assert_json .state destroyed "show after destroy" "$CLI_OUT"
    assert_json .workload null "show after destroy: no live workload state" "$CLI_OUT"
    assert_json .probe null "show after destroy: no live probe state" "$CLI_OUT"
    cli instances destroy "$id2"
    [ "$CLI_RC" = 0 ] || [ "$CLI_RC" = 1 ] || fail "destroy of a preempted instance: exit $CLI_RC"

    # the list hides destroyed instances unless all=true, and never shows them live
    cli_ok instances list --json
    assert_json "[.instances[] | select(.instance_id == $id or .instance_id == $new)] | length" 0 \
        "list: destroyed instances are hidden" "$CLI_OUT"
    cli_ok instances
    if printf '%s\n' "$CLI_OUT" | grep -qE "^ *($id|$new) "; then
        fail "instances: a destroyed instance is listed: $CLI_OUT"
    fi
    cli_ok instances all=true --json
    assert_json "[.instances[] | select(.instance_id == $id or .instance_id == $new)] | length" 2 \
        "list all=true: the destroyed instances" "$CLI_OUT"
    assert_json "[.instances[] | select(.state == \"destroyed\") | select(.workload != null or .probe != null)] | length" 0 \
        "list all=true: no live state on a destroyed instance" "$CLI_OUT"
    cli_ok instances list all=true
    assert_match "$CLI_OUT" "$new +gpu +destroyed +- +- +-" "list all=true: destroyed, no workload, no probe"
    cli instances all=maybe
    assert_cli_rc 2 "instances all=maybe"
}

check_help
check_usage_errors
start_server
check_failures
check_launch
stop_server TERM
log "ok"
