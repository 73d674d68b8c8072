#!/usr/bin/env bash
# `dumont snapshot ...` through the real binary against a file:// store
# (issue 3, "What a user can do"): create, list, diff, restore, verify,
# prune, export, import, usage errors; then the failure cases:
#   T1: an export is read back by the real `lz4 -dc | tar -x` and equals the
#       workspace (diff -r, and modes/types/sizes/link targets by find).
#   T2: a byte flipped in a pack makes `verify` exit non-zero naming a file,
#       and restore fail leaving the target as it was (SN2).
#   T2b: a byte flipped in a pack's trailer (which no chunk read touches)
#       fails `verify` too; a damaged manifest is marked DAMAGED by `list`.
#   T3: kill -9 during create leaves every earlier snapshot restorable and
#       `verify` clean, and the next create works (SN3); `prune grace=0`
#       then frees the packs and temp files the killed create left
#       (SNAP-R8), and removes its lock.
#   T4: import refuses an archive with an absolute path, writing nothing.
#   T5: usage errors exit 2, failures exit 1 with one line, --help exits 0.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

lib_init
need lz4 tar diff find sort cmp dd
new_home
export DUMONT_STORE="file://$TEST_TMP/store"

WS=$TEST_TMP/ws

# snapshot_tree DIR: one line per entry: path, type, mode, size (files), target.
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

make_ws() {
    mkdir -p "$WS/src/deep/er" "$WS/models" "$WS/empty-dir"
    head -c $((3 * 1024 * 1024)) /dev/urandom >"$WS/models/weights.bin"
    seq 1 20000 | sed 's/^/line of text number /' >"$WS/src/notes.txt"
    printf 'int main(void) { return 0; }\n' >"$WS/src/deep/er/main.c"
    : >"$WS/empty"
    printf '#!/bin/sh\necho hi\n' >"$WS/run.sh"
    chmod 755 "$WS/run.sh"
    chmod 700 "$WS/src/deep"
    ln -s src/notes.txt "$WS/notes-link"
    ln "$WS/src/notes.txt" "$WS/hard-notes"
    printf 'odd' >"$WS/src/name with spaces & ümlaut"
    touch -d '2020-01-02 03:04:05' "$WS/src/deep/er/main.c"
}

make_ws
cp -a "$WS" "$TEST_TMP/ws.v1"

# ---- T5: usage ------------------------------------------------------------
cli snapshot
assert_cli_rc 2 "no subcommand"
cli snapshot frobnicate
assert_cli_rc 2 "unknown subcommand"
cli snapshot create
assert_cli_rc 2 "create without DIR"
cli snapshot prune
assert_cli_rc 2 "prune without keep"
cli snapshot prune keep=0
assert_cli_rc 2 "prune keep=0"
cli snapshot restore "not/an/id" "$TEST_TMP/x"
assert_cli_rc 2 "bad id"
cli snapshot create "$WS" colour=blue
assert_cli_rc 2 "unknown key"
cli snapshot create --help
assert_cli_rc 0 "create --help"
assert_contains "$CLI_OUT" "usage: dumont snapshot create" "create --help"
cli snapshot --help
assert_cli_rc 0 "snapshot --help"
[ ! -e "$TEST_TMP/store" ] || fail "a usage error created the store (S2)"
cli snapshot create "$TEST_TMP/no-such-dir"
assert_cli_rc 1 "create of a missing dir"
assert_one_line "$CLI_ERR" "create of a missing dir: one line"

# ---- create, list, diff ------------------------------------------------------
cli_ok snapshot create "$WS" tag=first
ID1=$CLI_OUT
assert_match "$ID1" '^[A-Za-z0-9._-]+$' "create prints the id alone"
cli_ok snapshot list
assert_contains "$CLI_OUT" "$ID1" "list shows the snapshot"

echo "appended" >>"$WS/src/notes.txt"
echo "/* more */" >>"$WS/src/deep/er/main.c"
rm "$WS/empty"
echo new >"$WS/new-file"
chmod 600 "$WS/run.sh"
cli_ok snapshot create "$WS" --json
ID2=$(printf '%s' "$CLI_OUT" | jq -r .snapshot_id)
assert_ne "" "$ID2" "create --json gives snapshot_id"
assert_json .parent "$ID1" "the second snapshot's parent" "$CLI_OUT"
assert_json .files 7 "files counted" "$CLI_OUT"
cli_ok snapshot list --json
assert_json 'length' 2 "list --json" "$CLI_OUT"
assert_json '.[0].snapshot_id' "$ID2" "newest first" "$CLI_OUT"

