#!/usr/bin/python3
"""55-timeouts.py HOST PORT CAFILE: measures the proxy's client timeouts.

Runs these scenarios at once (one thread each), over real TLS, and prints
one JSON object {scenario: result}. Times are seconds, measured with
time.monotonic(); "closed_after" is from the moment named in each scenario
to the server's EOF/reset; "response" is the first line of anything the
server sent before closing (timeouts close without a word).

  half_head        connect, send half a request head at once, wait.
                   closed_after: from connect.
  trickle_head     connect, send a request head one byte every 0.5 s
                   (never complete). closed_after: from connect.
  idle             a full GET /v2/ (keep-alive), read the response, wait.
                   closed_after: from the end of the response.
  idle_then_half   a full GET /v2/, read the response, then at once half a
                   head, wait. closed_after: from the half head.
  idle_then_get    a full GET /v2/, read the response, sleep IDLE_OK
                   seconds (argv[4], below idle_timeout but above
                   header_timeout), then a second GET /v2/ on the same
                   connection. status2: its status line.
  stalled_reader   (only with argv[5] = a blob path such as
                   /v2/NAME/blobs/DIGEST, and argv[6] = seconds) a GET of
                   that blob with a 4 KiB receive buffer, then nothing read
                   for argv[6] seconds, then everything read: length (its
                   Content-Length), body (bytes received) and how it ended.
                   The proxy's access log tells when it gave up.
"""

import json
import socket
import ssl
import sys
import threading
import time

import rawhttp

HOST, PORT, CAFILE = sys.argv[1], int(sys.argv[2]), sys.argv[3]
IDLE_OK = float(sys.argv[4]) if len(sys.argv) > 4 else 4.0
WAIT = 20.0  # no scenario waits longer than this for the server
GET = b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\nUser-Agent: 55-timeouts\r\n\r\n"
HALF = b"GET /v2/ HTTP/1.1\r\nHost: registry.test\r\n"

ctx = ssl.create_default_context(cafile=CAFILE)


def connect():
    t = time.monotonic()
    raw = socket.create_connection((HOST, PORT), timeout=WAIT)
    s = ctx.wrap_socket(raw, server_hostname="registry.test")
    s.settimeout(WAIT)
    return s, t


def wait_close(s):
    """Reads until EOF or reset; returns (time of close, bytes read, how)."""
    got = b""
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            return time.monotonic(), got, "reset"
        except ssl.SSLError as e:
            return time.monotonic(), got, "tls-error " + str(e.reason)
        except socket.timeout:
            return None, got, "still open after %.0f s" % WAIT
        if not b:
            return time.monotonic(), got, "eof"
        got += b


def read_response(s):
    """Reads one response with a Content-Length body; returns its status line."""
    head, _, complete = rawhttp.read_response(s)
    if not head:
        raise RuntimeError("closed before a response head")
    if not complete:
        raise RuntimeError("closed inside a response body")
    return rawhttp.status_line(head)


def result(t_from, closed):
    t, got, how = closed
    return {
        "closed_after": round(t - t_from, 3) if t is not None else None,
        "how": how,
        "response": got.split(b"\r\n", 1)[0].decode("latin-1") if got else "",
    }


def half_head():
    s, t = connect()
    s.sendall(HALF)
    return result(t, wait_close(s))


def trickle_head():
    s, t = connect()
    head = HALF + b"X-Slow: " + b"a" * 100
    for i in range(len(head)):
        try:
            s.sendall(head[i:i + 1])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return dict(result(t, (time.monotonic(), b"", "reset-on-send")), sent=i)
        # Look for the close between bytes.
        s.settimeout(0.5)
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError):
            return dict(result(t, (time.monotonic(), b"", "reset")), sent=i + 1)
        finally:
            s.settimeout(WAIT)
        return dict(result(t, (time.monotonic(), b, "eof" if not b else "data")), sent=i + 1)
    return {"closed_after": None, "how": "never closed", "response": ""}


def get_first():
    """A new connection with one GET /v2/ answered: (socket, status line)."""
    s, _ = connect()
    s.sendall(GET)
    return s, read_response(s)


def idle(then=b""):
    s, status = get_first()
    if then:
        s.sendall(then)
    t = time.monotonic()
    return dict(result(t, wait_close(s)), status1=status)


def idle_then_half():
    return idle(HALF)


def idle_then_get():
    s, status = get_first()
    time.sleep(IDLE_OK)
    try:
        s.sendall(GET)
        status2 = read_response(s)
    except Exception as e:  # noqa: BLE001 (reported, not raised)
        status2 = "error: %r" % e
    return {"status1": status, "status2": status2}


def stalled_reader():
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(WAIT)
    raw.connect((HOST, PORT))
    s = ctx.wrap_socket(raw, server_hostname="registry.test")
    s.sendall(b"GET " + BLOB.encode() + b" HTTP/1.1\r\nHost: registry.test\r\nUser-Agent: stalled-reader\r\n\r\n")
    time.sleep(STALL)
    s.settimeout(5)
    got, how = b"", "timeout: still open"
    try:
        while True:
            b = s.recv(65536)
            if not b:
                how = "eof"
                break
            got += b
    except (ConnectionResetError, ssl.SSLError):
        how = "reset"
    except socket.timeout:
        pass
    head, _, body = got.partition(b"\r\n\r\n")
    return {"status": rawhttp.status_line(head), "length": rawhttp.content_length(head), "body": len(body),
            "how": how}


BLOB = sys.argv[5] if len(sys.argv) > 5 else None
STALL = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
results = {}


def run(name, fn):
    try:
        results[name] = fn()
    except Exception as e:  # noqa: BLE001
        results[name] = {"error": repr(e)}


threads = [threading.Thread(target=run, args=(f.__name__, f))
           for f in (half_head, trickle_head, idle, idle_then_half, idle_then_get)
           + ((stalled_reader,) if BLOB else ())]
for th in threads:
    th.start()
for th in threads:
    th.join()
print(json.dumps(results, sort_keys=True))
