#!/usr/bin/env bash
# gen-workspace.sh DIR [SIZE_MB]: a synthetic AI workspace for bench/snapshot.sh
# (issue 3): SIZE_MB (default 1024) split as
#   ~60% "weights": 4 big files of random bytes (incompressible, as fp16 models)
#   ~30% text/code: 30 generated source-like files (compressible, ~3-4x by lz4)
#   ~10% small files: 10,000 files of ~SIZE/100,000 bytes in 100 directories,
#        half JSON-like text, half random bytes (data/blobs/) (configs, tokens, checkpoints)
# The text parts are deterministic (fixed awk seed); the random parts come
# from /dev/urandom. DIR must not exist.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
dir=$1
size_mb=${2:-1024}
case $size_mb in '' | *[!0-9]*) echo "gen-workspace: SIZE_MB must be a number" >&2; exit 2 ;; esac
[ "$size_mb" -ge 10 ] || { echo "gen-workspace: SIZE_MB must be >= 10" >&2; exit 2; }
[ ! -e "$dir" ] || { echo "gen-workspace: $dir exists" >&2; exit 1; }
mkdir -p "$dir/models" "$dir/src" "$dir/data"

total=$((size_mb * 1024 * 1024))

# 60%: weights
per=$((total * 60 / 100 / 4))
for i in 0 1 2 3; do
    head -c "$per" /dev/urandom >"$dir/models/shard-$i.safetensors"
done

# 30%: source-like text, 30 files
text_each=$((total * 30 / 100 / 30))
awk -v each="$text_each" -v dir="$dir/src" 'BEGIN {
    srand(42)
    split("int float void size_t uint64_t double char", types, " ")
    split("load save forward backward step train eval shard merge quantize", verbs, " ")
    split("weights tensor layer optimizer batch token cache buffer grad state", nouns, " ")
    for (f = 0; f < 30; f++) {
        path = sprintf("%s/module_%02d.c", dir, f)
        n = 0
        while (n < each) {
            v = verbs[int(rand() * 10) + 1]; o = nouns[int(rand() * 10) + 1]
            t = types[int(rand() * 7) + 1]; k = int(rand() * 100000)
            line = sprintf("static %s %s_%s_%d(const struct %s *%s, size_t n) { /* %s the %s */ return %s_%d(n * %d); }\n", \
                t, v, o, k, o, o, v, o, v, k % 977, int(rand() * 4096))
            printf "%s", line > path
            n += length(line)
        }
        close(path)
    }
}'

# 10%: 10,000 small files in 100 directories
small_each=$((total * 10 / 100 / 10000))
mkdir -p "$dir"/data/d{000..099} "$dir/data/blobs"
awk -v each="$small_each" -v dir="$dir/data" 'BEGIN {
    srand(7)
    for (i = 0; i < 5000; i++) {
        path = sprintf("%s/d%03d/config_%05d.json", dir, i % 100, i)
        n = 0
        printf "{\n" > path
        while (n < each) {
            line = sprintf("  \"key_%d\": %d, \"lr\": %.6f,\n", int(rand() * 1e6), int(rand() * 1e9), rand())
            printf "%s", line > path
            n += length(line)
        }
        printf "}\n" > path
        close(path)
    }
}'
# the other 5,000: random bytes, cut from one stream
head -c $((small_each * 5000)) /dev/urandom | split -a 4 -d -b "$small_each" - "$dir/data/blobs/blob_"

du -sh "$dir" >&2
