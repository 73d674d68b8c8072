#!/usr/bin/env bash
# The failover budget (docs/failover.md "The failover budget"; src/failover/budget.c
# BUD-B1 to BUD-B3), end to end with real processes: the agent serving a protected
# workload is stopped 1 s and let run 0.6 s, again and again (SIGSTOP/SIGCONT of
# whatever instance serves it now), which without a budget gave one failover per
# cycle (17 in 30 s). With the default budget (3 in 30 minutes; the window and the
# backoffs played 10 times faster with the DUMONT_FAILOVER_TIME_SCALE test knob):
#
# B1: the first three failovers act at once; the 4th acts no sooner than 1 minute
#     (6 s here) after the 3rd began, the 5th no sooner than 2 minutes after the
#     4th: failovers go on (the workload is never abandoned), never faster.
# B2: the workload is `flapping` with the reason, in its API record and in
#     `dumont instances`; the held failover says so in its detection phase.
# B3: a webhook that asked for `flapping` receives one signed workload.flapping
#     alert with the reason (tests/integration/alert_receiver.py).
# B4: launch takes max_failovers= and failover_window= and refuses bad ones.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alert_lib.sh"
lib_init
need python3
LOOP_PID=""
trap 'rc=$?; [ -z "$LOOP_PID" ] || kill "$LOOP_PID" 2>/dev/null; stop_receiver; (exit $rc); lib_cleanup' EXIT

new_home
start_receiver
export DUMONT_ALERT_TIME_SCALE=3600  # the alert service's periodic check every 100 ms
export DUMONT_FAILOVER_TIME_SCALE=10 # 30 min -> 3 min, backoff 1 min -> 6 s (BUD-B3)
start_server
grep -q 'event=failover.time_scale scale=10' "$SERVER_LOG" || fail "the test knob is logged"
cli_ok alerts add kind=webhook url="http://127.0.0.1:$RX_PORT/hook/flap" name=ops \
    notify_on=flapping
(umask 077 && tail -n1 <<<"$CLI_OUT" >"$RX_SECRET")

ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M

# ---- B4: the launch words ----
cli instances launch workload="$TINY" probe=ollama:tiny max_failovers=0
assert_cli_rc 2 "max_failovers=0 is refused"
assert_contains "$CLI_ERR" "max_failovers must be a whole number from 1" "its reason"
cli instances launch workload="$TINY" probe=ollama:tiny failover_window=forever
assert_cli_rc 2 "a bad failover_window is refused"
api POST /api/instances/launch -d '{"workload": "x", "max_failovers": 5000}'
assert_eq 400 "$HTTP_STATUS" "the API refuses a budget past its cap"

cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" \
    snapshot_every=0 name=flappy
first=$CLI_OUT
api GET /api/workloads
wl=$(printf '%s' "$HTTP_BODY" | jq -r '.workloads[] | select(.name == "flappy") | .workload_id')
assert_json ".workloads[] | select(.name == \"flappy\") | .max_failovers" 3 "default budget" \
    "$HTTP_BODY"
assert_json ".workloads[] | select(.name == \"flappy\") | .failover_window_ms" 1800000 \
    "default window" "$HTTP_BODY"
assert_json ".workloads[] | select(.name == \"flappy\") | .flapping" false "not flapping" \
    "$HTTP_BODY"
wait_for 30 "instance $first healthy" instance_state_is "$first" healthy

# ---- the flapping loop: whatever serves it, stopped 1 s, running 0.6 s ----
serving() {
    curl -fsS -m 5 -H "@$TEST_TMP/auth.header" "$DUMONT_URL/api/workloads" |
        jq -r ".workloads[] | select(.workload_id == \"$wl\") | .serving_instance_id"
}
flap_loop() {
    local id pid
    while :; do
        id=$(serving 2>/dev/null) || id=""
        pid=$(jq -r .pid "$DUMONT_HOME/instances/$id/instance.json" 2>/dev/null) || pid=""
        [ -n "$pid" ] && [ "$pid" != null ] && kill -STOP "$pid" 2>/dev/null
        sleep 1
        [ -n "$pid" ] && [ "$pid" != null ] && kill -CONT "$pid" 2>/dev/null
        sleep 0.6
    done
}
flap_loop &
LOOP_PID=$!

