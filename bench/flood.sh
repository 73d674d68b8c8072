#!/usr/bin/env bash
# Hostile heartbeats (issue 13, part 4): FLOODERS senders of forged-MAC
# heartbeats (bench_hb_flood), pinned to one core with `taskset -c 1`, flood
# the listener for SECONDS with datagrams naming a protected instance (a
# tiny-ollama workload launched with `dumont instances launch`) and KILLS + 2
# plain agents. During the flood the plain agents are killed (kill -9) one at a
# time; two of them and the protected instance must live through it.
#
#   bench/flood.sh [SECONDS [KILLS]]        default 60 s, 10 kills
#   FLOODERS=0 bench/flood.sh               the same without the flood (baseline)
#
# Prints the flood's rate, the false `failed` count (protected instance and
# the plain agents not killed) and failovers of the protected instance, the
# detection time of each kill (the server's recorded `failed` minus the time
# just before the signal) as p50/max, and the listener's counters.
# Uses $DUMONT_BIN (default build/dumont), a fresh DUMONT_HOME and SQLite.
set -euo pipefail

SECS=${1:-60}
KILLS=${2:-10}
FLOODERS=${FLOODERS:-2}
. "$(dirname "$0")/lib.sh"
bench_init flood
FLOOD=$(dirname "$BIN")/bench/bench_hb_flood
TINY=$(dirname "$BIN")/tiny-ollama
[ -x "$FLOOD" ] && [ -x "$TINY" ] || { echo "flood.sh: build first ($FLOOD, $TINY)" >&2; exit 1; }
pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin=(taskset -c 1); fi
bench_start_server --heartbeat-listen 127.0.0.1:0 --log-level warn
failed_events() { api "/api/instances/$1" | jq '[.events[] | select(.what == "state" and .to == "failed")] | length'; }

"$TINY" --make-model "$tmp/ws" --size 1M >/dev/null
prot=$("$BIN" instances launch name=flood workload="$TINY" probe=ollama:tiny \
    workspace_from="$tmp/ws" snapshot_every=0)
wait_state "$prot" healthy 60
ids=$prot
declare -A pid
for ((i = 1; i <= KILLS + 2; i++)); do
    "$BIN" agent --instance "$((7000 + i))" --log-level warn >>"$tmp/agents.log" 2>&1 &
    pid[$i]=$!
    BENCH_PIDS+=("$!")
    ids="$ids,$((7000 + i))"
done
for ((i = 1; i <= KILLS + 2; i++)); do wait_state "$((7000 + i))" healthy 20; done
hb_port=$(api /api/instances | jq -r .heartbeats.port)
sleep 3 # history for the detectors

echo "flood.sh: $FLOODERS flooders (${pin[*]:-unpinned}) x ${SECS}s on instances $ids;" \
    "$KILLS kills (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
fl=()
for ((f = 1; f <= FLOODERS; f++)); do
    "${pin[@]+"${pin[@]}"}" "$FLOOD" --port "$hb_port" --ids "$ids" --seconds "$SECS" \
        --sockets 4 >"$tmp/flood.$f" 2>&1 &
    fl+=("$!")
    BENCH_PIDS+=("$!")
done
t0=$(now_ms)
sleep 5
gap=$(((SECS - 10) * 1000 / (KILLS > 0 ? KILLS : 1)))
: >"$tmp/lat"
for ((i = 1; i <= KILLS; i++)); do
    sleep "$(printf '%d.%03d' $((gap / 1000)) $((gap % 1000)))"
    sleep "0.$((RANDOM % 200 + 100))" # kill at a random point of the interval
    t=$(now_ms)
    kill -KILL "${pid[$i]}"
    wait_state "$((7000 + i))" failed 15
    at=$(api "/api/instances/$((7000 + i))" |
        jq -r '[.events[] | select(.what == "state" and .to == "failed")][0].at')
    echo $(($(date -d "$at" +%s%3N) - t)) >>"$tmp/lat"
done
for p in "${fl[@]+"${fl[@]}"}"; do wait "$p"; done
elapsed=$((($(now_ms) - t0) / 1000))
sent=0 rate=0
for f in "$tmp"/flood.*; do
    [ -e "$f" ] || continue
    n=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$f")
    r=$(sed -n 's/.*rate_per_s=\([0-9]*\).*/\1/p' "$f")
    sent=$((sent + ${n:-0})) rate=$((rate + ${r:-0}))
done
false_failed=$(failed_events "$prot")
for ((i = KILLS + 1; i <= KILLS + 2; i++)); do
    false_failed=$((false_failed + $(failed_events "$((7000 + i))")))
done
failovers=$(api "/api/standby/failover/list?gpu_instance_id=$prot" | jq '.failovers | length')
sort -n "$tmp/lat" >"$tmp/lat.sorted"
n=$(wc -l <"$tmp/lat.sorted")
pct() { [ "$n" -gt 0 ] && sed -n "$(((n * $1 + 99) / 100))p" "$tmp/lat.sorted" || echo -; }
printf 'flood: %d forged datagrams (%d/s while it ran) from %d senders; %d s in all\n' "$sent" \
    "$rate" "$FLOODERS" "$elapsed"
printf 'false failed: %d (protected instance %s and 2 plain agents), failovers of the protected instance: %d\n' \
    "$false_failed" "$prot" "$failovers"
printf 'detection of kill -9 during the flood (n=%d): p50 %s ms, max %s ms, min %s ms\n' "$n" \
    "$(pct 50)" "$(tail -1 "$tmp/lat.sorted" 2>/dev/null || echo -)" "$(head -1 "$tmp/lat.sorted" 2>/dev/null || echo -)"
echo "listener: $(api /api/instances | jq -c '.heartbeats | {received, accepted, kernel_drops, lagging_ticks, dropped: (.dropped | with_entries(select(.value > 0)))}')"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
