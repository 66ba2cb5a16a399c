#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Hold N idle keep-alive TLS connections to a proxy, for `make bench`.

Each connection does a full handshake and one keep-alive `GET /v2/`
(so that it is an ordinary idle keep-alive connection, past any request
header timeout), then stays open. When all are open the script prints
"ready OPEN FAILED" on stdout and waits until stdin reaches EOF or the hold
time runs out, then closes everything.

Usage: bench-conns.py HOST PORT CAFILE COUNT HOLD_SECONDS
Bounded: at most COUNT connections, 5 s per connection, HOLD_SECONDS idle.
"""

import select
import socket
import ssl
import sys
import time


def one(ctx, host, port):
    s = socket.create_connection((host, port), timeout=5)
    t = ctx.wrap_socket(s, server_hostname=host)
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
    ctx = ssl.create_default_context(cafile=cafile)
    conns, failed, first_error = [], 0, None
    for _ in range(count):
        try:
            conns.append(one(ctx, host, port))
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
