#!/usr/bin/env bash
# The README's two commands on a bare Debian 12, as a newcomer runs them.
#
#   bash scripts/fresh-machine-test.sh [--only test|start] [--base FILE.tar]
#                                      [--workdir DIR] [--keep]
#
# Makes a bare Debian 12 root (`debootstrap --variant=minbase bookworm`: no
# compiler, curl, node, sqlite3, python3 or PostgreSQL), copies the
# repository's HEAD in (`git archive`: committed files only), and
#   1. in that root runs `bash scripts/test.sh` (README command 2) and checks
#      that every test passed and none was skipped;
#   2. in a second bare root runs `bash scripts/start.sh` (README command 1)
#      first, waits until the demo serves, runs the README's "Try it"
#      commands (the seed's failover test-setup and simulate --wait among
#      them), checks the dashboard's address and a real failover of the demo
#      instance, then stops it.
# It prints the wall time of each README command (first run, packages
# included). Needs root (debootstrap, chroot, mounts); as anyone else it says
# so and exits 77. About 13 minutes on 2 cores (debootstrap 1, test.sh 9,
# start.sh 1, measured with little else running; 20-25 under load).
#
#   --only test|start  one leg only
#   --base FILE.tar    a tarball of a bare root made earlier (tar -C ROOT -cf)
#                      instead of a new debootstrap
#   --workdir DIR      where the roots go (default: a new dumont-fresh.* in
#                      $TMPDIR or /var/tmp; about 5 GB)
#   --keep             keep the work directory (roots, logs) afterwards
#
# Nothing about this machine is written in the repository: the Debian mirror
# and apt's proxy and validity settings come from this machine's apt
# configuration (sources.list, sources.list.d/*.list and *.sources; only
# Debian 12's own suites), npm's registry, proxy and CA file from `npm config`,
# proxies from the environment, and extra CA certificates from
# /usr/local/share/ca-certificates; they are copied into each root at run
# time (the roots' ca-certificates package picks the extra ones up).
#
# F1: every mount it makes is below a root it made, and is undone on exit,
#     failure or Ctrl-C (umount, then umount -l); the roots are removed only
#     when nothing is mounted below them any more.
# F2: every process whose root directory is one of its roots is killed on
#     exit (TERM, then KILL): daemons started by packages, the demo's
#     detached instances.
# F3: the roots share this machine's network (apt and npm need it): the
#     demo's port 8700 must be free here, else another free port is used and
#     the output says so.
set -Eeuo pipefail
trap 'say "FAIL: line $LINENO: $BASH_COMMAND (exit $?)"' ERR

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
only=""
base=""
workdir=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
    --only)
        only=${2:-}
        [ "$only" = test ] || [ "$only" = start ] || { echo "fresh-machine: --only test|start" >&2; exit 2; }
        shift
        ;;
    --base) base=${2:-}; [ -f "$base" ] || { echo "fresh-machine: --base: no file '$base'" >&2; exit 2; }; shift ;;
    --workdir) workdir=${2:-}; [ -n "$workdir" ] || { echo "fresh-machine: --workdir DIR" >&2; exit 2; }; shift ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-machine: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf 'fresh-machine: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

if [ "$(id -u)" != 0 ]; then
    say "SKIPPED: needs root (debootstrap, chroot and mounts); run it as root"
    exit 77
fi
for c in git tar chroot mount umount readlink; do
    command -v "$c" >/dev/null 2>&1 || die "'$c' is not installed on this machine"
done

t_start=$(date +%s)
elapsed() { # SINCE: "M min S s" since the epoch second SINCE
    local s=$(($(date +%s) - $1))
    printf '%d min %02d s' $((s / 60)) $((s % 60))
}

# ---- the work directory, cleanup (F1, F2) --------------------------------

if [ -z "$workdir" ]; then
    workdir=$(mktemp -d "${TMPDIR:-/var/tmp}/dumont-fresh.XXXXXX")
else
    mkdir -p "$workdir"
    workdir=$(cd "$workdir" && pwd)
fi
roots=()

root_pids() { # ROOT: the processes whose root directory is ROOT or below
    local p r
    for p in /proc/[0-9]*; do
        r=$(readlink "$p/root" 2>/dev/null) || continue
        if [ "$r" = "$1" ] || [ "${r#"$1"/}" != "$r" ]; then
            echo "${p#/proc/}"
        fi
    done
}

mounts_below() { # ROOT: mount points at or below ROOT, deepest first
    local mnt rest
    while read -r _ mnt rest; do
        mnt=$(printf '%b' "$mnt") # /proc/mounts escapes spaces as \040
        if [ "$mnt" = "$1" ] || [ "${mnt#"$1"/}" != "$mnt" ]; then
            echo "$mnt"
        fi
    done </proc/mounts | sort -r
}

