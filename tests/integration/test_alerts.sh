#!/usr/bin/env bash
# Alerts (docs/alerts.md; src/alerts/alerts.h AL-AL1 to AL-AL5, alert_retry.h AL-AR1 to AL-AR4,
# alert_format.h AL-AF1 to AL-AF4, db/db_alert.h DB-DA1-DB-DA4) against a local receiver
# that stands in for Slack, Discord and a webhook consumer
# (alert_receiver.py: shaped from their documented formats; it checks each
# body's shape and the webhook's signature).
#
# E1: `alerts add` of each kind: default name kind-N, default events all but
#     suspect; a webhook's secret printed once; list shows URLs redacted.
# E2: bad input is refused with a clear reason and adds nothing: another
#     scheme, credentials in the URL, an unknown kind or event, a taken name;
#     the routes are admin only (viewer 403, nobody 401).
# E3: `alerts test NAME` reaches each receiver in its format (signed for the
#     webhook); a destination that refuses makes it exit 1 with the answer.
# E4: a simulated failover (completed, then one failed in provisioning)
#     reaches every destination: started, standby activated, completed or
#     failed, each with the phase, the instance, the time and the link; an
#     agent killed -9 gives instance suspect (to those that asked) and failed.
# E5: retries: a receiver answering 500, then 429 with Retry-After (an hour,
#     played 3600 times faster), then down for over an hour, then back, gets
#     the alert with one idempotency key throughout, the Retry-After honoured;
#     Discord's JSON retry_after too; a 404 is given up at once.
# E6: no URL path and no secret reaches the server log or the database file
#     in clear; remove stops a destination.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alert_lib.sh"
lib_init
need python3
AGENT_PID=""
trap 'rc=$?; stop_receiver; [ -z "$AGENT_PID" ] || kill -KILL "$AGENT_PID" 2>/dev/null; (exit $rc); lib_cleanup' EXIT

new_home
start_receiver
export DUMONT_ALERT_TIME_SCALE=3600 # an hour of retries in a second (AR4)
start_server --provider none
U=http://127.0.0.1:$RX_PORT
DEFAULT=started,completed,failed,instance_failed,snapshot_failing,standby_activated,flapping

# ---- E1 ----
cli_ok alerts add kind=slack url="$U/slack/T0AAAA/B0BBBB/SLACKPATHSECRET"
assert_contains "$CLI_OUT" "alert slack-1 (slack)" "default name"
assert_not_contains "$CLI_OUT" SLACKPATHSECRET "add output"
cli_ok alerts add kind=discord url="$U/discord/123/DISCORDTOKENSECRET" name=team --json
assert_json .name team "discord name" "$CLI_OUT"
assert_json 'has("secret")' false "no secret for discord" "$CLI_OUT"
cli_ok alerts add kind=webhook url="$U/hook/consumer" name=ops notify_on=all
SECRET=$(tail -n1 <<<"$CLI_OUT")
assert_match "$SECRET" '^[0-9a-f]{64}$' "webhook secret printed last"
(umask 077 && printf '%s' "$SECRET" >"$RX_SECRET")
cli_ok alerts list --json
assert_json .total 3 "three destinations" "$CLI_OUT"
assert_json '[.alerts[].url] | map(test("SECRET|consumer|/slack/|/discord/")) | any' false \
    "URLs redacted" "$CLI_OUT"
assert_json '.alerts[] | select(.name == "slack-1") | .notify_on | join(",")' "$DEFAULT" \
    "default events" "$CLI_OUT"
assert_json '.alerts[] | select(.name == "ops") | .notify_on | length' 8 "notify_on=all" \
    "$CLI_OUT"
assert_json '[.alerts[] | has("secret")] | any' false "the secret is never listed" "$CLI_OUT"
cli_ok alerts list
assert_contains "$CLI_OUT" "http://127.0.0.1:$RX_PORT/" "list table"
assert_not_contains "$CLI_OUT" consumer "list table"

