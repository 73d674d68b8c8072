#!/usr/bin/env bash
# The bootstrap routes over HTTP (docs/deploy.md; routes_bootstrap.c API-B1,
# API-B2). The bootstrap line itself, on a bare Debian 11 root, is
# tests/portable/test_portable_agent.sh (scripts/portable-agent.sh --test).
#
# R1: GET /api/instances/ID/agent/bootstrap and .../bundle answer the agent of
#     ID (and admin); no credential is 401, another instance's agent 403.
# R2: the script names the controller by DUMONT_PUBLIC_URL, else DUMONT_URL,
#     holds no credential, and parses as sh.
# R3: the bundle is DUMONT_AGENT_BUNDLE byte for byte; a missing file is a 404
#     naming it (none configured: one naming scripts/portable-agent.sh, in
#     tests/unit/test_routes_bootstrap.c).
. "$(dirname "$0")/lib.sh"
lib_init
need cmp

new_home
head -c 300000 /dev/urandom >"$TEST_TMP/bundle.tar.gz"
export DUMONT_AGENT_BUNDLE=$TEST_TMP/bundle.tar.gz
start_server
cli_ok tokens create role=agent instance=77 name=a77
TOK=$(printf '%s\n' "$CLI_OUT" | tail -n1)
cli_ok tokens create role=agent instance=78 name=a78
OTHER=$(printf '%s\n' "$CLI_OUT" | tail -n1)
get() { # TOKEN PATH OUT: prints the HTTP status
    curl -s -o "$3" -w '%{http_code}' ${1:+-H "Authorization: Bearer $1"} "$DUMONT_URL$2"
}

# ---- R1
assert_eq 401 "$(get "" /api/instances/77/agent/bootstrap "$TEST_TMP/out")" "no credential"
assert_eq 403 "$(get "$OTHER" /api/instances/77/agent/bootstrap "$TEST_TMP/out")" \
    "the agent of 78 asks for 77's script"
assert_eq 403 "$(get "$OTHER" /api/instances/77/agent/bundle "$TEST_TMP/out")" \
    "the agent of 78 asks for 77's bundle"
assert_eq 200 "$(get "$TOKEN" /api/instances/77/agent/bootstrap "$TEST_TMP/out")" "admin"
log "R1: 401 without a credential, 403 for another instance's, 200 for admin"

# ---- R2
assert_eq 200 "$(get "$TOK" /api/instances/77/agent/bootstrap "$TEST_TMP/boot.sh")" "the agent of 77"
grep -qx "url='$DUMONT_URL'" "$TEST_TMP/boot.sh" || fail "the script does not name $DUMONT_URL"
grep -qx "id='77'" "$TEST_TMP/boot.sh" || fail "the script does not name instance 77"
! grep -q -e "$TOK" -e "$TOKEN" "$TEST_TMP/boot.sh" || fail "the script holds a credential"
sh -n "$TEST_TMP/boot.sh" || fail "the script does not parse as sh"

# ---- R3
assert_eq 200 "$(get "$TOK" /api/instances/77/agent/bundle "$TEST_TMP/got.tar.gz")" "the bundle"
cmp "$TEST_TMP/bundle.tar.gz" "$TEST_TMP/got.tar.gz" || fail "the bundle differs from the file"
log "R3: the bundle is DUMONT_AGENT_BUNDLE byte for byte"

stop_server
export DUMONT_PUBLIC_URL=https://dumont.example.com:8443/ DUMONT_AGENT_BUNDLE=$TEST_TMP/none.tar.gz
start_server
assert_eq 200 "$(get "$TOK" /api/instances/77/agent/bootstrap "$TEST_TMP/boot.sh")" "after restart"
grep -qx "url='https://dumont.example.com:8443'" "$TEST_TMP/boot.sh" ||
    fail "the script does not name DUMONT_PUBLIC_URL: $(grep '^url=' "$TEST_TMP/boot.sh")"
log "R2: the script names DUMONT_URL, then DUMONT_PUBLIC_URL, holds no credential, parses"
assert_eq 404 "$(get "$TOK" /api/instances/77/agent/bundle "$TEST_TMP/out")" "a missing bundle"
assert_contains "$(cat "$TEST_TMP/out")" "none.tar.gz" "the 404 names the file"
