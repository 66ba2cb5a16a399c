#!/usr/bin/python3
"""52-slowloris.py: many slow clients against the proxy, and one normal one.

    52-slowloris.py HOST PORT CAFILE N ADDRS INTERVAL DEADLINE -- CLIENT ARGV...

Opens N TLS connections to HOST:PORT, each bound first to a source address
in 127.0.0.0/8 (ADDRS distinct addresses from 127.0.1.1 on, connections
spread round-robin over them, so that a per-IP connection limit does not
refuse them). Two kinds, alternating:

  tls   stalls in the TLS handshake: the ClientHello (a real one, made by
        OpenSSL) is sent one byte every INTERVAL seconds;
  http  completes the TLS handshake, then sends the request head one byte
        (one TLS record) every INTERVAL seconds; the head never completes.

Everything is non-blocking (selectors, ssl.MemoryBIO), one thread. Once
every connection is established (tls: TCP connected and the first byte
sent; http: handshake done), the normal CLIENT command is started; its exit
status and duration are recorded, and how many slow connections were still
open when it started and ended.

A connection counts as closed by the server when a read returns EOF or a
reset (or a send fails with EPIPE/ECONNRESET); its close time is measured
from its own connect(). The script stops when every connection is closed
or DEADLINE seconds after the start, whichever is first, and prints one
JSON object (see the end). Exit 0 unless the script itself failed.
"""

import errno
import json
import os
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import time

HEAD = (
    b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nUser-Agent: slowloris\r\n"
    b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"
)


class Conn:
    __slots__ = (
        "i", "kind", "src", "sock", "state", "t_connect", "t_closed", "how", "obj", "inb", "outb",
        "pending", "tosend", "next_send", "sent", "appdata",
    )


