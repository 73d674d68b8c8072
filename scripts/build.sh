#!/usr/bin/env bash
# Configures and builds Dumont.
#
#   bash scripts/build.sh               # release tree: build/ (build/dumont)
#   bash scripts/build.sh --sanitize    # ASan+UBSan tree: build-asan/
#   bash scripts/build.sh --tsan        # ThreadSanitizer tree: build-tsan/
#
# Extra arguments after `--` go to the CMake configure step. The compiler's
# full output is kept in <tree>/build.log and shown when something fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sanitize=0
tsan=0
cmake_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize) sanitize=1 ;;
    --tsan) tsan=1 ;;
    --) shift; cmake_args+=("$@"); break ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$sanitize" = 1 ] && [ "$tsan" = 1 ]; then
    echo "build: --sanitize and --tsan exclude each other" >&2
    exit 2
elif [ "$sanitize" = 1 ]; then
    bdir="$root/build-asan"
    cmake_args=(-DDUMONT_SANITIZE=ON -DDUMONT_TSAN=OFF "${cmake_args[@]+"${cmake_args[@]}"}")
elif [ "$tsan" = 1 ]; then
    bdir="$root/build-tsan"
    cmake_args=(-DDUMONT_SANITIZE=OFF -DDUMONT_TSAN=ON "${cmake_args[@]+"${cmake_args[@]}"}")
else
    bdir="$root/build"
    cmake_args=(-DDUMONT_SANITIZE=OFF -DDUMONT_TSAN=OFF "${cmake_args[@]+"${cmake_args[@]}"}")
fi
jobs=$(nproc 2>/dev/null || echo 2)
mkdir -p "$bdir"
log="$bdir/build.log"
: >"$log"

echo "build: configuring $bdir" >&2
if ! cmake -S "$root" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" >>"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "build: cmake configure failed (full log: $log)" >&2
    exit 1
fi
echo "build: compiling with $jobs jobs" >&2
if ! cmake --build "$bdir" --parallel "$jobs" >>"$log" 2>&1; then
    # Show the compiler's diagnostics first, then the end of the log.
    grep -E -A6 '(error|warning):' "$log" | head -n 120 >&2 || true
    tail -n 4 "$log" >&2
    echo "build: build failed (full log: $log)" >&2
    exit 1
fi
echo "build: ok ($bdir/dumont)" >&2
