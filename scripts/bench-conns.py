#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Hold N idle keep-alive TLS connections to a proxy, for `make bench`.

Each connection does a full handshake and one keep-alive `GET /v2/`
(so that it is an ordinary idle keep-alive connection, past any request
header timeout), then stays open. When all are open the script prints
"ready OPEN FAILED" on stdout and waits until stdin reaches EOF or the hold
time runs out, then closes everything.

Usage: bench-conns.py HOST PORT CAFILE COUNT HOLD_SECONDS [SOURCES [BUSY_PATH]]
SOURCES > 0: connection i comes from 127.0.0.(2 + i % SOURCES) (per-address
limits; and 10,000 connections from one address would take a third of its
ephemeral ports). BUSY_PATH: instead, each connection sends `GET BUSY_PATH`
(a big blob), reads the head and 1 MiB of the body and then stops reading:
a busy bulk connection with the proxy's buffers full.
Bounded: at most COUNT connections, 5 s per connection, HOLD_SECONDS idle.
"""

import resource

import select
import socket
import ssl
import sys
import time


def busy(t, host, port, path):
    t.sendall(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path.encode(), host.encode(), port))
    data = b""
    deadline = time.monotonic() + 5
    while len(data) < (1 << 20) and time.monotonic() < deadline:
        chunk = t.recv(65536)
        if not chunk:
            raise ConnectionError("closed before 1 MiB of the body")
        data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(data.split(b"\r\n")[0].decode(errors="replace"))
    return t


def one(ctx, host, port, src, path):
    s = socket.create_connection((host, port), timeout=5, source_address=(src, 0) if src else None)
    t = ctx.wrap_socket(s, server_hostname=host)
    if path:
        return busy(t, host, port, path)
    t.sendall(b"GET /v2/ HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: regvisor-bench\r\n\r\n"
              % (host.encode(), port))
    data = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        chunk = t.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response ended")
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            continue
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        if len(body) >= length:
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(head.split(b"\r\n")[0].decode(errors="replace"))
            return t
    raise TimeoutError("no complete response within 5 s")


def main():
    host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    count, hold = int(sys.argv[4]), float(sys.argv[5])
    nsrc = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    path = sys.argv[7] if len(sys.argv) > 7 else ""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    ctx = ssl.create_default_context(cafile=cafile)
    conns, failed, first_error = [], 0, None
    for i in range(count):
        try:
            conns.append(one(ctx, host, port, "127.0.0.%d" % (2 + i % nsrc) if nsrc > 0 else "", path))
        except Exception as e:  # noqa: BLE001 - counted and reported
            failed += 1
            first_error = first_error or repr(e)
    print("ready %d %d" % (len(conns), failed), flush=True)
    if first_error:
        print("first error: %s" % first_error, file=sys.stderr, flush=True)
    # Wait for EOF on stdin (the benchmark has read the proxy's RSS), bounded.
    select.select([sys.stdin], [], [], hold)
    for c in conns:
        try:
            c.close()
        except OSError:
            pass


if __name__ == "__main__":
    main()
