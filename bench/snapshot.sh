#!/usr/bin/env bash
# The snapshot engine against its peers, side by side in one run (issue 3):
#
#   bench/snapshot.sh [SIZE_MB [RUNS]]    default 1024 MiB, median of 3 runs
#
#   full        dumont snapshot create (empty store)   vs  tar -cf - ws | lz4 -1 > f
#   incremental dumont create after changing 1%        vs  restic backup of the same change
#   restore     dumont snapshot restore                vs  lz4 -dc f | tar -x, restic restore
#   verify      dumont snapshot verify of the latest snapshot (every byte of its packs)
#   export      dumont snapshot export (one run; the output is checked by lz4 | tar -x, diff -r)
#
# Builds dumont (Release, in $BUILD_DIR, default build-bench), generates the
# workspace with bench/gen-workspace.sh (~60% random "weights", ~30% text,
# ~10% as 10,000 small files) under $BENCH_TMP (default /tmp), prints each
# timing, MB/s (of the workspace's plain bytes), stored sizes and the ratios
# the issue asks for, and removes everything it made, also on failure.
#
# Caveats printed with the table: the page cache cannot be dropped here (not
# root in CI, or a shared machine), so every read of the workspace and the
# stores is warm for every tool alike; writes go to the same file system.
# restic runs with a cache dir inside the bench dir (its best case) and
# RESTIC_PASSWORD set; its repository is created once, like the store.
set -euo pipefail

SIZE_MB=${1:-1024}
RUNS=${2:-3}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$src/build-bench}

