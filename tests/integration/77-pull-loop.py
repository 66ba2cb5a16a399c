#!/usr/bin/python3
# 77-pull-loop.py STATE_DIR CA REPO:TAG [CLIENTS]: pulls in a loop until
# STATE_DIR/stop exists, from CLIENTS (default 4) threads, each on a fresh
# TLS connection to registry.test:443 per round: the manifest (GET and
# HEAD), then every blob it names (config and layers), each checked against
# its digest. Every 0.2 s (and at the end) STATE_DIR/stats.json is
# rewritten atomically with the counts:
#   rounds_ok     rounds that pulled everything and checked every digest
#   connections   TLS connections completed
#   refused       connect() refused (ECONNREFUSED): what must never happen
#   failed        any other failure: an error status, a digest mismatch, a
#                 reset, a timeout; the first few are kept in "errors"
# Timeouts are generous (90 s per operation): a connection the kernel
# queued while the proxy restarts, or a request the proxy holds while the
# registry restarts, must wait, not fail.
import hashlib
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time

state, ca, ref = sys.argv[1], sys.argv[2], sys.argv[3]
clients = int(sys.argv[4]) if len(sys.argv) > 4 else 4
repo, tag = ref.rsplit(":", 1)
ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

lock = threading.Lock()
stats = {"rounds_ok": 0, "connections": 0, "refused": 0, "failed": 0, "errors": []}


def count(key, error=None):
    with lock:
        stats[key] += 1
        if error and len(stats["errors"]) < 20:
            stats["errors"].append("%s %s" % (time.strftime("%H:%M:%S"), error))


def get(conn, method, path, accept=None):
    headers = {"Accept": accept} if accept else {}
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError("%s %s: %d %s" % (method, path, r.status, body[:200]))
    return r, body


def one_round(ctx):
    conn = http.client.HTTPSConnection("registry.test", 443, context=ctx, timeout=90)
    try:
        conn.connect()
        count("connections")
        _, body = get(conn, "GET", "/v2/%s/manifests/%s" % (repo, tag), ACCEPT)
        r, _ = get(conn, "HEAD", "/v2/%s/manifests/%s" % (repo, tag), ACCEPT)
        digest = r.getheader("Docker-Content-Digest")
        if digest != "sha256:" + hashlib.sha256(body).hexdigest():
            raise RuntimeError("manifest digest %s does not match its bytes" % digest)
        m = json.loads(body)
        for d in [m["config"]] + m["layers"]:
            _, blob = get(conn, "GET", "/v2/%s/blobs/%s" % (repo, d["digest"]))
            if "sha256:" + hashlib.sha256(blob).hexdigest() != d["digest"]:
                raise RuntimeError("blob %s: wrong bytes" % d["digest"])
        count("rounds_ok")
    except ConnectionRefusedError as e:
        count("refused", "refused: %s" % e)
    except Exception as e:  # noqa: BLE001 - every failure counts
        count("failed", "%s: %s" % (type(e).__name__, e))
    finally:
        conn.close()


def client():
    ctx = ssl.create_default_context(cafile=ca)
    while not os.path.exists(os.path.join(state, "stop")):
        one_round(ctx)


def write_stats():
    with lock:
        data = json.dumps(stats)
    tmp = os.path.join(state, "stats.json.tmp")
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, os.path.join(state, "stats.json"))


threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
for t in threads:
    t.start()
while any(t.is_alive() for t in threads):
    write_stats()
    time.sleep(0.2)
write_stats()
