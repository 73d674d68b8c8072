#!/usr/bin/env bash
# Installs what is missing, builds, and runs the Dumont server in the foreground.
#
#   bash scripts/start.sh [server flags...]     # e.g. --listen 127.0.0.1:8700
#
# The flags go to `build/dumont server` unchanged.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash "$root/scripts/install-deps.sh"
bash "$root/scripts/build.sh"

home="${DUMONT_HOME:-${HOME:-.}/.dumont}"
prev=""
for arg in "$@"; do # the server's --home flag overrides DUMONT_HOME
    case "$arg" in --home=*) home=${arg#--home=} ;; esac
    [ "$prev" = --home ] && home=$arg
    prev=$arg
done
echo "dumont: API token in $home/token (created on first start); for the CLI: export PATH=$root/build:\$PATH" >&2
exec "$root/build/dumont" server "$@"
