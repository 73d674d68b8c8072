#!/usr/bin/env bash
# Real `dumont agent` processes against a real server: registration, signed
# heartbeats, failure detection, clean leaving, spoofed packets, workload
# supervision and probes (docs/detect.md). On SQLite and, when
# DUMONT_TEST_PG_URL is set, on PostgreSQL.
#
# G1: an agent is healthy after registering; kill -9 makes it suspect, then
#     failed (recorded with its reason and silence), and SIGSTOP the same;
#     SIGCONT makes it healthy again (detector.h HB-D2, HB-D5; listener.h HB-L2).
# G2: SIGTERM makes it `leaving` (agent.h AG-A3) and it stays leaving, never failed.
# G3: garbage, truncated, forged (wrong MAC) and unknown-instance datagrams are
#     dropped and counted by reason, and the instance they name stays healthy
#     (listener.h HB-L1).
# G4: registration needs the API token; bad bodies are 400; the key is in the
#     registration answer only, never in GET answers or the server log.
# G5: a workload that keeps crashing is restarted, then reported crashlooping;
#     exec and ollama probes report ok / failing (workload.h AG-S1 to AG-S3, probe.h;
#     the ollama probe against a fake server that knows one model, at @URL or
#     at $OLLAMA_HOST).
# G6: after a server restart the instance's key still works (keys are derived
#     from the stored key id, never stored) and it is healthy again.
# G8: with --preemption aws|gcp the agent polls a local server that plays
#     each cloud's documented metadata answers (IMDSv2 token + instance-action;
#     Metadata-Flavor + preempted); on a notice the instance is `preempting`,
#     and failed once it goes silent (preempt.h AG-E1 to AG-E3, agent.h AG-A6).
# G7: `dumont instances` lists it, `--json` is the API's answer, `show` has
#     the state changes; usage errors exit 2.
. "$(dirname "$0")/lib.sh"
lib_init
need python3

AGENT_PIDS=()
agents_cleanup() {
    local p
    for p in "${AGENT_PIDS[@]+"${AGENT_PIDS[@]}"}"; do
        kill -CONT "$p" 2>/dev/null
        kill -KILL "$p" 2>/dev/null
    done
}
trap 'rc=$?; agents_cleanup; (exit $rc); lib_cleanup' EXIT

# start_agent ID [ARGS...]: an agent in the background (token from
# $DUMONT_HOME/token, L4 of lib.sh); sets AGENT_PID.
start_agent() {
    local id=$1
    shift
    "$DUMONT_BIN" agent --instance "$id" "$@" >>"$TEST_TMP/agent-$id.log" 2>&1 &
    AGENT_PID=$!
    AGENT_PIDS+=("$AGENT_PID")
}

# inst_field ID JQ: prints a field of GET /api/instances/ID.
inst_field() {
    api GET "/api/instances/$1"
    [ "$HTTP_STATUS" = 200 ] && printf '%s' "$HTTP_BODY" | jq -r "$2"
}

inst_state_is() { [ "$(inst_field "$1" .state)" = "$2" ]; }

# field_is ID JQ VALUE / dropped_at_least REASON N: conditions for wait_for
# (evaluated on each poll, not once when wait_for is called).
field_is() { [ "$(inst_field "$1" "$2")" = "$3" ]; }
field_gt() { [ "$(inst_field "$1" "$2")" -gt "$3" ] 2>/dev/null; }
dropped_at_least() { [ "$(dropped "$1")" -ge "$2" ] 2>/dev/null; }

hb_port() {
    api GET /api/instances
    printf '%s' "$HTTP_BODY" | jq -r .heartbeats.port
}

dropped() {
    api GET /api/instances
    printf '%s' "$HTTP_BODY" | jq -r ".heartbeats.dropped.$1"
}

