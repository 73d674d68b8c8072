#!/usr/bin/env bash
# With only the seed's B2_* variables set (and DUMONT_STORE_MIRROR), the whole
# path works through the agents: launch, scheduled snapshots, a preemption and
# the failover, with s3rver (npm) standing in for Backblaze B2 (issue 17 part 3;
# docs/security.md "Store keys on instances"; provider.h PROV-PV6, store.h
# STORE-S5 to STORE-S7, workload.h AG-S5).
#
# B1: a local instance's agent opens the B2 store (no `s3: no credentials`):
#     its scheduled snapshots reach the server's records and the B2 bucket.
# B2: every snapshot in the B2 bucket is in the mirror too, the agents'
#     scheduled ones included (the mirror used to miss them).
# B3: the store keys reach the agent through <dir>/store.env (0600), and are
#     in no process's environ or argv (agent, workload), in no log (agent.log,
#     the server's), and not readable by the workload's user when run as root.
# B4: a preemption fails over to a new instance that restores from B2 and
#     answers; the new agent snapshots to B2 and the mirror as well.
# s3rver and aws are required: this test fails (never skips) without them.
. "$(dirname "$0")/lib.sh"
lib_init
command -v node >/dev/null 2>&1 || fail "'node' is not installed (scripts/install-deps.sh --test)"
SRC=${DUMONT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
S3RVER=$SRC/node_modules/.bin/s3rver
[ -x "$S3RVER" ] || fail "s3rver is not installed ($S3RVER): run 'npm ci' in $SRC"
AWS=/usr/bin/aws
[ -x "$AWS" ] || AWS=$(command -v aws) || fail "aws (awscli) is not installed"
new_home

KEY_ID=S3RVER # the key id s3rver accepts
SECRET="b2-app-key-$RANDOM$RANDOM$RANDOM" # s3rver checks the key id only
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN DUMONT_S3_ENDPOINT \
    DUMONT_S3_REGION DUMONT_S3_ADDRESSING DUMONT_S3_CA_FILE DUMONT_S3_PART_SIZE \
    DUMONT_S3_MULTIPART_THRESHOLD DUMONT_S3_CONCURRENCY DUMONT_S3_TRIES

S3_DIR=$TEST_TMP/s3rver
S3_PORT=$(free_port)
mkdir -p "$S3_DIR"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$S3_DIR" -a 127.0.0.1 -p "$S3_PORT" \
    --configure-bucket b2-test >"$TEST_TMP/s3rver.log" 2>&1 &
S3_PID=$!
b2_exit() {
    local rc=$?
    kill -9 "$S3_PID" 2>/dev/null
    wait "$S3_PID" 2>/dev/null
    (exit "$rc")
    lib_cleanup
}
trap b2_exit EXIT
wait_for 30 "s3rver on port $S3_PORT" port_in_use "$S3_PORT"
EP=http://127.0.0.1:$S3_PORT

# The seed's variables, nothing else: the store is s3://b2-test/dumont.
export B2_ENDPOINT=$EP B2_BUCKET=b2-test B2_KEY_ID=$KEY_ID B2_APPLICATION_KEY=$SECRET
export DUMONT_STORE_MIRROR=file://$TEST_TMP/mirror
start_server

aws_ls() { # PREFIX: the keys under s3://b2-test/dumont/PREFIX, sorted
    AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1 \
        AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        "$AWS" --endpoint-url "$EP" s3 ls --recursive "s3://b2-test/dumont/$1" |
        awk '{print $4}' | sed 's|^dumont/||' | LC_ALL=C sort
}
mirror_ls() { # PREFIX
    (cd "$TEST_TMP/mirror" 2>/dev/null && find "$1" -type f 2>/dev/null | LC_ALL=C sort)
}
snapshots_of() {
    api GET "/api/instances/$1/snapshots"
    printf '%s' "$HTTP_BODY" | jq -r '.snapshots | length'
}
more_snapshots() { [ "$(snapshots_of "$1")" -ge "$2" ]; }
generate() {
    curl -fsS -m 5 -d '{"model":"tiny","prompt":"hi","stream":false}' \
        "http://$1/api/generate" 2>/dev/null | jq -e '.response | length > 0' >/dev/null
}

# no_key PID WHAT: neither key is in /proc/PID/environ nor /proc/PID/cmdline.
no_key() {
    local env argv
    env=$(tr '\0' '\n' <"/proc/$1/environ") || fail "cannot read /proc/$1/environ ($2)"
    argv=$(tr '\0' ' ' <"/proc/$1/cmdline") || fail "cannot read /proc/$1/cmdline ($2)"
    [ -n "$env" ] && [ -n "$argv" ] || fail "empty environ or argv of $2: the test would prove nothing"
    assert_not_contains "$env" "$SECRET" "the environment of $2"
    assert_not_contains "$env" "$KEY_ID" "the environment of $2"
    assert_not_contains "$argv" "$SECRET" "the command line of $2"
    assert_not_contains "$argv" "$KEY_ID" "the command line of $2"
}

ws=$TEST_TMP/ws
tiny_workspace "$ws" 2M
head -c 1000000 /dev/urandom >"$ws/weights.bin"

# A root agent runs the workload as another user (AG-S6), who must reach the
# program: a build under /root (a fresh machine's checkout) is out of its reach.
chmod 0711 "$TEST_TMP"
mkdir -m 0755 "$TEST_TMP/bin"
cp "$TINY" "$TEST_TMP/bin/tiny-ollama"
TINY="$TEST_TMP/bin/tiny-ollama"

# ---- B1: launch; the agent's scheduled snapshots reach B2
cli_ok instances launch workload="$TINY" probe=ollama:tiny workspace_from="$ws" snapshot_every=1s \
    heartbeat_ms=100
first=$CLI_OUT
dir=$DUMONT_HOME/instances/$first
wait_for 30 "instance $first healthy" instance_state_is "$first" healthy
echo "written on $first" >"$(readlink -f "$dir/workspace")/note.txt"
wait_for 40 "two scheduled snapshots of $first" more_snapshots "$first" 2
if grep -q 'no credentials' "$dir/agent.log"; then
    fail "the agent has no store credentials: $(grep -m1 'no credentials' "$dir/agent.log")"
fi
api GET "/api/instances/$first/snapshots"
for s in $(printf '%s' "$HTTP_BODY" | jq -r '.snapshots[].snapshot_id'); do
    aws_ls snapshots/ | grep -qx "snapshots/$s" || fail "snapshot $s of the agent is not in B2"
done
log "B1: the agent of $first snapshots to B2 ($(snapshots_of "$first") recorded)"

# ---- B3: the keys went to the agent alone
perm=$(stat -c %a "$dir/store.env")
assert_eq 600 "$perm" "mode of $dir/store.env"
grep -qx "B2_APPLICATION_KEY=$SECRET" "$dir/store.env" || fail "store.env lacks the B2 key"
apid=$(jq -r .pid "$dir/instance.json")
wpid=$(children "$apid" | head -n1)
[ -n "$wpid" ] || fail "no workload process under agent $apid"
no_key "$apid" "the agent of $first"
no_key "$wpid" "the workload of $first"
for f in "$dir/agent.log" "$SERVER_LOG"; do
    ! grep -q -e "$SECRET" "$f" || fail "the B2 key is in $f"
done
if [ "$(id -u)" = 0 ]; then
    wuid=$(stat -c %u "/proc/$wpid")
    assert_ne 0 "$wuid" "the workload of a root agent runs as root"
    if setpriv --reuid "$wuid" --regid "$(stat -c %g "/proc/$wpid")" --clear-groups \
        cat "$dir/store.env" >/dev/null 2>&1; then
        fail "the workload's user can read the agent's store.env"
    fi
fi
log "B3: keys in store.env (0600) only: not in environ, argv or logs of agent $apid / workload $wpid"

# ---- B4: preemption and failover through B2
sleep 1.2 # one more period: the note is in the newest snapshot
cli_ok chaos preempt "$first"
wait_for 90 "the failover of $first" failover_done "$first"
assert_json .success true "the failover succeeded" "$FO"
second=$(printf '%s' "$FO" | jq -r .new_instance_id)
cli_ok instances show "$second" --json
assert_json .state healthy "the new instance is healthy" "$CLI_OUT"
second_ws=$(printf '%s' "$CLI_OUT" | jq -r .workspace)
generate "$(printf '%s' "$CLI_OUT" | jq -r .address)" || fail "the model does not answer on $second"
assert_eq "written on $first" "$(cat "$second_ws/note.txt" 2>/dev/null)" "data written before the loss"
cli_ok failover status "$(printf '%s' "$FO" | jq -r .failover_id)" --json
n2=$(snapshots_of "$second")
echo "written on $second" >"$second_ws/note2.txt"
wait_for 40 "a scheduled snapshot of the new instance $second" more_snapshots "$second" $((n2 + 1))
log "B4: failover $first -> $second restored from B2; the new agent snapshots too"

# ---- B2: the mirror holds every snapshot (and every object) B2 holds
# The agents go on snapshotting, so one may be between its B2 write and its
# mirror write at any instant: the two must agree within a few seconds.
mirror_complete() {
    b2=$(aws_ls snapshots/)
    mirror=$(mirror_ls snapshots)
    missing=$(LC_ALL=C comm -23 <(aws_ls "") <(cd "$TEST_TMP/mirror" && find . -type f | sed 's|^\./||' | LC_ALL=C sort))
    [ "$b2" = "$mirror" ] && [ -z "$missing" ]
}
deadline=$(($(now_us) + 15000000))
until mirror_complete || [ "$(now_us)" -ge "$deadline" ]; do sleep 0.2; done
if ! mirror_complete; then
    assert_eq "$b2" "$mirror" "the snapshots in B2 and in the mirror"
    fail "objects in B2 but not in the mirror: $(head -3 <<<"$missing")"
fi
[ "$(printf '%s\n' "$b2" | grep -c .)" -ge 3 ] || fail "fewer than 3 snapshots in B2: $b2"
log "B2: $(printf '%s\n' "$b2" | grep -c .) snapshots, each in B2 and in the mirror"
