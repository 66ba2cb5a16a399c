#!/usr/bin/env python3
# 50-proxy-oci.py DIR [LAYERS]: writes a small OCI image layout with LAYERS
# (default 3) distinct layers to DIR, tagged "1", for pushing through the
# proxy with skopeo. No internet and no image build needed.
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


layers, diff_ids = [], []
for i in range(n):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        payload = os.urandom(256 * 1024 * (i + 1))  # incompressible: real bytes through the proxy
        ti = tarfile.TarInfo("layer%d/data.bin" % i)
        ti.size = len(payload)
        ti.mtime = 0
        t.addfile(ti, io.BytesIO(payload))
    diff_ids.append("sha256:" + hashlib.sha256(raw.getvalue()).hexdigest())
    digest, size = put(gzip.compress(raw.getvalue(), mtime=0))
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": size})

config = {
    "architecture": "amd64",
    "os": "linux",
    "config": {"Cmd": ["/bin/true"]},
    "rootfs": {"type": "layers", "diff_ids": diff_ids},
}
cdigest, csize = put(json.dumps(config).encode())
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": csize},
    "layers": layers,
}
mdigest, msize = put(json.dumps(manifest).encode())
index = {
    "schemaVersion": 2,
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdigest,
        "size": msize,
        "annotations": {"org.opencontainers.image.ref.name": "1"},
    }],
}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
print(mdigest)
