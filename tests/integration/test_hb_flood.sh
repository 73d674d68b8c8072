#!/usr/bin/env bash
# Hostile heartbeats (issue 13, part 4; docs/security.md "Hostile heartbeats"):
# two senders of forged-MAC heartbeats pinned to one core (taskset -c 1)
# flood the listener with datagrams naming a protected instance and a plain
# agent's instance for 24 s.
#
# F1: the protected instance is never failed and never failed over while the
#     flood runs (listener.h HB-L8: the real beats are verified from their own
#     bucket; L9/detector.h HB-D6: lossy intake holds a conviction back).
# F2: a kill -9 of the plain agent during the flood is detected (failed)
#     within 3 s (the 2 s hold bound, plus the point of the interval the kill
#     lands on and the tick), and its events say the conviction was held
#     (what "intake", reason conviction_held) before `failed` with reason
#     lossy_hold_bound or deadline.
# F3: `dumont instances` says the intake is lossy while the flood runs, and
#     the forged datagrams were refused unverified by the million, not
#     MAC-checked (bad_mac stays within the per-instance bucket).
. "$(dirname "$0")/lib.sh"
lib_init
FLOOD="$(dirname "$DUMONT_BIN")/bench/bench_hb_flood"
[ -x "$FLOOD" ] || fail "bench_hb_flood is not built ($FLOOD)"
pin=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then pin=(taskset -c 1); fi
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M
new_home
start_server --heartbeat-listen 127.0.0.1:0

cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
prot=$CLI_OUT
wait_for 30 "instance $prot healthy" instance_state_is "$prot" healthy
plain=7001
"$DUMONT_BIN" agent --instance "$plain" --log-level warn >"$TEST_TMP/agent.log" 2>&1 &
agent=$!
wait_for 20 "instance $plain healthy" instance_state_is "$plain" healthy
api GET /api/instances
hb_port=$(printf '%s' "$HTTP_BODY" | jq -r .heartbeats.port)
[ "$hb_port" -gt 0 ] || fail "no heartbeat port in /api/instances"

flood_pids=()
for i in 1 2; do
    "${pin[@]+"${pin[@]}"}" "$FLOOD" --port "$hb_port" --ids "$prot,$plain" --seconds 24 \
        --sockets 4 >"$TEST_TMP/flood.$i" 2>&1 &
    flood_pids+=("$!")
done
t_start=$(now_us)

# ---- F3 (while the flood runs)
wait_for 10 "'intake lossy' in dumont instances" \
    eval 'cli instances; [[ $CLI_OUT == *"(intake lossy"* ]]'

# ---- F2: kill -9 during the flood
sleep 6 # the flood runs for 6 s before the kill
t_kill=$(now_us)
kill -KILL "$agent"
wait_for 10 "instance $plain failed after kill -9" instance_state_is "$plain" failed
cli_ok instances show "$plain" --json
at=$(printf '%s' "$CLI_OUT" | jq -r '[.events[] | select(.what == "state" and .to == "failed")][0].at')
detect_ms=$(($(date -d "$at" +%s%3N) - t_kill / 1000))
log "kill -9 during the flood detected after ${detect_ms} ms"
[ "$detect_ms" -le 3000 ] || fail "kill -9 during the flood took ${detect_ms} ms to detect (> 3 s)"
held=$(printf '%s' "$CLI_OUT" | jq '[.events[] | select(.what == "intake" and .reason == "conviction_held")] | length')
[ "$held" -ge 1 ] || fail "no conviction_held event for $plain: $(printf '%s' "$CLI_OUT" | jq -c .events)"

# ---- F1: the flood ends; the protected instance never failed
for p in "${flood_pids[@]}"; do wait "$p" || fail "bench_hb_flood exited $?"; done
flood_s=$((($(now_us) - t_start) / 1000000))
cat "$TEST_TMP"/flood.* >&2
sent=0
for n in $(sed -n 's/.*sent=\([0-9]*\).*/\1/p' "$TEST_TMP"/flood.*); do sent=$((sent + n)); done
cli_ok instances show "$prot" --json
fails=$(printf '%s' "$CLI_OUT" | jq '[.events[] | select(.what == "state" and .to == "failed")] | length')
assert_eq 0 "$fails" "failed events of the protected instance $prot during the flood"
assert_json .state healthy "the protected instance after the flood" "$CLI_OUT"
failover_of "$prot" && fail "the protected instance was failed over: $FO"
api GET /api/instances
counters=$(printf '%s' "$HTTP_BODY" | jq -c .heartbeats)
log "sent $sent forged datagrams in ${flood_s}s; listener: $counters"
[ "$sent" -ge 1000000 ] || fail "the flood sent only $sent datagrams"
unverified=$(printf '%s' "$counters" | jq .dropped.unverified_rate_limited)
bad_mac=$(printf '%s' "$counters" | jq .dropped.bad_mac)
[ "$unverified" -ge 500000 ] || fail "only $unverified datagrams refused before their MAC"
[ "$bad_mac" -le $((2 * 10 * (flood_s + 10))) ] || fail "$bad_mac forged MACs were checked"
log "ok"
