#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""scripts/bench-hs.py: for scripts/bench. What Debian's podman, skopeo,
docker and containerd do for every request of a pull (DisableKeepAlives,
no TLS session cache): a new TCP connection, a full TLS 1.3 handshake, one
GET, the connection closed.

    bench-hs.py HOST PORT CAFILE PATH CLIENTS SECONDS [SOURCES]

CLIENTS concurrent clients each repeat that until SECONDS have passed (at
least once). Up to 16 clients are processes (not threads: the GIL would
serialise the handshakes); more are 16 processes of threads. SOURCES > 0:
client i connects from 127.0.0.(2 + i % SOURCES), as that many machines
would (the proxies' limits are per address). CAFILE "-": plain HTTP (the
bare registry). Prints one line:
    <answers 200> <failures> <median latency ms> <p90 latency ms> <bytes>
where latency is connect() to the last byte of the answer and bytes are
the answers' bytes (heads and bodies); bodies are counted, not kept.
HS_NODELAY=0 in the environment: the clients leave Nagle on (python's ssl
and openssl s_client by default), to see that no answer waits for a
delayed ACK (docs/performance.md).
"""

import multiprocessing
import os
import socket
import ssl
import sys
import threading
import time

NODELAY = os.environ.get("HS_NODELAY", "1") != "0"


def one_client(host, port, ctx, req, src, end, res):
    lat, bad, nbytes = [], 0, 0
    while True:
        t0 = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=30,
                                          source_address=(src, 0) if src else None) as raw:
                # As Go's net package does for every TCP connection
                # (podman, skopeo, docker, containerd), and curl.
                if NODELAY:
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # A new SSLSocket without session=: a full handshake each time.
                with (ctx.wrap_socket(raw, server_hostname=host) if ctx else raw) as s:
                    s.sendall(req)
                    head, got = b"", 0
                    while True:
                        b = s.recv(262144)
                        if not b:
                            break
                        if len(head) < 16:
                            head += b[:16]
                        got += len(b)
            if not head.startswith(b"HTTP/1.1 200"):
                bad += 1
            else:
                lat.append(time.monotonic() - t0)
                nbytes += got
        except (OSError, ssl.SSLError):
            bad += 1
        if time.monotonic() >= end:
            break
    res.append((lat, bad, nbytes))


def proc(host, port, cafile, path, seconds, srcs, out):
    ctx = None
    if cafile != "-":
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.set_alpn_protocols(["http/1.1"])
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    end = time.monotonic() + seconds
    res = []
    threads = [threading.Thread(target=one_client, args=(host, port, ctx, req, s, end, res)) for s in srcs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat, bad, nbytes = [], 0, 0
    for a, b, c in res:
        lat += a
        bad += b
        nbytes += c
    out.put((lat, bad, nbytes))


def main():
    host, port, cafile, path, clients, seconds = sys.argv[1:7]
    nsrc = int(sys.argv[7]) if len(sys.argv) > 7 else 0
    clients = int(clients)
    srcs = ["127.0.0.%d" % (2 + i % nsrc) if nsrc > 0 else "" for i in range(clients)]
    nproc = min(clients, 16)
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=proc, args=(host, int(port), cafile, path, float(seconds),
                                                        srcs[i::nproc], q))
             for i in range(nproc)]
    for p in procs:
        p.start()
    lat, bad, nbytes = [], 0, 0
    for _ in procs:
        got, b, n = q.get(timeout=float(seconds) + 600)
        lat += got
        bad += b
        nbytes += n
    for p in procs:
        p.join(timeout=30)
    lat.sort()
    med = lat[len(lat) // 2] * 1000 if lat else 0
    p90 = lat[len(lat) * 9 // 10] * 1000 if lat else 0
    print(f"{len(lat)} {bad} {med:.1f} {p90:.1f} {nbytes}")


if __name__ == "__main__":
    main()