cli_ok snapshot diff "$ID1" "$ID2"
assert_contains "$CLI_OUT" "+  new-file" "diff: added"
assert_contains "$CLI_OUT" "-  empty" "diff: removed"
assert_contains "$CLI_OUT" "M  src/deep/er/main.c" "diff: modified"
assert_contains "$CLI_OUT" "U  run.sh" "diff: metadata"
cli_ok snapshot diff "$ID1" "$ID2" --json
assert_json '[.[] | select(.path == "new-file") | .change] | .[0]' added "diff --json" "$CLI_OUT"

# ---- restore, verify -----------------------------------------------------------
cli_ok snapshot restore "$ID1" "$TEST_TMP/r1"
same_tree "$TEST_TMP/ws.v1" "$TEST_TMP/r1" "restore of the first snapshot"
cli_ok snapshot restore latest "$TEST_TMP/r2"
same_tree "$WS" "$TEST_TMP/r2" "restore latest"
cli snapshot restore "$ID1" "$TEST_TMP/r2"
assert_cli_rc 1 "restore into a non-empty dir without --force"
same_tree "$WS" "$TEST_TMP/r2" "a refused restore leaves the target"
cli_ok snapshot restore "$ID1" "$TEST_TMP/r2" --force
same_tree "$TEST_TMP/ws.v1" "$TEST_TMP/r2" "restore --force"
cli_ok snapshot verify "$ID2"
cli_ok snapshot verify latest --json
assert_json .ok true "verify --json" "$CLI_OUT"

# ---- T1: export, read back by lz4 and tar -----------------------------------------
"$DUMONT_BIN" snapshot export "$ID2" >"$TEST_TMP/ws.tar.lz4" || fail "export failed"
mkdir "$TEST_TMP/x"
lz4 -dc "$TEST_TMP/ws.tar.lz4" | tar -x -C "$TEST_TMP/x" || fail "lz4 -dc | tar -x failed"
same_tree "$WS" "$TEST_TMP/x" "export read back by lz4 and tar"
if command -v script >/dev/null 2>&1; then
    script -qec "$DUMONT_BIN snapshot export $ID2" /dev/null >"$TEST_TMP/tty.out" 2>&1
    grep -q "refusing to write" "$TEST_TMP/tty.out" || fail "export to a terminal was not refused (S5)"
fi

# ---- import ----------------------------------------------------------------------
cli_ok snapshot import "$TEST_TMP/ws.tar.lz4" name=imported
ID3=$CLI_OUT
cli_ok snapshot restore "$ID3" "$TEST_TMP/r3"
same_tree "$WS" "$TEST_TMP/r3" "import of an export, restored"
tar -C "$WS" -cf - . | gzip -1 >"$TEST_TMP/ws.tar.gz"
"$DUMONT_BIN" snapshot import - <"$TEST_TMP/ws.tar.gz" >"$TEST_TMP/id4" 2>"$TEST_TMP/err4" ||
    fail "import of a .tar.gz from stdin failed: $(cat "$TEST_TMP/err4")"
cli_ok snapshot restore "$(cat "$TEST_TMP/id4")" "$TEST_TMP/r4"
same_tree "$WS" "$TEST_TMP/r4" "import of GNU tar output from stdin"

# T4: an absolute path (GNU tar -P keeps it)
mkdir -p "$TEST_TMP/victim"
echo secret >"$TEST_TMP/victim/file"
tar -P -cf "$TEST_TMP/evil.tar" "$TEST_TMP/victim/file"
rm -rf "$TEST_TMP/victim"
cli snapshot import "$TEST_TMP/evil.tar"
assert_cli_rc 1 "import of an absolute path"
assert_contains "$CLI_ERR" "absolute path" "import error names the rule"
assert_one_line "$CLI_ERR" "import error"
[ ! -e "$TEST_TMP/victim" ] || fail "import wrote outside its directory"
cli snapshot import "$TEST_TMP/evil.tar" max_bytes=-5
assert_cli_rc 2 "bad max_bytes"

# ---- prune -----------------------------------------------------------------------
cli_ok snapshot prune keep=1
cli_ok snapshot list
assert_not_contains "$CLI_OUT" "$ID1" "prune removed the older snapshot of the source"
assert_contains "$CLI_OUT" "$ID2" "prune kept the newest"
cli_ok snapshot verify "$ID2"
rm -rf "$TEST_TMP/r5"
cli_ok snapshot restore "$ID2" "$TEST_TMP/r5"
same_tree "$WS" "$TEST_TMP/r5" "restore after prune"

