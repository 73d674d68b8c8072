#!/usr/bin/env bash
# Offers during a real failover (orchestrator.h ORCH-O8, market.h PROV-MK4): an offer
# the "cloud" refuses to provision is retried on the next one; a workload
# whose only compatible host failed gets a failed failover with a clear
# reason, and is marked failed.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 1M

new_home
cat >"$DUMONT_HOME/market.json" <<'EOF'
{"offers": [
  {"id": "good-1", "host": "h1", "gpu_name": "RTX 4090", "vram_gb": 24, "cuda": 12.4,
   "price_per_h": 0.10, "region": "eu", "reliability": 0.99},
  {"id": "bad-1", "host": "h2", "gpu_name": "RTX 4090", "vram_gb": 24, "cuda": 12.4,
   "price_per_h": 0.20, "region": "eu", "reliability": 0.99,
   "provision_error": "offer taken by another user"},
  {"id": "good-2", "host": "h3", "gpu_name": "RTX 4090", "vram_gb": 24, "cuda": 12.4,
   "price_per_h": 0.30, "region": "eu", "reliability": 0.99},
  {"id": "solo-1", "host": "h4", "gpu_name": "A100", "vram_gb": 80, "cuda": 12.4,
   "price_per_h": 1.50, "region": "solo", "reliability": 0.99}
]}
EOF
start_server

# ---- a refused offer is retried on the next one ----
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
first=$CLI_OUT
wait_for 30 "instance $first healthy" instance_state_is "$first" healthy
cli_ok chaos preempt "$first"
wait_for 60 "the failover of $first" failover_done "$first"
assert_json .success true "failover with a refused offer" "$FO"
assert_json .attempts 2 "two offers tried" "$FO"
fo_id=$(printf '%s' "$FO" | jq -r .failover_id)
cli_ok failover status "$fo_id" --json
assert_contains "$CLI_OUT" "offer taken by another user" "the refusal is recorded"
second=$(printf '%s' "$FO" | jq -r .new_instance_id)
cli_ok instances show "$second" --json
assert_json .state healthy "the new instance (on the next offer) is healthy" "$CLI_OUT"

# ---- no compatible offer left: a clear failure, the workload failed ----
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" \
    snapshot_every=0 region=solo name=solo
solo=$CLI_OUT
wait_for 30 "instance $solo healthy" instance_state_is "$solo" healthy
cli_ok chaos preempt "$solo"
wait_for 60 "the failover of $solo" failover_done "$solo"
assert_json .success false "no offer: the failover fails" "$FO"
assert_contains "$(printf '%s' "$FO" | jq -r .reason)" "no compatible offer" "the reason"
assert_contains "$(printf '%s' "$FO" | jq -r .reason)" "h4" "the excluded host is named"
api GET /api/workloads
assert_json '.workloads[] | select(.name == "solo") | .state' failed "the workload is failed"
log "ok: retried past a refused offer ($first -> $second); no offer for $solo fails clearly"
