#!/usr/bin/env bash
# The s3:// store against `aws s3 cp`, side by side in one run against the same
# local s3rver (issue 4):
#
#   bench/s3.sh [SIZE_MB [RUNS]]    default 1024 MiB, median of 3 runs
#
#   upload    dumont snapshot create DIR (empty prefix)  vs  aws s3 cp ws.tar s3://...
#                                                        and tar -c DIR | aws s3 cp - s3://...
#   download  dumont snapshot restore ID DIR             vs  aws s3 cp s3://.../ws.tar FILE
#                                                        and aws s3 cp s3://... - | tar -x
#
# The first aws row moves bytes only (the issue's comparison); the second
# does what dumont does, from a directory to the store and back to a
# directory.
#
# Both move the same workspace (bench/gen-workspace.sh; aws gets it as one tar
# of the same bytes). Prints MB/s (of the workspace's plain bytes) for both,
# the ratio dumont/aws (> 1: dumont faster), and the peak RSS of each
# (/usr/bin/time -v; the `time` package is installed if missing). Builds dumont
# (Release) in $BUILD_DIR (default build-bench-s3); works under $BENCH_TMP
# (default /tmp) and removes everything it made, also on failure.
#
# Caveats printed with the table: s3rver is one Node.js process on the same
# machine, so both clients share the CPUs with the server; aws uploads 1 GiB in
# 8 MiB multipart parts, which s3rver concatenates at CompleteMultipartUpload,
# while dumont's 16 MiB packs are single PUTs; the page cache is warm for both.
set -euo pipefail

SIZE_MB=${1:-1024}
RUNS=${2:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build-bench-s3}
S3RVER=$src/node_modules/.bin/s3rver
AWS=/usr/bin/aws
[ -x "$AWS" ] || AWS=$(command -v aws) || { echo "s3 bench: aws (awscli) is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
[ -x "$S3RVER" ] || { echo "s3 bench: s3rver is not installed: run 'npm ci' in $src" >&2; exit 1; }
if [ ! -x /usr/bin/time ]; then
    echo "installing the time package (GNU time, for peak RSS) ..." >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q time >/dev/null; else sudo apt-get install -y -q time >/dev/null; fi
fi

echo "building dumont (Release) in $build ..." >&2
mkdir -p "$build"
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDUMONT_WERROR=OFF &&
    cmake --build "$build" --target dumont -j"$(nproc)"; } >"$build/bench-build.log" 2>&1; then
    tail -30 "$build/bench-build.log" >&2
    echo "s3 bench: the build failed (log: $build/bench-build.log)" >&2
    exit 1
fi
DUMONT=$build/dumont

tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/dumont-bench-s3.XXXXXX")
s3pid=""
cleanup() {
    [ -z "$s3pid" ] || { kill "$s3pid" 2>/dev/null; wait "$s3pid" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$((20000 + RANDOM % 20000))
mkdir -p "$tmp/s3"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$tmp/s3" -a 127.0.0.1 -p "$port" -s \
    --configure-bucket bench >"$tmp/s3rver.log" 2>&1 &
s3pid=$!
for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export DUMONT_S3_ENDPOINT=http://127.0.0.1:$port DUMONT_HOME=$tmp/home
unset DUMONT_STORE_MIRROR B2_BUCKET
ep=(--endpoint-url "$DUMONT_S3_ENDPOINT")

ws=$tmp/ws
echo "generating a ${SIZE_MB} MiB workspace in $ws ..." >&2
bash "$src/bench/gen-workspace.sh" "$ws" "$SIZE_MB" 2>/dev/null
ws_bytes=$(du -sb --apparent-size "$ws" | cut -f1)
tar -C "$tmp" -cf "$tmp/ws.tar" ws

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; }
median() { LC_ALL=C sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mbps() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.0f", (us > 0 ? b / 1e6 / (us / 1e6) : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
rss_mib() { awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$1"; }

# timed NAME CMD...: runs CMD under /usr/bin/time -v; appends us to T_NAME and
# peak RSS (MiB) to R_NAME.
timed() {
    local name=$1 t0 t1
    shift
    sync # no tool pays for writing out the dirty pages the one before left (s3rver's files)
    t0=$(now)
    /usr/bin/time -v -o "$tmp/time.out" "$@" >"$tmp/cmd.out" 2>"$tmp/cmd.err" ||
        { cat "$tmp/cmd.err" >&2; echo "s3 bench: '$*' failed" >&2; exit 1; }
    t1=$(now)
    local tv="T_$name" rv="R_$name"
    printf -v "$tv" '%s %s' "${!tv}" "$((t1 - t0))"
    printf -v "$rv" '%s %s' "${!rv}" "$(rss_mib "$tmp/time.out")"
}
# shellcheck disable=SC2034 # read through ${!name} in row()
T_dm_up="" T_aws_up="" T_awst_up="" T_dm_down="" T_aws_down="" T_awst_down=""
# shellcheck disable=SC2034
R_dm_up="" R_aws_up="" R_awst_up="" R_dm_down="" R_aws_down="" R_awst_down=""
# shellcheck disable=SC2086 # $1 is a list of numbers, split on purpose
med() { printf '%s\n' $1 | median; }
# shellcheck disable=SC2086
maxof() { printf '%s\n' $1 | sort -n | tail -1; }

for run in $(seq 1 "$RUNS"); do
    echo "run $run/$RUNS ..." >&2
    export DUMONT_STORE=s3://bench/dm-$run
    timed dm_up "$DUMONT" snapshot create "$ws"
    id=$(cat "$tmp/cmd.out")
    timed aws_up "$AWS" "${ep[@]}" s3 cp --only-show-errors "$tmp/ws.tar" "s3://bench/aws-$run/ws.tar"
    # shellcheck disable=SC2016 # expanded by the inner bash
    timed awst_up bash -c 'tar -C "$1" -cf - ws | "$2" --endpoint-url "$3" s3 cp --only-show-errors - "$4"' \
        _ "$tmp" "$AWS" "$DUMONT_S3_ENDPOINT" "s3://bench/awst-$run/ws.tar"
    timed dm_down "$DUMONT" snapshot restore "$id" "$tmp/restored"
    diff -rq "$ws" "$tmp/restored/" >/dev/null || { echo "s3 bench: the restore differs" >&2; exit 1; }
    rm -rf "$tmp/restored"
    timed aws_down "$AWS" "${ep[@]}" s3 cp --only-show-errors "s3://bench/aws-$run/ws.tar" "$tmp/dl.tar"
    cmp -s "$tmp/ws.tar" "$tmp/dl.tar" || { echo "s3 bench: aws download differs" >&2; exit 1; }
    rm -f "$tmp/dl.tar"
    mkdir "$tmp/x"
    # shellcheck disable=SC2016
    timed awst_down bash -c '"$1" --endpoint-url "$2" s3 cp --only-show-errors "$3" - | tar -C "$4" -xf -' \
        _ "$AWS" "$DUMONT_S3_ENDPOINT" "s3://bench/aws-$run/ws.tar" "$tmp/x"
    diff -rq "$ws" "$tmp/x/ws" >/dev/null || { echo "s3 bench: aws | tar -x differs" >&2; exit 1; }
    rm -rf "$tmp/x"
    stored=$(du -sb "$tmp/s3/bench/dm-$run" | cut -f1)
    rm -rf "$tmp/s3/bench/dm-$run" "$tmp/s3/bench/aws-$run" "$tmp/s3/bench/awst-$run"
done

row() { # OP NAME_DM NAME_AWS LABEL
    local tdm="T_$2" taws="T_$3" rdm="R_$2" raws="R_$3" a b
    a=$(mbps "$ws_bytes" "$(med "${!tdm}")")
    b=$(mbps "$ws_bytes" "$(med "${!taws}")")
    printf '%-9s %-26s %8s %9s %8s %11s %9s\n' "$1" "$4" "$a" "$b" "$(ratio "$a" "$b")" \
        "$(maxof "${!rdm}")" "$(maxof "${!raws}")"
}
echo
echo "s3 store bench: $((ws_bytes / 1048576)) MiB workspace, median of $RUNS runs, s3rver on loopback"
echo "(dumont stored $((stored / 1048576)) MiB after chunking+LZ4; aws moved a $(($(stat -c %s "$tmp/ws.tar") / 1048576)) MiB tar)"
printf '%-9s %-26s %8s %9s %8s %11s %9s\n' op "aws side" "dm MB/s" "aws MB/s" "dm/aws" "dm RSS MiB" "aws RSS"
row upload dm_up aws_up "aws s3 cp ws.tar"
row upload dm_up awst_up "tar -c | aws s3 cp -"
row download dm_down aws_down "aws s3 cp > ws.tar"
row download dm_down awst_down "aws s3 cp - | tar -x"
echo
echo "caveats: one machine ($(nproc) CPUs) runs client and s3rver; aws uploads in 8 MiB multipart"
echo "parts that s3rver concatenates on completion, dumont's packs are single PUTs; warm page cache."