finished() { # N: at least N real failovers of the workload ended
    cli failover list kind=real --json
    [ "$CLI_RC" = 0 ] &&
        [ "$(printf '%s' "$CLI_OUT" | jq "[.failovers[] | select(.success != null)] | length")" \
            -ge "$1" ]
}
wait_for 120 "five failovers of the flapping workload" finished 5
kill "$LOOP_PID" 2>/dev/null
wait "$LOOP_PID" 2>/dev/null
LOOP_PID=""

# ---- B1: at most the budget at once, then backoff, never faster ----
cli_ok failover list kind=real --json
ids=$(printf '%s' "$CLI_OUT" | jq -r '[.failovers[] | select(.success != null)] | reverse | .[].failover_id')
: >"$TEST_TMP/fos.jsonl"
for id in $ids; do
    cli_ok failover status "$id" --json
    printf '%s\n' "$CLI_OUT" | jq -c . >>"$TEST_TMP/fos.jsonl"
done
python3 - "$TEST_TMP/fos.jsonl" <<'EOF' || fail "B1: the budget's backoff"
import json, sys
from datetime import datetime
def ms(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000
fos = [json.loads(l) for l in open(sys.argv[1])]
fos.sort(key=lambda f: ms(f["started_at"]))
def fence_at(f):
    return ms([p for p in f["phases"] if p["phase"] == "standby_activation"][0]["started_at"])
bad = []
for i in range(3, len(fos)):
    need = 6000 * 2 ** (i - 3)  # 1 min, 2 min, ... played 10 times faster
    gap = fence_at(fos[i]) - ms(fos[i - 1]["started_at"])
    print("failover %d acted %.0f ms after the previous began (at least %d)" % (i + 1, gap, need))
    if gap < need - 5:
        bad.append(i + 1)
    det = [p for p in fos[i]["phases"] if p["phase"] == "detection"][0]["detail"] or ""
    if i == 3 and "held" not in det:  # a failover takes ~3 s here: the 4th waits
        print("failover 4's detection does not say it was held: %r" % det)
        bad.append(i + 1)
for f in fos:
    if not f["success"]:
        print("failover %s failed: %s" % (f["failover_id"], f["reason"]))
        bad.append(f["failover_id"])
sys.exit(1 if bad else 0)
EOF

# ---- B2: flapping, with the reason, in the API and in `dumont instances` ----
api GET /api/workloads
rec=$(printf '%s' "$HTTP_BODY" | jq -c ".workloads[] | select(.workload_id == \"$wl\")")
assert_json .flapping true "B2: the workload is flapping" "$rec"
assert_json '.flapping_reason | test("automatic failovers in the last 30m \\(budget 3\\): failovers go on")' \
    true "B2: the reason" "$rec"
assert_json '.flapping_since | type' string "B2: since when" "$rec"
now_serving=$(printf '%s' "$rec" | jq -r .serving_instance_id)
cli_ok instances
assert_contains "$CLI_OUT" "$wl (flapping)" "B2: dumont instances says it flaps"
grep -q "event=workload.flapping workload_id=$wl" "$SERVER_LOG" || fail "B2: workload.flapping logged"
grep -q "event=failover.held" "$SERVER_LOG" || fail "B2: failover.held logged"

# ---- B3: one signed alert, with the reason ----
wait_for 20 "the flapping alert" rx_ge '[.[] | select(.event == "workload.flapping")] | length' 1
assert_eq true "$(rx '[.[] | select(.event == "workload.flapping")][0].valid')" \
    "B3: the webhook body is valid and signed"
assert_contains "$(rx '[.[] | select(.event == "workload.flapping")][0].body.workload.flapping_reason')" \
    "(budget 3)" "B3: the alert carries the reason"
assert_eq "$wl" "$(rx '[.[] | select(.event == "workload.flapping")][0].body.workload.id')" \
    "B3: the alert names the workload"
sleep 0.5 # more periodic checks: still one alert for this flapping spell
assert_eq 1 "$(rx '[.[] | select(.event == "workload.flapping")] | length')" "B3: once per spell"

# the workload still serves after all that: never abandoned
wait_for 30 "instance $now_serving healthy" instance_state_is "$now_serving" healthy
log "ok"
