#!/usr/bin/python3
# 69-socket-capture.py SOCKET CAPTURE: what the registry reads, from its
# own side. Takes over the registry's unix socket path: binds a socket next
# to it with the same owner, group and mode, renames the registry's socket
# to SOCKET.real (the registry keeps listening on it) and its own into
# SOCKET in one rename, so that whoever connects to SOCKET (the proxy's
# workers, the supervisor's probes) reaches this relay, which connects on
# to SOCKET.real and appends every byte sent towards the registry to
# CAPTURE (its replies pass untouched). CAPTURE.ready appears once SOCKET
# is taken over. On SIGTERM it puts the registry's socket back at SOCKET,
# unless the registry was restarted meanwhile and made a new one there.
import os
import signal
import socket
import stat
import sys
import threading

path, capture = sys.argv[1], sys.argv[2]
real, mine = path + ".real", path + ".capture"
lock = threading.Lock()
out = open(capture, "ab", buffering=0)

st = os.stat(path)
if not stat.S_ISSOCK(st.st_mode):
    sys.exit("%s is not a socket" % path)
try:
    os.unlink(mine)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(mine)
os.chown(mine, st.st_uid, st.st_gid)
os.chmod(mine, stat.S_IMODE(st.st_mode))
srv.listen(128)
ours = os.stat(mine).st_ino
os.rename(path, real)
os.rename(mine, path)


def restore(*_):
    # Only our own socket is replaced: a restarted registry's new one stays.
    try:
        if os.stat(path).st_ino == ours:
            os.rename(real, path)
    finally:
        os._exit(0)


signal.signal(signal.SIGTERM, restore)
open(capture + ".ready", "w").close()


def pump(src, dst, record):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if record:
                with lock:
                    out.write(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def relay(client):
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(real)
    except OSError:
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=pump, args=(upstream, client, False), daemon=True)
    back.start()
    pump(client, upstream, True)
    back.join()
    client.close()
    upstream.close()


while True:
    conn, _ = srv.accept()
    threading.Thread(target=relay, args=(conn,), daemon=True).start()
