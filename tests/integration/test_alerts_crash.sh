#!/usr/bin/env bash
# Alerts survive a crash (docs/alerts.md; src/alerts/alerts.h AL-AL2,
# db/db_alert.h DB-DA2-DB-DA3), on SQLite and on PostgreSQL, against the local
# receiver that stands in for a webhook consumer and Slack
# (alert_receiver.py).
#
# X1: a server killed -9 with alerts queued (its receiver holding one
#     delivery in flight, unanswered, and refusing the rest) sends every one
#     of them after it is started again: each at least once, each with the
#     idempotency key it was queued with, the one in flight included.
# X2: nothing is sent twice to a receiver that answered it (delivered rows
#     stay delivered across the restart), and a stop with SIGTERM keeps
#     what is queued too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/alert_lib.sh"
lib_init
need python3
trap 'rc=$?; stop_receiver; (exit $rc); lib_cleanup' EXIT
export DUMONT_ALERT_TIME_SCALE=3600

# queued_keys NAME: the idempotency keys of NAME's queued deliveries, sorted.
queued_keys() {
    api GET "/api/alerts/$1/deliveries?limit=1000"
    jq -r '[.deliveries[] | select(.state == "queued") | .idempotency_key] | sort | join(" ")' \
        <<<"$HTTP_BODY"
}
queued_count_is() { [ "$(queued_keys "$1" | wc -w)" = "$2" ]; }

# delivered_all KEYS...: each key was answered 2xx by the receiver.
delivered_all() {
    local k
    for k in "$@"; do
        [ "$(rx "[.[] | select(.key == \"$k\" and (.status == 200 or .status == 204))] | length")" -ge 1 ] ||
            return 1
    done
}

for be in $(backends); do
    use_backend "$be"
    : >"$TEST_TMP/rx.log"
    start_receiver
    U=http://127.0.0.1:$RX_PORT
    start_server --provider none
    cli_ok alerts add kind=webhook url="$U/hook" name=ops notify_on=all
    (umask 077 && tail -n1 <<<"$CLI_OUT" >"$RX_SECRET")
    cli_ok alerts add kind=slack url="$U/slack/crash" name=chat
    # The first delivery is held unanswered: in flight when the server dies
    # (held again should a slow machine let the sender's 10 s timeout pass).
    printf '/hook hang=60\n/hook hang=60\n/hook hang=60\n' >"$RX_PLAN"
    cli_ok failover test-setup gpu_instance_id=777
    for i in 1 2 3; do
        cli_ok failover simulate 777 speed=100000 --wait
    done
    wait_for 20 "a delivery in flight" rx_ge '[.[] | select(.status == "hang")] | length' 1
    HUNG=$(rx '[.[] | select(.status == "hang")][0].key')
    # 3 failovers x (started, standby, completed) for each of the two; chat's
    # first went out before ops's first (the order is the queue's), then the
    # sender waits on the one in flight
    wait_for 20 "every event queued" eval 'queued_count_is ops 9 && queued_count_is chat 8'
    OPS=$(queued_keys ops) CHAT=$(queued_keys chat)
    assert_contains "$OPS" "$HUNG" "the delivery in flight is still queued (DB-DA3)"
    stop_server KILL
    stop_receiver
    : >"$RX_PLAN"
    start_receiver "$RX_PORT"
    start_server --provider none
    # shellcheck disable=SC2086
    wait_for 30 "every queued alert delivered after the restart" delivered_all $OPS $CHAT
    assert_eq 1 "$(rx "[.[] | select(.key == \"$HUNG\" and .status == 200)] | length")" \
        "the one in flight was sent again after the restart, with its key"
    assert_eq true "$(rx '[.[] | select(.status != "hang") | .valid] | all')" \
        "every body valid and signed: $(rx '[.[] | .problems] | unique')"
    assert_eq 18 "$(rx '[.[] | .key] | unique | length')" "18 deliveries, no other"
    api GET "/api/alerts/ops/deliveries?limit=1000"
    assert_json '[.deliveries[] | .state] | unique | join(",")' delivered "ops: all delivered"
    # X2: a clean stop with something queued, and delivered rows are not resent
    stop_receiver
    cli_ok failover simulate 777 speed=100000 --wait
    wait_for 20 "the fourth failover queued" eval 'queued_count_is ops 3 && queued_count_is chat 3'
    NEW="$(queued_keys ops) $(queued_keys chat)"
    stop_server TERM
    assert_eq 0 "$SERVER_RC" "clean stop"
    start_receiver "$RX_PORT"
    start_server --provider none
    # shellcheck disable=SC2086
    wait_for 30 "the fourth failover's alerts delivered after a clean restart" delivered_all $NEW
    assert_eq 24 "$(rx '[.[] | .key] | unique | length')" "24 deliveries in all"
    assert_eq 1 "$(rx "[.[] | select(.key == \"$(cut -d' ' -f1 <<<"$CHAT")\")] | length")" \
        "a delivered alert is not sent again after a restart"
    stop_server TERM
    stop_receiver
done
log "ok"
