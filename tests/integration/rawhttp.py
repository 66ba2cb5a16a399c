# rawhttp.py: reading HTTP/1.1 responses off a raw (TLS) socket, for the
# test scripts that send requests byte by byte instead of through a client
# library: 55-timeouts.py, 56-proxy-boundary.py, 58-keepalive.py,
# 67-flood.py, 59-reload.sh's in-flight upload and 60-health.sh's stand-in
# proxy; and the registry stand-in 56-evil-upstream.py (content_length).
# Imported from the scripts' own folder; a script run from elsewhere
# (python3 -) gets it through PYTHONPATH.


def recv_until(s, marker):
    """Reads from s until marker is in what was read, and returns all of it:
    without the marker when the connection ended first."""
    buf = b""
    while marker not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def content_length(head):
    """The Content-Length of a message head (bytes, its first line the
    request or status line), or None without one."""
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    return length


def read_response(s, head_request=False):
    """One response from s: (head, body, complete). head is b"" when the
    connection ended before a whole head (body then holds what came); body
    is the Content-Length bytes that follow it (none after a HEAD request);
    complete is False when the connection ended before all of them."""
    buf = recv_until(s, b"\r\n\r\n")
    if b"\r\n\r\n" not in buf:
        return b"", buf, False
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0 if head_request else content_length(head) or 0
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            return head, body, False
        body += chunk
    return head, body, True


def status_line(head):
    """The first line of a response head, as text."""
    return head.split(b"\r\n", 1)[0].decode("latin-1")
