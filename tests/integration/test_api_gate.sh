#!/usr/bin/env bash
# The gate against the real server (src/api/gate.h GATE-G1 to GATE-G5, docs/security.md):
# the path is checked as the client sent it (curl --path-as-is, raw bytes
# through /dev/tcp), before libmicrohttpd's decoding can fold a spelling
# into a real route.
#
# GA1: every non-canonical spelling of every route (//api/x, /%2Fapi/x,
#      /./api/x, /api//x, /api/x/, %00, a raw NUL byte, leading zeros) is
#      400 or 404, with or without the admin token, and never routed: a
#      launch spelled //api/instances/launch runs nothing.
# GA2: the canonical path of every non-public route is 401 without a token
#      and with a wrong one; the public ones (/healthz, /, /assets/..,
#      /api/session) answer without.
# GA3: a path that matches no route is 404 with any credential.
. "$(dirname "$0")/lib.sh"
lib_init

new_home
start_server
printf 'Authorization: Bearer %s\n' "wrong-$TOKEN" >"$TEST_TMP/wrong.header"

# Every route of src/api/routes.c, {id} as 20001 and {} as a name (GA2's
# list of what needs a credential is the route table's: docs/api.md).
ROUTES=(
    "GET /healthz public"
    "GET / public"
    "GET /assets/app.js public"
    "GET /api/session public"
    "GET /api/events viewer"
    "POST /api/standby/failover/test-setup admin"
    "POST /api/standby/failover/simulate/20001 admin"
    "GET /api/standby/failover/status/sim-x viewer"
    "GET /api/standby/failover/report viewer"
    "GET /api/standby/failover/list viewer"
    "POST /api/standby/failover/test-real/20001 admin"
    "GET /api/standby/failover/test-real/report/x viewer"
    "GET /api/standby/failover/test-real/history viewer"
    "POST /api/standby/configure admin"
    "GET /api/standby/status viewer"
    "POST /api/instances/register agent"
    "GET /api/instances viewer"
    "GET /api/instances/20001 viewer"
    "POST /api/instances/launch admin"
    "DELETE /api/instances/20001 admin"
    "POST /api/instances/20001/snapshots agent"
    "GET /api/instances/20001/snapshots viewer"
    "POST /api/chaos/preempt/20001 admin"
    "GET /api/workloads viewer"
    "POST /api/tokens admin"
    "GET /api/tokens admin"
    "DELETE /api/tokens/grafana admin"
)

# req HEADER_FILE METHOD PATH: the status of a request sent byte for byte.
req() {
    local auth=()
    [ -z "$1" ] || auth=(-H "@$1")
    curl -sS -m 10 --path-as-is -o "$TEST_TMP/body" -w '%{http_code}' -X "$2" \
        "${auth[@]+"${auth[@]}"}" -H 'Content-Type: application/json' -d '{}' \
        "$DUMONT_URL$3" || fail "curl $2 $3 failed"
}

# raw METHOD PATH: the status line's code for a request line written byte
# for byte (a NUL byte cannot go through curl); PATH is printf's format.
raw() {
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT" || fail "cannot connect to the server"
    # shellcheck disable=SC2059
    printf "$1 $2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n" \
        "$TOKEN" >&3
    IFS= read -r -t 10 line <&3 || line=""
    exec 3<&- 3>&-
    line=${line%$'\r'}
    printf '%s' "${line#HTTP/1.1 }" | cut -d' ' -f1
}

refused() { [ "$1" = 400 ] || [ "$1" = 404 ]; }

checked=0
for r in "${ROUTES[@]}"; do
    read -r method path access <<<"$r"
    tail=${path#/}
    first=${tail%%/*}
    rest=${tail#"$first"}
    spellings=("/$path" "/%2F$tail" "/%2f$tail" "/./$tail" "/../$tail" "$path/" "$path//"
        "$path%00" "$path/." "$path/%2e" "/%2e/$tail")
    if [ -n "$rest" ]; then
        spellings+=("/$first/$rest" "/$first/.$rest" "/$first/%2F${rest#/}" "/$first%2F${rest#/}")
    fi
    case $path in
    *20001*)
        for id in 020001 0020001 20001%00 20001x +20001 %32%30001 0x4E21 9007199254740993; do
            spellings+=("${path/20001/$id}")
        done
        ;;
    esac
    for s in "${spellings[@]}"; do
        for hdr in "" "$TEST_TMP/auth.header"; do
            st=$(req "$hdr" "$method" "$s")
            refused "$st" || fail "GA1: $method $s (${hdr:+admin}${hdr:-no token}): $st, expected 400/404"
            checked=$((checked + 1))
        done
    done
    st=$(raw "$method" "$path\\0x")
    refused "$st" || fail "GA1: $method $path<NUL>x: $st, expected 400/404"
    # GA2: the canonical spelling
    st=$(req "" "$method" "$path")
    st_wrong=$(req "$TEST_TMP/wrong.header" "$method" "$path")
    if [ "$access" = public ]; then
        case $st in 2??) ;; *) fail "GA2: public $method $path without a token: $st" ;; esac
    else
        assert_eq 401 "$st" "GA2: $method $path without a token"
        assert_eq 401 "$st_wrong" "GA2: $method $path with a wrong token"
    fi
done
log "GA1: $checked non-canonical requests refused"

# GA1: the attack of the issue: a launch spelled //api/... runs nothing.
canary="$TEST_TMP/launched"
printf '#!/bin/sh\ntouch %s\nsleep 60\n' "$canary" >"$TEST_TMP/evil.sh"
chmod +x "$TEST_TMP/evil.sh"
for p in //api/instances/launch /%2Fapi/instances/launch /./api/instances/launch \
    /api//instances/launch; do
    st=$(curl -sS -m 10 --path-as-is -o /dev/null -w '%{http_code}' -X POST \
        -H 'Content-Type: application/json' -d "{\"workload\": \"$TEST_TMP/evil.sh\"}" \
        "$DUMONT_URL$p")
    refused "$st" || fail "GA1: POST $p without a token: $st"
done
api GET /api/workloads
assert_status 200 "workloads"
assert_json '.workloads | length' 0 "no workload was launched by a non-canonical path"
[ ! -e "$canary" ] || fail "GA1: a non-canonical launch ran the workload"

# The raw NUL: "/api/instances/20001\0" must not be instance 20001 (nor any).
st=$(raw GET '/api/instances/20001\0')
refused "$st" || fail "GA1: GET /api/instances/20001<NUL>: $st"
st=$(raw GET '/healthz\0')
refused "$st" || fail "GA1: GET /healthz<NUL>: $st"
st=$(raw GET '/healthz')
assert_eq 200 "$st" "the raw request helper works"

# GA3: unknown paths are 404 with any credential.
for p in /api/nope /API/workloads /api/workloadsx /api/instances/20001/nope /nope /w/x; do
    for hdr in "" "$TEST_TMP/wrong.header" "$TEST_TMP/auth.header"; do
        st=$(req "$hdr" GET "$p")
        assert_eq 404 "$st" "GA3: GET $p"
    done
done

log "PASS"
