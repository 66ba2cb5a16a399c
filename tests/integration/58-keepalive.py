#!/usr/bin/python3
"""A push client that keeps its connection: 58-pki-revocation.sh's revoked
client on a worker that drains after `pki revoke`.

Usage: 58-keepalive.py HOST PORT CA CERT KEY GO_FILE PATH [partial]

Opens one mTLS connection to HOST:PORT (127.0.0.1, SNI and verification
for HOST), sends GET /v2/ with keep-alive and prints "ready 200" once the
answer is in. Then it waits (at most 60 s) until GO_FILE exists and sends
POST PATH (the start of a blob upload) on the same connection, printing
"status NNN" for an answer or "closed" when the proxy closed it instead.
With "partial", all of the POST's head but its last CRLF is sent before
the wait (a request half received when the proxy reloads), the rest after.
"""
import os
import socket
import ssl
import sys
import time

import rawhttp


def read_response(s):
    """The status of one response (its body, by Content-Length, read too),
    or None when the connection ends first."""
    head, _, complete = rawhttp.read_response(s)
    return int(rawhttp.status_line(head).split()[1]) if complete else None


def main():
    host, port, ca, cert, key, go, path = sys.argv[1:8]
    partial = sys.argv[8:9] == ["partial"]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname=host)
    s.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    print(f"ready {read_response(s)}", flush=True)
    request = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n\r\n".encode()
    if partial:
        s.sendall(request[:-2])
        request = request[-2:]

    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            print("no go", flush=True)
            return 1
        time.sleep(0.05)

    try:
        s.sendall(request)
        status = read_response(s)
    except (OSError, ssl.SSLError):
        status = None
    print("closed" if status is None else f"status {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
