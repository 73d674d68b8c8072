#!/usr/bin/env bash
# Builds Dumont and runs every test (unit + integration) with CTest.
#
#   bash scripts/test.sh               # release tree (build/)
#   bash scripts/test.sh --sanitize    # ASan+UBSan tree (build-asan/)
#   bash scripts/test.sh --tsan        # ThreadSanitizer tree (build-tsan/)
#
# Installs missing Debian packages first (scripts/install-deps.sh --test),
# starts a throw-away PostgreSQL cluster (scripts/pg-test-cluster.sh) and
# exports its URL as DUMONT_TEST_PG_URL for the tests that need it (if
# DUMONT_TEST_PG_URL is already set, that server is used instead). The cluster
# is removed on exit. Arguments after `--` go to ctest (e.g. -- -R unit/).
# Exits with ctest's status; under --tsan, also non-zero when any process
# the tests started (servers and agents too) reported a data race: reports go
# to build-tsan/tsan/ and are printed at the end.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

sanitize=0
tsan=0
ctest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) sanitize=1 ;;
    --tsan) tsan=1 ;;
    --) shift; ctest_args+=("$@"); break ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$sanitize" = 1 ] && [ "$tsan" = 1 ]; then
    echo "test: --sanitize and --tsan exclude each other" >&2
    exit 2
fi

bash "$root/scripts/install-deps.sh" --test
# playwright-core for the dashboard's browser test (tests/browser/) and s3rver
# for the s3:// store's test, pinned by package-lock.json: `npm ci` when they
# are missing or the lock file changed since the last one. --engine-strict:
# a package that wants a newer Node.js than Debian's fails here, loudly.
if [ ! -d "$root/node_modules/playwright-core" ] || [ ! -x "$root/node_modules/.bin/s3rver" ] ||
    [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    echo "test: npm ci (playwright-core, s3rver)" >&2
    if ! (cd "$root" && npm ci --engine-strict --prefer-offline --no-audit --no-fund --loglevel=error); then
        echo "test: npm ci failed; the dashboard's and the s3 store's tests need it" >&2
        exit 1
    fi
fi
if [ "$sanitize" = 1 ]; then
    bash "$root/scripts/build.sh" --sanitize -- -DDUMONT_TESTS=ON
    bdir="$root/build-asan"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
elif [ "$tsan" = 1 ]; then
    bash "$root/scripts/build.sh" --tsan -- -DDUMONT_TESTS=ON
    bdir="$root/build-tsan"
    tsan_dir="$bdir/tsan"
    rm -rf "$tsan_dir"
    mkdir -p "$tsan_dir"
    # Every process writes its reports to a file of its own (log_path), so a
    # race in a server that a test kills still fails the run (checked below);
    # exitcode=66 fails the unit test that raced. Suppressions: tests/tsan.supp.
    export TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:log_path=$tsan_dir/race:suppressions=$root/tests/tsan.supp"
else
    bash "$root/scripts/build.sh" -- -DDUMONT_TESTS=ON
    bdir="$root/build"
fi

warn() {
    echo "" >&2
    echo "########################################################################" >&2
    echo "# WARNING: $*" >&2
    echo "# Tests that need PostgreSQL will be SKIPPED." >&2
    echo "########################################################################" >&2
    echo "" >&2
}

pg_tmp=""
pg_dir=""
pg_started=0
# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$pg_started" = 1 ]; then
        bash "$root/scripts/pg-test-cluster.sh" stop "$pg_dir" >/dev/null 2>&1 ||
            echo "test: warning: could not stop the PostgreSQL test cluster in $pg_dir" >&2
    fi
    if [ -n "$pg_tmp" ]; then
        rm -rf "$pg_tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_script="$root/scripts/pg-test-cluster.sh"
if [ -n "${DUMONT_TEST_PG_URL:-}" ]; then
    echo "test: using the PostgreSQL server given in DUMONT_TEST_PG_URL" >&2
elif [ ! -f "$pg_script" ]; then
    warn "scripts/pg-test-cluster.sh is missing; no PostgreSQL test cluster."
else
    pg_tmp=$(mktemp -d /tmp/dumont-test-pg.XXXXXX) # short: the unix socket path is capped
    chmod 0755 "$pg_tmp" # the server may run as another user (postgres refuses root)
    pg_dir="$pg_tmp/cluster"
    pg_started=1 # from here on, `stop` on exit even if `start` fails half-way
    if pg_out=$(bash "$pg_script" start "$pg_dir") &&
        url=$(printf '%s\n' "$pg_out" | grep -E '^postgres(ql)?://' | tail -n 1) &&
        [ -n "$url" ]; then
        export DUMONT_TEST_PG_URL="$url"
        echo "test: PostgreSQL test cluster up in $pg_dir" >&2
    else
        warn "scripts/pg-test-cluster.sh start failed; no PostgreSQL test cluster."
    fi
fi

set +e
ctest --test-dir "$bdir" --output-on-failure -j2 "${ctest_args[@]+"${ctest_args[@]}"}"
status=$?
set -e
if [ "$tsan" = 1 ]; then
    reports=$(find "$tsan_dir" -type f -name 'race.*' | sort)
    if [ -n "$reports" ]; then
        for f in $reports; do
            echo "---- $f" >&2
            cat "$f" >&2
        done
        echo "test: ThreadSanitizer reported in $(printf '%s\n' "$reports" | wc -l) process(es) (above)" >&2
        [ "$status" != 0 ] || status=66
    else
        echo "test: ThreadSanitizer: no report" >&2
    fi
fi
exit "$status"
