#!/usr/bin/env bash
# The s3:// store (issue 4) against a real S3 server: `s3rver` (npm, pinned in
# package.json) on loopback, with Debian's `aws` CLI as the independent reader.
#   T1: create/list/diff/restore/verify/export/prune through s3:// equal the
#       file:// flows (diff -r of every restore).
#   T2: the objects are ordinary S3 objects: `aws s3` lists and reads them, and
#       each carries x-amz-meta-sha256 = SHA-256 of its bytes (S3-5).
#   T3: multipart (small part size): packs upload in parts, restore equals the
#       workspace, no upload is left behind (S3-2).
#   T4: s3rver killed mid-upload and restarted: the create completes on retry
#       or fails with one line; every earlier snapshot stays restorable; a
#       create that gave up leaves nothing visible (S3-7, ST1).
#   T5: an object damaged on the server's disk: restore fails naming it; with
#       DUMONT_STORE_MIRROR (written since the start) restore succeeds (M2).
#   T4b: a create killed with -9 leaves pack objects no index names: prune
#       keeps them within the grace, frees them with grace=0 and removes the
#       dead create's lock (SNAP-R8, SNAP-L2); a byte flipped in a pack's
#       trailer fails verify (SNAP-R7).
#   T6: a missing bucket, bad credentials, an unreachable endpoint: exit 1 and
#       one line each; the secret key never appears in any output (S3-1).
#   T7: the seed's B2_* variables alone select the bucket (config.c).
#   T8: HTTPS with certificate verification: refused without the CA, works
#       with DUMONT_S3_CA_FILE.
#   T9: a CompleteMultipartUpload that s3rver carried out but whose answer a
#       proxy cut off: HEAD finds the upload completed, the snapshot succeeds
#       and the retry is logged with its reason (S3-11).
# s3rver and aws are required: this test fails (never skips) without them.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

lib_init
need lz4 tar diff find sort dd sha256sum
for c in node openssl; do # s3rver's runtime, the HTTPS case: fail, never skip
    command -v "$c" >/dev/null 2>&1 || fail "'$c' is not installed (scripts/install-deps.sh --test)"
