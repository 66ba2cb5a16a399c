#!/usr/bin/env bash
# The proxy's timeouts and upstream failures, measured over real TLS against
# the real registry, with header_timeout = 3s, idle_timeout = 5s,
# read_timeout = 3s:
#   - header timeout: half a request head sent at once, or a head trickled
#     one byte every 0.5 s, is closed (without a word) header_timeout after
#     connect (the proxy sweeps once a second: +1 s slack, +1 s for load);
#     half a head sent right after a keep-alive response is closed
#     header_timeout after it, not idle_timeout;
#   - idle timeout: a keep-alive connection idle after a response is closed
#     idle_timeout after it; one idle for 4 s (more than header_timeout)
#     still serves a second request;
#   - a client that stops reading a 16 MiB blob is dropped once nothing moved
#     for read_timeout/idle_timeout (access log: its duration), not held;
#   - an upstream that hangs (the registry process SIGSTOPped) gives 504
#     after read_timeout, for GET and HEAD;
#   - an upstream that is down (the registry's user unit stopped: no socket;
#     then a stale socket nobody listens on) gives 503 with Retry-After at
#     once, on both ports (upstream_hold = 0 here: 77-restarts tests the
#     hold);
#   - those proxy-made errors are registry-style JSON
#     ({"errors":[{"code":"UNAVAILABLE",...}]}) with Content-Type JSON,
#     Docker-Distribution-Api-Version and HSTS; the access log has them; the
#     proxy serves again once the registry is back, without a restart.
# The proxy runs standalone (`regvisor proxy` under systemd-run, as in
# 50-proxy.sh): under `regvisor run` the supervisor would restart the hung
# or stopped registry (its job, 70-run.sh), racing these measurements.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

UNIT=regvisor-proxy-timeouts
CURL=(curl -s -m 20 --cacert "$CA")
HEADER=3 IDLE=5 READ=3

th_boot
write_config "$(printf '[proxy]\nheader_timeout = %ss\nidle_timeout = %ss\nread_timeout = %ss\nupstream_hold = 0' $HEADER $IDLE $READ)"
on_failure th journalctl -u "$UNIT" --no-pager -n 60
on_failure th journalctl --no-pager -n 30 _SYSTEMD_USER_UNIT=regvisor-registry.service

step "provision, start the registry and the proxy"
standalone_proxy "$UNIT"

# between LOW HIGH VALUE: LOW <= VALUE <= HIGH (decimals).
between() {
	python3 -c 'import sys; lo, hi, v = map(float, sys.argv[1:]); sys.exit(not lo <= v <= hi)' "$@"
}
# near T VALUE: VALUE (seconds) is T - 0.1 .. T + 2.0: a deadline of T s
# checked by a sweep once a second, plus slack for a loaded machine.
near() {
	python3 -c 'import sys; t, v = map(float, sys.argv[1:]); sys.exit(not t - 0.1 <= v <= t + 2.0)' "$@"
}
# access_ms ERE: the duration (ms=) of the last access log line matching ERE.
access_ms() {
	th journalctl --no-pager -u "$UNIT" REGVISOR_EVENT=access -o cat | grep -E -- "$1" | tail -n 1 |
		sed -n 's/.* ms=\([0-9]*\)$/\1/p'
}

step "a 16 MiB blob in the registry (through its socket)"
th sh -c 'head -c 16777216 /dev/urandom > /var/tmp/big'
digest=$(registry_blob test/big /var/tmp/big)
BLOB=/v2/test/big/blobs/$digest

step "client timeouts (55-timeouts.py: all scenarios at once)"
out=$(th python3 "$REPO/tests/integration/55-timeouts.py" 127.0.0.1 443 "$CA" 4 "$BLOB" $((IDLE + 2))) ||
	fail "55-timeouts.py failed: $out"
step "$out"
j() {
	python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v:=v[k] for k in sys.argv[2].split(".")]; print(v)' "$out" "$1"
}
for s in half_head trickle_head idle_then_half; do
	assert_eq "$(j $s.how)" eof "$s: how the connection ended"
	assert_eq "$(j $s.response)" "" "$s: the proxy's answer (a timeout closes without one)"
	near $HEADER "$(j $s.closed_after)" ||
		fail "$s: closed after $(j $s.closed_after) s; header_timeout is $HEADER s"
done
# The trickled head: at 2 bytes a second the deadline was not extended.
(($(j trickle_head.sent) <= 2 * HEADER + 4)) || fail "trickle_head: sent $(j trickle_head.sent) bytes"
assert_eq "$(j idle.status1)" "HTTP/1.1 200 OK" "idle: first response"
assert_eq "$(j idle.how)" eof "idle: how the connection ended"
near $IDLE "$(j idle.closed_after)" ||
	fail "idle keep-alive connection closed after $(j idle.closed_after) s; idle_timeout is $IDLE s"
assert_eq "$(j idle_then_get.status2)" "HTTP/1.1 200 OK" "second request after 4 s idle"

