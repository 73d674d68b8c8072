#!/usr/bin/env bash
# The cost of a Prometheus scrape of GET /metrics (issue 20: p50 under 5 ms
# with 10,000 failovers and 1,000 instances in the database), side by side
# with GET /api/standby/failover/report (which reads the database) and, when
# Debian's prometheus-node-exporter is installed, that exporter's /metrics.
#
#   bench/metrics.sh [FAILOVERS [INSTANCES [SCRAPES]]]     default 10000 1000 500
#
# Fills a fresh SQLite database with FAILOVERS ended failovers (bench_report's
# generator), starts the server on it, registers INSTANCES instances, then
# times SCRAPES requests of each endpoint over one kept-alive connection
# (curl's time_total per transfer) and prints median, p95 and the ratio.
set -euo pipefail

FAILOVERS=${1:-10000}
INSTANCES=${2:-1000}
SCRAPES=${3:-500}
. "$(dirname "$0")/lib.sh"
bench_init metrics
FILL=$(dirname "$BIN")/bench/bench_report
[ -x "$FILL" ] || { echo "metrics.sh: build first ($FILL missing)" >&2; exit 1; }

echo "metrics: filling $FAILOVERS failovers ..." >&2
"$FILL" "$DUMONT_HOME/dumont.db" "$FAILOVERS" 1 >/dev/null
bench_start_server --heartbeat-listen 127.0.0.1:0 --log-level warn --provider none
hdr=$tmp/auth.header
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$DUMONT_HOME/token")" >"$hdr")
echo "metrics: registering $INSTANCES instances ..." >&2
for i in $(seq 1 "$INSTANCES"); do # one connection; each request its own body (`next`)
    printf 'url = "%s/api/instances/register"\nheader = "@%s"\nheader = "Content-Type: application/json"\n' \
        "$DUMONT_URL" "$hdr"
    printf 'data = "{\\"instance_id\\": %d}"\noutput = /dev/null\nnext\n' $((100000 + i))
done | sed '$d' >"$tmp/register.curl" # no `next` after the last
curl -s -K "$tmp/register.curl"
got=$(curl -s -H @"$hdr" "$DUMONT_URL/metrics" | awk '/^dumont_instances\{/ { n += $2 } END { print n + 0 }')
[ "$got" -ge "$INSTANCES" ] || { echo "metrics.sh: only $got instances registered" >&2; exit 1; }

times() { # URL [CURL ARGS...]: SCRAPES transfers on one connection, one time_total (s) a line
    local url=$1
    shift
    for _ in $(seq 1 "$SCRAPES"); do printf 'url = "%s"\noutput = /dev/null\n' "$url"; done >"$tmp/urls"
    curl -s "$@" -w '%{time_total}\n' -K "$tmp/urls"
}
stats() { # NAME: prints median and p95 (ms) of the times on stdin; the median into $tmp/median
    sort -n | awk -v name="$1" -v out="$tmp/median" '{ v[NR] = $1 * 1000 }
        END { printf "%-36s median %7.3f ms   p95 %7.3f ms   (n=%d)\n", name, v[int((NR + 1) / 2)],
              v[int(NR * 0.95 + 0.999)], NR; printf "%f\n", v[int((NR + 1) / 2)] > out }'
}
size=$(curl -s -H @"$hdr" "$DUMONT_URL/metrics" | wc -c)
echo "metrics: $FAILOVERS failovers, $INSTANCES instances, /metrics is $size bytes;" \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
times "$DUMONT_URL/metrics" -H @"$hdr" | stats "dumont GET /metrics"
ours=$(cat "$tmp/median")
times "$DUMONT_URL/api/standby/failover/report" -H @"$hdr" | stats "dumont GET .../failover/report"
report=$(cat "$tmp/median")
awk -v a="$ours" -v b="$report" 'BEGIN { printf "ratio report / metrics: %.1fx\n", b / a }'
if command -v prometheus-node-exporter >/dev/null; then
    ne_port=$((20000 + RANDOM % 30000))
    prometheus-node-exporter --web.listen-address="127.0.0.1:$ne_port" >"$tmp/ne.log" 2>&1 &
    BENCH_PIDS+=($!)
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ne_port/metrics" >/dev/null && break; sleep 0.05; done
    times "http://127.0.0.1:$ne_port/metrics" | stats "prometheus-node-exporter /metrics"
    awk -v a="$ours" -v b="$(cat "$tmp/median")" 'BEGIN { printf "ratio node-exporter / dumont: %.1fx\n", b / a }'
else
    echo "(prometheus-node-exporter is not installed: no exporter side by side)"
fi
awk -v a="$ours" 'BEGIN { exit !(a < 5) }' && echo "target p50 < 5 ms: met" || echo "target p50 < 5 ms: NOT met"
