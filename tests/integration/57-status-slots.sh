#!/usr/bin/env bash
# The status listener of `regvisor run` (127.0.0.1:9443) under a local user
# who holds idle connections to it, as any unprivileged user can:
#   - `nobody` keeps 100 connections open (sends nothing, reopens each one
#     the server closes): /readyz still answers 200, every time, to root on
#     the same address (127.0.0.1) and from another one (127.0.0.2);
#   - the server itself holds about 8 of them (its accepted sockets,
#     counted with ss inside the host; 64 before): the bound per local
#     user, whom the supervisor tells apart on 127.0.0.1 by the owner of
#     the peer socket;
#   - a client that sends half a request line is dropped after the 2 s
#     header timeout, not the 5 s answer timeout.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
write_config
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 60
provision >/dev/null || fail "provision failed: $OUT"
install_run_unit

step "start the full stack (regvisor.service)"
th systemctl start regvisor.service || fail "regvisor.service did not start"
readyz() { # readyz [CURL ARGS]: the status code of GET /readyz
	th curl -s -m 3 -o /dev/null -w '%{http_code}' "$@" http://127.0.0.1:9443/readyz || true
}
ready() { [[ $(readyz) == 200 ]]; }
wait_until 30 ready || fail "/readyz is not 200 before the test: $(readyz)"

step "nobody holds 100 idle connections to the status listener"
th install -m 0755 "$REPO/tests/integration/57-status-hold.py" /usr/local/bin/status-hold
th systemd-run --unit=status-hold --uid=nobody --gid=nogroup /usr/bin/python3 /usr/local/bin/status-hold \
	127.0.0.1 9443 100 120 /var/tmp/status-hold.out >/dev/null
on_exit th systemctl stop status-hold.service
on_failure th ss -tne state established '( sport = :9443 )'
on_failure th ss -ltn
# The connections from 127.0.0.1 that the supervisor has accepted (its
# side: local port 9443; one still in the accept queue has no inode yet,
# "ino:0"). With a state filter ss prints Recv-Q Send-Q Local Peer ....
server_sockets() {
	th ss -Htne state established '( sport = :9443 )' | awk '$4 ~ /^127\.0\.0\.1:/ && !/ ino:0 /' | wc -l
}
holding() { (($(server_sockets) >= 8)); }
wait_until 10 holding || fail "the holder never got 8 connections in: $(server_sockets)"

step "/readyz answers while they are held: 10 x from 127.0.0.1, 10 x from 127.0.0.2"
codes=""
max=0
for _ in $(seq 10); do
	n=$(server_sockets)
	((n > max)) && max=$n
	codes+="$(readyz) $(readyz --interface 127.0.0.2) "
done
codes=$(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | xargs)
th systemctl is-active --quiet status-hold.service || fail "the holder stopped before the end"
step "answers: $codes; the server held at most $max connections from 127.0.0.1"
assert_eq "$codes" "20 200" "/readyz while nobody holds connections"
((max >= 8)) || fail "the holder had only $max connections accepted: it did not fill its share"
# 8 of nobody's and root's one being answered; ss walks the table while
# the server replaces nobody's connections hundreds of times a second, so a
# snapshot can list a closed one and its successor: a margin, far below
# the 64 that one user could hold before.
((max <= 16)) || fail "the server holds $max connections from 127.0.0.1 (expected 8 of nobody's, +1 being answered)"

step "half a request line: dropped after the header timeout (2 s)"
secs=$(th /usr/bin/python3 -c '
import socket, time
s = socket.create_connection(("127.0.0.1", 9443))
s.sendall(b"GET /readyz HTTP/1.1\r\n")
t = time.monotonic()
s.settimeout(10)
try:
    s.recv(1)
except OSError:
    pass
print("%.1f" % (time.monotonic() - t))')
step "closed after $secs s"
awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s <= 3.5) }' || fail "half a request was dropped after $secs s, expected about 2 s"

th systemctl stop status-hold.service
true
