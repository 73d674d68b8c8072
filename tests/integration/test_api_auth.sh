#!/usr/bin/env bash
# The REST API's front door (docs/api.md "Authentication", "Errors"): the token
# file, bearer-token checks, and the JSON error answers for bad requests.
#
# A1: the token file is created on first start, mode 0600, and kept across
#     restarts; the token never appears in the server log.
# A2: every /api/ path needs the token (401 JSON without it or with a wrong
#     one); /healthz does not.
# A3: bad requests get the documented status and a JSON {error, detail}.
. "$(dirname "$0")/lib.sh"
lib_init

new_home
start_server --log-level debug
F=/api/standby/failover

# ---- A1: the token file
assert_eq 600 "$(stat -c %a "$DUMONT_HOME/token")" "token file mode"
assert_match "$TOKEN" '^[[:graph:]]{32,}$' "token looks like a random secret"

# ---- A2: authentication
api_noauth GET /healthz
assert_status 200 "/healthz without a token"
assert_json .status ok "/healthz status"

api_noauth GET "$F/report"
assert_api_error 401 unauthorized "report without a token"

printf 'Authorization: Bearer %s\n' "wrong-$TOKEN" >"$TEST_TMP/wrong.header"
api_as "$TEST_TMP/wrong.header" GET "$F/report"
assert_api_error 401 unauthorized "report with a wrong token"

printf 'Authorization: Bearer %s\n' "${TOKEN%?}" >"$TEST_TMP/short.header"
api_as "$TEST_TMP/short.header" GET "$F/report"
assert_api_error 401 unauthorized "report with the token less its last character"

printf 'Authorization: Basic %s\n' "$TOKEN" >"$TEST_TMP/basic.header"
api_as "$TEST_TMP/basic.header" GET "$F/report"
assert_api_error 401 unauthorized "token given with the Basic scheme"

api_noauth POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": 5}'
assert_api_error 401 unauthorized "test-setup without a token"
api GET "$F/status/sim-does-not-exist"
assert_api_error 404 not_found "status of an unknown failover id"
api_noauth GET "$F/list"
assert_api_error 401 unauthorized "list without a token"

printf 'Authorization: bearer %s\n' "$TOKEN" >"$TEST_TMP/lower.header"
api_as "$TEST_TMP/lower.header" GET "$F/report"
assert_status 200 "the auth scheme is case-insensitive (RFC 9110 11.1)"

api HEAD "$F/report" -I
assert_status 200 "HEAD on a GET endpoint"

api GET "$F/report"
assert_status 200 "report with the right token"
assert_json '.all.total' 0 "report of an empty database"

# The CLI takes DUMONT_TOKEN before the token file, and never prints it.
DUMONT_TOKEN="not-the-token" cli failover report
assert_cli_rc 1 "CLI with a wrong DUMONT_TOKEN"
assert_one_line "$CLI_ERR" "CLI error with a wrong token"
assert_not_contains "$CLI_ERR$CLI_OUT" "not-the-token" "CLI output with a wrong token"
DUMONT_TOKEN="$TOKEN" cli failover report --json
assert_cli_rc 0 "CLI with the right DUMONT_TOKEN"
assert_not_contains "$CLI_ERR$CLI_OUT" "$TOKEN" "CLI output"

# ---- A3: errors
api GET /api/standby/failover/nope
assert_api_error 404 not_found "unknown path under /api"
api GET /nope
assert_status 404 "unknown path outside /api"
assert_json .error not_found "unknown path outside /api"

api DELETE "$F/report"
assert_api_error 405 method_not_allowed "DELETE on report"
assert_match "$HTTP_HEADERS" $'(^|\n)[Aa]llow: [^\n]*GET' "Allow header on 405"
api GET "$F/test-setup"
assert_api_error 405 method_not_allowed "GET on test-setup"
assert_match "$HTTP_HEADERS" $'(^|\n)[Aa]llow: [^\n]*POST' "Allow header on 405"

api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": '
assert_api_error 400 bad_request "malformed JSON body"
api POST "$F/test-setup" -H 'Content-Type: application/json' -d '[1, 2]'
assert_api_error 400 bad_request "a JSON array instead of an object"
api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": "12"}'
assert_api_error 400 bad_request "gpu_instance_id as a string"
api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": 0}'
assert_api_error 400 bad_request "gpu_instance_id 0"
api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": 1.5}'
assert_api_error 400 bad_request "gpu_instance_id 1.5"
api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{}'
assert_api_error 400 bad_request "gpu_instance_id missing"

# A body over 64 KiB: refused whole, valid JSON or not.
{
    printf '{"gpu_instance_id": 7, "standby_id": "'
    head -c 70000 /dev/zero | tr '\0' 'a'
    printf '"}'
} >"$TEST_TMP/big.json"
api POST "$F/test-setup" -H 'Content-Type: application/json' --data-binary "@$TEST_TMP/big.json"
assert_api_error 413 payload_too_large "70000-byte body"
api GET "$F/status/nope"
assert_api_error 404 not_found "the server still answers after a 413"

for bad in abc 12abc -5 0 99999999999999999999999 1.5; do
    api POST "$F/simulate/$bad"
    assert_api_error 400 bad_request "simulate/$bad"
done
api POST "$F/simulate/424242"
assert_api_error 404 not_found "simulate of a GPU without test-setup"

api POST "$F/test-setup" -H 'Content-Type: application/json' -d '{"gpu_instance_id": 12345}'
assert_status 201 "test-setup"
assert_json .gpu_instance_id 12345 "test-setup answer"
api POST "$F/simulate/12345" -H 'Content-Type: application/json' -d '{"fail_phase": "nope"}'
assert_api_error 400 bad_request "simulate with an unknown fail_phase"
api POST "$F/simulate/12345" -H 'Content-Type: application/json' -d '{"speed": -1}'
assert_api_error 400 bad_request "simulate with a negative speed"
api POST "$F/simulate/12345" -H 'Content-Type: application/json' -d '{"speed": "fast"}'
assert_api_error 400 bad_request "simulate with speed as a string"

api GET "$F/list?limit=abc"
assert_api_error 400 bad_request "list?limit=abc"
api GET "$F/report?kind=bogus"
assert_api_error 400 bad_request "report?kind=bogus"
api GET "$F/report?since=yesterday"
assert_api_error 400 bad_request "report?since=yesterday"

api POST "$F/test-real/12345"
assert_api_error 404 not_found "test-real of an instance no provider made"

# ---- A1 again: the log never saw the token, a restart keeps it.
stop_server TERM
assert_eq 0 "$SERVER_RC" "server exit status on SIGTERM"
if grep -qF "$TOKEN" "$SERVER_LOG"; then
    fail "the API token appears in the server log"
fi
if grep -qF "wrong-$TOKEN" "$SERVER_LOG"; then
    fail "a presented (wrong) token appears in the server log"
fi
old=$TOKEN
start_server
assert_eq "$old" "$TOKEN" "token after a restart"
assert_eq 600 "$(stat -c %a "$DUMONT_HOME/token")" "token file mode after a restart"

log "PASS"