kill_root() { # ROOT (F2)
    local pids sig
    for sig in TERM KILL; do
        mapfile -t pids < <(root_pids "$1")
        [ "${#pids[@]}" -gt 0 ] || return 0
        kill -s "$sig" "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 1 50); do # up to 5 s for them to go
            [ -n "$(root_pids "$1")" ] || return 0
            sleep 0.1
        done
    done
    [ -z "$(root_pids "$1")" ] || say "warning: processes left in $1: $(root_pids "$1" | tr '\n' ' ')"
}

release_root() { # ROOT: kills its processes, undoes its mounts (F1, F2); 0 if none left
    local m
    kill_root "$1"
    for m in $(mounts_below "$1"); do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "warning: cannot unmount $m"
    done
    [ -z "$(mounts_below "$1")" ]
}

# shellcheck disable=SC2317 # called through the trap
cleanup() {
    local rc=$? r busy=0
    trap - EXIT INT TERM
    [ -z "${start_pid:-}" ] || kill -TERM "$start_pid" 2>/dev/null || true
    [ -z "${follow_pid:-}" ] || kill "$follow_pid" 2>/dev/null || true
    for r in "${roots[@]+"${roots[@]}"}"; do
        release_root "$r" || busy=1
    done
    if [ "$keep" = 1 ] || [ "$rc" != 0 ]; then
        say "work directory kept: $workdir"
    elif [ "$busy" = 1 ]; then
        say "warning: something is still mounted below $workdir; not removing it"
    else
        rm -rf --one-file-system "$workdir"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT
trap 'exit 143' TERM

# ---- this machine's configuration ---------------------------------------

# Debian 12's own suites in this machine's apt sources, as one-line entries
# "URI SUITE COMPONENTS..." (backports and third-party repositories left out:
# a fresh Debian 12 has neither).
debian_suite() {
    case "$1" in bookworm | bookworm-updates | bookworm-security | bookworm/updates) return 0 ;; esac
    return 1
}

apt_entries() {
    local f line uri suite comps
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        while read -r line; do
            line=${line%%#*}
            [[ $line =~ ^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+)[[:space:]]+(.+)$ ]] ||
                continue
            uri=${BASH_REMATCH[2]} suite=${BASH_REMATCH[3]} comps=${BASH_REMATCH[4]}
            debian_suite "$suite" && echo "$uri $suite $comps"
        done <"$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        deb822_entries "$f"
    done
}

deb822_entries() { # FILE: the deb entries of a deb822 .sources file
    local types="" uris="" suites="" comps="" enabled=yes line key val u s
    flush() {
        if [[ " $types " == *" deb "* ]] && [ "$enabled" != no ]; then
            for u in $uris; do
                for s in $suites; do
                    debian_suite "$s" && echo "$u $s $comps"
                done
            done
        fi
        types="" uris="" suites="" comps="" enabled=yes
    }
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        '#'*) continue ;;
        esac
        if [ -z "${line//[[:space:]]/}" ]; then
            flush
            continue
        fi
        [[ $line =~ ^([A-Za-z-]+):[[:space:]]*(.*)$ ]] || continue # continuation lines
        key=${BASH_REMATCH[1],,} val=${BASH_REMATCH[2]}
        case "$key" in
        types) types=$val ;;
        uris) uris=$val ;;
        suites) suites=$val ;;
        components) comps=$val ;;
        enabled) enabled=${val,,} ;;
        esac
    done <"$1"
    flush
}

mapfile -t entries < <(apt_entries | awk '!seen[$0]++')
[ "${#entries[@]}" -gt 0 ] || die "no Debian 12 (bookworm) entry in this machine's apt sources"
mirror=""
for e in "${entries[@]}"; do
    read -r u s _ <<<"$e"
    if [ "$s" = bookworm ]; then
        mirror=$u
        break
    fi
done
[ -n "$mirror" ] || die "no 'bookworm' suite in this machine's apt sources (only: ${entries[*]})"

# apt's network settings (proxies, CA files, validity checks of a mirror
# snapshot), as apt-config sees them.
apt_settings=$(apt-config dump 2>/dev/null |
    grep -E '^Acquire::(https?|ftp)::([^ ]*::)?(Proxy|proxy|CaInfo|CaPath|Verify-Peer|Verify-Host|SslCert|SslKey)|^Acquire::Check-(Valid-Until|Date) ' ||
    true)
