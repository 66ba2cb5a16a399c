#!/usr/bin/env python3
# 57-proxy-limits.py: the two ends of 57-proxy-limits-ipv6.sh.
#
#   upstream SOCKET COUNTFILE
#       A stand-in registry on a unix socket that counts the requests it
#       receives by their marker, the second path component
#       (/v2/MARKER/...), and rewrites COUNTFILE ({"MARKER": n, ...})
#       after each one: what got through the proxy, seen from behind it.
#
#   client PORT CA MARKER COUNT SOURCES [THREADS]
#       COUNT requests GET /v2/MARKER/manifests/I to the proxy on loopback
#       (::1 from IPv6 sources, 127.0.0.1 from IPv4 ones), each on a new
#       TLS connection (SNI registry.test, verified against CA) from its
#       own source address, THREADS at a time (default 8). SOURCES:
#         same64:PREFIX   random interface ids in the /64 PREFIX (2001:db8:1:0)
#         many64:PREFIX   PREFIX:I::1, one /64 per request (PREFIX a /48)
#         fixed:ADDRESS   every request from ADDRESS (IPv4 or IPv6)
#       IPv6 sources are bound with IP_FREEBIND: they are routed to lo by a
#       local route, not configured on an interface. Prints JSON:
#       {"status": {"200": n, "429": n, ...}, "sources": distinct sources,
#        "errors": {text: n}, "seconds": wall time, "retry_after": [...],
#        "bodies": {status: first body}}.
import concurrent.futures, ipaddress, json, os, random, socket, ssl, sys, threading, time
import http.server, socketserver

IP_FREEBIND = 15


def upstream(path, count_file):
    counts = {}
    lock = threading.Lock()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def address_string(self):
            return "unix"

        def do_GET(self):
            parts = self.path.split("/")
            marker = parts[2] if len(parts) > 2 else ""
            with lock:
                counts[marker] = counts.get(marker, 0) + 1
                tmp = count_file + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(counts, f)
                os.rename(tmp, count_file)
            body = b'{"ok":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *a):
            pass

    class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True
        # The default backlog (5) made the proxy's connect fail (502) when
        # hundreds of requests got through at once, as with the old code.
        request_queue_size = 256

    with open(count_file, "w") as f:
        json.dump({}, f)
    S(path, H).serve_forever()


def sources(spec, count):
    kind, _, arg = spec.partition(":")
    if kind == "fixed":
        return [arg] * count
    if kind == "same64":
        net = ipaddress.IPv6Network(arg + "::/64")
        rnd, ids = random.Random(57), set()
        while len(ids) < count:
            ids.add(rnd.randrange(1, 1 << 64))
        return [str(net.network_address + i) for i in sorted(ids)]
    if kind == "many64":
        if count > 65536:
            raise SystemExit("many64: at most 65536 /64s in a /48")
        base = int(ipaddress.IPv6Address(arg + "::"))
        return [str(ipaddress.IPv6Address(base + (i << 64) + 1)) for i in range(count)]
    raise SystemExit("unknown SOURCES " + spec)


def one(port, ctx, marker, i, src):
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(20)
        if family == socket.AF_INET6:
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            dst = "::1"
        else:
            dst = "127.0.0.1"
        s.bind((src, 0))
        s.connect((dst, port))
        t = ctx.wrap_socket(s, server_hostname="registry.test")
        s = t
        t.sendall(("GET /v2/%s/manifests/%d HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n"
                   % (marker, i)).encode())
        data = b""
        while True:
            try:
                chunk = t.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
        if not data:
            return ("error", "closed without an answer", None, None)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ")[1]
        retry = None
        for l in lines[1:]:
            if l.lower().startswith("retry-after:"):
                retry = l.split(":", 1)[1].strip()
        return ("status", status, retry, body.decode("latin-1"))
    except OSError as e:
        return ("error", type(e).__name__ + ": " + str(e).split("(")[0][:60], None, None)
    finally:
        s.close()


def client(port, ca, marker, count, spec, threads=8):
    ctx = ssl.create_default_context(cafile=ca)
    srcs = sources(spec, count)
    out = {"status": {}, "errors": {}, "sources": len(set(srcs)), "retry_after": [], "bodies": {}}
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as ex:
        for kind, what, retry, body in ex.map(lambda a: one(port, ctx, marker, *a),
                                              enumerate(srcs)):
            bucket = out["status"] if kind == "status" else out["errors"]
            bucket[what] = bucket.get(what, 0) + 1
            if retry is not None and retry not in out["retry_after"]:
                out["retry_after"].append(retry)
            if body is not None and what not in out["bodies"]:
                out["bodies"][what] = body
    out["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "upstream":
        upstream(sys.argv[2], sys.argv[3])
    elif len(sys.argv) in (7, 8) and sys.argv[1] == "client":
        client(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6],
               *(int(a) for a in sys.argv[7:]))
    else:
        sys.exit(__doc__ if __doc__ else "usage: see the header of this file")
