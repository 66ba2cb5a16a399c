#!/usr/bin/env python3
# 67-flood.py: one address against the proxy's limits (67-limits-real-clients.sh).
#   flood HOST PORT CA CONNS ROUNDS: CONNS threads at once, each opening a new
#     TLS connection per request (as the registry clients do) and sending
#     GET /v2/ ROUNDS times; prints JSON {"status": {code: n}, "errors": n}
#     (errors: connections closed without an answer).
#   hold HOST PORT CA N -- CMD...: opens N TLS connections (handshake done,
#     nothing sent), runs CMD while they are held, prints its output.
#   many HOST PORT CA SRC... -- CONNS READY STOP: a flood from many addresses
#     (85-limits-push-flood.sh): from each source address SRC, CONNS threads
#     send GET /v2/ on a new TLS connection each, over and over; once every
#     address has drawn an answer other than 200 it creates the file READY,
#     and it stops when the file STOP exists (or after 10 minutes). Prints
#     JSON {"SRC": {"status": {code: n}, "errors": n}, ...}.
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import rawhttp


def connect(host, port, ctx, src=None):
    s = socket.create_connection((host, port), timeout=20,
                                 source_address=(src, 0) if src else None)
    return ctx.wrap_socket(s, server_hostname="registry.test")


def get(host, port, ctx, src=None):
    try:
        t = connect(host, port, ctx, src)
        t.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n")
        data = rawhttp.recv_until(t, b"\r\n")
        t.close()
        line = data.split(b"\r\n", 1)[0].split()
        return line[1].decode() if len(line) > 1 else "closed"
    except (OSError, ssl.SSLError):
        return "closed"


def main():
    mode, host, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ctx = ssl.create_default_context(cafile=ca)
    if mode == "flood":
        conns, rounds = int(sys.argv[5]), int(sys.argv[6])
        status, lock = {}, threading.Lock()

        def worker():
            for _ in range(rounds):
                s = get(host, port, ctx)
                with lock:
                    status[s] = status.get(s, 0) + 1

        threads = [threading.Thread(target=worker) for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = status.pop("closed", 0)
        print(json.dumps({"status": status, "errors": errors}))
    elif mode == "hold":
        n = int(sys.argv[5])
        cmd = sys.argv[sys.argv.index("--") + 1:]
        held = [connect(host, port, ctx) for _ in range(n)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        sys.stdout.write(out.stdout)
        for t in held:
            t.close()

    elif mode == "many":
        dash = sys.argv.index("--")
        srcs = sys.argv[5:dash]
        conns, ready, stop = int(sys.argv[dash + 1]), sys.argv[dash + 2], sys.argv[dash + 3]
        status = {src: {} for src in srcs}
        lock = threading.Lock()
        deadline = time.monotonic() + 600

        def refused_everywhere():
            return all(any(k != "200" for k in status[src]) for src in srcs)

        def worker(src):
            while not os.path.exists(stop) and time.monotonic() < deadline:
                s = get(host, port, ctx, src)
                with lock:
                    status[src][s] = status[src].get(s, 0) + 1
                    if not os.path.exists(ready) and refused_everywhere():
                        open(ready, "w").close()

        threads = [threading.Thread(target=worker, args=(src,)) for src in srcs for _ in range(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out = {}
        for src in srcs:
            errors = status[src].pop("closed", 0)
            out[src] = {"status": status[src], "errors": errors}
        print(json.dumps(out))


main()