apt_files=$(printf '%s\n' "$apt_settings" | grep -E '::(CaInfo|CaPath|SslCert|SslKey) ' |
    sed -E 's/^[^ ]+ "(.*)";$/\1/' || true)

# npm's registry settings and the environment's proxies.
npm_conf=""
if command -v npm >/dev/null 2>&1; then
    for k in registry cafile proxy https-proxy noproxy strict-ssl; do
        v=$(cd / && npm config get "$k" 2>/dev/null) || continue
        case "$v" in '' | null | undefined) continue ;; esac
        [ "$k" != registry ] || [ "$v" != https://registry.npmjs.org/ ] || continue
        [ "$k" != strict-ssl ] || [ "$v" != true ] || continue
        npm_conf+="$k=$v"$'\n'
    done
fi
pass_env=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -z "${!v:-}" ] || pass_env+=("$v=${!v}")
done

commit=$(git -C "$repo" rev-parse HEAD) || die "$repo is not a git checkout"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    say "note: uncommitted changes in $repo are not part of the test (HEAD $commit only)"
fi
say "repository $repo at ${commit:0:12}; mirror $mirror; work directory $workdir"
say "apt entries: $(printf '%s; ' "${entries[@]}")"
[ -z "$npm_conf" ] || say "npm settings: $(printf '%s' "$npm_conf" | cut -d= -f1 | tr '\n' ' ')"

# ---- the bare base -------------------------------------------------------

if [ -z "$base" ]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on this machine"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
            >"$workdir/debootstrap-install.log" 2>&1 ||
            { tail -n 20 "$workdir/debootstrap-install.log" >&2; die "cannot install debootstrap"; }
    fi
    say "debootstrap --variant=minbase bookworm ($mirror)"
    t0=$(date +%s)
    roots+=("$workdir/base")
    debootstrap --variant=minbase bookworm "$workdir/base" "$mirror" >"$workdir/debootstrap.log" 2>&1 ||
        { tail -n 30 "$workdir/debootstrap.log" >&2; die "debootstrap failed (log: $workdir/debootstrap.log)"; }
    base="$workdir/base.tar"
    tar -C "$workdir/base" --numeric-owner -cf "$base" .
    release_root "$workdir/base" && rm -rf --one-file-system "$workdir/base"
    say "bare root made in $(elapsed "$t0") ($(du -sh "$base" | cut -f1) tarball)"
fi

