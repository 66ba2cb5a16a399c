#!/usr/bin/python3
"""Slow clients for 56-proxy-slow-attacks.sh, where slowhttptest cannot go:
it sends no client certificate, so the push port's slow body and slow read
are done here. One JSON line on stdout.

  56-slow.py body HOST PORT CA CERT KEY PATH LENGTH BYTES_PER_S LIMIT_S
      sends a request head with Content-Length LENGTH, then the body at
      BYTES_PER_S (one write per second) until the proxy closes or LIMIT_S.
  56-slow.py read HOST PORT CA CERT KEY PATH RCVBUF BYTES EVERY_S LIMIT_S
      GETs PATH over a socket with a small receive buffer, reading BYTES
      every EVERY_S seconds, until the proxy closes or LIMIT_S.
  56-slow.py hold HOST PORT N RELEASE_FILE
      opens N plain TCP connections (no TLS: they sit in the proxy's
      handshake), prints "held N", closes them all once RELEASE_FILE exists.

"how" is eof (the proxy closed), reset, or limit (still open at LIMIT_S).
"""
import json
import os
import socket
import ssl
import sys
import time


def tls(host, port, ca, cert, key, rcvbuf=0):
    ctx = ssl.create_default_context(cafile=ca)
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(10)
    raw.connect((host, port))
    return ctx.wrap_socket(raw, server_hostname="registry.test")


def body(host, port, ca, cert, key, path, length, rate, limit):
    s = tls(host, port, ca, cert, key)
    s.sendall((f"POST {path} HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Length: {length}\r\n\r\n").encode())
    t0 = time.monotonic()
    sent, how, response = 0, "limit", ""
    s.settimeout(1.0)
    while time.monotonic() - t0 < limit and sent < length:
        try:
            s.sendall(b"x" * min(rate, length - sent))
            sent += min(rate, length - sent)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            how = "reset"
            break
        try:
            got = s.recv(4096)
            if not got:
                how = "eof"
                break
            response += got.decode("latin-1")
            # The proxy's answer, then its close.
            while True:
                more = s.recv(4096)
                if not more:
                    break
                response += more.decode("latin-1")
            how = "eof"
            break
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            how = "reset"
            break
    return {"how": how, "closed_after": round(time.monotonic() - t0, 2), "sent": sent,
            "response": response.split("\r\n", 1)[0]}


def read(host, port, ca, cert, key, path, rcvbuf, nbytes, every, limit):
    s = tls(host, port, ca, cert, key, rcvbuf)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: registry.test\r\n\r\n".encode())
    t0 = time.monotonic()
    got, how, status = 0, "limit", ""
    s.settimeout(every)
    while time.monotonic() - t0 < limit:
        try:
            b = s.recv(nbytes)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            how = "reset"
            break
        if not b:
            how = "eof"
            break
        if not status:
            status = b.decode("latin-1").split("\r\n", 1)[0]
        got += len(b)
        time.sleep(every)
    return {"how": how, "closed_after": round(time.monotonic() - t0, 2), "received": got, "status": status}


def hold(host, port, n, release):
    conns = []
    for _ in range(n):
        c = socket.create_connection((host, port), timeout=10)
        conns.append(c)
    print(f"held {len(conns)}", flush=True)
    while not os.path.exists(release):
        time.sleep(0.1)
    for c in conns:
        c.close()
    return {"released": len(conns)}


def main(argv):
    mode = argv[1]
    if mode == "body":
        host, port, ca, cert, key, path = argv[2], int(argv[3]), argv[4], argv[5], argv[6], argv[7]
        r = body(host, port, ca, cert, key, path, int(argv[8]), int(argv[9]), float(argv[10]))
    elif mode == "read":
        host, port, ca, cert, key, path = argv[2], int(argv[3]), argv[4], argv[5], argv[6], argv[7]
        r = read(host, port, ca, cert, key, path, int(argv[8]), int(argv[9]), float(argv[10]), float(argv[11]))
    elif mode == "hold":
        r = hold(argv[2], int(argv[3]), int(argv[4]), argv[5])
    else:
        sys.exit(f"56-slow.py: unknown mode {mode}")
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main(sys.argv)