done
SRC=${DUMONT_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
S3RVER=$SRC/node_modules/.bin/s3rver
[ -x "$S3RVER" ] || fail "s3rver is not installed ($S3RVER): run 'npm ci' in $SRC (scripts/test.sh does)"
AWS=/usr/bin/aws # Debian's awscli (scripts/install-deps.sh --test)
[ -x "$AWS" ] || AWS=$(command -v aws) || fail "aws (awscli) is not installed: scripts/install-deps.sh --test"
new_home

SECRET="dumont-test-secret-$RANDOM$RANDOM" # s3rver checks the key id only
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=$SECRET AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_SESSION_TOKEN DUMONT_STORE_MIRROR B2_ENDPOINT B2_BUCKET B2_KEY_ID B2_APPLICATION_KEY
unset DUMONT_S3_REGION DUMONT_S3_ADDRESSING DUMONT_S3_CA_FILE DUMONT_S3_PART_SIZE
unset DUMONT_S3_MULTIPART_THRESHOLD DUMONT_S3_CONCURRENCY DUMONT_S3_TRIES

S3_DIR=$TEST_TMP/s3rver
S3_PID=""
S3_PORT=""
S3_LOG=$TEST_TMP/s3rver.log
mkdir -p "$S3_DIR"

# start_s3: s3rver on S3_PORT (a free port the first time), data in S3_DIR.
# Node 20's OpenSSL needs the legacy provider for s3rver's list tokens (DES).
start_s3() {
    [ -n "$S3_PORT" ] || S3_PORT=$(free_port)
    NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$S3_DIR" -a 127.0.0.1 -p "$S3_PORT" \
        --configure-bucket dumont-test --configure-bucket b2-test >>"$S3_LOG" 2>&1 &
    S3_PID=$!
    wait_for 30 "s3rver on port $S3_PORT" port_in_use "$S3_PORT"
}
stop_s3() {
    [ -n "$S3_PID" ] || return 0
    kill -9 "$S3_PID" 2>/dev/null
    wait "$S3_PID" 2>/dev/null
    S3_PID=""
}
TLS_PID=""
PROXY_PID=""
s3_exit() { # stops the servers, then lib_cleanup with the test's status
    local rc=$?
    stop_s3
    [ -z "$PROXY_PID" ] || { kill -9 "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; }
    [ -z "$TLS_PID" ] || { kill -9 "$TLS_PID" 2>/dev/null; wait "$TLS_PID" 2>/dev/null; }
    (exit "$rc")
    lib_cleanup
}
trap s3_exit EXIT

start_s3
EP=http://127.0.0.1:$S3_PORT
export DUMONT_S3_ENDPOINT=$EP
export DUMONT_STORE=s3://dumont-test/snaps
export DUMONT_STORE_MIRROR=file://$TEST_TMP/mirror
aws_() { "$AWS" --endpoint-url "$EP" "$@"; }

WS=$TEST_TMP/ws
tree_listing() {
    (cd "$1" && find . -mindepth 1 -printf '%p|%y|%m|%s|%n|%l|%TY-%Tm-%Td-%TH:%TM:%TS\n' |
        sed -E 's/\.[0-9]+$//' |
        awk -F'|' -v OFS='|' '$2 == "d" { $4 = "-"; $5 = "-" } $2 == "l" { $7 = "-" } { print }' |
        LC_ALL=C sort)
}
same_tree() { # A B WHAT
    diff -r --no-dereference "$1" "$2" >"$TEST_TMP/diff.out" 2>&1 ||
        fail "$3: diff -r differs: $(head -5 "$TEST_TMP/diff.out")"
    diff <(tree_listing "$1") <(tree_listing "$2") >"$TEST_TMP/diff.out" ||
        fail "$3: types/modes/sizes/mtimes differ: $(head -5 "$TEST_TMP/diff.out")"
}
no_secret() { # WHAT: the last cli call did not print the secret
    case "$CLI_OUT$CLI_ERR" in *"$SECRET"*) fail "$1: the secret key was printed" ;; esac
}

mkdir -p "$WS/src/deep" "$WS/models" "$WS/empty-dir"
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WS/models/weights.bin"
seq 1 20000 | sed 's/^/line of text number /' >"$WS/src/notes.txt"
printf 'int main(void) { return 0; }\n' >"$WS/src/deep/main.c"
: >"$WS/empty"
ln -s src/notes.txt "$WS/notes-link"
printf 'odd' >"$WS/src/name with spaces"
cp -a "$WS" "$TEST_TMP/ws.v1"

# ---- T1: the snapshot flows through s3:// ------------------------------------------
cli_ok snapshot create "$WS" tag=first
ID1=$CLI_OUT
no_secret "create"
echo "appended" >>"$WS/src/notes.txt"
rm "$WS/empty"
echo new >"$WS/new-file"
cli_ok snapshot create "$WS" --json
ID2=$(printf '%s' "$CLI_OUT" | jq -r .snapshot_id)
assert_json .parent "$ID1" "the second snapshot's parent" "$CLI_OUT"
cli_ok snapshot list --json
assert_json 'length' 2 "list --json" "$CLI_OUT"
assert_json '.[0].snapshot_id' "$ID2" "newest first" "$CLI_OUT"
cli_ok snapshot diff "$ID1" "$ID2"
assert_contains "$CLI_OUT" "+  new-file" "diff: added"
assert_contains "$CLI_OUT" "-  empty" "diff: removed"
cli_ok snapshot restore "$ID1" "$TEST_TMP/r1"
same_tree "$TEST_TMP/ws.v1" "$TEST_TMP/r1" "restore of the first snapshot from s3://"
cli_ok snapshot restore latest "$TEST_TMP/r2"
same_tree "$WS" "$TEST_TMP/r2" "restore latest from s3://"
cli_ok snapshot verify "$ID2"
"$DUMONT_BIN" snapshot export "$ID2" >"$TEST_TMP/ws.tar.lz4" || fail "export from s3:// failed"
mkdir "$TEST_TMP/x"
lz4 -dc "$TEST_TMP/ws.tar.lz4" | tar -x -C "$TEST_TMP/x" || fail "lz4 -dc | tar -x failed"
same_tree "$WS" "$TEST_TMP/x" "export from s3:// read back by lz4 and tar"

# ---- T2: ordinary S3 objects, read back by aws ---------------------------------------------
aws_ s3 ls --recursive s3://dumont-test/snaps/ >"$TEST_TMP/ls.out" || fail "aws s3 ls failed"
grep -q " snaps/snapshots/$ID1\$" "$TEST_TMP/ls.out" || fail "aws s3 ls lacks the manifest of $ID1"
aws_ s3 cp "s3://dumont-test/snaps/snapshots/$ID2" "$TEST_TMP/manifest" >/dev/null ||
    fail "aws s3 cp of a manifest failed"
assert_eq "$ID2" "$(sha256sum "$TEST_TMP/manifest" | cut -c1-64)" "the manifest's name is its SHA-256"
pack=$(awk '$4 ~ /^snaps\/packs\// { print $3, $4 }' "$TEST_TMP/ls.out" | sort -n | tail -1 | cut -d' ' -f2)
[ -n "$pack" ] || fail "no pack in the bucket: $(cat "$TEST_TMP/ls.out")"
aws_ s3 cp "s3://dumont-test/$pack" "$TEST_TMP/pack" >/dev/null || fail "aws s3 cp of a pack failed"
aws_ s3api head-object --bucket dumont-test --key "$pack" >"$TEST_TMP/head.json" || fail "head-object failed"
assert_eq "$(sha256sum "$TEST_TMP/pack" | cut -c1-64)" "$(jq -r .Metadata.sha256 "$TEST_TMP/head.json")" \
    "x-amz-meta-sha256 of a pack"
# the mirror holds the same objects
(cd "$TEST_TMP/mirror" && find . -type f ! -name '.*' | sed 's|^\./|snaps/|' | LC_ALL=C sort) >"$TEST_TMP/m.keys"
awk '{ print $4 }' "$TEST_TMP/ls.out" | LC_ALL=C sort >"$TEST_TMP/s.keys"
diff "$TEST_TMP/s.keys" "$TEST_TMP/m.keys" >/dev/null ||
    fail "the mirror differs from the bucket: $(diff "$TEST_TMP/s.keys" "$TEST_TMP/m.keys" | head -5)"

# ---- T3: multipart -----------------------------------------------------------------------
head -c $((24 * 1024 * 1024)) /dev/urandom >"$WS/models/big.bin"
DUMONT_S3_PART_SIZE=5242880 DUMONT_S3_MULTIPART_THRESHOLD=5242880 DUMONT_S3_CONCURRENCY=3 \
    cli_ok snapshot create "$WS"
ID3=$CLI_OUT
cli_ok snapshot restore "$ID3" "$TEST_TMP/r3"
same_tree "$WS" "$TEST_TMP/r3" "restore of a snapshot uploaded in parts"
aws_ s3api list-multipart-uploads --bucket dumont-test >"$TEST_TMP/mpu.json" 2>&1 || true
[ -z "$(find "$S3_DIR/dumont-test" -path '*_S3rver_uploads*' -type f 2>/dev/null)" ] ||
    fail "a multipart upload was left behind"

# ---- prune ---------------------------------------------------------------------------------
cli_ok snapshot prune keep=1
cli_ok snapshot list --json
assert_json 'length' 1 "prune keep=1" "$CLI_OUT"
assert_json '.[0].snapshot_id' "$ID3" "prune kept the newest" "$CLI_OUT"
cli_ok snapshot verify "$ID3"
rm -rf "$TEST_TMP/r3"
cli_ok snapshot restore "$ID3" "$TEST_TMP/r3"
same_tree "$WS" "$TEST_TMP/r3" "restore after prune"
cp -a "$WS" "$TEST_TMP/ws.v3"

# ---- T4: the server killed mid-upload --------------------------------------------------------
objects() { find "$S3_DIR/dumont-test" -name '*._S3rver_object' | wc -l; }
head -c $((120 * 1024 * 1024)) /dev/urandom >"$WS/models/huge.bin"
n0=$(objects)
"$DUMONT_BIN" snapshot create "$WS" >"$TEST_TMP/t4.out" 2>"$TEST_TMP/t4.err" &
cpid=$!
more_objects() { [ "$(objects)" -gt "$n0" ]; }
wait_for 60 "create to upload a pack" more_objects
stop_s3
start_s3 # the same port and data: retries reach it again
wait "$cpid"
crc=$?
if [ "$crc" = 0 ]; then
    log "T4: create completed after the restart (retried)"
    cli_ok snapshot restore "$(cat "$TEST_TMP/t4.out")" "$TEST_TMP/r4"
    same_tree "$WS" "$TEST_TMP/r4" "the snapshot made across a server restart"
else
    assert_one_line "$(grep -v 'level=' "$TEST_TMP/t4.err")" "T4: create failed with one line"
fi
# the server down for longer than the retries: a clean failure, nothing visible
echo more >>"$WS/src/notes.txt"
cli_ok snapshot list --json
n_before=$(printf '%s' "$CLI_OUT" | jq length)
stop_s3
DUMONT_S3_TRIES=2 cli snapshot create "$WS"
assert_cli_rc 1 "create with the server down"
# (the mirror's fallback warnings are log lines, level=...; the error is one line)
assert_one_line "$(printf '%s\n' "$CLI_ERR" | grep -v ' level=')" "create with the server down: one line"
assert_contains "$CLI_ERR" "cannot reach" "create with the server down names the cause"
start_s3
cli_ok snapshot list --json
assert_eq "$n_before" "$(printf '%s' "$CLI_OUT" | jq length)" "a failed create left no snapshot"
for id in $(printf '%s' "$CLI_OUT" | jq -r '.[].snapshot_id'); do
    cli_ok snapshot verify "$id"
done
rm -rf "$TEST_TMP/r5"
cli_ok snapshot restore "$ID3" "$TEST_TMP/r5"
same_tree "$TEST_TMP/ws.v3" "$TEST_TMP/r5" "an earlier snapshot after the server was killed"

# ---- T4b: what a killed create leaves; a pack's trailer ------------------------------------------
head -c $((40 * 1024 * 1024)) /dev/urandom >"$WS/models/killed.bin"
pack_objects() { find "$S3_DIR/dumont-test/snaps/packs" -name '*._S3rver_object' | wc -l; }
p0=$(pack_objects)
more_packs() { [ "$(pack_objects)" -gt "$p0" ]; }
"$DUMONT_BIN" snapshot create "$WS" >"$TEST_TMP/t4b.out" 2>&1 &
cpid=$!
wait_for 60 "create to upload a pack" more_packs
kill -9 "$cpid" 2>/dev/null
wait "$cpid" 2>/dev/null
rm "$WS/models/killed.bin"
cli_ok snapshot prune keep=5
assert_contains "$CLI_OUT" "kept " "T4b: prune keeps the unreferenced packs within the grace"
cli_ok snapshot prune keep=5 grace=0 --json
[ "$(printf '%s' "$CLI_OUT" | jq .unreferenced_packs_deleted)" -ge 1 ] ||
    fail "T4b: prune left the killed create's packs: $CLI_OUT"
[ -z "$(find "$S3_DIR/dumont-test/snaps/locks" -name '*._S3rver_object' 2>/dev/null)" ] ||
    fail "T4b: the killed create's lock is left"
cli_ok snapshot list --json
for id in $(printf '%s' "$CLI_OUT" | jq -r '.[].snapshot_id'); do
    cli_ok snapshot verify "$id"
done
# the trailer of every pack object (the ones ID3 uses among them), kept to put back
find "$S3_DIR/dumont-test/snaps/packs" -name '*._S3rver_object' >"$TEST_TMP/tpacks.list"
[ -s "$TEST_TMP/tpacks.list" ] || fail "T4b: no pack object on s3rver's disk"
mkdir -p "$TEST_TMP/tpacks"
k=0
while IFS= read -r tpack; do
    k=$((k + 1))
    cp "$tpack" "$TEST_TMP/tpacks/$k"
    off=$(($(stat -c %s "$tpack") - 2))
    byte=$(dd if="$tpack" bs=1 skip="$off" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the byte
    printf "$(printf '\\%03o' $(((byte + 1) % 256)))" | dd of="$tpack" bs=1 seek="$off" conv=notrunc 2>/dev/null
done <"$TEST_TMP/tpacks.list"
DUMONT_STORE_MIRROR="" cli snapshot verify "$ID3"
assert_cli_rc 1 "T4b: verify of packs whose trailer is damaged"
k=0
while IFS= read -r tpack; do
    k=$((k + 1))
    cp "$TEST_TMP/tpacks/$k" "$tpack"
done <"$TEST_TMP/tpacks.list"
DUMONT_STORE_MIRROR="" cli_ok snapshot verify "$ID3"

# ---- T9: a CompleteMultipartUpload whose answer is lost ------------------------------------------
# A proxy between Dumont and s3rver (s3_cut_proxy.py) forwards the first
# completion to s3rver, which completes the upload, and cuts the connection
# before the answer comes back: the store asks HEAD whether the upload
# completed (S3-11), so the snapshot succeeds, and the retry is logged with
# its reason.
PROXY_PORT=$(free_port)
python3 "$(dirname "$0")/s3_cut_proxy.py" --listen "$PROXY_PORT" --to "$S3_PORT" \
    --log "$TEST_TMP/proxy.log" 2>>"$TEST_TMP/proxy.err" &
PROXY_PID=$!
wait_for 10 "the cutting proxy on port $PROXY_PORT" port_in_use "$PROXY_PORT"
head -c $((12 * 1024 * 1024)) /dev/urandom >"$WS/models/cut.bin"
DUMONT_S3_ENDPOINT=http://127.0.0.1:$PROXY_PORT DUMONT_STORE_MIRROR="" DUMONT_S3_PART_SIZE=5242880 \
    DUMONT_S3_MULTIPART_THRESHOLD=5242880 DUMONT_S3_CONCURRENCY=3 cli snapshot create "$WS"
assert_cli_rc 0 "T9: a create whose completion answer was lost"
ID9=$CLI_OUT
grep -q '^cut POST .*uploadId=' "$TEST_TMP/proxy.log" 2>/dev/null ||
    fail "T9: the proxy cut no completion's answer"
assert_match "$CLI_ERR" 'event=store\.s3\.retry op="complete upload" key=[^ ]+ try=2 reason="[^"]+"' \
    "T9: the retry of the completion is logged with its reason"
assert_contains "$CLI_ERR" "event=store.s3.complete_confirmed" "T9: HEAD found it completed"
kill "$PROXY_PID" 2>/dev/null
wait "$PROXY_PID" 2>/dev/null
PROXY_PID=""
cli_ok snapshot restore "$ID9" "$TEST_TMP/r9"
same_tree "$WS" "$TEST_TMP/r9" "T9: the snapshot whose completion answer was lost"
[ -z "$(find "$S3_DIR/dumont-test" -path '*_S3rver_uploads*' -type f 2>/dev/null)" ] ||
    fail "T9: a multipart upload was left behind"
rm "$WS/models/cut.bin"

# ---- T5: a damaged object, and the mirror ------------------------------------------------------
victim=$(find "$S3_DIR/dumont-test/snaps/packs" -name '*._S3rver_object' -size +1M | head -1)
[ -n "$victim" ] || fail "no pack object on s3rver's disk"
# flip one byte in the middle of every pack on s3rver's disk
find "$S3_DIR/dumont-test/snaps/packs" -name '*._S3rver_object' >"$TEST_TMP/packs.list"
while IFS= read -r f; do
    size=$(stat -c %s "$f")
    off=$((size / 2))
    byte=$(dd if="$f" bs=1 skip="$off" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the byte
    printf "$(printf '\\%03o' $(((byte + 1) % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc 2>/dev/null
done <"$TEST_TMP/packs.list"
rm -rf "$TEST_TMP/r6"
DUMONT_STORE_MIRROR="" cli snapshot restore "$ID3" "$TEST_TMP/r6"
assert_cli_rc 1 "restore from damaged objects"
assert_contains "$CLI_ERR" "damaged" "the error names the damage"
DUMONT_STORE_MIRROR="" cli snapshot verify "$ID3"
assert_ne 0 "$CLI_RC" "verify of damaged objects"
rm -rf "$TEST_TMP/r6"
cli_ok snapshot restore "$ID3" "$TEST_TMP/r6"
same_tree "$TEST_TMP/ws.v3" "$TEST_TMP/r6" "restore through the mirror"
assert_contains "$CLI_ERR" "store.mirror.fallback" "the fallback is logged"

# ---- T6: one-line errors --------------------------------------------------------------------------
unset DUMONT_STORE_MIRROR
DUMONT_STORE=s3://no-such-bucket/x cli snapshot list
assert_cli_rc 1 "a missing bucket"
assert_one_line "$CLI_ERR" "a missing bucket: one line"
assert_contains "$CLI_ERR" "does not exist" "a missing bucket"
no_secret "a missing bucket"
AWS_ACCESS_KEY_ID=WRONGKEY cli snapshot list
assert_cli_rc 1 "bad credentials"
assert_one_line "$CLI_ERR" "bad credentials: one line"
assert_contains "$CLI_ERR" "access refused" "bad credentials"
no_secret "bad credentials"
DUMONT_S3_ENDPOINT=http://127.0.0.1:$(free_port) DUMONT_S3_TRIES=2 cli snapshot list
assert_cli_rc 1 "an unreachable endpoint"
# (each retry is a log line, level=...; the error is one line)
assert_one_line "$(printf '%s\n' "$CLI_ERR" | grep -v ' level=')" "an unreachable endpoint: one line"
assert_contains "$CLI_ERR" "cannot reach" "an unreachable endpoint"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$DUMONT_BIN" snapshot list >/dev/null 2>"$TEST_TMP/e"
assert_contains "$(cat "$TEST_TMP/e")" "no credentials" "missing credentials"

# ---- T7: the seed's B2 variables --------------------------------------------------------------------
(
    unset DUMONT_STORE DUMONT_S3_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    export B2_ENDPOINT=$EP B2_BUCKET=b2-test B2_KEY_ID=S3RVER B2_APPLICATION_KEY=$SECRET
    "$DUMONT_BIN" snapshot create "$TEST_TMP/ws.v1" >"$TEST_TMP/b2.out" 2>"$TEST_TMP/b2.err"
) || fail "create with the B2_* variables failed: $(cat "$TEST_TMP/b2.err")"
aws_ s3 ls --recursive s3://b2-test/dumont/snapshots/ | grep -q "$(cat "$TEST_TMP/b2.out")" ||
    fail "B2_BUCKET did not select s3://b2-test/dumont"

# ---- T8: HTTPS with certificate verification ------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$TEST_TMP/tls.key" -out "$TEST_TMP/tls.crt" \
    >/dev/null 2>&1 || fail "openssl could not make a certificate"
TLS_PORT=$(free_port)
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$TEST_TMP/s3tls" -a 127.0.0.1 -p "$TLS_PORT" \
    --key "$TEST_TMP/tls.key" --cert "$TEST_TMP/tls.crt" --configure-bucket tls-test \
    >>"$TEST_TMP/s3tls.log" 2>&1 &
TLS_PID=$!
wait_for 30 "s3rver with TLS" port_in_use "$TLS_PORT"
export DUMONT_STORE=s3://tls-test/s DUMONT_S3_ENDPOINT=https://127.0.0.1:$TLS_PORT
DUMONT_S3_TRIES=1 cli snapshot list
assert_cli_rc 1 "an untrusted certificate"
assert_one_line "$CLI_ERR" "an untrusted certificate: one line"
DUMONT_S3_CA_FILE=$TEST_TMP/tls.crt cli_ok snapshot create "$TEST_TMP/ws.v1"
DUMONT_S3_CA_FILE=$TEST_TMP/tls.crt cli_ok snapshot restore latest "$TEST_TMP/r8"
same_tree "$TEST_TMP/ws.v1" "$TEST_TMP/r8" "restore over HTTPS"
log "ok"