# new_root NAME: a bare root from the base, set up like a fresh machine on
# this network, in NEW_ROOT (not a subshell: roots must know it, F1).
new_root() {
    local r="$workdir/$1" f
    NEW_ROOT=$r
    mkdir -p "$r"
    roots+=("$r")
    tar -C "$r" --numeric-owner -xf "$base"
    printf 'deb %s\n' "${entries[@]}" >"$r/etc/apt/sources.list"
    rm -f "$r"/etc/apt/sources.list.d/*.list "$r"/etc/apt/sources.list.d/*.sources
    [ -z "$apt_settings" ] || printf '%s\n' "$apt_settings" >"$r/etc/apt/apt.conf.d/90this-machine"
    for f in $apt_files; do
        [ -e "$f" ] && mkdir -p "$r$(dirname "$f")" && cp -a "$f" "$r$f"
    done
    if [ -d /usr/local/share/ca-certificates ]; then
        mkdir -p "$r/usr/local/share/ca-certificates"
        cp -a /usr/local/share/ca-certificates/. "$r/usr/local/share/ca-certificates/"
    fi
    if [ -n "$npm_conf" ]; then
        printf '%s' "$npm_conf" >"$r/root/.npmrc"
        chmod 600 "$r/root/.npmrc"
        f=$(printf '%s' "$npm_conf" | sed -n 's/^cafile=//p')
        # A CA file the roots' ca-certificates does not make is copied as is.
        if [ -n "$f" ] && [ "$f" != /etc/ssl/certs/ca-certificates.crt ] && [ -f "$f" ]; then
            mkdir -p "$r$(dirname "$f")" && cp -a "$f" "$r$f"
        fi
    fi
    cp -L /etc/resolv.conf "$r/etc/resolv.conf"
    cp -L /etc/hosts "$r/etc/hosts"
    mkdir -p "$r/root/dumont"
    git -C "$repo" archive --format=tar "$commit" | tar -C "$r/root/dumont" -x
    mount -t proc proc "$r/proc"
    mount -t sysfs sysfs "$r/sys"
    mount --bind /dev "$r/dev"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
}

# root_argv ROOT CMD: ROOT_ARGV runs the bash command CMD in ROOT as root, in
# the clone, with the environment of a fresh login. Run in the background
# as a simple command, its pid is that of the command itself.
root_argv() {
    ROOT_ARGV=(chroot "$1" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb
        LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
        "${pass_env[@]+"${pass_env[@]}"}" /bin/bash -c "cd /root/dumont && $2")
}
in_root() { # ROOT CMD: runs it (root_argv) in the foreground
    root_argv "$1" "$2"
    "${ROOT_ARGV[@]}"
}

# ---- leg 1: README command 2 -------------------------------------------

test_time="" start_time=""
if [ "$only" != start ]; then
    say "leg 1: a bare root, then: bash scripts/test.sh"
    new_root test
    r=$NEW_ROOT
    log="$workdir/test.log"
    : >"$log" # before tail follows it: the leg's redirection may come later
    t0=$(date +%s)
    # In the background, so that a signal to this script is handled at once.
    root_argv "$r" 'exec bash scripts/test.sh'
    "${ROOT_ARGV[@]}" >"$log" 2>&1 &
    leg_pid=$!
    tail -n +1 -f --pid="$leg_pid" "$log" | sed -u 's/^/  [test.sh] /' >&2 &
    follow_pid=$!
    rc=0
    wait "$leg_pid" || rc=$?
    leg_pid=""
    wait "$follow_pid" || true
    follow_pid=""
    test_time=$(elapsed "$t0")
    say "README command 2 (bash scripts/test.sh): exit $rc after $test_time"
    [ "$rc" = 0 ] || die "bash scripts/test.sh failed on the bare root (log: $log)"
    grep -qE '^100% tests passed, 0 tests failed out of [0-9]+' "$log" ||
        die "no '100% tests passed' in the output (log: $log)"
    # ctest keeps every test's output, passed ones too, in LastTest.log: a
    # test skipped (exit 77) or a part of one skipped for a missing tool.
    ctlog="$r/root/dumont/build/Testing/Temporary/LastTest.log"
    [ -s "$ctlog" ] || die "no $ctlog"
    cp "$ctlog" "$workdir/ctest-LastTest.log"
    if grep -nE '\*\*\*Skipped|tests did not run|will be SKIPPED' "$log" >&2 ||
        grep -nE ': SKIP: |run skipped|is not installed' "$ctlog" >&2; then
        die "something was skipped or missing on the bare root (logs: $log, $workdir/ctest-LastTest.log)"
    fi
    grep -q 'could not change directory' "$log" && die "'could not change directory' in the output"
    release_root "$r" && rm -rf --one-file-system "$r"
fi

# ---- leg 2: README command 1, then "Try it" ------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_status PORT PATH: the HTTP status of GET PATH on 127.0.0.1:PORT.
http_status() {
    local status
    exec 4<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&4
    IFS=' ' read -r -t 5 _ status _ <&4 || status=""
    exec 4<&-
    echo "$status"
}

if [ "$only" != test ]; then
    say "leg 2: a second bare root, then: bash scripts/start.sh"
    new_root start
    r=$NEW_ROOT
    log="$workdir/start.log"
    port=8700
    listen_env=""
    if port_in_use 8700 || port_in_use 8701; then # F3
        for port in $(seq 18700 2 18798); do
            port_in_use "$port" || port_in_use $((port + 1)) || break
        done
        listen_env="export DUMONT_LISTEN=127.0.0.1:$port; "
        say "note: 127.0.0.1:8700 is in use on this machine; the demo listens on $port instead"
    fi
    t0=$(date +%s)
    root_argv "$r" "${listen_env}exec bash scripts/start.sh"
    "${ROOT_ARGV[@]}" >"$log" 2>&1 & # its pid: start.sh itself, which a TERM stops
    start_pid=$!
    served=0
    shown=0
    for _ in $(seq 1 3600); do # up to 30 min: packages, build, demo
        if grep -q 'is serving the model' "$log"; then
            served=1
            break
        fi
        kill -0 "$start_pid" 2>/dev/null || break
        n=$(wc -l <"$log")
        if [ "$n" -gt "$shown" ]; then # its lines but the server's log
            sed -n "$((shown + 1)),${n}p" "$log" | grep -v '^ts=' | sed 's/^/  [start.sh] /' >&2 || true
            shown=$n
        fi
        sleep 0.5
    done
    start_time=$(elapsed "$t0")
    sed -n "$((shown + 1)),\$p" "$log" | grep -v '^ts=' | sed 's/^/  [start.sh] /' >&2 || true
    [ "$served" = 1 ] || { tail -n 30 "$log" >&2; die "bash scripts/start.sh did not serve the demo (log: $log)"; }
    say "README command 1 (bash scripts/start.sh): the demo serves after $start_time"

    grep -q "event=server.listening listen=\"127.0.0.1:$port\"" "$log" ||
        die "the server does not listen on 127.0.0.1:$port (log: $log)"
    [ "$(http_status "$port" /)" = 200 ] || die "the dashboard at http://127.0.0.1:$port/ does not answer 200"
    grep -q "Dashboard: http://127.0.0.1:$port/" "$log" || die "start.sh does not print the dashboard's address"
    demo=$(sed -n 's/^dumont: protected local GPU instance \([0-9]*\) is serving.*/\1/p' "$log")
    [ "$port" != 8700 ] || [ "$demo" = 20001 ] || die "the demo instance is '$demo', the README says 20001"

    # The README's "Try it", as written there (one shell, so $id carries).
    say "the README's \"Try it\" commands"
    # shellcheck disable=SC2016 # expanded in the root, not here
    try='set -euo pipefail
export PATH=$PWD/build:$PATH
[ -z "${DUMONT_LISTEN:-}" ] || export DUMONT_URL=http://$DUMONT_LISTEN
dumont instances
dumont failover test-setup gpu_instance_id=12345
dumont failover simulate 12345 --wait
id=$(dumont failover simulate 12345)
dumont failover status $id
# The next one once $id has ended (one failover at a time per GPU), as the
# README says; a reader runs status again and sees it end.
for i in $(seq 1 100); do
    dumont failover status $id --json | grep -E "\"state\": *\"(completed|failed)\"" >/dev/null && break
    sleep 0.2
done
dumont failover status $id
set +e
out=$(dumont failover simulate 12345 fail_phase=provisioning --wait 2>&1)
rc=$?
set -e
printf "%s\n" "$out"
[ "$rc" = 1 ] || { echo "simulate fail_phase=provisioning --wait exited $rc, not 1"; exit 1; }
printf "%s\n" "$out" | grep -E "provisioning +failed" >/dev/null || { echo "no failed provisioning phase"; exit 1; }
dumont failover report
dumont failover list'
    t1=$(date +%s)
    in_root "$r" "${listen_env}$try" 2>&1 | sed 's/^/  [try it] /' >&2 ||
        die "a \"Try it\" command failed (above)"
    say "\"Try it\" done in $(elapsed "$t1")"

    # "A real failover, on this machine": preempt the demo instance.
    say "a real failover of the demo instance $demo"
    real="set -euo pipefail
export PATH=\$PWD/build:\$PATH
[ -z \"\${DUMONT_LISTEN:-}\" ] || export DUMONT_URL=http://\$DUMONT_LISTEN
for i in \$(seq 1 300); do # its probe answers (the model loaded)
    dumont instances --json | grep -E '\"probe\": *\"ok\"' >/dev/null && break
    sleep 0.2
done
dumont instances
dumont instances --json | grep -E '\"probe\": *\"ok\"' >/dev/null || { echo 'the probe of the demo instance never answered'; exit 1; }
dumont chaos preempt $demo
for i in \$(seq 1 240); do
    out=\$(dumont failover list gpu_instance_id=$demo --json)
    if printf '%s' \"\$out\" | grep -E '\"success\": *true' >/dev/null; then break; fi
    if printf '%s' \"\$out\" | grep -E '\"success\": *false' >/dev/null; then echo \"\$out\"; exit 1; fi
    sleep 0.5
done
dumont failover list gpu_instance_id=$demo
dumont failover list gpu_instance_id=$demo --json | grep -E '\"success\": *true' >/dev/null
dumont instances"
    t1=$(date +%s)
    in_root "$r" "${listen_env}$real" 2>&1 | sed 's/^/  [failover] /' >&2 ||
        die "the real failover of the demo instance did not succeed (above)"
    say "real failover done in $(elapsed "$t1")"

    say "stopping start.sh"
    kill -TERM "$start_pid" 2>/dev/null || true
    for _ in $(seq 1 200); do
        kill -0 "$start_pid" 2>/dev/null || break
        sleep 0.1
    done
    ! kill -0 "$start_pid" 2>/dev/null || die "start.sh did not stop within 20 s of SIGTERM"
    wait "$start_pid" 2>/dev/null || true
    start_pid=""
    grep -q 'event=server.stopped' "$log" || die "the server did not log server.stopped (log: $log)"
fi

say "ok in $(elapsed "$t_start") on $(nproc) cores"
[ -z "$test_time" ] || say "  README command 2, bash scripts/test.sh: $test_time (first run, packages included)"
[ -z "$start_time" ] || say "  README command 1, bash scripts/start.sh: $start_time until the demo serves (first run)"
