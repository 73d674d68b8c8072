#!/usr/bin/env python3
"""A TCP proxy that can partition one agent from its controller (tests only).

It forwards every byte both ways between the agent and the server, until the
file CUT exists: from then on it closes every connection it holds and accepts
new ones only to close them at once, without passing a byte, as a network
partition between the two machines would (the agent's packets reach no
controller, no answer comes back). Removing CUT heals it.

  partition_proxy.py --listen PORT --to PORT --cut FILE
"""
import argparse
import os
import socket
import threading

conns = []
lock = threading.Lock()


def cut(path):
    return os.path.exists(path)


def pump(src, dst, path):
    try:
        while not cut(path):
            src.settimeout(0.1)
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            if cut(path):
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--to", type=int, required=True)
    ap.add_argument("--cut", required=True)
    a = ap.parse_args()
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.listen))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        if cut(a.cut):
            c.close()
            continue
        try:
            s = socket.create_connection(("127.0.0.1", a.to))
        except OSError:
            c.close()
            continue
        threading.Thread(target=pump, args=(c, s, a.cut), daemon=True).start()
        threading.Thread(target=pump, args=(s, c, a.cut), daemon=True).start()


if __name__ == "__main__":
    main()
