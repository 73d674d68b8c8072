#!/usr/bin/env bash
# GET /metrics (docs/metrics.md; src/api/metrics.c API-AM1 to API-AM3) against real
# peers: `promtool check metrics` on the output, and a real Prometheus server
# (Debian's prometheus) scraping the server on loopback with a viewer token,
# queried through its HTTP API. Also: the counters survive a restart (rebuilt
# from the database), a real failover shows in the failover, phase and
# detection families, the snapshot store's requests move with a snapshot
# (src/store/store_stats.c), the Grafana dashboard names only metrics the
# scrape returned, and the alert rules load.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need promtool prometheus

src=${DUMONT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
new_home
start_server

# ---- 1. who may scrape ----
api_noauth GET /metrics
assert_status 401 "/metrics without a token"
cli_ok tokens create role=viewer name=prometheus
viewer=$(printf '%s\n' "$CLI_OUT" | grep -Eo '[0-9a-f]{64}' | head -n 1)
[ -n "$viewer" ] || fail "tokens create printed no token: $CLI_OUT"
(umask 077 && printf '%s' "$viewer" >"$TEST_TMP/viewer.token" &&
    printf 'Authorization: Bearer %s\n' "$viewer" >"$TEST_TMP/viewer.header")

scrape() { # into METRICS, with the viewer's token
    api_as "$TEST_TMP/viewer.header" GET /metrics
    assert_status 200 "/metrics with a viewer token"
    METRICS=$HTTP_BODY
}
sample() { # NAME{LABELS}: the value of that exact series in METRICS ("" if absent)
    printf '%s\n' "$METRICS" | awk -v k="$1" '$1 == k { print $2 }'
}

# ---- 2. a few simulated failovers, then the exposition format ----
cli_ok failover test-setup gpu_instance_id=9001
cli_ok failover simulate 9001 --wait
cli_ok failover simulate 9001 --wait
cli failover simulate 9001 fail_phase=provisioning --wait
scrape
assert_contains "$(printf '%s' "$HTTP_HEADERS" | tr 'A-Z' 'a-z')" "content-type: text/plain; version=0.0.4" \
    "the exposition content type"
printf '%s\n' "$METRICS" >"$TEST_TMP/metrics.txt"
promtool check metrics <"$TEST_TMP/metrics.txt" >"$TEST_TMP/promtool.out" 2>&1 ||
    fail "promtool check metrics: $(cat "$TEST_TMP/promtool.out")"
assert_eq 2 "$(sample 'dumont_failovers_total{kind="simulated",trigger="simulate",result="completed"}')" \
    "completed simulated failovers"
assert_eq 1 "$(sample 'dumont_failovers_total{kind="simulated",trigger="simulate",result="failed"}')" \
    "failed simulated failovers"
assert_eq 3 "$(sample 'dumont_failover_duration_seconds_count{kind="simulated"}')" "MTTR histogram count"
assert_eq 1 "$(sample 'dumont_build_info{version="0.1.0"}')" "build info"
assert_match "$(sample process_resident_memory_bytes)" '^[0-9]+$' "process RSS"
assert_match "$(sample process_open_fds)" '^[0-9]+$' "process open fds"
assert_eq 0 "$(sample dumont_store_retries_total)" "no store retries (file://)"

# ---- 3. counters are rebuilt from the database after a restart ----
stop_server
KEEP_PORT=$SERVER_PORT start_server
rebuilt() { scrape && [ "$(sample 'dumont_failover_duration_seconds_count{kind="simulated"}')" = 3 ]; }
wait_for 20 "the counters rebuilt from the database" rebuilt # AM4: on its own thread
assert_eq 2 "$(sample 'dumont_failovers_total{kind="simulated",trigger="simulate",result="completed"}')" \
    "completed simulated failovers after a restart"
assert_eq 3 "$(sample 'dumont_failover_duration_seconds_count{kind="simulated"}')" \
    "MTTR histogram after a restart"

# ---- 4. a real failover: failover, phase, detection and snapshot families ----
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 2M
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=1s
inst=$CLI_OUT
wait_for 30 "instance $inst healthy" instance_state_is "$inst" healthy
store_gets() { sample 'dumont_store_requests_total{store="file",op="get",code="ok"}'; }
gets_before=$(store_gets)
snap_reported() { scrape && [ -n "$(sample 'dumont_snapshots_total{result="accepted"}')" ]; }
wait_for 30 "a snapshot report counted" snap_reported
# this server read the store: the launch's first snapshot, the report's manifest (snapstore.c)
gets_after=$(store_gets)
assert_match "$gets_after" '^[0-9]+$' "file:// gets counted"
[ "$gets_after" -gt "${gets_before:-0}" ] ||
    fail "the store's get count did not move with a snapshot (${gets_before:-0} -> $gets_after)"
cli_ok chaos preempt "$inst"
wait_for 60 "the failover of $inst" failover_of "$inst"
wait_for 90 "the failover of $inst done" failover_done "$inst"
scrape
assert_eq 1 "$(sample 'dumont_failovers_total{kind="real",trigger="failed",result="completed"}')" \
    "the real failover is counted"
assert_eq 1 "$(sample 'dumont_detection_seconds_count')" "one detection observed"
det=$(sample 'dumont_detection_seconds_sum')
awk -v d="$det" 'BEGIN { exit !(d > 0 && d < 2) }' || fail "detection took $det s (expected under 2 s)"
assert_eq 1 "$(sample 'dumont_failover_phase_duration_seconds_count{kind="real",phase="restore"}')" \
    "the restore phase is in the phase histogram"
# the restore is the new agent's own work (docs/provider.md "The control channel"): the
# store reads are that process's, not this server's
assert_json .restore_source primary "the agent restored from the primary" "$FO"
printf '%s\n' "$METRICS" >"$TEST_TMP/metrics-store.txt"
promtool check metrics <"$TEST_TMP/metrics-store.txt" >"$TEST_TMP/promtool.out" 2>&1 ||
    fail "promtool check metrics with store series: $(cat "$TEST_TMP/promtool.out")"
age=$(printf '%s\n' "$METRICS" | awk '/^dumont_snapshot_age_seconds\{/ { print $2; exit }')
awk -v a="$age" 'BEGIN { exit !(a >= 0 && a < 120) }' || fail "snapshot age $age"
assert_match "$(sample 'dumont_instances{state="healthy"}')" '^[1-9][0-9]*$' "a healthy instance counted"
cli_ok instances

# ---- 5. a real Prometheus scrapes it ----
prom_port=$(free_port)
mkdir -p "$TEST_TMP/prom"
cat >"$TEST_TMP/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$src/contrib/prometheus/alerts.yml"]
scrape_configs:
  - job_name: dumont
    metrics_path: /metrics
    authorization:
      credentials_file: $TEST_TMP/viewer.token
    static_configs:
      - targets: ["127.0.0.1:$SERVER_PORT"]
