#!/usr/bin/env python3
# 56-evil-upstream.py SOCKET COUNTFILE [early]: a registry stand-in that
# answers each request with a complete response ("first") immediately
# followed by a second one nobody asked for ("SECRET"), as a registry would
# that had read a smuggled request. Counts its connections in COUNTFILE.
# With "early": a request with a body is answered (400, keep-alive) as soon
# as its head is read, before its body, and the answer's own body is sent
# only once the request body has arrived; as a registry would whose unread
# request bytes could then be taken for a next request. A request without a
# body gets "ok".
import os, socket, sys, threading
from rawhttp import content_length
path, count_file = sys.argv[1], sys.argv[2]
early = len(sys.argv) > 3 and sys.argv[3] == "early"
try: os.unlink(path)
except FileNotFoundError: pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o666)
srv.listen(16)
conns = 0
lock = threading.Lock()
def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, _, buf = buf.partition(b"\r\n\r\n")
            if not early:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                          b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET")
                continue
            length = content_length(head) or 0
            if length == 0:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                continue
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\n")
            while len(buf) < length:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            buf = buf[length:]
            c.sendall(b"early")
    finally:
        c.close()
while True:
    c, _ = srv.accept()
    with lock:
        conns += 1
        open(count_file, "w").write(str(conns))
    threading.Thread(target=serve, args=(c,), daemon=True).start()
