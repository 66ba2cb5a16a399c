#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""scripts/bench-hs.py: for scripts/bench. What Debian's podman, skopeo,
docker and containerd do for every request of a pull (DisableKeepAlives,
no TLS session cache): a new TCP connection, a full TLS 1.3 handshake, one
small GET, the connection closed.

    bench-hs.py HOST PORT CAFILE PATH CLIENTS SECONDS

CLIENTS processes (not threads: the GIL would serialise the handshakes)
each repeat that until SECONDS have passed. Prints one line:
    <connections> <failures> <median latency ms> <p90 latency ms>
where latency is connect() to the last byte of the answer.
"""

import multiprocessing
import socket
import ssl
import sys
import time


def client(host, port, cafile, path, seconds, out):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    lat, bad = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=10) as raw:
                # As Go's net package does for every TCP connection
                # (podman, skopeo, docker, containerd), and curl.
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                # A new SSLSocket without session=: a full handshake each time.
                with ctx.wrap_socket(raw, server_hostname=host) as s:
                    s.sendall(req)
                    head = b""
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        head += b
            if not head.startswith(b"HTTP/1.1 200"):
                bad += 1
                continue
            lat.append(time.monotonic() - t0)
        except (OSError, ssl.SSLError):
            bad += 1
    out.put((lat, bad))


def main():
    host, port, cafile, path, clients, seconds = sys.argv[1:7]
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(host, int(port), cafile, path, float(seconds), q))
             for _ in range(int(clients))]
    for p in procs:
        p.start()
    lat, bad = [], 0
    for _ in procs:
        got, b = q.get(timeout=float(seconds) + 60)
        lat += got
        bad += b
    for p in procs:
        p.join(timeout=30)
    lat.sort()
    med = lat[len(lat) // 2] * 1000 if lat else 0
    p90 = lat[len(lat) * 9 // 10] * 1000 if lat else 0
    print(f"{len(lat)} {bad} {med:.1f} {p90:.1f}")


if __name__ == "__main__":
    main()
