#!/usr/bin/env bash
# The portable agent build: `dumont` built on Debian 11 (glibc 2.31, the
# oldest system it supports, as manylinux builds on the oldest one), shipped
# with every library it links except glibc's own, so it runs on any x86_64
# Ubuntu 20.04+ / Debian 11+ machine where none of the project's libraries
# is installed (docs/deploy.md "The portable agent").
#
#   bash scripts/portable-agent.sh [--out FILE.tar.gz] [--cache DIR] [--check-only] [--test]
#
# Makes (once; cached in DIR, default /var/tmp/dumont-portable) two Debian 11
# roots with debootstrap: `bare.tar` (minbase: no compiler, no curl, no
# python3, none of the project's libraries) and `build.tar` (bare plus the
# compiler and the -dev packages). Copies the working tree (tracked and
# untracked files git does not ignore) into the build root, builds
# build/dumont there, and packs
#     dumont-agent/bin/dumont        (RPATH $ORIGIN/../lib, for every library)
#     dumont-agent/lib/*.so*         (ldd's list, less glibc's)
# into FILE (default build-portable/dumont-agent-linux-x86_64.tar.gz).
#
# PA1: the binary and every shipped library need no glibc symbol version newer
#      than GLIBC_2.31 (objdump -T); the build fails otherwise.
# PA2: no library of glibc itself (libc, libm, libpthread, libdl, librt,
#      libresolv, the loader) is shipped: those come from the host.
# --check-only: only PA1 over an existing FILE. --test: then runs
# tests/portable/test_portable_agent.sh (the bootstrap line on a bare Debian 11
# root) with the release tree's build/dumont as the server (built by
# scripts/build.sh when missing). Needs root (debootstrap, chroot); as anyone
# else it says so and exits 77.
set -Eeuo pipefail
trap 'printf "portable-agent: FAIL: line %s: %s (exit %s)\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo/build-portable/dumont-agent-linux-x86_64.tar.gz
cache=${DUMONT_PORTABLE_CACHE:-/var/tmp/dumont-portable}
check_only=0
run_test=0
while [ $# -gt 0 ]; do
    case "$1" in
    --out) out=${2:?--out FILE}; shift ;;
    --cache) cache=${2:?--cache DIR}; shift ;;
    --check-only) check_only=1 ;;
    --test) run_test=1 ;;
    -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "portable-agent: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done
say() { printf 'portable-agent: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
MAX_GLIBC=2.31

# PA1 over the unpacked tree DIR.
check_glibc() {
    local f v worst=0.0 bad=""
    for f in "$1"/bin/dumont "$1"/lib/*.so*; do
        v=$({ objdump -T "$f" 2>/dev/null || true; } | { grep -o 'GLIBC_[0-9][0-9.]*' || true; } |
            sed 's/GLIBC_//' | sort -V | tail -n1)
        [ -n "$v" ] || continue
        if [ "$(printf '%s\n%s\n' "$v" "$MAX_GLIBC" | sort -V | tail -n1)" != "$MAX_GLIBC" ]; then
            bad="$bad ${f##*/}(GLIBC_$v)"
        fi
        worst=$(printf '%s\n%s\n' "$v" "$worst" | sort -V | tail -n1)
    done
    [ -z "$bad" ] || die "needs a glibc newer than $MAX_GLIBC:$bad"
    say "glibc symbol versions: at most GLIBC_$worst (limit $MAX_GLIBC)"
}

if [ "$check_only" = 1 ]; then
    [ -f "$out" ] || die "no $out"
    t=$(mktemp -d)
    trap 'rm -rf "$t"' EXIT
    tar -C "$t" -xzf "$out"
    check_glibc "$t/dumont-agent"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    say "SKIPPED: needs root (debootstrap, chroot)"
    exit 77
