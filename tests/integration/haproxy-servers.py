#!/usr/bin/python3
# haproxy-servers.py SOCKET: one line per server of every backend, from
# HAProxy's stats socket ("show stat"): "BACKEND SERVER STATUS CHECK", e.g.
# "pull a UP L7OK". Used by the balancer tests (81, 84) to wait for
# HAProxy's health checks.
import socket
import sys

s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
lines = data.decode().splitlines()
head = lines[0].lstrip("# ").split(",")
for line in lines[1:]:
    f = dict(zip(head, line.split(",")))
    if f.get("svname") not in (None, "", "FRONTEND", "BACKEND"):
        print(f["pxname"], f["svname"], f["status"], f["check_status"] or "-")