for c in lz4 tar restic awk; do
    command -v "$c" >/dev/null 2>&1 || { echo "snapshot bench: '$c' is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
done

echo "building dumont (Release) in $build ..." >&2
mkdir -p "$build"
if ! { cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DDUMONT_WERROR=OFF &&
    cmake --build "$build" --target dumont -j"$(nproc)"; } >"$build/bench-build.log" 2>&1; then
    tail -30 "$build/bench-build.log" >&2
    echo "snapshot bench: the build failed (log: $build/bench-build.log)" >&2
    exit 1
fi
DUMONT=$build/dumont

tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/dumont-bench-snap.XXXXXX")
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ws=$tmp/ws
echo "generating a ${SIZE_MB} MiB workspace in $ws ..." >&2
bash "$src/bench/gen-workspace.sh" "$ws" "$SIZE_MB" 2>/dev/null
ws_bytes=$(du -sb --apparent-size "$ws" | cut -f1)

export RESTIC_PASSWORD=dumont-bench RESTIC_REPOSITORY=$tmp/restic
restic_flags=(--cache-dir "$tmp/restic-cache" -q)
restic "${restic_flags[@]}" init >/dev/null

now() { printf '%s' "${EPOCHREALTIME/[.,]/}"; }            # microseconds
median() { LC_ALL=C sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
secs() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }
mbps() { awk -v b="$1" -v us="$2" 'BEGIN { printf "%.0f", (us > 0 ? b / 1e6 / (us / 1e6) : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
size_of() { du -sb --apparent-size "$1" | cut -f1; }

# timed VAR CMD...: runs CMD, adds its duration (us) to the list in VAR
timed() {
    local var=$1 t0 t1
    shift
    t0=$(now)
    "$@"
    t1=$(now)
    printf -v "$var" '%s %s' "${!var}" "$((t1 - t0))"
}
med() { printf '%s\n' $1 | median; }

# ---- full ------------------------------------------------------------------
echo "full snapshot x$RUNS ..." >&2
t_tar="" t_tars="" t_dm=""
tar_lz4() { tar -C "$tmp" -cf - ws | lz4 -1 -q >"$tmp/ws.tar.lz4"; }
# The same made durable, as `dumont snapshot create` is before it returns.
tar_lz4_sync() { tar_lz4 && sync "$tmp/ws.tar.lz4"; }
dm_full() { "$DUMONT" snapshot create "$ws" --store "file://$tmp/store" >/dev/null; }
for i in $(seq 1 "$RUNS"); do
    # Each tool starts with no dirty pages of another's: dumont's syncfs
    # would otherwise also pay for writing out tar's output.
    rm -f "$tmp/ws.tar.lz4"
    sync
    timed t_tar tar_lz4
    rm -f "$tmp/ws.tar.lz4"
    sync
    timed t_tars tar_lz4_sync
    rm -rf "$tmp/store"
    sync
    timed t_dm dm_full
done
tar_size=$(size_of "$tmp/ws.tar.lz4")
dm_size=$(size_of "$tmp/store")
full_tar=$(med "$t_tar") full_dm=$(med "$t_dm")

echo "restic full backup (once, not compared) ..." >&2
t_rfull=""
r_backup() { restic "${restic_flags[@]}" backup "$ws" >/dev/null; }
timed t_rfull r_backup
restic_size=$(size_of "$tmp/restic")

# ---- incremental: 1% of the bytes changed, the same change for both ------------
echo "incremental after a 1% change x$RUNS ..." >&2
change_1pct() { # round N: rewrite 1% of the bytes in place: a weights region, some text, 100 small files
    local n=$1
    local shard="$ws/models/shard-$((n % 4)).safetensors" chunk=$((ws_bytes / 100 * 80 / 100))
    local mb=$((chunk / 1048576 + 1)) shard_mb=$(($(stat -c %s "$shard") / 1048576))
    dd if=/dev/urandom of="$shard" bs=1M count="$mb" \
        seek=$(((n * 7) % (shard_mb > mb ? shard_mb - mb : 1))) conv=notrunc status=none
    printf '\n/* edit %s */\n' "$n" >>"$ws/src/module_0$((n % 10)).c"
    local f files
    mapfile -t files < <(find "$ws/data/d0$((n % 10))"* -name '*.json')
    for f in "${files[@]:0:100}"; do
        printf ' ' >>"$f"
    done
}
t_dinc="" t_rinc=""
dm_inc() { "$DUMONT" snapshot create "$ws" --store "file://$tmp/store" >/dev/null; }
for i in $(seq 1 "$RUNS"); do
    change_1pct "$i"
    sync # neither tool pays for writing out the other's dirty pages
    timed t_dinc dm_inc
    sync
    timed t_rinc r_backup
done
inc_dm=$(med "$t_dinc") inc_r=$(med "$t_rinc")

# ---- restore -------------------------------------------------------------------------
echo "restore x$RUNS ..." >&2
t_drest="" t_trest="" t_rrest=""
dm_restore() { "$DUMONT" snapshot restore latest "$tmp/out" --store "file://$tmp/store"; }
untar() { mkdir "$tmp/out" && lz4 -dc "$tmp/ws.tar.lz4" | tar -x -C "$tmp/out"; }
r_restore() { restic "${restic_flags[@]}" restore latest --target "$tmp/out" >/dev/null; }
for i in $(seq 1 "$RUNS"); do
    rm -rf "$tmp/out"
    timed t_drest dm_restore
    rm -rf "$tmp/out"
    timed t_trest untar
    rm -rf "$tmp/out"
    timed t_rrest r_restore
done
rm -rf "$tmp/out"
rest_dm=$(med "$t_drest") rest_tar=$(med "$t_trest") rest_r=$(med "$t_rrest")

# ---- verify: every byte of every pack the snapshot uses -------------------------------
echo "verify x$RUNS ..." >&2
t_ver=""
dm_verify() { "$DUMONT" snapshot verify latest --store "file://$tmp/store" >/dev/null; }
for i in $(seq 1 "$RUNS"); do
    timed t_ver dm_verify
done

# ---- export (one run), then checked by the real lz4 and tar (not timed) ---------------
echo "export, and its read-back by lz4 | tar ..." >&2
t_exp=""
dm_export() { "$DUMONT" snapshot export latest --store "file://$tmp/store" >"$tmp/export.tar.lz4"; }
timed t_exp dm_export
rm -f "$tmp/ws.tar.lz4" # room on small disks
mkdir "$tmp/out"
lz4 -dc "$tmp/export.tar.lz4" | tar -x -C "$tmp/out"
export_check=ok
diff -rq --no-dereference "$ws" "$tmp/out" >/dev/null 2>&1 || export_check="DIFFERS from the workspace"
export_size=$(size_of "$tmp/export.tar.lz4")
rm -rf "$tmp/out" "$tmp/export.tar.lz4"

# ---- the table -------------------------------------------------------------------------
row() { printf '%-34s %9s s %7s MB/s  %s\n' "$1" "$(secs "$2")" "$(mbps "$ws_bytes" "$2")" "${3:-}"; }
echo
echo "workspace: $(awk -v b="$ws_bytes" 'BEGIN { printf "%.0f MiB", b / 1048576 }'), $(find "$ws" -type f | wc -l) files; $(nproc) cores; median of $RUNS; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "page cache warm for every tool (cannot drop caches here); restic $(restic version | cut -d' ' -f2)"
echo
row "full: dumont snapshot create" "$full_dm" "stored $((dm_size / 1048576)) MiB"
row "full: tar | lz4 -1" "$full_tar" "stored $((tar_size / 1048576)) MiB"
row "full: tar | lz4 -1, then sync" "$(med "$t_tars")" "(durable, like dumont)"
row "full: restic backup (1 run)" "$(med "$t_rfull")" "stored $((restic_size / 1048576)) MiB"
row "incremental 1%: dumont" "$inc_dm"
row "incremental 1%: restic backup" "$inc_r"
row "restore: dumont" "$rest_dm"
row "restore: lz4 -dc | tar -x" "$rest_tar"
row "restore: restic restore" "$rest_r"
row "verify: dumont snapshot verify" "$(med "$t_ver")" "(every byte of every pack)"
row "export: dumont snapshot export" "$(med "$t_exp")" "$((export_size / 1048576)) MiB; lz4 -dc | tar -x + diff -r: $export_check"
echo
echo "ratios (target in brackets):"
echo "  full speed vs tar|lz4:          $(ratio "$full_tar" "$full_dm")x   [>= 1.5x]"
echo "  full speed vs tar|lz4 + sync:   $(ratio "$(med "$t_tars")" "$full_dm")x   (both durable)"
echo "  stored size vs tar|lz4:         $(ratio "$dm_size" "$tar_size")    [<= 1.05]"
echo "  incremental vs restic:          $(ratio "$inc_r" "$inc_dm")x   [>= 5x, dumont < 1 s: $(secs "$inc_dm") s]"
echo "  restore vs lz4|tar:             $(ratio "$rest_tar" "$rest_dm")x   [>= 1.5x]"
echo "  restore vs restic:              $(ratio "$rest_r" "$rest_dm")x   [> 1x]"
