#!/usr/bin/env bash
# db_report() on SQLite and PostgreSQL, side by side.
#
#   bench/report.sh [N [K]]      N failovers (default 100000), K reports each (default 21)
#
# Builds bench_report (Release, in $BUILD_DIR, default build-bench), starts a
# throw-away PostgreSQL cluster (scripts/pg-test-cluster.sh), runs the bench on
# a fresh SQLite file and on the fresh PostgreSQL database, prints a table of
# the results, and removes everything it made, also on failure or Ctrl-C.
#
# Timings on a shared machine are noisy: the load average is printed with the
# table. "stats" is report.c's share (the statistics fed from memory); the
# rest of "median" is the database's scan.
set -euo pipefail

N=${1:-100000}
K=${2:-21}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build-bench}

echo "building bench_report in $build ..." >&2
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target bench_report -j"$(nproc)" >/dev/null

tmp=$(mktemp -d /tmp/dumont-bench.XXXXXX)
chmod 755 "$tmp" # as root, the cluster runs as `postgres`, which must reach $tmp/pg
cleanup() {
    "$src/scripts/pg-test-cluster.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "starting a throw-away PostgreSQL cluster ..." >&2
url=$("$src/scripts/pg-test-cluster.sh" start "$tmp/pg")

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
"$build/bench/bench_report" "$tmp/bench.db" "$N" "$K" | tee -a "$tmp/results"
"$build/bench/bench_report" "$url" "$N" "$K" | tee -a "$tmp/results"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "db_report over $N failovers, $K runs each ($(nproc) CPUs; load average $load_before -> $load_after)"
awk '
/^RESULT / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    row[++n] = sprintf("%-11s %9s %8s %10s %8s %8s %9s", v["backend"], v["n"], v["fill_s"],
                       v["median_ms"], v["min_ms"], v["p95_ms"], v["stats_median_ms"])
}
END {
    printf "%-11s %9s %8s %10s %8s %8s %9s\n", "backend", "rows", "fill_s", "median_ms",
           "min_ms", "p95_ms", "stats_ms"
    for (i = 1; i <= n; i++) print row[i]
}' "$tmp/results"