check_detection() {
    start_agent 101
    local pid=$AGENT_PID
    wait_for 20 "instance 101 healthy" inst_state_is 101 healthy
    kill -KILL "$pid"
    wait_for 20 "instance 101 failed after kill -9" inst_state_is 101 failed
    api GET /api/instances/101
    assert_json '[.events[] | select(.what == "state") | .to][0]' failed "newest change"
    assert_json '[.events[] | select(.what == "state") | .to][1]' suspect "suspect before failed"
    assert_json '[.events[] | select(.what == "state")][0].reason | test("^(phi|deadline)$")' \
        true "failed by phi or deadline"
    assert_json '[.events[] | select(.what == "state")][0].silent_ms >= 400' true \
        "not failed before two beats were missed"

    start_agent 102
    pid=$AGENT_PID
    wait_for 20 "instance 102 healthy" inst_state_is 102 healthy
    kill -STOP "$pid"
    wait_for 20 "instance 102 failed after SIGSTOP" inst_state_is 102 failed
    kill -CONT "$pid"
    wait_for 20 "instance 102 healthy after SIGCONT" inst_state_is 102 healthy

    kill -TERM "$pid"
    wait_for 20 "instance 102 leaving after SIGTERM" inst_state_is 102 leaving
    wait "$pid"
    assert_eq 0 "$?" "agent exit status after SIGTERM"
    # G2: it stays leaving: watch it for 2 s (longer than the hard deadline).
    local until=$(($(now_us) + 2000000))
    while [ "$(now_us)" -lt "$until" ]; do
        inst_state_is 102 leaving || fail "instance 102 left 'leaving': $HTTP_BODY"
        sleep 0.1
    done
}

# spoof PORT ID: sends, 5 times each, to the heartbeat port: a forged packet
# for instance ID (right format, random MAC), the same for an unknown
# instance, a truncated one and 72 bytes of garbage (one datagram each).
spoof() {
    python3 - "$1" "$2" <<'PY'
import os, socket, struct, sys, time
port, iid = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def pkt(i):
    head = b"DMHB" + bytes([1, 1, 2, 2]) + struct.pack(">QQQII", i, 99999999,
                                                      int(time.time() * 1000), 0, 0)
    return head + os.urandom(32)
for _ in range(5):
    for d in (pkt(iid), pkt(999), pkt(iid)[:20], b"X" + os.urandom(71)):
        s.sendto(d, ("127.0.0.1", port))
PY
}

check_spoofing() {
    start_agent 103
    wait_for 20 "instance 103 healthy" inst_state_is 103 healthy
    local port before_mac before_len before_unknown before_magic
    port=$(hb_port)
    before_mac=$(dropped bad_mac) before_len=$(dropped bad_length)
    before_unknown=$(dropped unknown_instance) before_magic=$(dropped bad_magic)
    spoof "$port" 103
    wait_for 10 "forged packets counted" dropped_at_least bad_mac $((before_mac + 5))
    wait_for 10 "truncated packets counted" dropped_at_least bad_length $((before_len + 5))
    wait_for 10 "unknown-instance packets counted" \
        dropped_at_least unknown_instance $((before_unknown + 5))
    wait_for 10 "garbage packets counted" dropped_at_least bad_magic $((before_magic + 5))
    api GET /api/instances/103
    assert_json .state healthy "spoofed packets do not disturb instance 103"
    assert_json '.seq < 99999999' true "a forged sequence number was not accepted"
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
}

check_registration() {
    api_noauth POST /api/instances/register -d '{"instance_id": 5}'
    assert_api_error 401 unauthorized "register without token"
    api POST /api/instances/register -d '{"instance_id": 0}'
    assert_api_error 400 bad_request "instance_id 0"
    api POST /api/instances/register -d '{"instance_id": 5, "color": "red"}'
    assert_api_error 400 bad_request "unknown field"
    api POST /api/instances/register -d '{"instance_id": 5, "kind": "tpu"}'
    assert_api_error 400 bad_request "bad kind"
    api POST /api/instances/register -d '{"instance_id": 5, "kind": "cpu"}'
    assert_status 201 "register 5"
    local key
    key=$(printf '%s' "$HTTP_BODY" | jq -r .key)
    assert_match "$key" '^[0-9a-f]{64}$' "key in the registration answer"
    assert_json .state pending "a new instance is pending"
    api GET /api/instances/5
    assert_status 200 "get 5"
    assert_not_contains "$HTTP_BODY" "$key" "GET /api/instances/5 shows no key"
    assert_json .kind cpu "kind"
    api GET /api/instances
    assert_not_contains "$HTTP_BODY" "$key" "GET /api/instances shows no key"
    assert_not_contains "$(cat "$SERVER_LOG")" "$key" "the server log holds no key"
    api GET /api/instances/77777
    assert_api_error 404 not_found "unknown instance"
    api GET /api/instances/abc
    assert_api_error 400 bad_request "bad instance id"
}