# ---- T2: corruption ------------------------------------------------------------------
cp -a "$TEST_TMP/store" "$TEST_TMP/store-bad"
pack=$(find "$TEST_TMP/store-bad/packs" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
[ -n "$pack" ] || fail "no pack file in the store"
size=$(stat -c %s "$pack")
off=$((size / 3))
byte=$(dd if="$pack" bs=1 skip="$off" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
    dd of="$pack" bs=1 seek="$off" conv=notrunc 2>/dev/null
cli snapshot verify "$ID2" --store "file://$TEST_TMP/store-bad"
assert_ne 0 "$CLI_RC" "verify of a corrupted pack"
mkdir "$TEST_TMP/r6"
echo keep >"$TEST_TMP/r6/mine"
cli snapshot restore "$ID2" "$TEST_TMP/r6" --force --store "file://$TEST_TMP/store-bad"
assert_cli_rc 1 "restore from a corrupted pack"
assert_eq keep "$(cat "$TEST_TMP/r6/mine")" "a failed restore leaves the target"
cli_ok snapshot verify "$ID2"

# ---- T2b: a pack's trailer, a manifest ----------------------------------------------
flip() { # FILE OFFSET
    local b
    b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
    printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
rm -rf "$TEST_TMP/store-bad"
cp -a "$TEST_TMP/store" "$TEST_TMP/store-bad"
for pack in $(find "$TEST_TMP/store-bad/packs" -type f); do
    flip "$pack" $(($(stat -c %s "$pack") - 2)) # in "DMPK"
done
cli snapshot verify "$ID2" --store "file://$TEST_TMP/store-bad"
assert_cli_rc 1 "verify of a pack with a damaged trailer"
assert_contains "$CLI_OUT" "trailer" "verify names the damaged trailer"
rm -rf "$TEST_TMP/store-bad"
cp -a "$TEST_TMP/store" "$TEST_TMP/store-bad"
man="$TEST_TMP/store-bad/snapshots/$ID2"
flip "$man" $(($(stat -c %s "$man") - 3))
cli_ok snapshot list --store "file://$TEST_TMP/store-bad"
assert_contains "$(printf '%s' "$CLI_OUT" | grep "^$ID2")" "DAMAGED" "list marks the damaged manifest"
assert_contains "$CLI_ERR" "$ID2: manifest damaged" "list says why"
cli_ok snapshot list --json --store "file://$TEST_TMP/store-bad"
assert_eq true "$(printf '%s' "$CLI_OUT" | jq -r --arg id "$ID2" '.[] | select(.snapshot_id == $id) | .damaged')" "list --json: damaged"
rm -rf "$TEST_TMP/store-bad"

# ---- T3: kill -9 during create ------------------------------------------------------------
cp -a "$WS" "$TEST_TMP/ws.v2"
head -c $((300 * 1024 * 1024)) /dev/urandom >"$WS/models/big.bin"
cli_ok snapshot list --json
n_before=$(printf '%s' "$CLI_OUT" | jq length)
packs_before=$(find "$TEST_TMP/store/packs" -type f ! -name '.*' | wc -l)
"$DUMONT_BIN" snapshot create "$WS" >"$TEST_TMP/kill.out" 2>&1 &
pid=$!
more_packs() { [ "$(find "$TEST_TMP/store/packs" -type f ! -name '.*' | wc -l)" -gt "$packs_before" ]; } # published, not temp
wait_for 60 "create to write a pack" more_packs
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cli_ok snapshot list --json
n=$(printf '%s' "$CLI_OUT" | jq length)
[ "$n" = "$n_before" ] || fail "kill -9 left a snapshot visible: $CLI_OUT"
for id in $(printf '%s' "$CLI_OUT" | jq -r '.[].snapshot_id'); do
    cli_ok snapshot verify "$id"
done
rm -rf "$TEST_TMP/r7"
cli_ok snapshot restore "$ID2" "$TEST_TMP/r7"
same_tree "$TEST_TMP/ws.v2" "$TEST_TMP/r7" "an earlier snapshot after kill -9"
# what the killed create left: packs no index names, maybe a temp file, its lock
touch -d '2 hours ago' "$TEST_TMP/store/packs/.tmp.999999.1"
cli_ok snapshot prune keep=5
assert_contains "$CLI_OUT" "kept " "prune says it keeps the new unreferenced packs"
cli_ok snapshot prune keep=5 grace=0 --json
[ "$(printf '%s' "$CLI_OUT" | jq .unreferenced_packs_deleted)" -ge 1 ] || fail "prune left the killed create's packs: $CLI_OUT"
[ "$(printf '%s' "$CLI_OUT" | jq .bytes_freed)" -ge $((8 * 1024 * 1024)) ] || fail "prune freed too little: $CLI_OUT"
[ -z "$(find "$TEST_TMP/store" -name '.tmp.*')" ] || fail "temp files left: $(find "$TEST_TMP/store" -name '.tmp.*')"
[ -z "$(find "$TEST_TMP/store/locks" -type f 2>/dev/null)" ] || fail "a lock is left"
cli_ok snapshot verify "$ID2"
cli snapshot prune keep=1 grace=soon
assert_cli_rc 2 "prune grace=soon"
cli_ok snapshot create "$WS"
log "ok"
