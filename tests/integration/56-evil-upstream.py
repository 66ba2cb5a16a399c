#!/usr/bin/env python3
# 56-evil-upstream.py SOCKET COUNTFILE: a registry stand-in that answers each
# request with a complete response ("first") immediately followed by a
# second one nobody asked for ("SECRET"), as a registry would that had read
# a smuggled request. Counts its connections in COUNTFILE.
import os, socket, sys, threading
path, count_file = sys.argv[1], sys.argv[2]
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
            _, _, buf = buf.partition(b"\r\n\r\n")
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET")
    finally:
        c.close()
while True:
    c, _ = srv.accept()
    with lock:
        conns += 1
        open(count_file, "w").write(str(conns))
    threading.Thread(target=serve, args=(c,), daemon=True).start()
