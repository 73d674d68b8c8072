#!/usr/bin/env bash
# Scoped credentials (docs/security.md "Roles"; src/db/db_token.h DB-T1 to DB-T4,
# src/api/gate.h GATE-G4, src/api/dashboard.h API-D5):
#
# K1: `dumont tokens create` prints a token once; `tokens list` (and --json)
#     shows name, role, instance, created, last used, never a secret; the
#     server log and the database never hold one (only its SHA-256).
# K2: a viewer reads (reports, lists, workloads) and is refused (403) every
#     route that acts, and the token routes; a client is refused everything
#     but public routes; an agent token acts only for its own instance.
# K3: a dashboard session carries its token's role: a viewer's session sees
#     but cannot start a failover; agent and client tokens cannot sign in.
# K4: revoke takes effect at once (401); tokens outlive a server restart;
#     last used is recorded (at most once a minute per token).
# K5: bad requests: duplicate name 409, name "admin" / role admin / agent
#     without an instance 400, revoke of an unknown name 404.
. "$(dirname "$0")/lib.sh"
lib_init

new_home
start_server
F=/api/standby/failover

# K1
cli_ok tokens create role=viewer name=grafana --json
VIEWER=$(jq -r .token <<<"$CLI_OUT")
assert_match "$VIEWER" '^[0-9a-f]{64}$' "viewer token"
assert_json_cli() { assert_eq "$2" "$(jq -r "$1" <<<"$CLI_OUT")" "$3"; }
assert_json_cli .role viewer "create answer role"
cli_ok tokens create role=client name=app
CLIENT=$(tail -n1 <<<"$CLI_OUT")
assert_match "$CLIENT" '^[0-9a-f]{64}$' "client token (the table form prints it last)"
cli_ok tokens create role=agent name=hand-20001 instance=20001 --json
AGENT=$(jq -r .token <<<"$CLI_OUT")
cli_ok tokens create role=agent name=hand-20002 instance=20002 --json
AGENT2=$(jq -r .token <<<"$CLI_OUT")
cli_ok tokens list
assert_contains "$CLI_OUT" grafana "tokens list"
assert_contains "$CLI_OUT" hand-20001 "tokens list"
cli_ok tokens list --json
assert_eq 4 "$(jq '.total' <<<"$CLI_OUT")" "four tokens"
assert_eq 20001 "$(jq -r '.tokens[] | select(.name == "hand-20001") | .instance_id' <<<"$CLI_OUT")" \
    "agent token's instance"
for t in "$VIEWER" "$CLIENT" "$AGENT" "$AGENT2"; do
    assert_not_contains "$CLI_OUT" "$t" "tokens list --json"
done
cli_ok tokens list
for t in "$VIEWER" "$CLIENT" "$AGENT"; do
    assert_not_contains "$CLI_OUT" "$t" "tokens list"
done
if command -v sqlite3 >/dev/null 2>&1; then
    dump=$(sqlite3 "$DUMONT_HOME/dumont.db" .dump)
    assert_not_contains "$dump" "$VIEWER" "the database"
    assert_contains "$dump" "$(printf '%s' "$VIEWER" | sha256sum | cut -d' ' -f1)" \
        "the database holds the token's SHA-256"
fi

hdr() { # hdr NAME TOKEN: a header file for api_as
    printf 'Authorization: Bearer %s\n' "$2" >"$TEST_TMP/$1.header"
}
hdr viewer "$VIEWER"
hdr client "$CLIENT"
hdr agent "$AGENT"
hdr agent2 "$AGENT2"
as() { # as WHO METHOD PATH [CURL ARGS]
    local who=$1
    shift
    api_as "$TEST_TMP/$who.header" "$@"
}

# K2: viewer
api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": 30001}'
assert_status 201 "admin test-setup"
for p in "$F/report" "$F/list" /api/instances /api/workloads "$F/test-real/history" \
    /api/instances/20001/snapshots; do
    as viewer GET "$p"
    assert_status 200 "viewer GET $p"
done
as viewer POST "$F/simulate/30001" -H 'Content-Type: application/json' -d '{}'
assert_api_error 403 forbidden "viewer simulate"
as viewer POST /api/instances/launch -H 'Content-Type: application/json' -d '{"workload": "true"}'
assert_api_error 403 forbidden "viewer launch"
as viewer DELETE /api/instances/20001
assert_api_error 403 forbidden "viewer destroy"
as viewer POST /api/chaos/preempt/20001
assert_api_error 403 forbidden "viewer chaos"
as viewer GET /api/tokens
assert_api_error 403 forbidden "viewer lists tokens"
as viewer POST /api/tokens -H 'Content-Type: application/json' -d '{"role": "viewer", "name": "x"}'
assert_api_error 403 forbidden "viewer creates a token"
as viewer POST /api/instances/register -H 'Content-Type: application/json' \
    -d '{"instance_id": 20001}'
assert_api_error 403 forbidden "viewer registers an instance"
DUMONT_TOKEN=$VIEWER cli failover simulate 30001
assert_cli_rc 1 "CLI simulate with a viewer token"
DUMONT_TOKEN=$VIEWER cli_ok failover report

# K2: client
for p in "$F/report" /api/instances /api/workloads /api/tokens; do
    as client GET "$p"
    assert_api_error 403 forbidden "client GET $p"