def main():
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    sep = argv.index("--")
    host, port, cafile, n, addrs, interval, deadline = argv[:sep]
    client = argv[sep + 1:]
    port, n, addrs = int(port), int(n), int(addrs)
    interval, deadline = float(interval), float(deadline)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    ctx = ssl.create_default_context(cafile=cafile)
    sel = selectors.DefaultSelector()
    t0 = time.monotonic()
    conns = []
    errors = {}

    def now():
        return time.monotonic() - t0

    def close(c, how):
        if c.state == "closed":
            return
        c.t_closed = now()
        c.how = how
        c.state = "closed"
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def send_raw(c, data):
        """Sends data (small) on the non-blocking socket; False if closed."""
        c.pending += data
        while c.pending:
            try:
                k = c.sock.send(c.pending)
            except BlockingIOError:
                return True  # kept in c.pending, sent on the next round
            except (BrokenPipeError, ConnectionResetError):
                close(c, "reset-on-send")
                return False
            c.pending = c.pending[k:]
        return True

    def flush_tls(c):
        data = c.outb.read()
        return send_raw(c, data) if data else True

    def try_handshake(c):
        try:
            c.obj.do_handshake()
        except ssl.SSLWantReadError:
            flush_tls(c)
            return
        except ssl.SSLError as e:
            errors[f"handshake: {e.reason}"] = errors.get(f"handshake: {e.reason}", 0) + 1
            close(c, "handshake-error")
            return
        if not flush_tls(c):
            return
        c.state = "slow"
        c.tosend = HEAD
        c.next_send = now()

    def on_connected(c):
        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            key = "connect: " + errno.errorcode.get(err, str(err))
            errors[key] = errors.get(key, 0) + 1
            close(c, "connect-error")
            return
        sel.modify(c.sock, selectors.EVENT_READ, c)
        c.inb, c.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        c.obj = ctx.wrap_bio(c.inb, c.outb, server_hostname="registry.test")
        if c.kind == "tls":
            try:
                c.obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            c.tosend = c.outb.read()  # the whole ClientHello, to trickle
            c.state = "slow"
            c.next_send = now()
        else:
            c.state = "handshake"
            try_handshake(c)

    def on_readable(c):
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            close(c, "reset")
            return
        if not data:
            close(c, "eof")
            return
        if c.kind == "tls":
            c.appdata += len(data)  # a server answer to a partial ClientHello
            return
        c.inb.write(data)
        if c.state == "handshake":
            try_handshake(c)
            return
        while True:
            try:
                got = c.obj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return
            except ssl.SSLError:
                close(c, "tls-error")
                return
            if not got:
                return
            c.appdata += len(got)

    def trickle(c):
        if c.pending:
            if not send_raw(c, b""):
                return
        if not c.tosend or now() < c.next_send:
            return
        byte, c.tosend = c.tosend[:1], c.tosend[1:]
        c.sent += 1
        c.next_send += interval
        if c.kind == "tls":
            send_raw(c, byte)
        else:
            c.obj.write(byte)
            flush_tls(c)

    for i in range(n):
        c = Conn()
        c.i, c.kind = i, ("tls" if i % 2 == 0 else "http")
        k = i % addrs
        c.src = f"127.0.{1 + k // 250}.{1 + k % 250}"
        c.t_closed = c.how = None
        c.pending, c.tosend, c.sent, c.appdata, c.next_send = b"", b"", 0, 0, 0.0
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.setblocking(False)
        c.sock.bind((c.src, 0))
        c.t_connect = now()
        r = c.sock.connect_ex((host, port))
        if r not in (0, errno.EINPROGRESS):
            key = "connect: " + errno.errorcode.get(r, str(r))
            errors[key] = errors.get(key, 0) + 1
            c.state = "closed"
            c.t_closed, c.how = now(), "connect-error"
            c.sock.close()
        else:
            c.state = "connecting"
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        conns.append(c)

    t_ready = None
    proc = None
    client_start = client_end = None
    open_at_start = open_at_end = None
    client_rc = None
    max_open = 0

    def n_open():
        return sum(1 for c in conns if c.state != "closed")

    while now() < deadline:
        for key, _ in sel.select(timeout=0.02):
            c = key.data
            if c.state == "connecting":
                on_connected(c)
            elif c.state != "closed":
                on_readable(c)
        for c in conns:
            if c.state == "slow":
                trickle(c)
        open_now = n_open()
        max_open = max(max_open, open_now)
        if t_ready is None and all(c.state == "closed" or (c.state == "slow" and c.sent > 0) for c in conns):
            t_ready = now()
            open_at_start = open_now
            client_start = now()
            proc = subprocess.Popen(client)
        if proc is not None and client_rc is None:
            rc = proc.poll()
            if rc is not None:
                client_rc, client_end, open_at_end = rc, now(), open_now
        if open_now == 0 and (proc is None or client_rc is not None):
            break

    if proc is not None and client_rc is None:
        proc.kill()
        proc.wait()
        client_rc, client_end, open_at_end = "killed at the deadline", now(), n_open()

    def summary(kind):
        cs = [c for c in conns if c.kind == kind]
        closed = [c for c in cs if c.t_closed is not None and c.how not in ("connect-error", "handshake-error")]
        after = [c.t_closed - c.t_connect for c in closed]
        hows = {}
        for c in closed:
            hows[c.how] = hows.get(c.how, 0) + 1
        return {
            "n": len(cs),
            "established": sum(1 for c in cs if c.sent > 0),
            "closed_by_server": len(closed),
            "still_open": sum(1 for c in cs if c.state != "closed"),
            "close_after_min": round(min(after), 3) if after else None,
            "close_after_max": round(max(after), 3) if after else None,
            "how": hows,
            "max_bytes_sent": max((c.sent for c in cs), default=0),
            "answered": sum(1 for c in cs if c.appdata > 0),
        }

    print(json.dumps({
        "n": n,
        "addresses": len({c.src for c in conns}),
        "errors": errors,
        "ready_at": round(t_ready, 3) if t_ready is not None else None,
        "max_open": max_open,
        "client": {
            "rc": client_rc,
            "started_at": round(client_start, 3) if client_start is not None else None,
            "seconds": round(client_end - client_start, 3) if client_end is not None else None,
            "slow_open_at_start": open_at_start,
            "slow_open_at_end": open_at_end,
        },
        "tls": summary("tls"),
        "http": summary("http"),
        "elapsed": round(now(), 3),
    }, sort_keys=True))


if __name__ == "__main__":
    main()
