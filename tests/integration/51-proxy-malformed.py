#!/usr/bin/env python3
# 51-proxy-malformed.py HOST PORT CAFILE [CERT KEY]: sends each malformed or
# smuggling request of CASES raw over its own TLS connection and checks that
# the proxy answers 400 with a registry-style JSON error and then closes the
# connection. Prints one line per case and "passed N of M"; exit status 0
# only when every case passed. Used by 51-proxy-malformed.sh, which checks
# with a counting upstream that none of them reached the registry.
import json
import socket
import ssl
import sys

H = b"Host: registry.test\r\n"

CASES = [
    # Framing: Content-Length and Transfer-Encoding (request smuggling).
    ("CL and TE", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE and CL", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
    ("CL twice, same", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\nx"),
    ("CL twice, different", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx"),
    ("CL plus sign", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: +1\r\n\r\nx"),
    ("CL hex", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 0x1\r\n\r\nx"),
    ("CL list", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 1, 1\r\n\r\nx"),
    ("CL empty", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n"),
    ("CL leading zero", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 01\r\n\r\nx"),
    ("CL negative", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n"),
    ("CL with space inside", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 1 1\r\n\r\nx"),
    ("TE chunked twice in a list", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
    ("TE gzip, chunked", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("TE xchunked", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    ("TE identity", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n"),
    ("TE field twice", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("TE in HTTP/1.0", b"POST /v2/ HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("chunk size not hex", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"),
    ("chunk size 17 digits", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n00000000000000001\r\nx\r\n0\r\n\r\n"),
    ("chunk size empty", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n\r\nx\r\n0\r\n\r\n"),
    ("chunk data without CRLF", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"),
    ("chunk size with bare LF", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"),
    # Line endings and whitespace.
    ("bare LF in request line", b"GET /v2/ HTTP/1.1\n" + H + b"\r\n"),
    ("bare LF after a field", b"GET /v2/ HTTP/1.1\r\nHost: registry.test\n\r\n"),
    ("bare CR in a field", b"GET /v2/ HTTP/1.1\r\nHost: registry.test\rX: y\r\n\r\n"),
    ("obs-fold", b"GET /v2/ HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n"),
    ("space before the first field", b"GET /v2/ HTTP/1.1\r\n Host: registry.test\r\n\r\n"),
    ("space before colon", b"GET /v2/ HTTP/1.1\r\nHost : registry.test\r\n\r\n"),
    ("tab before colon", b"GET /v2/ HTTP/1.1\r\n" + H + b"Content-Length\t: 0\r\n\r\n"),
    ("leading empty line", b"\r\nGET /v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    ("two spaces in request line", b"GET  /v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    ("tab in request line", b"GET\t/v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    # Names and values.
    ("control byte in a name", b"GET /v2/ HTTP/1.1\r\n" + H + b"X\x01A: a\r\n\r\n"),
    ("non-ASCII name", b"GET /v2/ HTTP/1.1\r\n" + H + b"X\xc3\xa9: a\r\n\r\n"),
    ("control byte in a value", b"GET /v2/ HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n"),
    ("NUL in a value", b"GET /v2/ HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n"),
    ("obs-text in a value", b"GET /v2/ HTTP/1.1\r\n" + H + b"X-A: \xff\r\n\r\n"),
    ("line without colon", b"GET /v2/ HTTP/1.1\r\n" + H + b"X-A a\r\n\r\n"),
    ("empty field name", b"GET /v2/ HTTP/1.1\r\n" + H + b": a\r\n\r\n"),
    # Host.
    ("Host twice", b"GET /v2/ HTTP/1.1\r\n" + H + H + b"\r\n"),
    ("no Host in HTTP/1.1", b"GET /v2/ HTTP/1.1\r\nX-A: a\r\n\r\n"),
    ("empty Host", b"GET /v2/ HTTP/1.1\r\nHost: \r\n\r\n"),
    ("Host with a path", b"GET /v2/ HTTP/1.1\r\nHost: registry.test/x\r\n\r\n"),
    ("Host with userinfo", b"GET /v2/ HTTP/1.1\r\nHost: a@registry.test\r\n\r\n"),
    # Request line forms and versions.
    ("HTTP/0.9", b"GET /v2/\r\n\r\n"),
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("absolute-form", b"GET http://registry.test/v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    ("asterisk-form", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n"),
    ("authority-form", b"CONNECT registry.test:443 HTTP/1.1\r\n" + H + b"\r\n"),
    ("non-ASCII in target", b"GET /v2/\xff HTTP/1.1\r\n" + H + b"\r\n"),
    ("empty method", b" /v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    ("method not a token", b"GE(T /v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    # Hop-by-hop abuse and upgrades.
    ("Connection nominates Host", b"GET /v2/ HTTP/1.1\r\n" + H + b"Connection: host\r\n\r\n"),
    ("Connection nominates Content-Length", b"POST /v2/ HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nConnection: content-length\r\n\r\nx"),
    ("Connection nominates Transfer-Encoding", b"POST /v2/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n0\r\n\r\n"),
    ("Upgrade: h2c", b"GET /v2/ HTTP/1.1\r\n" + H + b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
    ("Upgrade: websocket", b"GET /v2/ HTTP/1.1\r\n" + H + b"Upgrade: websocket\r\n\r\n"),
    # Paths the route policy refuses to even normalize.
    ("encoded slash", b"GET /v2%2f_catalog HTTP/1.1\r\n" + H + b"\r\n"),
    ("dot-dot above the root", b"GET /../v2/ HTTP/1.1\r\n" + H + b"\r\n"),
    ("encoded NUL", b"GET /v2/%00 HTTP/1.1\r\n" + H + b"\r\n"),
    ("invalid escape", b"GET /v2/%zz HTTP/1.1\r\n" + H + b"\r\n"),
]


def one(host, port, ctx, raw):
    with socket.create_connection((host, port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="registry.test") as t:
            t.sendall(raw)
            data = b""
            while True:
                try:
                    b = t.recv(65536)
                except (ssl.SSLError, ConnectionResetError) as e:
                    return data, "reset: %s" % e
                except socket.timeout:
                    return data, "not closed within 10 s"
                if not b:
                    return data, None
                data += b


def main():
    host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ctx = ssl.create_default_context(cafile=cafile)
    if len(sys.argv) > 5:
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    passed = 0
    for name, raw in CASES:
        data, err = one(host, port, ctx, raw)
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        why = []
        if not status.startswith("HTTP/1.1 400 "):
            why.append("status %r" % status)
        if err:
            why.append(err)
        if b"\r\nconnection: close" not in head.lower():
            why.append("no Connection: close")
        try:
            code = json.loads(body)["errors"][0]["code"]
        except Exception:
            code = None
            why.append("body is not a registry error: %r" % body[:80])
        if why:
            print("FAIL %-40s %s" % (name, "; ".join(why)))
        else:
            passed += 1
            print("ok   %-40s %s %s" % (name, status, code))
    print("passed %d of %d" % (passed, len(CASES)))
    sys.exit(0 if passed == len(CASES) else 1)


main()
