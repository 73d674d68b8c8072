#!/usr/bin/env python3
"""A stand-in for the services Dumont sends alerts to (tests only).

Not Slack, not Discord: a local HTTP receiver shaped from their documented
webhook formats, plus a generic webhook consumer that checks the signature.

  /slack/...    Slack incoming webhook: JSON {"text": str (required),
                "blocks": [...]}; header text plain_text <= 150 chars, section
                text <= 3000, at most 10 fields of <= 2000, context elements.
                Answers 200 "ok" (text/plain), 400 "invalid_payload".
  /discord/...  Discord execute webhook: JSON {"content": str <= 2000,
                "embeds": [<= 10 of {title <= 256, description <= 4096,
                url, color int, timestamp ISO 8601, fields <= 25 of
                {name <= 256, value <= 1024, inline bool}}],
                "allowed_mentions": {...}}. Answers 204, 400 with a JSON error.
  anything else a webhook consumer: X-Dumont-Signature must be
                sha256=<hex HMAC-SHA256(secret, body)> with the secret in
                --secret-file (read at each request); the body must be the
                event JSON Dumont documents. Answers 200.

Every request is appended to --log as one JSON line: path, kind, valid,
problems, the Idempotency-Key / X-Dumont-* headers, the body, the time and
the status answered. --plan FILE holds, one per line, "PATH-PREFIX STATUS
[ARG]" answers given once each, in order, before the normal one:
  500                 a server error
  429 ra=SECONDS      429 with Retry-After: SECONDS
  429 json=SECONDS    429 with Discord's JSON body {"retry_after": SECONDS}
  404                 a refusal
  hang=SECONDS        read the request, then wait that long before answering
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ARGS = None
USED = set()  # plan lines already answered (reset when the plan changes)
PLAN_SEEN = [None]


def slack_problems(b):
    p = []
    if not isinstance(b, dict):
        return ["body is not an object"]
    if not isinstance(b.get("text"), str) or not b["text"]:
        p.append("text missing (required as the notification fallback)")
    for blk in b.get("blocks", []):
        t = blk.get("type")
        if t == "header":
            tx = blk.get("text", {})
            if tx.get("type") != "plain_text" or not 0 < len(tx.get("text", "")) <= 150:
                p.append("header text must be plain_text of 1-150 chars")
        elif t == "section":
            tx = blk.get("text", {})
            if tx and (tx.get("type") not in ("mrkdwn", "plain_text") or len(tx.get("text", "")) > 3000):
                p.append("section text bad")
            fl = blk.get("fields", [])
            if len(fl) > 10 or any(len(f.get("text", "")) > 2000 or f.get("type") not in ("mrkdwn", "plain_text") for f in fl):
                p.append("section fields bad")
        elif t == "context":
            if not blk.get("elements"):
                p.append("context without elements")
        elif t not in ("divider", "actions", "image"):
            p.append("unknown block type %r" % t)
    return p


def discord_problems(b):
    p = []
    if not isinstance(b, dict):
        return ["body is not an object"]
    c = b.get("content")
    e = b.get("embeds", [])
    if not c and not e:
        p.append("neither content nor embeds")
    if c is not None and (not isinstance(c, str) or len(c) > 2000):
        p.append("content over 2000 chars")
    if len(e) > 10:
        p.append("more than 10 embeds")
    for em in e:
        if len(em.get("title", "")) > 256 or len(em.get("description", "")) > 4096:
            p.append("embed title/description too long")
        if "color" in em and not isinstance(em["color"], int):
            p.append("color is not an integer")
        if "timestamp" in em and "T" not in em["timestamp"]:
            p.append("timestamp is not ISO 8601")
        fl = em.get("fields", [])
        if len(fl) > 25 or any(not f.get("name") or len(f["name"]) > 256 or not f.get("value") or len(f["value"]) > 1024 for f in fl):
            p.append("embed fields bad")
    return p


def webhook_problems(b, raw, headers):
    p = []
    secret = ""
    try:
        with open(ARGS.secret_file) as f:
            secret = f.read().strip()
    except OSError:
        pass
    want = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    got = headers.get("X-Dumont-Signature", "")
    if not secret or not hmac.compare_digest(want, got):
        p.append("bad signature")
    if not isinstance(b, dict):
        return p + ["body is not an object"]
    for k in ("event", "event_id", "idempotency_key", "occurred_at", "summary", "dumont"):
        if k not in b:
            p.append("missing " + k)
    if b.get("idempotency_key") != headers.get("Idempotency-Key"):
        p.append("idempotency_key differs from the header")
    return p


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def planned(self):
        try:
            lines = open(ARGS.plan).read().splitlines() if ARGS.plan else []
        except OSError:
            lines = []
        with LOCK:
            if PLAN_SEEN[0] != lines:
                PLAN_SEEN[0] = lines
                USED.clear()
            for i, line in enumerate(lines):
                w = line.split()
                if len(w) >= 2 and i not in USED and self.path.startswith(w[0]):
                    USED.add(i)
                    return w[1:]
        return None

    def answer(self, status, body=b"", ctype="text/plain", extra=None):
        self.send_response(status)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        kind = "slack" if self.path.startswith("/slack/") else "discord" if self.path.startswith("/discord/") else "webhook"
        try:
            b = json.loads(raw)
        except ValueError:
            b = None
        probs = slack_problems(b) if kind == "slack" else discord_problems(b) if kind == "discord" else webhook_problems(b, raw, self.headers)
        if self.headers.get("Content-Type") != "application/json":
            probs.append("Content-Type is not application/json")
        plan = self.planned()
        status = 400 if probs else (204 if kind == "discord" else 200)
        if plan:
            if plan[0].startswith("hang="):
                self.record(kind, probs, raw, b, "hang")
                time.sleep(float(plan[0][5:]))
                plan = None
            else:
                status = int(plan[0])
        rec_status = status
        self.record(kind, probs, raw, b, rec_status)
        if plan and status == 429 and len(plan) > 1 and plan[1].startswith("ra="):
            self.answer(429, b"rate limited", extra={"Retry-After": plan[1][3:]})
        elif plan and status == 429 and len(plan) > 1 and plan[1].startswith("json="):
            self.answer(429, json.dumps({"message": "You are being rate limited.", "retry_after": float(plan[1][5:]), "global": False}).encode(), "application/json")
        elif plan:
            self.answer(status, b"planned failure")
        elif probs:
            self.answer(400, b"invalid_payload" if kind == "slack" else json.dumps({"message": "; ".join(probs), "code": 50109}).encode(), "text/plain" if kind == "slack" else "application/json")
        elif kind == "discord":
            self.answer(204)
        else:
            self.answer(200, b"ok")

    def record(self, kind, probs, raw, b, status):
        rec = {"t": time.time(), "path": self.path, "kind": kind, "valid": not probs, "problems": probs,
               "key": self.headers.get("Idempotency-Key"), "delivery": self.headers.get("X-Dumont-Delivery"),
               "event": self.headers.get("X-Dumont-Event"), "signature": self.headers.get("X-Dumont-Signature"),
               "status": status, "body": b if b is not None else raw.decode("utf-8", "replace")}
        with LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(rec) + "\n")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret-file", default="/nonexistent")
    ap.add_argument("--plan")
    ARGS = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), H)
    srv.daemon_threads = True
    if ARGS.port_file:
        tmp = ARGS.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(tmp, ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
