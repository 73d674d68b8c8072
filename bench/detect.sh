#!/usr/bin/env bash
# Failure-detection latency of real `dumont agent` processes (issue 5, "Must
# reach"), and false alarms under injected jitter and loss.
#
#   bench/detect.sh [KILLS [SOAK_AGENTS [SOAK_SECONDS [SIGNAL]]]]
#       KILLS         agents killed, one at a time (default 50; 0 skips)
#       SOAK_AGENTS   agents sending with 150 ms jitter and 2% loss (default 10)
#       SOAK_SECONDS  how long they send (default 60; 0 skips the soak)
#       SIGNAL        KILL (default) or STOP
#
# Uses $DUMONT_BIN (default build/dumont), a fresh DUMONT_HOME and SQLite.
# COPIES=1 makes every agent send each heartbeat once instead of twice
# (--heartbeat-copies; agent.h AG-A7), to compare with the old behaviour.
# Latency = the server's recorded time of the `failed` change minus the time
# just before the signal was sent (same machine, same wall clock); so it
# includes the part of the interval since the last heartbeat, the detector's
# wait and the listener's 10 ms tick. Agents run with default settings
# (--heartbeat-ms 200); each has sent >= 3 s of heartbeats before its kill.
set -euo pipefail

KILLS=${1:-50}
SOAK_AGENTS=${2:-10}
SOAK_SECONDS=${3:-60}
SIG=${4:-KILL}
COPIES=${COPIES:-2}
. "$(dirname "$0")/lib.sh"
bench_init detect
pids=()
bench_start_server --heartbeat-listen 127.0.0.1:0 --log-level warn

# ---- kills -------------------------------------------------------------------
if [ "$KILLS" -gt 0 ]; then
echo "kill -$SIG of $KILLS agents, one at a time (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
: >"$tmp/lat"
batch=10
for ((first = 1; first <= KILLS; first += batch)); do
    ids=()
    for ((i = first; i < first + batch && i <= KILLS; i++)); do
        "$BIN" agent --instance "$((1000 + i))" --heartbeat-copies "$COPIES" --log-level warn \
            >>"$tmp/agents.log" 2>&1 &
        pids[i]=$!
        BENCH_PIDS+=("$!")
        ids+=("$i")
    done
    for i in "${ids[@]}"; do wait_state "$((1000 + i))" healthy 20; done
    sleep 3 # history for the detector
    for i in "${ids[@]}"; do
        sleep "0.$((RANDOM % 200 + 100))" # kill at a random point of the interval
        t=$(now_ms)
        kill "-$SIG" "${pids[i]}"
        wait_state "$((1000 + i))" failed 10
        at=$(api "/api/instances/$((1000 + i))" |
            jq -r '[.events[] | select(.what == "state" and .to == "failed")][0].at')
        at_ms=$(date -d "$at" +%s%3N)
        echo $((at_ms - t)) >>"$tmp/lat"
        kill -KILL "${pids[i]}" 2>/dev/null || true
    done
done
sort -n "$tmp/lat" >"$tmp/lat.sorted"
n=$(wc -l <"$tmp/lat.sorted")
pct() { sed -n "$(((n * $1 + 99) / 100))p" "$tmp/lat.sorted"; }
printf 'heartbeat copies %s; detection after kill -%s (n=%d): p50 %s ms, p99 %s ms, min %s ms, max %s ms\n' \
    "$COPIES" "$SIG" "$n" "$(pct 50)" "$(pct 99)" "$(head -1 "$tmp/lat.sorted")" "$(tail -1 "$tmp/lat.sorted")"
fi

# ---- soak: jitter and loss ---------------------------------------------------
if [ "$SOAK_SECONDS" -gt 0 ]; then
    echo "soak: $SOAK_AGENTS agents x ${SOAK_SECONDS}s, 150 ms jitter, 2% loss" >&2
    for ((i = 1; i <= SOAK_AGENTS; i++)); do
        "$BIN" agent --instance "$((5000 + i))" --test-jitter-ms 150 --test-loss 0.02 \
            --heartbeat-copies "$COPIES" --log-level warn >>"$tmp/agents.log" 2>&1 &
        BENCH_PIDS+=("$!")
    done
    for ((i = 1; i <= SOAK_AGENTS; i++)); do wait_state "$((5000 + i))" healthy 20; done
    sleep "$SOAK_SECONDS"
    false_failed=0 suspects=0
    for ((i = 1; i <= SOAK_AGENTS; i++)); do
        j=$(api "/api/instances/$((5000 + i))")
        false_failed=$((false_failed + $(jq '[.events[] | select(.to == "failed")] | length' <<<"$j")))
        suspects=$((suspects + $(jq '[.events[] | select(.to == "suspect")] | length' <<<"$j")))
    done
    printf 'soak (copies %s, %d agent-minutes, 150 ms jitter, 2%% loss per datagram): %d false failed, %d suspect\n' \
        "$COPIES" "$((SOAK_AGENTS * SOAK_SECONDS / 60))" "$false_failed" "$suspects"
fi
echo "heartbeat counters: $(api /api/instances | jq -c '.heartbeats | {received, accepted, dropped: (.dropped | with_entries(select(.value > 0)))}')"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
