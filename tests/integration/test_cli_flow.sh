#!/usr/bin/env bash
# The `dumont failover` client commands end to end against a real server, on
# SQLite and (when DUMONT_TEST_PG_URL is set) on PostgreSQL.
#
# T1: test-setup, then simulate prints the id alone on stdout; the failover
#     completes with all seven phases ok, each with a duration, offsets the sum
#     of the durations before, total the sum of all (core/failover.h FO-I2, FO-I3).
# T2: fail_phase=P fails at P: the reason names P, the phases before are ok,
#     the ones after pending with null times.
# T3: report's totals, success rate, MTTR and per-phase statistics are those
#     computed here from the statuses (report.h FO-R1 to FO-R4, nearest rank).
# T4: --json prints what the API returned; --help exits 0 everywhere; bad
#     arguments exit 2 with the usage; API errors and an unreachable server
#     exit 1 with one line on stderr (cmd_failover.c CLI-F1 to CLI-F4).
. "$(dirname "$0")/lib.sh"
lib_init

F=/api/standby/failover
PHASES="detection standby_activation gpu_search provisioning ssh_ready restore inference"
DUR_RE='([0-9]+ ms|[0-9]+\.[0-9] s|[0-9]+m [0-9]{2}s|[0-9]+h [0-9]{2}m)'

# jq: nearest-rank statistics (report.h FO-R3) of an array of integers.
JQ_STAT='def stat: sort as $s | length as $n
  | if $n == 0 then {count: 0, mean: null, p50: null, p95: null, max: null}
    else {count: $n, mean: (add / $n), p50: $s[((50 * $n + 99) / 100 | floor) - 1],
          p95: $s[((95 * $n + 99) / 100 | floor) - 1], max: $s[-1]} end;'

# assert_same_json A B WHAT: equal as JSON values (key order aside).
assert_same_json() {
    local a b
    a=$(printf '%s' "$1" | jq -S . 2>&1) || fail "$3: not JSON: $1"
    b=$(printf '%s' "$2" | jq -S . 2>&1) || fail "$3: not JSON: $2"
    [ "$a" = "$b" ] || fail "$3: CLI --json differs from the API's answer:
--- CLI
$a
--- API
$b"
}

check_help_and_usage() {
    local sub
    cli failover --help
    assert_cli_rc 0 "failover --help"
    for sub in test-setup simulate status report list test-real test-real-report test-real-history; do
        assert_contains "$CLI_OUT" "$sub" "failover --help lists $sub"
    done
    for sub in test-setup simulate status report list test-real test-real-report test-real-history; do
        cli failover "$sub" --help
        assert_cli_rc 0 "failover $sub --help"
        assert_contains "$CLI_OUT" "usage: dumont failover $sub" "failover $sub --help"
        assert_eq "" "$CLI_ERR" "failover $sub --help stderr"
    done
    cli failover --help simulate 1 bogus=1 --nope
    assert_cli_rc 0 "--help before the subcommand, with bad arguments after"
    assert_contains "$CLI_OUT" "usage: dumont failover simulate" "--help before the subcommand"

    local -a bad=(
        "failover" "failover bogus" "failover simulate" "failover simulate abc"
        "failover simulate 0" "failover simulate 1 2" "failover simulate 1 fail_phase=bogus"
        "failover simulate 1 speed=0" "failover simulate 1 speed=fast" "failover simulate 1 seed=-1"
        "failover simulate 1 color=red" "failover simulate 1 --bogus" "failover simulate 1 notkv"
        "failover simulate 1 gpu_instance_id=1" "failover simulate 1 seed=1 seed=2"
        "failover status" "failover status a/b" "failover status x --wait" "failover status x y"
        "failover report kind=bogus" "failover report gpu_instance_id=x" "failover report extra"
        "failover list limit=0" "failover list limit=1001" "failover list kind=all"
        "failover test-setup" "failover test-setup gpu_instance_id=-3" "failover test-setup zone=x"
        "failover test-real" "failover test-real-report"
    )
    local args
    for args in "${bad[@]}"; do
        # shellcheck disable=SC2086 # word splitting wanted
        cli $args
        assert_cli_rc 2 "dumont $args"
        assert_contains "$CLI_ERR" "usage: dumont" "dumont $args: usage on stderr"
        assert_eq "" "$CLI_OUT" "dumont $args: stdout"
        assert_not_contains "$(printf '%s' "$CLI_ERR" | head -n 1)" "usage:" \
            "dumont $args: first line is the reason"
    done
}

