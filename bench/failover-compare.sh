#!/usr/bin/env bash
# Side by side, in one run: bench/failover.sh with a baseline dumont (e.g. the
# build of an older commit, whose controller restored in-process) and with
# this tree's, then both medians and their ratio.
#
#   bench/failover-compare.sh BASELINE_BIN [RUNS [SIZE_MB]]   # default 5 runs, 1024 MB
#
# BASELINE_BIN is a dumont binary with tiny-ollama beside it (as build/ has).
# The candidate is $DUMONT_BIN (default build/dumont). Each side gets its own
# fresh home, workspace and server; the baseline runs first.
set -euo pipefail
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
base=$1
runs=${2:-5}
size=${3:-1024}
cand=${DUMONT_BIN:-$here/../build/dumont}
[ -x "$base" ] || { echo "failover-compare: $base is not executable" >&2; exit 1; }
median_of() { sed -n 's/.*workspace: median \([0-9]*\) ms.*/\1/p' "$1" | tail -n1; }
out_b=$(mktemp) out_c=$(mktemp)
trap 'rm -f "$out_b" "$out_c"' EXIT
echo "== baseline: $base" >&2
DUMONT_BIN=$base bash "$here/failover.sh" "$runs" "$size" | tee "$out_b"
echo "== candidate: $cand" >&2
DUMONT_BIN=$cand bash "$here/failover.sh" "$runs" "$size" | tee "$out_c"
mb=$(median_of "$out_b") mc=$(median_of "$out_c")
echo
echo "kill -9 -> answering again, ${size} MB, median of $runs runs: baseline ${mb} ms," \
    "candidate ${mc} ms, candidate/baseline $(awk -v c="$mc" -v b="$mb" 'BEGIN {printf "%.2f", c / b}')"
