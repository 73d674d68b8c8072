# shellcheck shell=bash
# Helpers of the alert tests (test_alerts*.sh), sourced after lib.sh: the
# local alert receiver (alert_receiver.py, a stand-in for Slack, Discord and
# a webhook consumer, shaped from their documented formats) and queries of
# what it received.
#
#   RX_LOG     one JSON line per request received (path, kind, valid, problems,
#              key, event, status, body, t)
#   RX_PLAN    answers to give before the normal ones ("PATH-PREFIX 500", ...)
#   RX_SECRET  the webhook signing secret the receiver checks

RX_PID="" RX_PORT=""
RX_LOG="" RX_PLAN="" RX_SECRET=""
RECEIVER="$(dirname "${BASH_SOURCE[0]}")/alert_receiver.py"

# start_receiver [PORT]: starts (or restarts, on PORT) the receiver.
start_receiver() {
    need python3
    RX_LOG=$TEST_TMP/rx.log RX_PLAN=$TEST_TMP/rx.plan RX_SECRET=$TEST_TMP/rx.secret
    touch "$RX_LOG" "$RX_PLAN"
    rm -f "$TEST_TMP/rx.port"
    python3 "$RECEIVER" --port "${1:-0}" --port-file "$TEST_TMP/rx.port" --log "$RX_LOG" \
        --secret-file "$RX_SECRET" --plan "$RX_PLAN" >>"$TEST_TMP/rx.out" 2>&1 &
    RX_PID=$!
    wait_for 10 "the alert receiver to listen" test -s "$TEST_TMP/rx.port"
    RX_PORT=$(cat "$TEST_TMP/rx.port")
}

stop_receiver() {
    [ -n "$RX_PID" ] || return 0
    kill -KILL "$RX_PID" 2>/dev/null
    wait "$RX_PID" 2>/dev/null
    RX_PID=""
}

# rx FILTER: jq -r FILTER over every request received so far (an array).
rx() { jq -s -r "$1" "$RX_LOG"; }

# rx_is FILTER VALUE: a condition for wait_for.
rx_is() { [ "$(rx "$1")" = "$2" ]; }
rx_ge() { [ "$(rx "$1")" -ge "$2" ] 2>/dev/null; }

# elapsed_since T SECONDS: at least SECONDS (may be fractional) have passed
# since the epoch time T (a condition for wait_for).
elapsed_since() { python3 -c "import sys,time; sys.exit(0 if time.time() - $1 >= $2 else 1)"; }