# start_fake_ollama DIR: answers POST /api/generate for model "tiny:1" only
# (stream false, a non-empty "response"), as Ollama does; port in DIR/port.
start_fake_ollama() {
    python3 - "$1" <<'PY' &
import http.server, json, os, sys
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n) or b"{}")
        ok = self.path == "/api/generate" and req.get("model") == "tiny:1" and req.get("stream") is False
        body = json.dumps({"model": req.get("model"), "response": "ok", "done": True} if ok
                          else {"error": "model not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
PY
    AGENT_PIDS+=("$!")
}

check_workload() {
    start_agent 104 --workload "sh -c 'exit 3'" --crash-limit 3 --crash-window-ms 60000 \
        --probe "exec:false" --probe-every-ms 200
    wait_for 30 "instance 104 crashlooping" field_is 104 .workload crashlooping
    wait_for 10 "instance 104 probe failing" field_is 104 .probe failing
    api GET /api/instances/104
    assert_json .restarts 2 "restarts before giving up (3 crashes)"
    assert_json .probe failing "exec:false probe"
    assert_json .state healthy "a crashlooping workload's agent is alive"
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
    start_agent 105 --workload "sleep 600" --probe "exec:true" --probe-every-ms 200
    wait_for 20 "instance 105 probe ok" field_is 105 .probe ok
    api GET /api/instances/105
    assert_json .workload running "workload running"
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
    assert_eq 0 "$?" "agent 105 exit status"
    wait_for 10 "instance 105 leaving" inst_state_is 105 leaving
    local dir port
    dir=$(mktemp -d "$TEST_TMP/ollama.XXXXXX") || fail "mktemp failed"
    start_fake_ollama "$dir"
    wait_for 10 "the fake Ollama server" test -s "$dir/port"
    port=$(cat "$dir/port")
    start_agent 107 --probe "ollama:tiny:1@http://127.0.0.1:$port" --probe-every-ms 200
    local ok_pid=$AGENT_PID
    start_agent 108 --probe "ollama:missing:7b@http://127.0.0.1:$port" --probe-every-ms 200
    wait_for 20 "ollama probe of a served model ok" field_is 107 .probe ok
    wait_for 20 "ollama probe of a missing model failing" field_is 108 .probe failing
    kill -TERM "$ok_pid" "$AGENT_PID"
    wait "$ok_pid" "$AGENT_PID"
    # G5: without @URL the probe asks $OLLAMA_HOST (Ollama's own variable).
    export OLLAMA_HOST=127.0.0.1:$port
    start_agent 109 --probe "ollama:tiny:1" --probe-every-ms 200
    unset OLLAMA_HOST
    wait_for 20 "ollama probe at \$OLLAMA_HOST ok" field_is 109 .probe ok
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
}

check_restart() {
    start_agent 106
    wait_for 20 "instance 106 healthy" inst_state_is 106 healthy
    local port
    port=$(hb_port)
    stop_server TERM
    start_server --heartbeat-listen "127.0.0.1:$port"
    wait_for 20 "instance 106 healthy after a server restart" inst_state_is 106 healthy
    wait_for 10 "heartbeats of 106 accepted after the restart" field_gt 106 .heartbeats 3
    kill -TERM "$AGENT_PID"
    wait "$AGENT_PID"
}

# start_metadata DIR: a local metadata server (AWS IMDSv2 and GCP) that gives
# a preemption notice once DIR/notice exists; its port goes to DIR/port.
start_metadata() {
    python3 - "$1" <<'PY' &
import http.server, os, sys
d = sys.argv[1]
TOKEN = b"tok-123"
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def reply(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, TOKEN)
        self.reply(400)
    def do_GET(self):
        notice = os.path.exists(os.path.join(d, "notice"))
        if self.path == "/latest/meta-data/spot/instance-action":
            if self.headers.get("X-aws-ec2-metadata-token", "").encode() != TOKEN:
                return self.reply(401)
            if not notice:
                return self.reply(404, b"Not Found")
            return self.reply(200, b'{"action": "terminate", "time": "2026-11-28T14:00:00Z"}',
                              "application/json")
        if self.path == "/computeMetadata/v1/instance/preempted":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403)
            return self.reply(200, b"TRUE" if notice else b"FALSE")
        self.reply(404)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(s.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
s.serve_forever()
PY
    AGENT_PIDS+=("$!") # stopped at exit with the agents
}

check_preemption() {
    local cloud id=110 dir
    for cloud in aws gcp; do
        id=$((id + 1))
        dir=$(mktemp -d "$TEST_TMP/meta-$cloud.XXXXXX") || fail "mktemp failed"
        start_metadata "$dir"
        wait_for 10 "the $cloud metadata server" test -s "$dir/port"
        start_agent "$id" --preemption "$cloud" --metadata-url "http://127.0.0.1:$(cat "$dir/port")"
        wait_for 20 "instance $id healthy" inst_state_is "$id" healthy
        local until=$(($(now_us) + 1500000)) # no notice yet: it stays healthy
        while [ "$(now_us)" -lt "$until" ]; do
            inst_state_is "$id" healthy || fail "$cloud: instance $id preempting without a notice"
            sleep 0.1
        done
        touch "$dir/notice"
        wait_for 20 "$cloud: instance $id preempting after the notice" inst_state_is "$id" preempting
        api GET "/api/instances/$id"
        assert_json .preempting true "$cloud: preempting flag"
        kill -KILL "$AGENT_PID"
        wait_for 20 "$cloud: instance $id failed once silent" inst_state_is "$id" failed
        api GET "/api/instances/$id"
        assert_json '[.events[] | select(.what == "state") | .reason] | index("preemption_notice") != null' \
            true "$cloud: the notice is recorded"
    done
}

check_cli() {
    cli_ok instances
    assert_contains "$CLI_OUT" "STATE" "instances table header"
    assert_match "$CLI_OUT" "101 +gpu +failed" "instances row 101"
    cli_ok instances --json
    api GET /api/instances
    assert_eq "$(printf '%s' "$HTTP_BODY" | jq -S '[.instances[] | del(.last_heartbeat_age_ms,
        .phi)] | length')" "$(printf '%s' "$CLI_OUT" | jq -S '.instances | length')" "--json"
    cli_ok instances show 101
    assert_contains "$CLI_OUT" "State changes" "show has the state changes"
    assert_match "$CLI_OUT" "suspect +failed" "show has suspect -> failed"
    cli instances show
    assert_cli_rc 2 "instances show without id"
    cli instances show abc
    assert_cli_rc 2 "instances show abc"
    cli instances bogus
    assert_cli_rc 2 "instances bogus"
    cli instances show 424242
    assert_cli_rc 1 "instances show of an unknown id"
    assert_one_line "$CLI_ERR" "one-line reason"
    cli_ok instances --help
    cli_ok agent --help
    cli agent
    assert_cli_rc 2 "agent without --instance"
}

for backend in $(backends); do
    use_backend "$backend"
    start_server --heartbeat-listen 127.0.0.1:0
    check_registration
    check_detection
    check_spoofing
    check_workload
    check_restart
    check_preemption
    check_cli
    stop_server TERM
    assert_eq 0 "$SERVER_RC" "server exit status"
done
log "PASS"
