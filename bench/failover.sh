#!/usr/bin/env bash
# End-to-end failover time on the local provider (issue 6, "Must reach"):
# kill -9 of a protected instance whose workspace holds SIZE_MB of data (the
# bench/gen-workspace.sh mix plus a tiny-ollama model) -> the model answering
# again on the new instance, with the restored workspace byte-identical to
# the newest snapshot.
#
#   bench/failover.sh [RUNS [SIZE_MB]]     # default 5 runs, 1024 MB
#
# Each run preempts the instance serving now (SIGKILL of its whole session,
# no notice) and measures, from just before the kill, until a generate
# request to the new instance answers (polled every 20 ms from this script).
# Prints each run's total and the phases the server recorded, the restore's
# own time (restore_in: download + decompress as measured where it ran, the
# new agent since the control channel) and the rest of the restore phase
# (restore_out: commanding it over the channel, opening the store), then
# medians and each phase's share. Uses $DUMONT_BIN (default build/dumont), a fresh
# DUMONT_HOME, SQLite and the file:// store; everything runs on this machine.
# The server's log is left in /tmp/dumont-bench-failover.server.log.
set -euo pipefail

RUNS=${1:-5}
SIZE_MB=${2:-1024}
. "$(dirname "$0")/lib.sh"
bench_init failover
BENCH_KEEP_LOG=/tmp/dumont-bench-failover.server.log
TINY=$(dirname "$BIN")/tiny-ollama
[ -x "$TINY" ] || { echo "failover.sh: build first ($TINY missing)" >&2; exit 1; }
bench_start_server

echo "failover.sh: generating a ${SIZE_MB} MB workspace..." >&2
bash "$src/bench/gen-workspace.sh" "$tmp/ws" "$SIZE_MB" >/dev/null
"$TINY" --make-model "$tmp/ws" --size 64M >/dev/null
echo "failover.sh: launching the protected instance (copy + first snapshot)..." >&2
inst=$("$BIN" instances launch name=bench workload="$TINY" probe=ollama:tiny \
    workspace_from="$tmp/ws" snapshot_every=0)

now_ms() { echo $(( ${EPOCHREALTIME/[.,]/} / 1000 )); }
answers() {
    curl -fsS -m 2 -d '{"model":"tiny","prompt":"hi","stream":false}' "http://$1/api/generate" \
        2>/dev/null | jq -e '.response | length > 0' >/dev/null
}
addr_of() { "$BIN" instances show "$1" --json | jq -r .address; }

for _ in $(seq 1 600); do answers "$(addr_of "$inst")" && break; sleep 0.05; done
phases=(detection standby_activation gpu_search provisioning ssh_ready restore inference)
printf '%-4s %9s' run total_ms
printf ' %9s' "${phases[@]}"
printf ' %9s %9s' restore_in restore_out
echo
totals=()
overheads=()
declare -A sums
for run in $(seq 1 "$RUNS"); do
    t0=$(now_ms)
    "$BIN" chaos preempt "$inst" >/dev/null
    new=""
    for _ in $(seq 1 3000); do # up to 60 s
        fo=$("$BIN" failover list gpu_instance_id="$inst" --json | jq -c '.failovers[0] // empty')
        new=$(printf '%s' "$fo" | jq -r '.new_instance_id // empty')
        state=$(printf '%s' "$fo" | jq -r '.state // empty')
        [ "$state" = failed ] && { echo "run $run: failover failed: $(printf '%s' "$fo" | jq -r .reason)" >&2; exit 1; }
        if [ "$state" = completed ] && answers "$(addr_of "$new")"; then break; fi
        sleep 0.02
    done
    t1=$(now_ms)
    total=$((t1 - t0))
    totals+=("$total")
    id=$(printf '%s' "$fo" | jq -r .failover_id)
    st=$("$BIN" failover status "$id" --json)
    printf '%-4s %9s' "$run" "$total"
    for p in "${phases[@]}"; do
        d=$(printf '%s' "$st" | jq -r ".phases[] | select(.phase == \"$p\") | .duration_ms // 0")
        sums[$p]=$(( ${sums[$p]:-0} + d ))
        printf ' %9s' "$d"
    done
    # the restore's own time (download + decompress, as whoever restored measured it)
    # and the rest of the restore phase: commanding it (the channel), opening the store
    rin=$(printf '%s' "$st" | jq -r '(.restore_download_time_ms // 0) + (.restore_decompress_time_ms // 0)')
    rph=$(printf '%s' "$st" | jq -r '.phases[] | select(.phase == "restore") | .duration_ms // 0')
    printf ' %9s %9s' "$rin" $((rph - rin))
    overheads+=($((rph - rin)))
    echo
    # byte-identical to the snapshot it restored
    snap=$(printf '%s' "$st" | jq -r .snapshot_id)
    ws_new=$("$BIN" instances show "$new" --json | jq -r .workspace)
    rm -rf "$tmp/check"
    "$BIN" snapshot restore "$snap" "$tmp/check" --store "file://$DUMONT_HOME/store" >/dev/null 2>&1
    diff -r "$tmp/check" "$ws_new" >/dev/null || { echo "run $run: workspace differs from $snap" >&2; exit 1; }
    rm -rf "$tmp/check"
    inst=$new
done
median=$(printf '%s\n' "${totals[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}')
sum_all=0
for p in "${phases[@]}"; do sum_all=$((sum_all + ${sums[$p]})); done
echo
echo "kill -9 -> answering again, ${SIZE_MB} MB workspace: median ${median} ms over $RUNS runs (target < 5000 ms)"
omed=$(printf '%s\n' "${overheads[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}')
echo "restore phase beyond the restore itself (restore_out: commanding it, the store's opening): median ${omed} ms"
printf 'share of the recorded phases:'
for p in "${phases[@]}"; do
    [ "$sum_all" -gt 0 ] && printf ' %s %d%%' "$p" $(( 100 * ${sums[$p]} / sum_all ))
done
echo