check_server_down() {
    local port
    port=$(free_port) || fail "no free port"
    DUMONT_URL="http://127.0.0.1:$port" cli failover "$@"
    assert_cli_rc 1 "failover $* with no server"
    assert_one_line "$CLI_ERR" "failover $* with no server: stderr"
    assert_contains "$CLI_ERR" "dumont: cannot reach the Dumont server at http://127.0.0.1:$port" \
        "failover $* with no server"
    assert_contains "$CLI_ERR" "dumont server" "the hint to start the server"
    assert_eq "" "$CLI_OUT" "failover $* with no server: stdout"
}

# new_simulation ARGS...: runs `failover simulate ARGS`, checks F3, sets SIM_ID.
new_simulation() {
    cli_ok failover simulate "$@"
    assert_match "$CLI_OUT" '^[A-Za-z0-9._-]+$' "simulate $*: the id alone on stdout"
    assert_eq "" "$CLI_ERR" "simulate $*: stderr (not a terminal: no hint)"
    SIM_ID=$CLI_OUT
}

check_completed() { # ID
    local id=$1 body
    wait_terminal "$id" 60
    api GET "$F/status/$id"
    assert_status 200 "status $id"
    body=$HTTP_BODY
    assert_json .state completed "failover $id state"
    assert_json .success true "failover $id success"
    assert_json .reason null "failover $id reason"
    assert_json .current_phase null "failover $id current_phase"
    assert_json .kind simulated "failover $id kind"
    assert_json '[.phases[].phase] | join(" ")' "$PHASES" "failover $id phases in order"
    assert_json '[.phases[] | select(.status == "ok" and (.duration_ms | type) == "number"
                   and .duration_ms >= 0 and .simulated == true)] | length' 7 "all phases ok"
    assert_json '[foreach .phases[] as $p ({s: 0, ok: true};
                   {s: (.s + $p.duration_ms), ok: ($p.offset_ms == .s)}; .ok)] | all' true \
        "offset_ms is the sum of the durations before (docs/api.md)"
    assert_json '.total_time_ms == ([.phases[].duration_ms] | add)' true \
        "total_time_ms is the sum of the durations (I3)"
    assert_json '(.started_at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$"))
                 and (.finished_at | type) == "string"' true "ISO-8601 UTC times"

    cli_ok failover status "$id"
    assert_match "$CLI_OUT" $'(^|\n)state +completed' "status: state on top"
    assert_match "$CLI_OUT" $'(^|\n)success +yes' "status: success on top"
    assert_match "$CLI_OUT" $'(^|\n)total +'"$DUR_RE" "status: total on top"
    local p
    for p in $PHASES; do
        assert_match "$CLI_OUT" $'(^|\n)'"$p +ok +\\+?$DUR_RE +$DUR_RE" "status: phase $p line"
    done
    cli_ok failover status "$id" --json
    assert_same_json "$CLI_OUT" "$body" "status --json"
    cli_ok failover --json status "$id"
    assert_same_json "$CLI_OUT" "$body" "--json before the subcommand"
}