step "a client that stops reading the 16 MiB blob is dropped"
assert_eq "$(j stalled_reader.status)" "HTTP/1.1 200 OK" "stalled reader: status"
assert_eq "$(j stalled_reader.length)" 16777216 "stalled reader: Content-Length"
assert_eq "$(j stalled_reader.how)" eof "stalled reader: how the connection ended"
(($(j stalled_reader.body) < 16777216)) || fail "the stalled reader got the whole blob: not stalled"
ms=$(access_ms "method=GET path=$BLOB status=200 ")
[[ -n $ms ]] || fail "no access log line for the stalled reader"
step "stalled reader dropped after $ms ms, $(j stalled_reader.body) of 16777216 bytes sent"
between $((READ * 1000 - 100)) $((IDLE * 1000 + 2000)) "$ms" ||
	fail "stalled reader dropped after $ms ms; expected read_timeout..idle_timeout (+ sweep)"

# check_error STATUS HEADERS_AND_BODY WHAT: a proxy-made registry-style error.
check_error() {
	local status=$1 resp=$2 what=$3 body
	assert_contains "$resp" "HTTP/1.1 $status " "$what: status line"
	assert_contains "$resp" "Docker-Distribution-Api-Version: registry/2.0" "$what: headers"
	assert_contains "$resp" "Strict-Transport-Security: max-age=31536000; includeSubDomains" "$what: headers"
	assert_contains "$resp" "Content-Type: application/json" "$what: headers"
	body=${resp#*$'\r\n\r\n'}
	body=${body%$'\n'*} # curl -w's line
	python3 -c 'import json,sys; e=json.loads(sys.argv[1])["errors"][0]; sys.exit(not (e["code"] == "UNAVAILABLE" and e["message"]))' \
		"$body" || fail "$what: not a registry-style JSON error: $body"
}

step "an upstream that hangs (registry SIGSTOPped): 504 after read_timeout"
rpid=$(svc_podman inspect --format '{{.State.Pid}}' regvisor-registry)
[[ $rpid =~ ^[0-9]+$ && $rpid -gt 1 ]] || fail "no registry pid: $rpid"
th kill -STOP "$rpid"
on_exit th sh -c "kill -CONT $rpid 2>/dev/null || true"
resp=$(th "${CURL[@]}" -D - -w '\n%{time_total}' https://registry.test/v2/hang-marker/manifests/1)
t=${resp##*$'\n'}
check_error 504 "$resp" "GET with the registry hung"
near $READ "$t" || fail "504 after $t s; read_timeout is $READ s"
step "504 after $t s"
resp=$(th "${CURL[@]}" -I -w '\n%{time_total}' https://registry.test/v2/hang-marker/manifests/2)
assert_contains "$resp" "HTTP/1.1 504 " "HEAD with the registry hung"
assert_contains "$resp" "Docker-Distribution-Api-Version: registry/2.0" "HEAD 504 headers"
resp=$(th "${CURL[@]}" "${MTLS[@]}" -D - -w '\n%{time_total}' https://registry.test:4443/v2/hang-marker/manifests/3)
check_error 504 "$resp" "GET on 4443 with the registry hung"
th journalctl --no-pager -u "$UNIT" REGVISOR_EVENT=access -o cat | grep -q 'path=/v2/hang-marker/manifests/1 status=504 ' ||
	fail "no access log line with status=504"
th kill -CONT "$rpid"
wait_until 10 proxy_up || fail "the proxy does not serve after the registry resumed"

step "an upstream that is down (registry unit stopped): 503 at once, on both ports"
user_systemctl ci-svc stop regvisor-registry.service
th test -e "$SOCK" && fail "the registry's socket is still there after stopping it"
resp=$(th "${CURL[@]}" -D - -w '\n%{time_total}' https://registry.test/v2/down-marker/manifests/1)
check_error 503 "$resp" "GET with the registry down"
assert_contains "$resp" "Retry-After: 5" "503 with the registry down"
between 0 1.5 "${resp##*$'\n'}" || fail "503 took ${resp##*$'\n'} s"
resp=$(th "${CURL[@]}" "${MTLS[@]}" -D - -w '\n%{time_total}' https://registry.test:4443/v2/down-marker/manifests/2)
check_error 503 "$resp" "GET on 4443 with the registry down"
th journalctl --no-pager -u "$UNIT" REGVISOR_EVENT=access -o cat | grep -q 'path=/v2/down-marker/manifests/1 status=503 ' ||
	fail "no access log line with status=503"

step "a stale socket (nobody listening): 503"
th python3 -c 'import os, socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close(); os.chmod(sys.argv[1], 0o666)' "$SOCK"
resp=$(th "${CURL[@]}" -D - -w '\n%{time_total}' https://registry.test/v2/stale-marker/manifests/1)
check_error 503 "$resp" "GET with a stale registry socket"
th rm -f "$SOCK"

step "the registry back: the same proxy serves again"
user_systemctl ci-svc start regvisor-registry.service || fail "registry restart failed"
wait_until 60 registry_answers || fail "registry does not answer after the restart"
wait_until 10 proxy_up || fail "the proxy does not serve after the registry came back"
got=$(th "${CURL[@]}" "https://registry.test$BLOB" | sha256sum | cut -d' ' -f1)
assert_eq "sha256:$got" "$digest" "blob through the proxy after the outage"
th systemctl is-active --quiet "$UNIT" || fail "the proxy unit is not active"
true
