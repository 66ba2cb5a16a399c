#!/usr/bin/env bash
# The proxy's trust boundary, attacked through the real proxy in front of the
# real registry (issue 8, items 1-3), and proven from the registry's side:
#   - a TLS SNI carrying a second request (OpenSSL accepts CR and LF in it)
#     neither fetches the catalog on 443 nor writes a blob through it: the
#     blob is absent when asked on the registry's own socket, and the
#     registry's log has no catalog request and no POST;
#   - forged X-Forwarded-For, X-Real-IP, Forwarded and X-Forwarded-Host on
#     both ports never reach the registry's log: it logs the peer;
#   - 443 reaches no upload session (a GET there resumes, and with a stale
#     _state cancels, an upload) and takes no request body: the registry's
#     log shows neither;
#   - an upstream that answers one request twice: the second answer is never
#     handed to the client's next request (the connection is not reused),
#     and the proxy opens a new upstream connection instead; nor is one
#     that answered a request before it had read the request's body (its
#     unread bytes could be taken for the next client's request).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

UNIT=regvisor-proxy-boundary
ATTACK=(python3 "$REPO/tests/integration/56-proxy-boundary.py")

th_boot
write_config
on_failure journalctl -u "$UNIT" --no-pager -n 60

step "provision, the registry and the proxy"
stack_up
th systemd-run --unit="$UNIT" "$REGVISOR" proxy --config "$CONF" >/dev/null
proxy_up() {
	th curl -sf -m 2 -o /dev/null --cacert "$CA" https://registry.test/v2/
}
wait_until 20 proxy_up || fail "the proxy does not answer on 443"
registry_log() {
	th journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=regvisor-registry.service
}
registry_logged() {
	registry_log | grep -q "$1"
}

step "443: requests smuggled in the TLS SNI"
out=$(th "${ATTACK[@]}" sni 127.0.0.1 "$CA" 127.0.0.1) || {
	printf '%s\n' "$out" | sed 's/^/#   /'
	fail "an SNI attack got an answer it must not"
}
printf '%s\n' "$out" | sed 's/^/#   /'
digest=$(printf '%s\n' "$out" | sed -n 's/^digest //p')
# The registry's side: the blob the smuggled POST would have written.
code=$(th curl -s -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -I \
	"http://localhost/v2/boundary/blobs/$digest")
assert_eq "$code" 404 "the smuggled blob on the registry's own socket"
# A marker request after the attacks, so the log is known to be flushed.
th curl -s -m 5 -o /dev/null --cacert "$CA" https://registry.test/v2/sni-flush-marker/manifests/x
wait_until 20 registry_logged sni-flush-marker || fail "the registry's log does not show proxied requests"
registry_logged _catalog && fail "the registry saw a catalog request"
registry_logged 'POST' && fail "the registry saw a POST through the pull port"
registry_logged 'boundary/blobs/uploads' && fail "the registry saw the smuggled upload"

step "forged forwarding fields on 443 and 4443 never reach the registry's log"
out=$(th "${ATTACK[@]}" forwarded 127.0.0.1 "$CA" 443 xff-pull-marker) || fail "443: $out"
out=$(th "${ATTACK[@]}" forwarded 127.0.0.1 "$CA" 4443 xff-push-marker "$CI_CERT" "$CI_KEY") || fail "4443: $out"
wait_until 20 registry_logged xff-push-marker || fail "the registry did not log the push port's request"
registry_logged xff-pull-marker || fail "the registry did not log the pull port's request"
lines=$(registry_log | grep -E 'xff-(pull|push)-marker')
printf '%s\n' "$lines" | head -n 2 | cut -c1-300 | sed 's/^/#   /'
if grep -qE '203\.0\.113\.|evil\.example' <<<"$lines"; then
	fail "the registry logged a client-chosen address or host"
fi
assert_contains "$lines" 'remoteaddr=127.0.0.1'