check_failed_at() { # ID PHASE
    local id=$1 phase=$2 idx
    idx=$(printf '%s\n' $PHASES | grep -nx "$phase" | cut -d: -f1)
    idx=$((idx - 1))
    wait_terminal "$id" 60
    api GET "$F/status/$id"
    assert_json .state failed "failover $id state"
    assert_json .success false "failover $id success"
    assert_json ".reason | test(\"$phase\"; \"i\")" true "the reason names $phase"
    assert_json ".phases[$idx].status" failed "phase $phase status"
    assert_json "[.phases[:$idx][] | select(.status == \"ok\")] | length" "$idx" "phases before $phase"
    assert_json "[.phases[$idx + 1:][] | select(.status == \"pending\" and .duration_ms == null
                  and .started_at == null)] | length" "$((6 - idx))" "phases after $phase: pending, null"
    assert_json '.total_time_ms == ([.phases[].duration_ms | select(. != null)] | add)' true \
        "total_time_ms of a failed failover (I3)"

    cli_ok failover status "$id"
    assert_match "$CLI_OUT" $'(^|\n)state +failed' "status: failed on top"
    assert_match "$CLI_OUT" $'(^|\n)reason +[^\n]*'"$phase" "status: reason on top"
    assert_match "$CLI_OUT" $'(^|\n)'"$phase +failed" "status: the failed phase"
    assert_match "$CLI_OUT" $'(^|\n)inference +pending +- +-' "status: a pending phase shows -"
}

check_wait() {
    cli failover simulate 12345 seed=7 --wait
    assert_cli_rc 0 "simulate --wait"
    local first last
    first=$(printf '%s\n' "$CLI_OUT" | head -n 1)
    last=$(printf '%s\n' "$CLI_OUT" | tail -n 1)
    assert_match "$first" '^[A-Za-z0-9._-]+$' "simulate --wait: the id first"
    assert_eq "$PHASES" "$(printf '%s\n' "$CLI_OUT" | sed -n '2,8p' | awk '{print $1}' | xargs)" \
        "simulate --wait: each phase once, in order"
    assert_match "$last" "^completed in $DUR_RE\$" "simulate --wait: the end"
    fo_state "$first" >/dev/null
    assert_json .state completed "the followed failover"

    cli failover simulate 12345 fail_phase=restore --wait
    assert_cli_rc 1 "simulate --wait of a failing failover"
    assert_match "$CLI_OUT" $'\n  restore +failed' "simulate --wait: the failed phase"
    assert_not_contains "$CLI_OUT" "inference" "simulate --wait: nothing after the failed phase"
    assert_one_line "$CLI_ERR" "simulate --wait failure: stderr"
    assert_contains "$CLI_ERR" "failed" "simulate --wait failure: stderr"

    cli failover simulate 12345 --wait --json
    assert_cli_rc 0 "simulate --wait --json"
    assert_json .state completed "simulate --wait --json prints the final status" "$CLI_OUT"
    assert_json '.phases | length' 7 "simulate --wait --json phases" "$CLI_OUT"
    assert_json .user_id admin "user_id names the credential that started it" "$CLI_OUT"
}