# ---- E2 ----
cli alerts add kind=slack url=ftp://hooks.example/x
assert_cli_rc 1 "ftp URL"
assert_contains "$CLI_ERR" "https://" "ftp URL reason"
cli alerts add kind=slack url=https://bob:hunter2@hooks.example/x
assert_cli_rc 1 "URL with credentials"
assert_contains "$CLI_ERR" "credentials" "credentials reason"
assert_not_contains "$CLI_ERR" hunter2 "the password is not repeated"
cli alerts add kind=pager url="$U/x"
assert_cli_rc 1 "unknown kind"
assert_contains "$CLI_ERR" "slack, discord or webhook" "kind reason"
cli alerts add kind=slack url="$U/x" notify_on=failed,exploded
assert_cli_rc 1 "unknown event"
assert_contains "$CLI_ERR" "'exploded'" "event reason"
cli alerts add kind=slack url="$U/x" name=ops
assert_cli_rc 1 "taken name"
assert_contains "$CLI_ERR" "exists" "taken name reason"
cli alerts add kind=slack
assert_cli_rc 2 "url missing"
cli alerts test nope
assert_cli_rc 1 "test of an unknown alert"
cli alerts remove nope
assert_cli_rc 1 "remove of an unknown alert"
for s in add list test remove deliveries; do
    cli alerts "$s" --help
    assert_cli_rc 0 "alerts $s --help"
    assert_contains "$CLI_OUT" "usage: dumont alerts $s" "alerts $s --help"
done
cli_ok alerts list --json
assert_json .total 3 "nothing was added by bad requests" "$CLI_OUT"
api POST /api/alerts -H 'Content-Type: application/json' -d '{"kind":"slack","url":"https://h/x","x":1}'
assert_api_error 400 bad_request "unknown field"
cli_ok tokens create role=viewer name=v --json
VIEWER=$(jq -r .token <<<"$CLI_OUT")
(umask 077 && printf 'Authorization: Bearer %s\n' "$VIEWER" >"$TEST_TMP/viewer.header")
for r in "GET /api/alerts" "POST /api/alerts" "POST /api/alerts/ops/test" \
    "GET /api/alerts/ops/deliveries" "DELETE /api/alerts/ops"; do
    api_as "$TEST_TMP/viewer.header" $r
    assert_status 403 "viewer: $r"
    api_noauth $r
    assert_status 401 "nobody: $r"
done

# ---- E3 ----
for n in slack-1 team ops; do
    cli_ok alerts test "$n"
    assert_contains "$CLI_OUT" "test alert delivered to $n" "alerts test $n"
done
assert_eq 3 "$(rx '[.[] | select(.event == "alert.test")] | length')" "three test alerts"
assert_eq true "$(rx '[.[] | select(.event == "alert.test") | .valid] | all')" \
    "test alerts in each format: $(rx '[.[] | .problems]')"
assert_eq "discord slack webhook" "$(rx '[.[] | select(.event == "alert.test") | .kind] | sort | join(" ")')" \
    "one of each kind"
printf '/slack/T0AAAA 404\n' >"$RX_PLAN"
cli alerts test slack-1
assert_cli_rc 1 "a refused test"
assert_contains "$CLI_ERR" "HTTP 404" "the receiver's answer is said"
: >"$RX_PLAN"

# ---- E4: failovers ----
cli_ok failover test-setup gpu_instance_id=12345
cli_ok failover simulate 12345 speed=100000 --wait
FO=$(cli failover list gpu_instance_id=12345 --json && jq -r '.failovers[0].failover_id' <<<"$CLI_OUT")
assert_match "$FO" '^sim-' "failover id"
for_fo() { rx "[.[] | select((.body | tostring) | contains(\"$1\"))]"; }
wait_for 20 "started, standby and completed at three destinations" \
    rx_is "[.[] | select((.body | tostring) | contains(\"$FO\")) | .event] | length" 9
