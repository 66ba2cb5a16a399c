#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""scripts/bench-pull.py: a pull storm for scripts/bench.

    bench-pull.py HOST PORT CAFILE REPO TAG CLIENTS SOURCES [SLOW_S [FIRST]]

CLIENTS pulls of REPO:TAG start at once (a barrier), client i from
127.0.0.(FIRST + i % SOURCES) (FIRST: 2 unless given): the proxies' limits are per address, and skopeo
or podman cannot be told a source address. Each pull makes the requests
skopeo copy / podman pull (containers/image 5.23) make, the way they make
them: every request on a new TCP connection with a full TLS 1.3 handshake
(DisableKeepAlives, no session cache), GET /v2/, GET the manifest, GET
the config, then the layers, at most 6 at a time (its default parallel
downloads). Like containerd's ctr it does not retry: the first refused
request fails the pull (skopeo retries some errors, ctr none).

Prints one line of JSON: pulls ok and failed, their times (median, max,
in s), how many succeeded but took longer than SLOW_S ("slowed"), and what the failed requests got: "429", "503", ... (HTTP status)
or "reset", "eof", "timeout", "tls", "other" (no answer).
Bounded: 60 s per request, the whole run at most CLIENTS x 120 s.
"""

import concurrent.futures
import json
import multiprocessing
import socket
import ssl
import sys
import time

MEDIA = ("application/vnd.oci.image.manifest.v1+json, "
         "application/vnd.docker.distribution.manifest.v2+json")


def get(ctx, host, port, src, path, accept=None):
    """One request on a new connection: (status or reason, body or None)."""
    try:
        with socket.create_connection((host, port), timeout=60, source_address=(src, 0)) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                h = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                if accept:
                    h += f"Accept: {accept}\r\n"
                s.sendall((h + "\r\n").encode())
                keep = path.find("/manifests/") >= 0
                data, got = b"", 0
                while True:
                    b = s.recv(262144)
                    if not b:
                        break
                    if keep or len(data) < 64:
                        data += b if keep else b[:64]
                    got += len(b)
    except ConnectionResetError:
        return "reset", None
    except ssl.SSLError as e:
        return "eof" if "EOF" in str(e) or "UNEXPECTED_EOF" in str(e) else "tls", None
    except (socket.timeout, TimeoutError):
        return "timeout", None
    except OSError:
        return "other", None
    if not data:
        return "eof", None
    try:
        status = data.split(b" ", 2)[1].decode()
    except IndexError:
        return "other", None
    if status != "200":
        return status, None
    return "200", data.partition(b"\r\n\r\n")[2] if keep else b""


def pull(host, port, cafile, repo, tag, src, start, out):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    start.wait()
    t0 = time.monotonic()
    bad = []
    st, _ = get(ctx, host, port, src, "/v2/")
    if st == "200":
        st, body = get(ctx, host, port, src, f"/v2/{repo}/manifests/{tag}", MEDIA)
    if st != "200":
        out.put((False, time.monotonic() - t0, [st]))
        return
    m = json.loads(body)
    st, _ = get(ctx, host, port, src, f"/v2/{repo}/blobs/{m['config']['digest']}")
    if st != "200":
        bad.append(st)
    else:
        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            for st, _ in ex.map(lambda d: get(ctx, host, port, src, f"/v2/{repo}/blobs/{d}"),
                                [layer["digest"] for layer in m["layers"]]):
                if st != "200":
                    bad.append(st)
    out.put((not bad, time.monotonic() - t0, bad))


def main():
    host, port, cafile, repo, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    clients, sources = int(sys.argv[6]), int(sys.argv[7])
    slow = float(sys.argv[8]) if len(sys.argv) > 8 else 0
    first = int(sys.argv[9]) if len(sys.argv) > 9 else 2
    q = multiprocessing.Queue()
    start = multiprocessing.Barrier(clients + 1, timeout=120)
    procs = [multiprocessing.Process(target=pull, args=(host, port, cafile, repo, tag,
                                                        "127.0.0.%d" % (first + i % sources), start, q))
             for i in range(clients)]
    for p in procs:
        p.start()
    start.wait()  # every client is up: all start at once
    ok, times_ok, times_all, why = 0, [], [], {}
    for _ in procs:
        good, secs, bad = q.get(timeout=clients * 120)
        times_all.append(secs)
        if good:
            ok += 1
            times_ok.append(secs)
        for b in bad:
            why[b] = why.get(b, 0) + 1
    for p in procs:
        p.join(timeout=30)
    times_ok.sort()
    times_all.sort()
    print(json.dumps({
        "ok": ok, "failed": clients - ok,
        "median_s": round(times_ok[len(times_ok) // 2], 2) if times_ok else None,
        "max_s": round(times_all[-1], 2) if times_all else None,
        "refused": why,
        "slowed": sum(1 for t in times_ok if slow and t > slow),
    }, sort_keys=True))


if __name__ == "__main__":
    main()
