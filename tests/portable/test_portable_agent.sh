#!/usr/bin/env bash
# A fresh Debian 11 machine becomes a Dumont instance with the bootstrap line
# (issue 17 part 4; docs/deploy.md; routes_bootstrap.c API-B1, API-B2;
# scripts/portable-agent.sh PA1, PA2).
#
# P1: the portable build needs at most GLIBC_2.31 (objdump -T over the binary
#     and every shipped library).
# P2: in a bare Debian 11 root (debootstrap minbase: glibc 2.31, no curl, no
#     wget, no python3, none of the project's libraries) the bootstrap line of
#     docs/deploy.md, with the instance's agent credential in
#     DUMONT_AGENT_TOKEN, fetches the script and the agent over bash's
#     /dev/tcp, starts it, and the agent registers and heartbeats: the server
#     shows the instance healthy.
# P3: the credential is in no command line nor in the agent's environment;
#     PORT and OLLAMA_HOST reach the agent as they were set; the workspace is
#     DUMONT_WORKSPACE.
# P5: the same line where curl is installed (this machine) takes the curl way,
#     and its agent registers too.
# Not one of ctest's tests (the bare roots of scripts/fresh-machine-test.sh
# have no Debian 11 root to offer): `bash scripts/portable-agent.sh --test`
# builds the agent, then runs this with DUMONT_BIN=build/dumont (.ci/run does).
# Needs root (chroot, mount) and what scripts/portable-agent.sh made
# (DUMONT_PORTABLE_CACHE, default /var/tmp/dumont-portable; DUMONT_AGENT_BUNDLE,
# default build-portable/dumont-agent-linux-x86_64.tar.gz).
. "$(dirname "$0")/../integration/lib.sh"
lib_init
[ "$(id -u)" = 0 ] || fail "needs root (chroot, mount)"
SRC=${DUMONT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
CACHE=${DUMONT_PORTABLE_CACHE:-/var/tmp/dumont-portable}
BUNDLE=${DUMONT_AGENT_BUNDLE:-$SRC/build-portable/dumont-agent-linux-x86_64.tar.gz}
[ -f "$CACHE/bare.tar" ] || fail "no Debian 11 root $CACHE/bare.tar (run scripts/portable-agent.sh)"
[ -f "$BUNDLE" ] || fail "no portable agent build $BUNDLE (run scripts/portable-agent.sh)"
need objdump tar

# ---- P1
bash "$SRC/scripts/portable-agent.sh" --check-only --out "$BUNDLE" 2>"$TEST_TMP/check.err" ||
    fail "the portable build needs a newer glibc: $(cat "$TEST_TMP/check.err")"
log "P1: $(tail -n1 "$TEST_TMP/check.err")"

ROOT=$TEST_TMP/root
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$CACHE/bare.tar"
for c in curl wget python3; do
    if chroot "$ROOT" /bin/sh -c "command -v $c" >/dev/null 2>&1; then fail "the bare root has $c"; fi
done
if [ -n "$(find "$ROOT/usr/lib" "$ROOT/lib" -name 'libjansson.so*' -o -name 'libmicrohttpd.so*' 2>/dev/null)" ]; then
    fail "the bare root has the project's libraries"
fi
mount -t proc proc "$ROOT/proc"
portable_exit() {
    local rc=$? p
    for p in /proc/[0-9]*; do # every process rooted in ROOT (the agent)
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    [ ! -f "$TEST_TMP/agent2/agent.pid" ] || kill -9 "$(cat "$TEST_TMP/agent2/agent.pid")" 2>/dev/null
    umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc" 2>/dev/null
    (exit "$rc")
    lib_cleanup
}
trap portable_exit EXIT

new_home
export DUMONT_AGENT_BUNDLE=$BUNDLE
start_server
ID=4242
cli_ok tokens create role=agent instance=$ID name=boot-$ID
TOK=$(printf '%s\n' "$CLI_OUT" | tail -n1)
assert_match "$TOK" '^[0-9a-f]{64}$' "the agent credential"

# ---- P2: the line of docs/deploy.md, as a cloud's start command runs it
LINE=$(sed -n 's/^    \(U=.*| sh\)$/\1/p' "$SRC/docs/deploy.md" | head -n1)
[ -n "$LINE" ] || fail "no bootstrap line in docs/deploy.md"
LINE=${LINE//https:\/\/dumont.example.com/$DUMONT_URL}
LINE=${LINE//\/42\//\/$ID\/}
chroot "$ROOT" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root DUMONT_AGENT_TOKEN="$TOK" DUMONT_WORKSPACE=/data/ws PORT=4321 \
    OLLAMA_HOST=127.0.0.1:4321 /bin/sh -c "$LINE" >"$TEST_TMP/boot.out" 2>&1 ||
    fail "the bootstrap line failed: $(tail -5 "$TEST_TMP/boot.out")"
registered() { api GET "/api/instances/$ID" && [ "$HTTP_STATUS" = 200 ]; }
wait_for 30 "instance $ID registered" registered
wait_for 30 "instance $ID healthy" instance_state_is "$ID" healthy
log "P2: the bootstrap line on a bare Debian 11: $(grep -c . "$TEST_TMP/boot.out") lines; instance $ID healthy"

# ---- P3
apid=$(cat "$ROOT/opt/dumont/agent.pid")
[ -d "/proc/$apid" ] || fail "the agent $apid is not running: $(tail -3 "$ROOT/opt/dumont/agent.log")"
argv=$(tr '\0' ' ' <"/proc/$apid/cmdline")
env=$(tr '\0' '\n' <"/proc/$apid/environ")
assert_not_contains "$argv" "$TOK" "the agent's command line"
assert_not_contains "$env" "$TOK" "the agent's environment"
assert_contains "$env" "PORT=4321" "the agent's PORT"
assert_contains "$env" "OLLAMA_HOST=127.0.0.1:4321" "the agent's OLLAMA_HOST"
assert_contains "$env" "DUMONT_WORKSPACE=/data/ws" "the agent's workspace"
assert_eq "600" "$(stat -c %a "$ROOT/opt/dumont/agent.token")" "mode of the token file"
! grep -q "$TOK" "$ROOT/opt/dumont/agent.log" "$SERVER_LOG" || fail "the credential is in a log"
log "P3: agent $apid holds its credential in a 0600 file only; PORT and OLLAMA_HOST kept"

# ---- P5: the curl way, on this machine
command -v curl >/dev/null || fail "curl is not installed here"
ID2=$((ID + 2))
cli_ok tokens create role=agent instance=$ID2 name=boot-$ID2
TOK2=$(printf '%s\n' "$CLI_OUT" | tail -n1)
LINE2=${LINE//\/$ID\//\/$ID2\/}
env -i PATH="$PATH" HOME="$TEST_TMP" DUMONT_AGENT_TOKEN="$TOK2" DUMONT_AGENT_DIR="$TEST_TMP/agent2" \
    DUMONT_WORKSPACE="$TEST_TMP/ws2" /bin/sh -c "$LINE2" >"$TEST_TMP/boot2.out" 2>&1 ||
    fail "the bootstrap line with curl failed: $(tail -5 "$TEST_TMP/boot2.out")"
wait_for 30 "instance $ID2 healthy" instance_state_is "$ID2" healthy
log "P5: the line with curl: instance $ID2 healthy"
