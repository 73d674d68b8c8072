#!/usr/bin/env bash
# CLI habits (issue 16, "CLI habits"):
#   I1: every "no such id" error has one wording, `dumont: no KIND 'ID'`, exit 1,
#       whatever the command (failover, instance, token, alert, snapshot).
#   I2: a snapshot id may be given by a unique prefix wherever an id is taken
#       (verify, restore, diff, export); an ambiguous prefix is refused naming
#       the candidates; an unknown one is I1's error (snapshot.h SNAP-R1).
#   I3: --quiet silences progress: `--wait` without the phase lines, and no
#       progress or summary on a terminal (subcmd.h CLI-SC4).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
lib_init
need lz4 tar script
new_home
export DUMONT_STORE="file://$TEST_TMP/store"

no_such() { # WHAT ARGS...: exit 1 and the one wording
    local what=$1
    shift
    cli "$@"
    assert_cli_rc 1 "dumont $*"
    assert_one_line "$CLI_ERR" "dumont $*"
    assert_match "$CLI_ERR" "^dumont: no $what '[^']+'$" "dumont $*: the no-such-id wording"
}

# ---- I2: snapshot prefixes (no server) --------------------------------------
ws="$TEST_TMP/ws"
mkdir -p "$ws"
ids=()
for i in $(seq 1 17); do # 17 ids: two of them share a first hex digit
    printf 'version %s\n' "$i" >"$ws/notes.txt"
    cli_ok snapshot create "$ws"
    ids+=("$CLI_OUT")
done
one=${ids[0]}
p8=${one:0:8}
[ "$(printf '%s\n' "${ids[@]}" | grep -c "^$p8")" = 1 ] || skip "two ids share 8 digits"
cli_ok snapshot verify "$p8"
cli_ok snapshot restore "$p8" "$TEST_TMP/out"
assert_eq "version 1" "$(cat "$TEST_TMP/out/notes.txt")" "restore by prefix: the right snapshot"
cli_ok snapshot diff "$p8" "${ids[16]:0:10}"
assert_contains "$CLI_OUT" "notes.txt" "diff by prefixes"
"$DUMONT_BIN" snapshot export "$p8" | lz4 -dc | tar -t >"$TEST_TMP/export.list" ||
    fail "export by prefix"
grep -q notes.txt "$TEST_TMP/export.list" || fail "export by prefix: no notes.txt"
cli_ok snapshot restore "$one" "$TEST_TMP/out2" # a whole id still works
# an ambiguous prefix: a first digit two ids share
shared=$(printf '%s\n' "${ids[@]}" | cut -c1 | sort | uniq -d | head -1)
[ -n "$shared" ] || fail "17 ids with 17 different first digits"
cli snapshot verify "$shared"
assert_cli_rc 1 "verify with an ambiguous prefix"
assert_contains "$CLI_ERR" "ambiguous" "an ambiguous prefix: said so"
for id in "${ids[@]}"; do
    [ "${id:0:1}" != "$shared" ] || assert_contains "$CLI_ERR" "${id:0:16}" "the candidate ${id:0:16}"
done
# an unknown prefix (no id begins with it)
for d in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do
    printf '%s\n' "${ids[@]}" | grep -q "^$p8$d" || { unknown=$p8$d; break; }
done
no_such snapshot snapshot verify "$unknown"
no_such snapshot snapshot restore "${unknown}" "$TEST_TMP/out3"
no_such snapshot snapshot verify "$(printf 'f%.0s' $(seq 1 64))"
cli snapshot verify ZZZZ
assert_cli_rc 2 "a snapshot id that is not hex"

# ---- I3: --quiet on a terminal (script gives the command a pty) -------------
printf 'version q\n' >"$ws/notes.txt"
script -qec "$DUMONT_BIN snapshot create $ws" "$TEST_TMP/tty.out" >/dev/null
grep -q "new in the store" "$TEST_TMP/tty.out" || fail "create on a terminal: no summary"
printf 'version q2\n' >"$ws/notes.txt"
script -qec "$DUMONT_BIN snapshot create $ws --quiet" "$TEST_TMP/tty.q" >/dev/null
if grep -q "new in the store" "$TEST_TMP/tty.q"; then fail "create --quiet printed its summary"; fi
grep -qE '^[0-9a-f]{64}' "$TEST_TMP/tty.q" || fail "create --quiet: the id is still printed"

# ---- I1 with a server ---------------------------------------------------------
start_server
no_such failover failover status fo-000000000000
no_such test-real failover test-real-report real-000000000000
no_such instance instances show 99999
no_such instance instances destroy 99999
no_such instance chaos preempt 99999
no_such token tokens revoke nobody
no_such alert alerts remove nobody
no_such alert alerts test nobody

# ---- I3: --wait --quiet ---------------------------------------------------------
cli_ok failover test-setup gpu_instance_id=12345
cli_ok failover simulate 12345 speed=5000 --wait
[ "$(printf '%s\n' "$CLI_OUT" | wc -l)" -ge 9 ] || fail "--wait: the phases as they finish: $CLI_OUT"
cli_ok failover simulate 12345 speed=5000 --wait --quiet
assert_eq 2 "$(printf '%s\n' "$CLI_OUT" | wc -l)" "--wait --quiet: the id and the end only"
assert_match "$(printf '%s\n' "$CLI_OUT" | tail -1)" '^completed in ' "--wait --quiet: the end"
log "ok: one no-such-id wording, snapshot id prefixes, --quiet"