EOF
promtool check config "$TEST_TMP/prom/prometheus.yml" >"$TEST_TMP/promtool.out" 2>&1 ||
    fail "promtool check config: $(cat "$TEST_TMP/promtool.out")"
prometheus --config.file="$TEST_TMP/prom/prometheus.yml" --storage.tsdb.path="$TEST_TMP/prom/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$TEST_TMP/prom/log" 2>&1 &
prom_pid=$!
trap 'kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; lib_cleanup' EXIT
promql() { # QUERY: the first result's value
    curl -s -m 5 --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" |
        jq -r '.data.result[0].value[1] // empty' 2>/dev/null
}
scraped() { [ "$(promql 'sum(dumont_failovers_total)')" = 4 ]; }
wait_for 60 "Prometheus scraped dumont_failovers_total = 4" scraped
assert_eq 1 "$(promql 'up{job="dumont"}')" "Prometheus sees the target up"
assert_eq 1 "$(promql 'sum(dumont_failovers_total{kind="real",result="completed"})')" \
    "Prometheus has the real failover"
rules=$(curl -s -m 5 "http://127.0.0.1:$prom_port/api/v1/rules" | jq '[.data.groups[].rules[]] | length')
assert_eq 5 "$rules" "Prometheus loaded the alert rules"

# ---- 6. the Grafana dashboard names only metrics the scrape returned ----
printf '%s\n' "$METRICS" | awk '/^# TYPE / { print $3 }' | sort -u >"$TEST_TMP/families"
jq -r '.panels[].targets[].expr' "$src/contrib/grafana/dumont.json" |
    grep -Eo '\b(dumont|process)_[a-z_]+' | sed -E 's/_(bucket|sum|count)$//' | sort -u >"$TEST_TMP/used"
[ -s "$TEST_TMP/used" ] || fail "the dashboard names no metric"
missing=$(comm -23 "$TEST_TMP/used" "$TEST_TMP/families")
[ -z "$missing" ] || fail "the Grafana dashboard uses metrics /metrics does not serve: $missing"
log "ok"