step "443 reaches no upload session and takes no body"
out=$(th "${ATTACK[@]}" upload 127.0.0.1 "$CA" "$CI_CERT" "$CI_KEY") || {
	printf '%s\n' "$out" | sed 's/^/#   /'
	fail "the pull port reached an upload session or took a body"
}
uuid=$(printf '%s\n' "$out" | sed -n 's/^upload //p')
[[ -n $uuid ]] || fail "no upload session was started"
th curl -s -m 5 -o /dev/null --cacert "$CA" https://registry.test/v2/upload-flush-marker/manifests/x
wait_until 20 registry_logged upload-flush-marker || fail "the registry's log does not show proxied requests"
registry_log | grep "$uuid" | grep -qE 'method=(GET|HEAD)' && fail "the registry saw a GET or HEAD on the upload session"
registry_logged body-marker && fail "the registry saw the body of a GET on 443"

step "an upstream that answers twice: the extra answer is never handed on"
th systemctl stop "$UNIT"
EVIL=/run/rvtest/evil.sock COUNT=/run/rvtest/evil.count
th mkdir -p /run/rvtest
th chmod 0755 /run/rvtest
th systemd-run --unit=rvtest-evil python3 "$REPO/tests/integration/56-evil-upstream.py" "$EVIL" "$COUNT" >/dev/null
wait_until 10 th test -S "$EVIL" || fail "the test upstream did not start"
th /bin/sh -c "sed 's#^\[registry\]#[registry]\nlisten = unix:$EVIL#' $CONF > /etc/regvisor/evil.conf"
th systemd-run --unit="$UNIT-evil" "$REGVISOR" proxy --config /etc/regvisor/evil.conf >/dev/null
wait_until 20 proxy_up || fail "the proxy does not answer on 443"
before=$(th cat "$COUNT")
out=$(th "${ATTACK[@]}" leftover 127.0.0.1 "$CA") || {
	printf '%s\n' "$out" | sed 's/^/#   /'
	fail "a response nobody asked for was handed to the next request"
}
after=$(th cat "$COUNT")
assert_eq "$((after - before))" 2 "upstream connections for two requests (no reuse after leftover bytes)"

step "an upstream that answers a push before reading its body: that connection is never reused"
th systemctl stop "$UNIT-evil" rvtest-evil
COUNT=/run/rvtest/early.count
th rm -f "$COUNT"
th systemd-run --unit=rvtest-early python3 "$REPO/tests/integration/56-evil-upstream.py" "$EVIL" "$COUNT" early >/dev/null
wait_until 10 th test -S "$EVIL" || fail "the early upstream did not start"
# One worker: the next request finds that worker's idle connections.
th /bin/sh -c "printf '[proxy]\nworkers = 1\n' >> /etc/regvisor/evil.conf"
th systemd-run --unit="$UNIT-early" "$REGVISOR" proxy --config /etc/regvisor/evil.conf >/dev/null
wait_until 20 proxy_up || fail "the proxy does not answer on 443"
before=$(th cat "$COUNT")  # proxy_up's own requests
# 8 MiB: the answer's head comes while the proxy is still sending the body.
th /bin/sh -c 'head -c 8388608 /dev/zero > /var/tmp/early-body'
code=$(th curl -s -m 30 --cacert "$CA" "${MTLS[@]}" -o /dev/null -w '%{http_code}' -X PUT -H 'Expect:' \
	-H 'Content-Type: application/octet-stream' --data-binary @/var/tmp/early-body \
	https://registry.test:4443/v2/test/early/blobs/uploads/early?digest=sha256:0)
assert_eq "$code" 400 "the early answer to the push"
th curl -sf -m 10 --cacert "$CA" -o /dev/null https://registry.test/v2/ || fail "GET /v2/ after the early answer"
after=$(th cat "$COUNT")
# The push may take proxy_up's idle connection; the GET after it must not
# take the push's: one new connection.
assert_eq "$((after - before))" 1 "new upstream connections for the GET after a push answered early (no reuse)"
