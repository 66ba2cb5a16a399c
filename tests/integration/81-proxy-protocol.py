#!/usr/bin/python3
"""Helpers for 81-proxy-protocol.sh, run on a test host.

  buckets HOST PORT CA SRC_A SRC_B N
      N TLS connections from SRC_A to HOST:PORT (through the balancer),
      handshaken and held; then one GET /v2/ more from SRC_A and one from
      SRC_B. Prints "a=STATUS b=STATUS".
  local HOST PORT CA
      a PROXY v2 LOCAL header (the balancer's own check), split across two
      writes, then TLS and GET /v2/ in the same connection. Prints
      "status=STATUS".
  coalesced HOST PORT CA CLIENT
      a PROXY v2 header naming CLIENT and the ClientHello in one write (one
      segment), then the handshake and GET /v2/. Prints "status=STATUS".
  send HOST PORT KIND
      bytes that must be refused before TLS, with a ClientHello's first
      bytes in the same segment. KIND: proxy (a v2 header naming
      203.0.113.9: from an address that is not trusted), double (two v2
      headers), v1 (the text header), unix (a v2 PROXY over AF_UNIX).
      Prints "closed" when the proxy closed without a byte, else what
      came back.
"""
import socket
import ssl
import struct
import sys
import time

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
TIMEOUT = 15


def connect(host, port, src=None):
    s = socket.create_connection((host, port), timeout=TIMEOUT,
                                 source_address=(src, 0) if src else None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tls(sock, ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx.wrap_socket(sock, server_hostname="registry.test")


def get(t):
    t.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n")
    data = b""
    while b"\r\n" not in data:
        chunk = t.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = line.split(" ")
    return parts[1] if len(parts) > 1 else "none:" + line


def buckets(host, port, ca, src_a, src_b, n):
    held = [tls(connect(host, port, src_a), ca) for _ in range(n)]
    a = get(tls(connect(host, port, src_a), ca))
    b = get(tls(connect(host, port, src_b), ca))
    print(f"a={a} b={b}")
    for t in held:
        t.close()


def local(host, port, ca):
    s = connect(host, port)
    header = SIG + bytes([0x20, 0x00, 0, 0])
    s.sendall(header[:7])
    time.sleep(0.3)  # a second segment: the header split across reads
    s.sendall(header[7:])
    print(f"status={get(tls(s, ca))}")


def coalesced(host, port, ca, client):
    s = connect(host, port)
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    t = ctx.wrap_bio(inc, out, server_hostname="registry.test")
    body = socket.inet_aton(client) + socket.inet_aton(host) + struct.pack(">HH", 40001, port)
    first = True
    while True:
        try:
            t.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = out.read()
        if first:
            data = v2(0x21, 0x11, body) + data  # the header and the ClientHello together
            first = False
        if data:
            s.sendall(data)
        if done:
            break
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("closed during the handshake")
        inc.write(chunk)
    t.write(b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n")
    s.sendall(out.read())
    resp = b""
    while b"\r\n" not in resp:
        try:
            resp += t.read(4096)
        except ssl.SSLWantReadError:
            chunk = s.recv(65536)
            if not chunk:
                break
            inc.write(chunk)
    print("status=" + resp.split(b"\r\n", 1)[0].decode(errors="replace").split(" ")[1])


def v2(ver_cmd, fam, body):
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body


def send(host, port, kind):
    s = connect(host, port)
    body = bytes([203, 0, 113, 9, 198, 18, 0, 1]) + struct.pack(">HH", 40000, port)
    header = {
        "proxy": v2(0x21, 0x11, body),
        "double": v2(0x21, 0x11, body) + v2(0x21, 0x11, body),
        "v1": f"PROXY TCP4 203.0.113.9 198.18.0.1 40000 {port}\r\n".encode(),
        "unix": v2(0x21, 0x31, b"/tmp/x".ljust(216, b"\0")),
    }[kind]
    s.sendall(header + b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    try:
        data = s.recv(4096)
    except ConnectionResetError:
        data = b""
    print("closed" if data == b"" else repr(data[:64]))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "buckets":
        buckets(args[0], int(args[1]), args[2], args[3], args[4], int(args[5]))
    elif cmd == "local":
        local(args[0], int(args[1]), args[2])
    elif cmd == "coalesced":
        coalesced(args[0], int(args[1]), args[2], args[3])
    elif cmd == "send":
        send(args[0], int(args[1]), args[2])
    else:
        sys.exit(f"unknown command {cmd}")


main()