# check_report: the report equals the statistics computed from every status (T3).
check_report() {
    local statuses="$TEST_TMP/statuses.json" id n
    api GET "$F/list?limit=1000"
    assert_status 200 "list"
    local list=$HTTP_BODY
    n=$(printf '%s' "$list" | jq '.failovers | length')
    assert_json .total "$n" "list total"
    : >"$statuses"
    for id in $(printf '%s' "$list" | jq -r '.failovers[].failover_id'); do
        api GET "$F/status/$id"
        printf '%s\n' "$HTTP_BODY" >>"$statuses"
    done
    api GET "$F/report"
    assert_status 200 "report"
    local rep=$HTTP_BODY
    # API-RD1 (render.h): no float noise; durations are integers of ms, rates
    # have at most 4 decimals.
    if printf '%s' "$rep" | grep -Eq '[0-9]\.[0-9]{5,}'; then
        fail "the report has float noise: $(printf '%s' "$rep" | grep -Eo '[0-9]+\.[0-9]{5,}' | head -3)"
    fi
    assert_json '[.. | objects | .mean? | select(. != null) | (. == floor)] | all' true \
        "every mean is an integer of ms" "$rep"
    assert_json '[.. | objects | .success_rate? | select(. != null) | ((. * 10000 | round) == . * 10000)] | all' true \
        "every success rate has at most 4 decimals" "$rep"
    local diffs
    diffs=$(jq -rn --slurpfile fos "$statuses" --argjson rep "$rep" "$JQ_STAT"'
      def near($a; $b; $eps): ($a == null and $b == null)
        or ($a != null and $b != null and (($a - $b) | fabs) <= $eps);
      def group: {
        total: length,
        succeeded: (map(select(.state == "completed")) | length),
        failed: (map(select(.state == "failed")) | length),
        running: (map(select(.state != "completed" and .state != "failed")) | length),
        mttr_ms: (map(select(.state == "completed") | .total_time_ms) | stat),
        phases: (. as $f | reduce ("detection", "standby_activation", "gpu_search",
                   "provisioning", "ssh_ready", "restore", "inference") as $p ({};
                   .[$p] = ([$f[] | select(.state == "completed" or .state == "failed")
                             | .phases[] | select(.phase == $p and .duration_ms != null)
                             | .duration_ms] | stat)))
      } | .success_rate = (if .succeeded + .failed == 0 then null
                           else .succeeded / (.succeeded + .failed) end);
      def cmpstat($path; $e; $g):
        ([("count", "p50", "p95", "max") | select($e[.] != $g[.])
          | "\($path).\(.): expected \($e[.]), got \($g[.])"]
         + (if near($e.mean; $g.mean; 0.51) then [] else
            ["\($path).mean: expected \($e.mean), got \($g.mean)"] end));
      def cmpgroup($name; $e; $g):
        ([("total", "succeeded", "failed", "running") | select($e[.] != $g[.])
          | "\($name).\(.): expected \($e[.]), got \($g[.])"]
         + (if near($e.success_rate; $g.success_rate; 0.0001) then [] else
            ["\($name).success_rate: expected \($e.success_rate), got \($g.success_rate)"] end)
         + cmpstat("\($name).mttr_ms"; $e.mttr_ms; $g.mttr_ms)
         + ([$e.phases | keys[]] | map(. as $p
              | cmpstat("\($name).phases.\($p)"; $e.phases[$p]; $g.phases[$p])) | add));
      cmpgroup("all"; $fos | group; $rep.all)
      + cmpgroup("simulated"; $fos | map(select(.kind == "simulated")) | group; $rep.simulated)
      + cmpgroup("real"; $fos | map(select(.kind == "real")) | group; $rep.real)
      | .[]') || fail "jq failed comparing the report: $diffs"
    [ -z "$diffs" ] || fail "report does not match the statuses:
$diffs"
    assert_json '.all.total' "$n" "report total"

    # The readable report shows the same numbers.
    cli_ok failover report
    local rate
    rate=$(printf '%s' "$rep" | jq -r .all.success_rate)
    rate=$(awk -v r="$rate" 'BEGIN { printf "%.1f%%", r * 100 }')
    assert_match "$CLI_OUT" $'(^|\n)all +'"$n"' +[0-9]+ +[0-9]+ +[0-9]+ +'"${rate//./\\.}" \
        "report: the all row"
    assert_match "$CLI_OUT" $'(^|\n)real +0 +0 +0 +0 +- +- +- +- +-' "report: the empty real row"
    local p
    for p in $PHASES; do
        assert_match "$CLI_OUT" $'(^|\n)'"$p +$DUR_RE" "report: phase $p row"
    done
    cli_ok failover report kind=simulated
    assert_match "$CLI_OUT" $'(^|\n)simulated +'"$n " "report kind=simulated"
    assert_not_contains "$CLI_OUT" $'\nreal ' "report kind=simulated hides real"

    cli_ok failover report --json
    api GET "$F/report"
    assert_same_json "$(printf '%s' "$CLI_OUT" | jq 'del(.generated_at)')" \
        "$(printf '%s' "$HTTP_BODY" | jq 'del(.generated_at)')" "report --json"
    cli_ok failover report kind=real --json
    assert_json .real.total 0 "report kind=real" "$CLI_OUT"
    assert_json .real.mttr_ms.p50 null "report kind=real: no MTTR is null, not 0" "$CLI_OUT"
    cli_ok failover report gpu_instance_id=4242 --json
    assert_json .all.total 0 "report gpu_instance_id=4242" "$CLI_OUT"

    cli_ok failover list --json
    api GET "$F/list"
    assert_same_json "$CLI_OUT" "$HTTP_BODY" "list --json"
    cli_ok failover list limit=2 --json
    assert_json '.failovers | length' 2 "list limit=2" "$CLI_OUT"
    assert_json .total "$n" "list limit=2 total" "$CLI_OUT"
    cli_ok failover list
    for id in $(printf '%s' "$list" | jq -r '.failovers[].failover_id'); do
        assert_contains "$CLI_OUT" "$id" "list shows $id"
    done
}

run_flow() {
    use_backend "$1"
    # No server yet, not even a token file: still "cannot reach".
    check_server_down report
    start_server
    check_help_and_usage

    cli_ok failover test-setup gpu_instance_id=12345
    assert_contains "$CLI_OUT" "12345" "test-setup output"
    cli_ok failover test-setup gpu_instance_id=12345 gcp_zone=europe-west1-b --json
    assert_json .gpu_instance_id 12345 "test-setup --json" "$CLI_OUT"
    assert_json .gcp_zone europe-west1-b "test-setup --json" "$CLI_OUT"
    assert_json .provider sim "test-setup --json" "$CLI_OUT"

    cli failover simulate 999
    assert_cli_rc 1 "simulate of a GPU without test-setup"
    assert_one_line "$CLI_ERR" "simulate 999: stderr"
    assert_match "$CLI_ERR" '^dumont: .*999' "simulate 999: the reason"
    cli failover simulate 999 --json
    assert_cli_rc 1 "simulate 999 --json"
    assert_json .error not_found "simulate 999 --json prints the error object" "$CLI_OUT"

    new_simulation 12345 seed=42
    check_completed "$SIM_ID"
    new_simulation 12345 speed=500
    check_completed "$SIM_ID"
    new_simulation 12345 fail_phase=provisioning
    check_failed_at "$SIM_ID" provisioning
    new_simulation 12345 fail_phase=detection
    check_failed_at "$SIM_ID" detection
    cli_ok failover simulate 12345 --json
    assert_json .kind simulated "simulate --json" "$CLI_OUT"
    assert_json '.status_url == "/api/standby/failover/status/" + .failover_id' true \
        "simulate --json status_url" "$CLI_OUT"
    wait_terminal "$(printf '%s' "$CLI_OUT" | jq -r .failover_id)"
    check_wait
    check_report

    cli failover status sim-000000000000
    assert_cli_rc 1 "status of an unknown id"
    assert_one_line "$CLI_ERR" "status of an unknown id: stderr"
    assert_match "$CLI_ERR" '^dumont: ' "status of an unknown id: stderr"

    local sub
    for sub in "test-real 12345" "test-real-report real-1"; do
        # shellcheck disable=SC2086
        cli failover $sub
        assert_cli_rc 1 "failover $sub (no such instance / test)"
        assert_one_line "$CLI_ERR" "failover $sub: stderr"
        assert_match "$CLI_ERR" '^dumont: .+' "failover $sub: the server's detail"
    done

    DUMONT_URL="$DUMONT_URL/" cli_ok failover list
    DUMONT_URL="ftp://127.0.0.1:1" cli failover list
    assert_cli_rc 1 "DUMONT_URL with another scheme"
    assert_one_line "$CLI_ERR" "DUMONT_URL with another scheme"

    # A second failover of a GPU while one runs: 409, exit 1.
    cli_ok failover test-setup gpu_instance_id=777
    new_simulation 777 speed=1
    local slow=$SIM_ID
    cli failover simulate 777
    assert_cli_rc 1 "simulate while one runs for that GPU"
    assert_one_line "$CLI_ERR" "conflict: stderr"
    cli failover simulate 777 --json
    assert_json .error conflict "conflict --json" "$CLI_OUT"
    assert_ne completed "$(fo_state "$slow")" "the slow failover"

    stop_server TERM
    assert_eq 0 "$SERVER_RC" "server exit status on SIGTERM"
    check_server_down status "$slow"
}

for b in $(backends); do
    run_flow "$b"
done
log "PASS"
