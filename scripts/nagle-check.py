#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""scripts/nagle-check.py: whether a client that leaves Nagle on (python's
ssl, openssl s_client: no TCP_NODELAY) waits for a delayed ACK after a
full TLS 1.3 handshake (docs/performance.md, "Full handshakes").

    nagle-check.py HOST PORT CAFILE PATH COUNT

COUNT times, one after the other: a new TCP connection without
TCP_NODELAY, a full handshake, one GET, the answer read to its end. Such a
client writes its Finished, then its request: Nagle holds the request
until the Finished is ACKed, so a server that neither writes after the
Finished nor ACKs it at once costs it the delayed ACK (40 ms on Linux).
Prints one line, milliseconds:
    <answers 200> <failures> <request-to-first-byte median> <p90> <max> <handshake median>
Numbers to read, not to assert on.
"""

import socket
import ssl
import sys
import time


def main():
    host, port, cafile, path, count = sys.argv[1:6]
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    req = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    rtt, hs, bad = [], [], 0
    for _ in range(int(count)):
        try:
            with socket.create_connection((host, int(port)), timeout=30) as raw:
                t0 = time.monotonic()
                with ctx.wrap_socket(raw, server_hostname=host) as s:
                    t1 = time.monotonic()
                    s.sendall(req)
                    first = s.recv(65536)
                    t2 = time.monotonic()
                    while s.recv(65536):
                        pass
            if not first.startswith(b"HTTP/1.1 200"):
                bad += 1
                continue
            hs.append(t1 - t0)
            rtt.append(t2 - t1)
        except (OSError, ssl.SSLError):
            bad += 1
    rtt.sort()
    hs.sort()

    def ms(v, q):
        return v[min(len(v) - 1, int(len(v) * q))] * 1000 if v else 0

    print(f"{len(rtt)} {bad} {ms(rtt, 0.5):.2f} {ms(rtt, 0.9):.2f} {ms(rtt, 1):.2f} {ms(hs, 0.5):.2f}")


if __name__ == "__main__":
    main()