done
as client GET /healthz
assert_status 200 "client /healthz"

# K2: agent of 20001
as agent POST /api/instances/register -H 'Content-Type: application/json' \
    -d '{"instance_id": 20002}'
assert_api_error 403 forbidden "agent of 20001 registers 20002"
as agent POST /api/instances/register -H 'Content-Type: application/json' \
    -d '{"instance_id": 20001, "kind": "gpu"}'
assert_status 201 "agent of 20001 registers itself"
assert_match "$(jq -r .key <<<"$HTTP_BODY")" '^[0-9a-f]+$' "the heartbeat key"
as agent2 POST /api/instances/register -H 'Content-Type: application/json' \
    -d '{"instance_id": 20001}'
assert_api_error 403 forbidden "agent of 20002 registers 20001"
as agent POST /api/instances/20002/snapshots -H 'Content-Type: application/json' -d '{}'
assert_api_error 403 forbidden "agent of 20001 reports for 20002"
as agent POST /api/instances/20001/snapshots -H 'Content-Type: application/json' -d '{}'
assert_ne 403 "$HTTP_STATUS" "agent of 20001 reports for itself (past the gate)"
assert_ne 401 "$HTTP_STATUS" "agent of 20001 reports for itself (past the gate)"
for r in "GET /api/workloads" "GET /api/instances" "GET /api/instances/20001" "GET $F/report" \
    "POST /api/instances/launch" "DELETE /api/instances/20001" "POST /api/chaos/preempt/20001" \
    "POST $F/simulate/30001" "GET /api/tokens"; do
    read -r m p <<<"$r"
    as agent "$m" "$p" -H 'Content-Type: application/json' -d '{}'
    assert_api_error 403 forbidden "agent $m $p"
done

# K3: the dashboard session carries the role
api_noauth POST /api/session -H 'Content-Type: application/json' -d "{\"token\": \"$VIEWER\"}"
assert_status 204 "viewer signs in"
cookie=$(grep -io 'dumont_session=[0-9a-f]*' <<<"$HTTP_HEADERS" | head -n1)
assert_match "$cookie" '=[0-9a-f]{64}$' "session cookie"
api_noauth GET /api/session -H "Cookie: $cookie"
assert_json .authenticated true "viewer session"
assert_json .role viewer "the session's role"
api_noauth GET /api/workloads -H "Cookie: $cookie"
assert_status 200 "viewer session reads"
api_noauth POST "$F/simulate/30001" -H "Cookie: $cookie" -H 'X-Dumont-Request: 1' \
    -H 'Content-Type: application/json' -d '{}'
assert_api_error 403 forbidden "viewer session starts a failover"
api_noauth POST /api/session -H 'Content-Type: application/json' -d "{\"token\": \"$TOKEN\"}"
assert_status 204 "admin signs in"
acookie=$(grep -io 'dumont_session=[0-9a-f]*' <<<"$HTTP_HEADERS" | head -n1)
api_noauth POST "$F/simulate/30001" -H "Cookie: $acookie" -H 'X-Dumont-Request: 1' \
    -H 'Content-Type: application/json' -d '{"speed": 1000}'
assert_status 202 "admin session starts a failover"
for t in "$AGENT" "$CLIENT"; do
    api_noauth POST /api/session -H 'Content-Type: application/json' -d "{\"token\": \"$t\"}"
    assert_api_error 403 forbidden "an agent or client token signs in"
done

# K4: last used, revoke, restart
cli_ok tokens list --json
assert_match "$(jq -r '.tokens[] | select(.name == "grafana") | .last_used_at' <<<"$CLI_OUT")" \
    '^20[0-9]{2}-' "the viewer's last use is recorded"
cli_ok tokens revoke hand-20002
as agent2 POST /api/instances/register -H 'Content-Type: application/json' \
    -d '{"instance_id": 20002}'
assert_api_error 401 unauthorized "a revoked token"
stop_server TERM
start_server
as viewer GET "$F/report"
assert_status 200 "a viewer token after a restart"
as agent2 GET "$F/report"
assert_api_error 401 unauthorized "a revoked token after a restart"

# K5
cli tokens create role=viewer name=grafana
assert_cli_rc 1 "a duplicate name"
assert_contains "$CLI_ERR" "exists" "duplicate name reason"
api POST /api/tokens -H 'Content-Type: application/json' -d '{"role": "viewer", "name": "grafana"}'
assert_api_error 409 conflict "a duplicate name"
for b in '{"role": "viewer", "name": "admin"}' '{"role": "admin", "name": "root2"}' \
    '{"role": "agent", "name": "a"}' '{"role": "viewer", "name": "v", "instance_id": 3}' \
    '{"role": "viewer", "name": "a b"}' '{"role": "viewer"}' '{"role": "viewer", "name": "x", "y": 1}'; do
    api POST /api/tokens -H 'Content-Type: application/json' -d "$b"
    assert_api_error 400 bad_request "create $b"
done
cli tokens revoke nobody-has-this
assert_cli_rc 1 "revoke of an unknown name"
api DELETE /api/tokens/nobody-has-this
assert_api_error 404 not_found "revoke of an unknown name"

# K1: no secret in the server log
for t in "$VIEWER" "$CLIENT" "$AGENT" "$AGENT2"; do
    assert_not_contains "$(cat "$SERVER_LOG")" "$t" "server log"
done
log "PASS"
