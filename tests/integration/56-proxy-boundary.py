#!/usr/bin/env python3
# 56-proxy-boundary.py MODE ...: attacks on the proxy's trust boundary, sent
# over real TLS. Prints one "ok - ..." or "FAIL - ..." line per check and
# exits 1 if any failed. What the registry saw is checked by the caller
# from the registry's own side.
#
#   sni HOST CAFILE PEER    the SNI carries a second request (issue 8, #1)
#   forwarded HOST CAFILE PORT MARKER [CERT KEY]
#                           forged forwarding fields (issue 8, #3)
#   leftover HOST CAFILE    an upstream that answers twice (issue 8, #2)
#   upload HOST CAFILE CERT KEY
#                           an upload session touched through 443, a body on
#                           a GET (the attacker's review of the fix)
import hashlib, socket, ssl, sys

import rawhttp

failed = 0

def check(ok, what):
    global failed
    print(("ok - " if ok else "FAIL - ") + what)
    if not ok:
        failed += 1

def connect(host, port, sni, cafile=None, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the SNI below is not a name to verify
    if cert:
        ctx.load_cert_chain(cert, key)
    s = socket.create_connection((host, port), timeout=10)
    # bytes: passed to OpenSSL as they are (CR and LF included)
    return ctx.wrap_socket(s, server_hostname=sni)

def read_response(s, head_request=False):
    """One response: head, then Content-Length bytes (none for HEAD); what
    came when the connection ended before a whole head."""
    head, body, _ = rawhttp.read_response(s, head_request)
    if not head:
        return body
    return head + b"\r\n\r\n" + (b"" if head_request else body)

def mode_sni(host, cafile, peer):
    # 1. The catalog, smuggled behind GET /v2/ and collected on the same
    #    keep-alive connection by the next request.
    sni = b"x\r\n\r\nGET /v2/_catalog HTTP/1.1\r\nHost: x"
    s = connect(host, 443, sni)
    req = b"GET /v2/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    s.sendall(req)
    r1 = read_response(s)
    r2 = b""
    try:
        s.sendall(req)
        r2 = read_response(s)
    except OSError:
        pass
    s.close()
    check(r1.startswith(b"HTTP/1.1 200"), "GET /v2/ with a crafted SNI is answered: %r" % r1[:40])
    check(b"repositories" not in r1 + r2, "no catalog in any answer (second: %r)" % r2[:60])

    # 2. A write through the anonymous port: a monolithic blob upload whose
    #    body is the rest of the proxy's own request head, as the proxy
    #    before the fix wrote it after the SNI (no port on 443).
    trailer = ("\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: %s\r\n\r\n" % peer).encode()
    digest = "sha256:" + hashlib.sha256(trailer).hexdigest()
    sni = ("x\r\n\r\nPOST /v2/boundary/blobs/uploads/?digest=%s HTTP/1.1\r\nHost: x\r\n"
           "Content-Length: %d" % (digest, len(trailer))).encode()
    s = connect(host, 443, sni)
    s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
    r = read_response(s)
    s.close()
    check(r.startswith(b"HTTP/1.1 200"), "GET /v2/ with a POST in the SNI: %r" % r[:40])
    print("digest " + digest)
    return

def mode_forwarded(host, cafile, port, marker, cert=None, key=None):
    s = connect(host, int(port), b"registry.test", cert=cert, key=key)
    s.sendall(("GET /v2/%s/manifests/latest HTTP/1.1\r\nHost: registry.test\r\n"
               "X-Forwarded-For: 203.0.113.66\r\nX-Real-IP: 203.0.113.67\r\n"
               "Forwarded: for=203.0.113.68;host=evil.example\r\nX-Forwarded-Host: evil.example\r\n"
               "Connection: close\r\n\r\n" % marker).encode())
    r = read_response(s)
    s.close()
    check(r.startswith(b"HTTP/1.1 404"), "the registry answered the marker request (404): %r" % r[:40])

def mode_leftover(host, cafile):
    s = connect(host, 443, b"registry.test")
    req = b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\n\r\n"
    s.sendall(req)
    r1 = read_response(s)
    s.sendall(req)
    r2 = read_response(s)
    s.close()
    check(r1.startswith(b"HTTP/1.1 200") and r1.endswith(b"first"), "first answer: %r" % r1[-20:])
    check(r2.startswith(b"HTTP/1.1 200") and b"SECRET" not in r2, "second answer is its own: %r" % r2[-20:])

def exchange(s, raw):
    s.sendall(raw)
    return read_response(s, raw.startswith(b"HEAD "))

def header(resp, name):
    for line in resp.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower():
            return v.strip().decode()
    return None

def mode_upload(host, cafile, cert, key):
    # An upload session started with a certificate on 4443, then touched
    # anonymously on 443: a GET there makes the registry resume the upload
    # (and with a stale _state, cancel it).
    s = connect(host, 4443, b"registry.test", cert=cert, key=key)
    r = exchange(s, b"POST /v2/boundary/up/blobs/uploads/ HTTP/1.1\r\nHost: registry.test\r\n"
                    b"Content-Length: 0\r\n\r\n")
    check(r.startswith(b"HTTP/1.1 202"), "an upload starts on 4443: %r" % r[:40])
    loc = header(r, b"Location")
    r = exchange(s, ("PATCH %s HTTP/1.1\r\nHost: registry.test\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: 11\r\n\r\nhello world" % loc).encode())
    check(r.startswith(b"HTTP/1.1 202"), "data goes into it: %r" % r[:40])
    s.close()
    print("upload " + loc.split("?")[0].rsplit("/", 1)[1])
    for method in (b"GET", b"HEAD"):
        s = connect(host, 443, b"registry.test")
        r = exchange(s, method + b" " + loc.encode() + b" HTTP/1.1\r\nHost: registry.test\r\n\r\n")
        s.close()
        check(r.startswith(b"HTTP/1.1 403"), "%s on the upload session through 443: %r" % (method.decode(), r[:40]))
    # A body on the pull port.
    s = connect(host, 443, b"registry.test")
    r = exchange(s, b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nContent-Length: 5\r\n\r\nbody-marker")
    s.close()
    check(r.startswith(b"HTTP/1.1 400"), "GET with a body on 443: %r" % r[:40])

mode = sys.argv[1]
{"sni": mode_sni, "forwarded": mode_forwarded, "leftover": mode_leftover, "upload": mode_upload}[mode](*sys.argv[2:])
sys.exit(1 if failed else 0)
