#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Push a multi-layer OCI image straight to a registry, for `make bench`.

Usage: bench-image.py REGISTRY_URL REPO TAG LAYERS MAX_MIB
  REGISTRY_URL  http://127.0.0.1:PORT (the bare registry, no TLS)
  LAYERS        number of layers (>= 1)
  MAX_MIB       size of the largest layer in MiB; the layers grow
                geometrically from 1 KiB to it (20 layers, 64 MiB: ~145 MiB)

Each layer is an uncompressed tar (application/vnd.oci.image.layer.v1.tar)
holding one file of random bytes, so that podman can unpack it and nothing
compresses it; nothing comes from the network. Prints one line:
    <layers> <total bytes of config and layers> <manifest digest>
Bounded: every request has a 300 s timeout.
"""

import hashlib
import http.client
import io
import json
import os
import sys
import tarfile
import urllib.parse


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, r.getheader("Location"), data


def push_blob(conn, base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    st, loc, body = request(conn, "POST", f"/v2/{repo}/blobs/uploads/")
    if st != 202 or not loc:
        raise SystemExit(f"bench-image.py: upload start: HTTP {st} {body[:200]!r}")
    u = urllib.parse.urlsplit(loc)
    path = u.path + "?" + (u.query + "&" if u.query else "") + "digest=" + digest
    st, _, body = request(conn, "PUT", path, data, {"Content-Type": "application/octet-stream",
                                                    "Content-Length": str(len(data))})
    if st != 201:
        raise SystemExit(f"bench-image.py: upload of {len(data)} bytes: HTTP {st} {body[:200]!r}")
    return digest


def layer(i, size):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo(f"layer{i:02d}.bin")
        info.size = size
        info.mtime = 0
        t.addfile(info, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


def main():
    url, repo, tag, n, max_mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    lo, hi = 1024, int(max_mib * (1 << 20))
    sizes = [hi] if n == 1 else [int(lo * (hi / lo) ** (i / (n - 1))) for i in range(n)]
    layers, diff_ids, total = [], [], 0
    for i, size in enumerate(sizes):
        data = layer(i, size)
        d = push_blob(conn, url, repo, data)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(data)})
        diff_ids.append(d)
        total += len(data)
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    cd = push_blob(conn, url, repo, config)
    total += len(config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(config)},
        "layers": layers,
    }).encode()
    st, _, body = request(conn, "PUT", f"/v2/{repo}/manifests/{tag}", manifest,
                          {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    if st != 201:
        raise SystemExit(f"bench-image.py: manifest: HTTP {st} {body[:200]!r}")
    print(n, total, "sha256:" + hashlib.sha256(manifest).hexdigest())


if __name__ == "__main__":
    main()
