#!/usr/bin/env bash
# Installs the Debian packages Dumont needs, and only those still missing.
#
#   bash scripts/install-deps.sh          # to build (scripts/start.sh)
#   bash scripts/install-deps.sh --test   # to build and run the tests (scripts/test.sh)
#   bash scripts/install-deps.sh --fuzz   # to build the fuzz targets (scripts/fuzz.sh)
#
# Works on a fresh Debian 12 (bookworm). When every package is already there
# it neither runs apt-get nor needs a network, and prints nothing. It runs
# `apt-get update` only when something must be installed. As a non-root user
# it uses sudo.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev
            libcurl4-openssl-dev libsqlite3-dev libpq-dev libssl-dev liblz4-dev
            libarchive-dev)
# PostgreSQL: only the server binaries are needed; tests start their own
# throw-away cluster (scripts/pg-test-cluster.sh).
test_pkgs=(libcmocka-dev postgresql curl jq procps iproute2 restic lz4)
# sqlite3: the tests edit the server's SQLite file (test_agent_snapshots);
# python3: test_agent's UDP peers; ca-certificates: `npm ci` over https.
test_pkgs+=(sqlite3 python3 ca-certificates)
# The s3:// store's test: Debian's aws CLI reads back what dumont wrote to
# s3rver (npm, pinned in package.json; scripts/test.sh runs `npm ci`).
test_pkgs+=(awscli openssl)
# The metrics test: a real Prometheus server scraping dumont, and promtool.
test_pkgs+=(prometheus)
# The dashboard's browser test: Debian's Chromium, driven from Node.js by
# playwright-core (scripts/test.sh runs `npm ci`); package.json's engines
# match Debian 12's Node.js 18. A Node.js from elsewhere (e.g. NodeSource)
# bundles npm; Debian's npm package would fight it.
test_pkgs+=(chromium nodejs)
command -v npm >/dev/null 2>&1 || test_pkgs+=(npm)
# libFuzzer: clang and its runtime (scripts/fuzz.sh).
fuzz_pkgs=(clang libclang-rt-14-dev)
optional_pkgs=() # nice to have; failure to install is not fatal

want_test=0
want_fuzz=0
for arg in "$@"; do
    case "$arg" in
    --test) want_test=1 ;;
    --fuzz) want_fuzz=1 ;;
    -h | --help)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install-deps: unknown argument '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

pkgs=("${build_pkgs[@]}")
[ "$want_test" = 0 ] || pkgs+=("${test_pkgs[@]}")
[ "$want_fuzz" = 0 ] || pkgs+=("${fuzz_pkgs[@]}")

installed() { # 0 if the package is installed (dpkg status "ii")
    local st
    st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
    [ "${st:0:2}" = ii ]
}

missing() { # prints the packages of "$@" that are not installed
    local p
    for p in "$@"; do
        installed "$p" || printf '%s\n' "$p"
    done
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps: dpkg-query not found; this script supports Debian 12 only." >&2
    echo "install-deps: install by hand: ${pkgs[*]}" >&2
    exit 1
fi

mapfile -t need < <(missing "${pkgs[@]}")
mapfile -t need_opt < <(missing "${optional_pkgs[@]+"${optional_pkgs[@]}"}")
if [ "${#need[@]}" -eq 0 ] && [ "${#need_opt[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: missing packages: ${need[*]} ${need_opt[*]}" >&2
    echo "install-deps: not root and sudo not found; install them as root." >&2
    exit 1
fi

log=$(mktemp "${TMPDIR:-/tmp}/dumont-install-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
apt() {
    "${as_root[@]+"${as_root[@]}"}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@" >>"$log" 2>&1
}

# Debian's postgresql package creates and starts a "main" cluster on port 5432.
# Nothing here uses it; ask postgresql-common not to create it in the first place.
for p in "${need[@]+"${need[@]}"}"; do
    if [ "$p" = postgresql ] && ! installed postgresql-common; then
        "${as_root[@]+"${as_root[@]}"}" mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" |
            "${as_root[@]+"${as_root[@]}"}" tee /etc/postgresql-common/createcluster.d/50-dumont.conf >/dev/null
    fi
done

all_need=("${need[@]+"${need[@]}"}" "${need_opt[@]+"${need_opt[@]}"}")
echo "install-deps: installing ${all_need[*]}" >&2
if ! apt update; then
    if [ "${#need[@]}" -eq 0 ]; then # only optional ones missing: not worth failing (offline?)
        echo "install-deps: warning: apt-get update failed; optional packages not installed: ${need_opt[*]}" >&2
        exit 0
    fi
    tail -n 30 "$log" >&2
    echo "install-deps: apt-get update failed" >&2
    exit 1
fi
if [ "${#need[@]}" -gt 0 ] && ! apt install "${need[@]}"; then
    tail -n 40 "$log" >&2
    echo "install-deps: apt-get install failed: ${need[*]}" >&2
    exit 1
fi
if [ "${#need_opt[@]}" -gt 0 ] && ! apt install "${need_opt[@]}"; then
    echo "install-deps: warning: optional packages not installed: ${need_opt[*]}" >&2
fi

mapfile -t still < <(missing "${pkgs[@]}")
if [ "${#still[@]}" -gt 0 ]; then
    echo "install-deps: still missing after install: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: ok" >&2