fi
command -v objdump >/dev/null || die "objdump (binutils) is not installed"
mkdir -p "$cache"
mirror=http://deb.debian.org/debian
if [ ! -f "$cache/bare.tar" ]; then
    command -v debootstrap >/dev/null || apt-get install -y debootstrap >&2 ||
        die "cannot install debootstrap"
    say "debootstrap --variant=minbase bullseye (once; cached in $cache)"
    rm -rf "$cache/bare.new"
    debootstrap --variant=minbase bullseye "$cache/bare.new" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        die "debootstrap failed (see $cache/debootstrap.log)"
    tar -C "$cache/bare.new" -cf "$cache/bare.tar.new" . && mv "$cache/bare.tar.new" "$cache/bare.tar"
    rm -rf "$cache/bare.new"
fi
work=$(mktemp -d "$cache/work.XXXXXX")
root=$work/root
cleanup() {
    umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$root"
if [ -f "$cache/build.tar" ]; then
    tar -C "$root" -xf "$cache/build.tar"
else
    tar -C "$root" -xf "$cache/bare.tar"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
if [ ! -f "$cache/build.tar" ]; then
    say "installing the compiler and the -dev packages in the build root (once)"
    chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get update >"$work/apt.log" 2>&1 &&
        chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends build-essential cmake pkg-config xxd binutils patchelf \
            libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev liblz4-dev libarchive-dev \
            libsqlite3-dev libpq-dev libssl-dev >>"$work/apt.log" 2>&1 ||
        die "apt-get in the build root failed: $(tail -3 "$work/apt.log")"
    umount "$root/proc"
    tar -C "$root" -cf "$cache/build.tar.new" . && mv "$cache/build.tar.new" "$cache/build.tar"
    mount -t proc proc "$root/proc"
fi
say "building dumont on Debian 11"
mkdir -p "$root/src/dumont"
# tracked and untracked files git does not ignore (a tracked file deleted in
# the working tree is skipped)
(cd "$repo" && git ls-files -co --exclude-standard -z |
    tar --null --ignore-failed-read -cf - -T - 2>/dev/null) | tar -C "$root/src/dumont" -xf -
chroot "$root" /bin/bash -c 'cd /src/dumont && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release \
    -DDUMONT_TESTS=OFF >/build.log 2>&1 && cmake --build /build --parallel 2 --target dumont >>/build.log 2>&1' ||
    die "the build failed: $(tail -5 "$root/build.log")"
# PA2: the libraries ldd resolves, less glibc's; RPATH (not RUNPATH) so that
# the libraries' own dependencies are found in lib/ too.
chroot "$root" /bin/bash -c 'set -e; d=/pack/dumont-agent; mkdir -p $d/bin $d/lib
    cp /build/dumont $d/bin/dumont
    ldd /build/dumont | awk "\$3 ~ /^\\// {print \$3}" | while read -r l; do
        case "${l##*/}" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|ld-linux*) ;;
        *) cp -L "$l" $d/lib/ ;;
        esac
    done
    patchelf --force-rpath --set-rpath "\$ORIGIN/../lib" $d/bin/dumont
    for l in $d/lib/*.so*; do patchelf --force-rpath --set-rpath "\$ORIGIN" "$l"; done
    strip --strip-unneeded $d/bin/dumont $d/lib/*.so*' || die "packing failed"
check_glibc "$root/pack/dumont-agent"
mkdir -p "$(dirname "$out")"
tar -C "$root/pack" -czf "$out.new" dumont-agent && mv "$out.new" "$out"
say "ok: $out ($(du -h "$out" | cut -f1), $(ls "$root/pack/dumont-agent/lib" | wc -l) libraries)"
if [ "$run_test" = 1 ]; then
    [ -x "$repo/build/dumont" ] && [ -x "$repo/build/tiny-ollama" ] || bash "$repo/scripts/build.sh"
    say "tests/portable/test_portable_agent.sh"
    DUMONT_BIN=$repo/build/dumont DUMONT_AGENT_BUNDLE=$out DUMONT_PORTABLE_CACHE=$cache \
        bash "$repo/tests/portable/test_portable_agent.sh" || die "the bootstrap test failed"
fi
