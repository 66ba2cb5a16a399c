#!/usr/bin/python3
"""Holds N idle connections to HOST:PORT for SECONDS, as a local user
without any privilege could: it sends nothing, and every connection the
server closes is opened again at once (checked every 20 ms). At the end it
writes "opened=A closed_by_server=B" to OUT."""
import selectors
import socket
import sys
import time

host, port, n, seconds, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
sel = selectors.DefaultSelector()
opened = closed = 0


def top_up():
    global opened
    while len(sel.get_map()) < n:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect((host, port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_READ)
        opened += 1


end = time.monotonic() + seconds
while time.monotonic() < end:
    top_up()
    for key, _ in sel.select(timeout=0.02):
        try:
            data = key.fileobj.recv(1)
        except OSError:
            data = b""
        if not data:
            closed += 1
            sel.unregister(key.fileobj)
            key.fileobj.close()
with open(out, "w") as f:
    f.write(f"opened={opened} closed_by_server={closed}\n")
