#!/usr/bin/env python3
"""A TCP proxy between Dumont and an S3 server that loses one answer (tests only).

It forwards every byte both ways, and watches the requests Dumont sends: the
first CompleteMultipartUpload (a request line `POST <path>?uploadId=...`
without `partNumber`, S3's documented form) is forwarded whole to the server,
which completes the upload, but when the server's answer starts to come back
the proxy closes both connections without passing a byte of it on, as a
network that fails at that moment would. Later requests pass untouched.

  s3_cut_proxy.py --listen PORT --to PORT --log FILE

FILE gets one line `cut <request line>` when the answer is dropped.
"""
import argparse
import socket
import threading

state = {"cut": False}
lock = threading.Lock()


def pump(src, dst, watch, conn, log):
    """Copies src to dst. watch: 'req' scans requests, 'resp' drops a reply."""
    tail = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if watch == "req":
                buf = tail + data
                start = 0
                while True:
                    i = buf.find(b"POST /", start)
                    if i < 0:
                        break
                    j = buf.find(b"\r\n", i)
                    if j < 0:
                        break
                    line = buf[i:j]
                    start = j
                    if b"uploadId=" in line and b"partNumber=" not in line:
                        with lock:
                            if not state["cut"]:
                                state["cut"] = True
                                conn["cut_next_reply"] = line
                tail = buf[-4096:]
            elif conn.get("cut_next_reply"):
                with open(log, "a") as f:
                    f.write("cut %s\n" % conn["cut_next_reply"].decode("latin-1"))
                break  # the answer is lost: close both ends
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, to, log):
    try:
        server = socket.create_connection(("127.0.0.1", to))
    except OSError:
        client.close()
        return
    conn = {}
    up = threading.Thread(target=pump, args=(client, server, "req", conn, log), daemon=True)
    down = threading.Thread(target=pump, args=(server, client, "resp", conn, log), daemon=True)
    up.start()
    down.start()
    up.join()
    down.join()
    client.close()
    server.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", type=int, required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.listen))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, a.to, a.log), daemon=True).start()


if __name__ == "__main__":
    main()
