#!/usr/bin/env python3
# proxy-upstream.py SOCKET [COUNTFILE]: a stand-in registry for the proxy
# tests. Answers every request with 200 and a JSON echo of what it received
# (method, path, headers, body length), and writes the number of connections
# it accepted so far to COUNTFILE. /v2/big answers 8 MiB.
import socketserver, http.server, os, sys, json
path = sys.argv[1]
count_file = sys.argv[2] if len(sys.argv) > 2 else None
try: os.unlink(path)
except FileNotFoundError: pass
conns = 0
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        global conns
        conns += 1
        if count_file:
            open(count_file, "w").write(str(conns))
        super().setup()
    def address_string(self): return "unix"
    def reply(self, body_len=0):
        info = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body_len": body_len}
        out = json.dumps(info).encode()
        if self.path.startswith("/v2/big"):
            out = b"x" * (8 * 1024 * 1024)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)
    def body(self):
        # Counted and dropped: large uploads must not be held in memory.
        total = 0
        if self.headers.get("Transfer-Encoding") == "chunked":
            while True:
                n = int(self.rfile.readline().strip(), 16)
                if n == 0:
                    self.rfile.readline(); break
                while n > 0:
                    k = len(self.rfile.read(min(n, 1 << 20))); n -= k; total += k
                self.rfile.readline()
            return total
        n = int(self.headers.get("Content-Length", "0"))
        while n > 0:
            k = len(self.rfile.read(min(n, 1 << 20)))
            if k == 0: break
            n -= k; total += k
        return total
    def do_GET(self): self.reply()
    def do_HEAD(self): self.reply()
    def do_PUT(self): self.reply(self.body())
    def do_POST(self): self.reply(self.body())
    def do_PATCH(self): self.reply(self.body())
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
S(path, H).serve_forever()
