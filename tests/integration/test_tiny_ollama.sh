#!/usr/bin/env bash
# The Ollama stand-in (tests/fixtures/tiny_ollama.c, build/tiny-ollama) that
# local instances run as their workload.
#
# T1: it starts on a good model, logs how long the checksum took, and
#     refuses to start (exit 2, one clear line) when the model file is
#     missing, damaged, or its checksum file is missing.
# T2: /api/generate answers deterministically from the model bytes and the
#     prompt: same model + prompt -> same text (also on a copy of the
#     workspace, as after a restore), another prompt or model -> another.
# T3: Ollama's shapes: /api/version, /api/tags (models[].name "tiny:latest",
#     digest = the sha256), generate's done/response/created_at, an unknown
#     model -> 404 {"error":"model 'x' not found"}; OLLAMA_HOST is honoured.
. "$(dirname "$0")/lib.sh"
lib_init

TINY=$(dirname "$DUMONT_BIN")/tiny-ollama
[ -x "$TINY" ] || skip "$TINY is not built"
TINY_PIDS=()
stop_tiny() {
    local p
    for p in "${TINY_PIDS[@]+"${TINY_PIDS[@]}"}"; do kill -KILL "$p" 2>/dev/null; done
    return 0
}
trap 'rc=$?; stop_tiny; (exit $rc); lib_cleanup' EXIT # keep the test's status

ws=$TEST_TMP/ws
"$TINY" --make-model "$ws" --size 2M >/dev/null || fail "--make-model failed"
[ "$(stat -c %s "$ws/models/tiny.bin")" = 2097152 ] || fail "model size is not 2 MiB"
(cd "$ws/models" && sha256sum -c --status tiny.sha256) || fail "tiny.sha256 does not match"

# start_tiny WS: starts it on a free port (OLLAMA_HOST), sets TINY_URL
start_tiny() {
    local port
    port=$(free_port)
    (cd "$1" && DUMONT_WORKSPACE="$1" OLLAMA_HOST="127.0.0.1:$port" exec "$TINY") \
        2>"$TEST_TMP/tiny-$port.log" &
    TINY_PIDS+=($!)
    TINY_URL="http://127.0.0.1:$port"
    wait_for 10 "tiny-ollama on $port" curl -fs -o /dev/null "$TINY_URL/api/version"
}

generate() { # URL MODEL PROMPT -> sets GEN_BODY, GEN_STATUS (no subshell)
    local out
    out=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' \
        -d "$(jq -cn --arg m "$2" --arg p "$3" '{model: $m, prompt: $p, stream: false}')" \
        "$1/api/generate")
    GEN_STATUS=${out##*$'\n'}
    GEN_BODY=${out%$'\n'*}
}
answer() { # URL MODEL PROMPT -> prints the response text of a 200
    generate "$@"
    [ "$GEN_STATUS" = 200 ] || fail "generate $2 answered $GEN_STATUS: $GEN_BODY"
    jq -r .response <<<"$GEN_BODY"
}

# T1, T3
start_tiny "$ws"
url1=$TINY_URL
grep -q 'event=model.verified model="tiny" bytes=2097152 ms=' "$TEST_TMP"/tiny-*.log ||
    fail "no verification line in the log"
assert_match "$(curl -fs "$url1/api/version" | jq -r .version)" '^[0-9]' "version"
tags=$(curl -fs "$url1/api/tags")
assert_eq "tiny:latest" "$(jq -r '.models[0].name' <<<"$tags")" "tags name"
assert_eq "$(cut -c1-64 "$ws/models/tiny.sha256")" "$(jq -r '.models[0].digest' <<<"$tags")" \
    "tags digest"
assert_eq 2097152 "$(jq -r '.models[0].size' <<<"$tags")" "tags size"

# T2
generate "$url1" tiny "why is the sky blue?"
a=$GEN_BODY
assert_eq 200 "$GEN_STATUS" "generate status"
assert_eq true "$(jq -r .done <<<"$a")" "done"
assert_eq tiny "$(jq -r .model <<<"$a")" "model echoed"
assert_match "$(jq -r .created_at <<<"$a")" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T' "created_at"
r1=$(jq -r .response <<<"$a")
[ -n "$r1" ] || fail "empty response"
assert_eq "$r1" "$(answer "$url1" tiny:latest "why is the sky blue?")" \
    "same prompt, same answer"
assert_ne "$r1" "$(answer "$url1" tiny "another prompt")" \
    "another prompt, another answer"
generate "$url1" nosuch "hi"
nf=$GEN_BODY
assert_eq 404 "$GEN_STATUS" "unknown model status"
assert_eq "model 'nosuch' not found" "$(jq -r .error <<<"$nf")" "unknown model error"
generate "$url1" tiny ""
assert_eq 200 "$GEN_STATUS" "empty prompt"
curl -s -o /dev/null -w '%{http_code}' -d '{bad' "$url1/api/generate" | grep -qx 400 ||
    fail "bad JSON is not a 400"

# a copy (as after a restore) answers the same; other model bytes differently
cp -a "$ws" "$TEST_TMP/ws-copy"
start_tiny "$TEST_TMP/ws-copy"
assert_eq "$r1" "$(answer "$TINY_URL" tiny "why is the sky blue?")" \
    "restored copy answers the same"
"$TINY" --make-model "$TEST_TMP/ws2" --size 1M --seed 7 >/dev/null
start_tiny "$TEST_TMP/ws2"
assert_ne "$r1" "$(answer "$TINY_URL" tiny "why is the sky blue?")" \
    "another model answers differently"

# T1: refusals
refuses() { # WS WHAT NEEDLE
    local rc=0 err
    err=$(cd "$1" && DUMONT_WORKSPACE="$1" OLLAMA_HOST="127.0.0.1:$(free_port)" \
        timeout 10 "$TINY" 2>&1 >/dev/null) || rc=$?
    assert_eq 2 "$rc" "exit status with $2"
    assert_contains "$err" "$3" "message with $2"
}
bad=$TEST_TMP/bad
cp -a "$ws" "$bad"
printf 'X' | dd of="$bad/models/tiny.bin" bs=1 seek=1000 conv=notrunc status=none
refuses "$bad" "a damaged model" "is damaged"
truncate -s 1M "$bad/models/tiny.bin"
refuses "$bad" "a truncated model" "is damaged"
rm "$bad/models/tiny.bin"
refuses "$bad" "no model file" "No such file"
rm "$bad/models/tiny.sha256"
refuses "$bad" "no checksum" "cannot read checksum"
log "ok"