F=$(for_fo "$FO")
for e in failover.started standby.activated failover.completed; do
    assert_eq "slack,discord,webhook" \
        "$(jq -r "[.[] | select(.event == \"$e\") | .kind] | sort_by({slack:0,discord:1,webhook:2}[.]) | join(\",\")" <<<"$F")" \
        "$e at each destination"
done
assert_eq true "$(jq '[.[] | .valid] | all' <<<"$F")" "every body in its format: $(jq -c '[.[] | .problems]' <<<"$F")"
assert_eq 9 "$(jq '[.[] | .key] | unique | length' <<<"$F")" "one key per event and destination"
assert_eq true "$(jq '[.[] | .key == .delivery] | all' <<<"$F")" "Idempotency-Key = X-Dumont-Delivery"
W=$(jq -c '.[] | select(.kind == "webhook" and .event == "failover.completed") | .body' <<<"$F")
assert_json .failover.old_instance_id 12345 "webhook: old instance" "$W"
assert_json .failover.kind simulated "webhook: kind" "$W"
assert_json '.failover.duration_ms > 0' true "webhook: how long" "$W"
assert_json .failover.url "$DUMONT_URL/#failover=$FO" "webhook: dashboard link" "$W"
assert_json '.summary | test("recovered in")' true "webhook: summary" "$W"
S=$(jq -c '.[] | select(.kind == "slack" and .event == "failover.completed") | .body' <<<"$F")
assert_json '.blocks[2].elements[0].text | contains("#failover='"$FO"'|")' true "slack: link" "$S"
# a failover that fails in provisioning
cli failover simulate 12345 speed=100000 fail_phase=provisioning --wait
assert_cli_rc 1 "a failover that fails"
cli_ok failover list gpu_instance_id=12345 --json
FO2=$(jq -r '.failovers[0].failover_id' <<<"$CLI_OUT")
wait_for 20 "failover.failed at three destinations" \
    rx_is "[.[] | select(.event == \"failover.failed\" and ((.body | tostring) | contains(\"$FO2\")))] | length" 3
F=$(for_fo "$FO2")
W=$(jq -c '.[] | select(.kind == "webhook" and .event == "failover.failed") | .body' <<<"$F")
assert_json .failover.phase provisioning "webhook: failed in" "$W"
assert_json '.failover.reason | length > 0' true "webhook: why" "$W"
S=$(jq -c '.[] | select(.kind == "slack" and .event == "failover.failed") | .body' <<<"$F")
assert_json '.text | test("failed in provisioning after")' true "slack: the phase" "$S"
D=$(jq -c '.[] | select(.kind == "discord" and .event == "failover.failed") | .body' <<<"$F")
assert_json '.embeds[0].fields[] | select(.name == "Failed in") | .value' provisioning \
    "discord: the phase" "$D"
assert_json .embeds[0].color 14687834 "discord: red" "$D"
# an instance killed -9 (the detector's published changes)
"$DUMONT_BIN" agent --instance 101 >>"$TEST_TMP/agent.log" 2>&1 &
AGENT_PID=$!
wait_for 20 "instance 101 healthy" instance_state_is 101 healthy
kill -KILL "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
AGENT_PID=""
wait_for 20 "instance.failed at three destinations" \
    rx_is '[.[] | select(.event == "instance.failed")] | length' 3
assert_eq 1 "$(rx '[.[] | select(.event == "instance.suspect")] | length')" \
    "suspect only where asked (ops: notify_on=all)"
W=$(rx '[.[] | select(.event == "instance.failed" and .kind == "webhook")][0].body')
assert_json .instance.id 101 "webhook: the instance" "$W"
assert_json .instance.to failed "webhook: its state" "$W"
assert_json '.instance.silent_ms >= 400' true "webhook: silent for" "$W"

# ---- E5: retries ----
printf '%s\n' "/slack/flaky 500" "/slack/flaky 429 ra=3600" "/discord/rl 429 json=3600" \
    "/slack/gone 404" >"$RX_PLAN"
cli_ok alerts add kind=slack url="$U/slack/flaky/x" name=flaky notify_on=failed
cli_ok alerts add kind=discord url="$U/discord/rl/x" name=rl notify_on=failed
cli_ok alerts add kind=slack url="$U/slack/gone/x" name=gone notify_on=failed
cli failover simulate 12345 speed=100000 fail_phase=gpu_search --wait
assert_cli_rc 1 "a failover that fails in gpu_search"
flaky() { rx "[.[] | select(.path | startswith(\"/slack/flaky\"))]"; }
wait_for 20 "flaky: 500 then 429" rx_is '[.[] | select(.path | startswith("/slack/flaky")) | .status] | join(",")' 500,429
stop_receiver # down for over an hour (scaled), the 429's Retry-After of an hour included
T_DOWN=$(python3 -c 'import time; print(time.time())')
wait_for 20 "retries while the receiver is down" \
    eval '[ "$(grep -c "event=alert.retry alert=\"flaky\".* status=0 " "$SERVER_LOG")" -ge 3 ]'
wait_for 20 "an hour (scaled) of the receiver down" elapsed_since "$T_DOWN" 1.5
start_receiver "$RX_PORT"
wait_for 20 "flaky delivered after the receiver came back" \
    rx_is '[.[] | select(.path | startswith("/slack/flaky")) | .status] | last' 200
F=$(flaky)
assert_eq 1 "$(jq '[.[] | .key] | unique | length' <<<"$F")" "one idempotency key across retries"
assert_eq true "$(jq '[.[] | .valid] | all' <<<"$F")" "the same valid body each time"
assert_eq 1 "$(jq '[.[] | .body] | unique | length' <<<"$F")" "the same bytes each time (AF1)"
assert_eq true "$(jq '.[2].t - .[1].t >= 0.9' <<<"$F")" \
    "Retry-After: 3600 honoured (1 s scaled): $(jq -c '[.[] | .t]' <<<"$F")"
cli_ok alerts deliveries flaky --json
assert_json '.deliveries[0].state' delivered "flaky delivered" "$CLI_OUT"
assert_json '.deliveries[0].attempts >= 5' true "500, 429, refused connections, then 200" "$CLI_OUT"
wait_for 20 "rl delivered" rx_is '[.[] | select(.path | startswith("/discord/rl")) | .status] | last' 204
R=$(rx '[.[] | select(.path | startswith("/discord/rl"))]')
assert_eq true "$(jq '.[0].status == 429 and (.[1].t - .[0].t >= 0.9)' <<<"$R")" \
    "Discord's JSON retry_after honoured: $(jq -c '[.[] | [.status, .t]]' <<<"$R")"
assert_eq 1 "$(jq '[.[] | .key] | unique | length' <<<"$R")" "rl: one key"
cli_ok alerts deliveries gone --json
assert_json '.deliveries[0].state' refused "404 is a refusal" "$CLI_OUT"
assert_json '.deliveries[0].attempts' 1 "no retry after a refusal" "$CLI_OUT"
assert_json '.deliveries[0].last_status' 404 "its status" "$CLI_OUT"
assert_eq 1 "$(rx '[.[] | select(.path | startswith("/slack/gone"))] | length')" "gone asked once"

# ---- E6 ----
for s in SLACKPATHSECRET DISCORDTOKENSECRET hook/consumer "$SECRET" slack/flaky/x; do
    assert_eq 0 "$(grep -c -- "$s" "$SERVER_LOG")" "server log free of '$s'"
    assert_eq 0 "$(cat "$DUMONT_HOME"/dumont.db* | grep -a -c -- "$s")" "database free of '$s'"
done
assert_eq 600 "$(stat -c %a "$DUMONT_HOME/alerts.key")" "alerts.key mode"
cli_ok alerts remove team
cli_ok alerts list --json
assert_json '[.alerts[].name] | index("team")' null "team removed" "$CLI_OUT"
cli alerts test team
assert_cli_rc 1 "a removed alert"
log "ok"
