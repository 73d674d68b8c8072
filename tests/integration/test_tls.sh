#!/usr/bin/env bash
# TLS for the API (issue 13 part 8; server.h API-S4, client.h CLIENT-C6, agent_http.h
# AH3; docs/security.md "TLS"). A CA and certificates are made here with
# openssl. Checks: the server serves HTTPS only; the CLI verifies the
# certificate (a private CA through DUMONT_CA_FILE; no CA or the wrong CA is
# refused with a one-line reason); a local instance's agent registers and
# heartbeats over HTTPS with the same CA; unusable certificate files stop the
# server with a clear message; a plain-HTTP server on a non-loopback address
# warns and hands out no heartbeat key, while a TLS one does.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need openssl

pki="$TEST_TMP/pki"
mkdir -p "$pki"
mkca() { # NAME: a self-signed CA NAME.pem / NAME.key
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=dumont test $1" \
        -keyout "$pki/$1.key" -out "$pki/$1.pem" >/dev/null 2>&1 || fail "openssl: CA $1"
}
mkcert() { # NAME CA: a server certificate for 127.0.0.1 and localhost signed by CA
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$pki/$1.key" \
        -out "$pki/$1.csr" >/dev/null 2>&1 || fail "openssl: key $1"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial \
        -days 2 -extfile "$pki/$1.ext" -out "$pki/$1.pem" >/dev/null 2>&1 || fail "openssl: cert $1"
}
mkca ca
mkca other
mkcert server ca
mkcert stranger other
chmod 600 "$pki"/*.key

# ---- 1. unusable certificate files: the server says why and exits ----
new_home
"$DUMONT_BIN" server --listen 127.0.0.1:0 --tls-cert "$pki/missing.pem" --tls-key "$pki/server.key" \
    >"$TEST_TMP/bad1.log" 2>&1
assert_eq 1 "$?" "a missing certificate stops the server"
assert_contains "$(cat "$TEST_TMP/bad1.log")" "cannot use the TLS certificate" "the reason names the certificate"
"$DUMONT_BIN" server --listen 127.0.0.1:0 --tls-cert "$pki/server.pem" >"$TEST_TMP/bad2.log" 2>&1
assert_eq 1 "$?" "a certificate without a key stops the server"
assert_contains "$(cat "$TEST_TMP/bad2.log")" "needs its private key" "the reason names the key"
"$DUMONT_BIN" server --listen 127.0.0.1:0 --tls-cert "$pki/server.pem" --tls-key "$pki/stranger.key" \
    >"$TEST_TMP/bad3.log" 2>&1
assert_eq 1 "$?" "a key that does not match the certificate stops the server"
assert_contains "$(cat "$TEST_TMP/bad3.log")" "not usable" "the reason says the pair is not usable"

# ---- 2. an HTTPS server and a CLI that verifies it ----
export DUMONT_CA_FILE="$pki/ca.pem"
SERVER_SCHEME=https start_server --tls-cert "$pki/server.pem" --tls-key "$pki/server.key"
assert_contains "$(cat "$SERVER_LOG")" "tls=1" "the server logs that it serves TLS"
assert_match "$DUMONT_URL" '^https://' "the test talks https"
cli_ok failover test-setup gpu_instance_id=4242
cli_ok failover simulate 4242 --wait
cli_ok failover report --json
assert_eq 1 "$(printf '%s' "$CLI_OUT" | jq -r '.all.total // .total')" "the simulated failover is in the report"

DUMONT_CA_FILE="" cli failover list
assert_ne 0 "$CLI_RC" "without the private CA the CLI refuses the certificate"
assert_contains "$CLI_ERR" "not trusted" "the reason says the certificate is not trusted"
DUMONT_CA_FILE="$pki/other.pem" cli failover list
assert_ne 0 "$CLI_RC" "with another CA the CLI refuses the certificate"
assert_contains "$CLI_ERR" "DUMONT_CA_FILE" "the reason points at DUMONT_CA_FILE"
DUMONT_CA_FILE="$pki/nothing.pem" cli failover list
assert_ne 0 "$CLI_RC" "an unreadable CA file is an error"
assert_one_line "$CLI_ERR" "the CA-file error"

# Plain HTTP to the TLS port is never served.
plain=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "@$TEST_TMP/auth.header" \
    "http://127.0.0.1:$SERVER_PORT/api/workloads" 2>/dev/null)
assert_ne 200 "$plain" "plain HTTP on the TLS port answers nothing useful"

# ---- 3. a local instance's agent registers and heartbeats over HTTPS ----
ws="$TEST_TMP/ws"
tiny_workspace "$ws" 2M
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=0
inst=$CLI_OUT
assert_match "$inst" '^[0-9]+$' "instances launch over TLS prints the new id"
wait_for 30 "instance $inst healthy over TLS" instance_state_is "$inst" healthy
ws_real=$(readlink -f "$DUMONT_HOME/instances/$inst/workspace")
agent_pid=$(pgrep -f -- "agent .*--workspace $ws_real" | head -n 1)
[ -n "$agent_pid" ] || fail "no agent process of instance $inst"
agent_env=$(tr '\0' '\n' <"/proc/$agent_pid/environ")
assert_contains "$agent_env" "DUMONT_URL=https://127.0.0.1:$SERVER_PORT" "the agent is given the https URL"
assert_contains "$agent_env" "DUMONT_CA_FILE=$pki/ca.pem" "the agent is given the CA to verify it"
cli_ok instances destroy "$inst"
stop_server

# ---- 4. listening on every address: secrets only over TLS ----
unset DUMONT_CA_FILE
new_home
SERVER_HOST=0.0.0.0 start_server --provider none
assert_contains "$(cat "$SERVER_LOG")" "server.plaintext" "plain HTTP off loopback is warned about"
api POST /api/instances/register -H 'Content-Type: application/json' -d '{"instance_id": 777}'
assert_status 403 "registration (it hands out a heartbeat key) over plain HTTP off loopback"
assert_json '.error' tls_required "the refusal says TLS is required"
api GET /api/workloads
assert_status 200 "other routes still answer"
stop_server

new_home
export DUMONT_CA_FILE="$pki/ca.pem"
SERVER_SCHEME=https SERVER_HOST=0.0.0.0 start_server --provider none \
    --tls-cert "$pki/server.pem" --tls-key "$pki/server.key"
assert_not_contains "$(cat "$SERVER_LOG")" "server.plaintext" "no plaintext warning with TLS"
api POST /api/instances/register -H 'Content-Type: application/json' -d '{"instance_id": 777}'
assert_status 201 "registration over TLS off loopback"
assert_match "$(printf '%s' "$HTTP_BODY" | jq -r .key)" '^[0-9a-f]{64}$' "the heartbeat key is handed out over TLS"
stop_server
assert_eq 0 "$SERVER_RC" "the TLS server stops cleanly"
log "ok"
