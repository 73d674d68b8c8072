#!/usr/bin/env bash
# Prints the include graph between the folders of src/ and checks it against
# the intended direction of dependencies (docs/design.md "Dependencies").
#
#   bash scripts/deps.sh           # the graph, the layers, the verdict
#   bash scripts/deps.sh --quiet   # the verdict (and what is wrong) only
#
# A folder is a subsystem; src/main.c is "main". An include of "X/..." from a
# file in folder F is an edge F -> X. Every folder has a layer (LAYERS below);
# an edge must go to a strictly lower layer, so folders of one layer never
# include each other and the graph has no cycle. Exits 1, naming each
# offending include, on an include against the direction, a cycle, a folder
# with no layer, or a known exception (KNOWN below) that is gone; 0 otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

quiet=0
case "${1:-}" in
--quiet) quiet=1 ;;
"") ;;
-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "deps: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

# The intended direction, lowest first. Why each folder sits where it does:
#   util      errors, logs, config, clocks, parsing: needs nothing.
#   core      the domain records and their state machines (failover, report,
#             instance, fleet): util alone, so every layer can speak of them.
#   metrics   a registry and the text exposition format, domain-free like util
#             (the API fills it; src/api/metrics.c knows what is counted).
#   store     object stores (file://, s3://); db the database; detect the
#             heartbeat wire format, the detector, the listener. They only
#             need the records; none needs another.
#   snapshot  snapshots are written into a store.
#   agent     runs on an instance: sends detect's heartbeats, takes snapshots
#             into a store; the server's failover reuses its probe.
#   provider  makes machines; the local one snapshots and restores workspaces.
#   failover  the orchestrator: drives providers, the detector, the database,
#             snapshots and the agent's probe.
#   alerts    Slack/Discord/webhook alerts: the database's queue, the records of
#             failovers and instances and the listener's events; beside failover
#             (neither needs the other: the API hands it the observer's calls).
#   api       the HTTP server over the database and the orchestrator.
#   cli       the commands: parse, call the library or the API, print.
#   main      src/main.c: dispatches to cli.
LAYERS=(
    "util"
    "core metrics"
    "store db detect"
    "snapshot"
    "agent provider"
    "failover alerts"
    "api"
    "cli"
    "main"
)

# Includes against the direction that are still in the code, each with the
# step that removes it: "FILE INCLUDE # why". Empty when the code keeps the
# direction. An entry that no longer matches an include fails the check, so
# this list is always what remains.
KNOWN=(
)

declare -A layer=()
for i in "${!LAYERS[@]}"; do
    for f in ${LAYERS[$i]}; do
        layer[$f]=$i
    done
done

# Every quoted include of a file of src/: "FILE LINE FROM TO".
edges_file=$(mktemp)
trap 'rm -f "$edges_file"' EXIT
while IFS= read -r -d '' f; do
    rel=${f#src/}
    if [[ $rel == */* ]]; then from=${rel%%/*}; else from=${rel%.*}; fi
    awk -v file="$f" -v from="$from" '
        /^[ \t]*#[ \t]*include[ \t]*"/ {
            s = $0
            sub(/^[^"]*"/, "", s)
            sub(/".*$/, "", s)
            to = (index(s, "/") ? substr(s, 1, index(s, "/") - 1) : from)
            print file, FNR, from, to, s
        }' "$f"
done < <(find src -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z) >"$edges_file"

bad=0
problems=()

# Folders with no layer.
while read -r folder; do
    [ -n "${layer[$folder]+x}" ] || {
        problems+=("folder '$folder' has no layer in scripts/deps.sh (LAYERS): say where it belongs")
        bad=1
    }
done < <(awk '{print $3; print $4}' "$edges_file" | sort -u)

# Includes against the direction, less the known exceptions.
declare -A known_hit=()
while read -r file line from to inc; do
    [ "$from" = "$to" ] && continue
    lf=${layer[$from]:-}
    lt=${layer[$to]:-}
    if [ -z "$lf" ] || [ -z "$lt" ]; then continue; fi
    [ "$lt" -lt "$lf" ] && continue
    is_known=0
    for k in "${KNOWN[@]+"${KNOWN[@]}"}"; do
        read -r kf ki _ <<<"$k"
        if [ "$kf" = "$file" ] && [ "$ki" = "$inc" ]; then
            is_known=1
            known_hit[$k]=1
        fi
    done
    [ "$is_known" = 1 ] && continue
    problems+=("$file:$line: #include \"$inc\": $from (layer $lf) may not include $to (layer $lt)")
    bad=1
done <"$edges_file"

for k in "${KNOWN[@]+"${KNOWN[@]}"}"; do
    [ -n "${known_hit[$k]+x}" ] || {
        problems+=("known exception gone (remove it from KNOWN in scripts/deps.sh): $k")
        bad=1
    }
done

# A cycle between folders (the layers forbid one; this also catches one
# made of known exceptions).
graph=$(awk '$3 != $4 {print $3, $4}' "$edges_file" | sort -u)
if [ -n "$graph" ] && ! cycle=$(tsort <<<"$graph" 2>&1 >/dev/null); then
    problems+=("folders on a cycle (the loops tsort found): $(grep -v 'input contains a loop' <<<"$cycle" |
        sed 's/^tsort: //' | tr '\n' ' ')")
    bad=1
fi

if [ "$quiet" = 0 ]; then
    echo "deps: includes between src/ folders (from -> to: count)"
    awk '$3 != $4 {print $3 " -> " $4}' "$edges_file" | sort | uniq -c |
        awk '{printf "  %-9s -> %-9s %4d\n", $2, $4, $1}'
    echo "deps: layers, lowest first (an include goes to a lower layer only)"
    for i in "${!LAYERS[@]}"; do
        echo "  $i  ${LAYERS[$i]}"
    done
    if [ "${#KNOWN[@]}" -gt 0 ]; then
        echo "deps: known exceptions (${#KNOWN[@]})"
        for k in "${KNOWN[@]}"; do echo "  $k"; done
    fi
fi
if [ "$bad" = 1 ]; then
    for p in "${problems[@]}"; do echo "deps: $p" >&2; done
    echo "deps: FAIL (${#problems[@]} problem(s))" >&2
    exit 1
fi
echo "deps: ok ($(wc -l <<<"$graph") folder edges, no cycle, none against the direction," \
    "${#KNOWN[@]} known exception(s))"
