#!/usr/bin/env bash
# `systemctl reload regvisor` applies what it says, on the real stack
# (regvisor run as the system unit, its proxy, the registry in the service
# user's rootless podman):
#   - [push] allow_cidrs narrowed to 198.18.0.0/15 (an address of this host
#     is added on lo; loopback is outside): after the reload a push from
#     127.0.0.1 is refused and the registry's own log never sees it, a push
#     from 198.18.0.1 gets through and is logged; an upload that was already
#     streaming from 127.0.0.1 before the reload completes (201) on its
#     draining worker;
#   - [pull] rate/burst lowered: 429 right after the reload (none before);
#   - regvisor health with allow_cidrs excluding loopback: the push checks
#     run from the admitted local address and are OK; /readyz says 200;
#   - a configuration that does not parse: `systemctl reload` exits non-zero,
#     `systemctl status` shows FILE:LINE, the running configuration stays
#     (the certificates and the CRL are loaded again all the same);
#   - a change of a restart-only key ([push] listen, [proxy] workers): the
#     reload fails naming them, nothing changes;
#   - allow_cidrs admitting no address of this host: health says the push
#     port refuses this host before TLS and why it cannot check TLS (OK);
#     /readyz agrees (200);
#   - a good configuration again: the reload succeeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
CA=$C/ca/ca.crt
CERT=$C/clients/reloader.crt
KEY=$C/private/clients/reloader.key
INSIDE=198.18.0.1
CURL=(curl -s -m 10 --cacert "$CA")

th_boot
# set_config EXTRA: the test's configuration plus EXTRA (INI lines).
set_config() {
	write_config "$(printf '[supervise]\nprobe_interval = 300ms\n%s' "$1")"
}
set_config ""
th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'
th ip addr add "$INSIDE/32" dev lo || fail "cannot add $INSIDE to lo"
on_failure th journalctl -u regvisor --no-pager -n 80
on_failure th journalctl --no-pager -n 30 _SYSTEMD_USER_UNIT=regvisor-registry.service
provision >/dev/null || fail "provision failed: $OUT"
th "$REGVISOR" pki --config "$CONF" issue-client reloader >/dev/null || fail "pki issue-client failed"
install_run_unit
th systemctl start regvisor.service || fail "regvisor.service did not start"

# push_status FROM MARKER: POST a blob upload to test/MARKER on 4443 with the
# client certificate, connecting to FROM (127.0.0.1 or $INSIDE); prints the
# HTTP status (000: the connection was refused).
push_status() {
	th "${CURL[@]}" --resolve "registry.test:4443:$1" --cert "$CERT" --key "$KEY" -o /dev/null \
		-w '%{http_code}' -X POST "https://registry.test:4443/v2/test/$2/blobs/uploads/" || true
}
registry_logged() {
	th journalctl --no-pager _SYSTEMD_USER_UNIT=regvisor-registry.service | grep -q -- "$1"
}
# pull_codes: 6 GET /v2/ on 443 in a row, inside one guest command (a `th`
# round trip takes longer than the lowered rate's refill).
pull_codes() {
	th sh -c 'for i in 1 2 3 4 5 6; do "$@" -o /dev/null -w "%{http_code} " https://registry.test/v2/; done' \
		_ "${CURL[@]}"
}
reload() {
	RRC=0
	ROUT=$(th systemctl reload regvisor.service 2>&1) || RRC=$?
	printf '%s\n' "$ROUT" | sed 's/^/#   /'
}
# reload_refused WHAT: the reload must fail; $st is then `systemctl status`.
reload_refused() {
	reload
	[[ $RRC -ne 0 ]] || fail "systemctl reload succeeded with $1"
	st=$(th systemctl status regvisor.service --no-pager -n 20 2>&1 || true)
	printf '%s\n' "$st" | sed 's/^/#   /'
}
readyz() {
	th curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:9443/readyz
}
# health: the checks that touch the proxy and the registry (podman-state,
# seconds of podman on a busy machine, is 72-health-stack.sh's business).
health() {
	HRC=0
	HOUT=$(th "$REGVISOR" health --config "$CONF" --check registry-http --check proxy-pull-tls \
		--check proxy-push-tls --check proxy-pull-refuses-write --check proxy-push-requires-cert 2>&1) || HRC=$?
	printf '%s\n' "$HOUT" | sed 's/^/#   /'
}

step "before: pushes from 127.0.0.1 get through, 6 quick pulls are all 200"
assert_eq "$(push_status 127.0.0.1 before-7c1d)" 202 "push from 127.0.0.1"
wait_until 20 registry_logged before-7c1d || fail "the registry's log does not show proxied requests"
codes=$(pull_codes)
[[ $codes == *429* ]] && fail "429 before the rate was lowered: $codes"

step "an upload from 127.0.0.1 starts streaming before the reload"
location=$(th "${CURL[@]}" --cert "$CERT" --key "$KEY" -X POST -D - -o /dev/null \
	https://registry.test:4443/v2/test/inflight/blobs/uploads/ | tr -d '\r' | sed -n 's/^Location: //Ip')
[[ -n $location ]] || fail "no upload location"
th rm -f /run/inflight.half /run/inflight.go /run/inflight.result
# Half the body now, the rest once /run/inflight.go appears: the request is
# in flight on an old-generation worker across the reload.
th env PYTHONPATH="$REPO/tests/integration" /usr/bin/python3 - "$location" "$CA" "$CERT" "$KEY" <<-'EOF' &
	import hashlib, os, socket, ssl, sys, time
	from rawhttp import recv_until
	loc, ca, cert, key = sys.argv[1:5]
	body = os.urandom(1 << 20)
	digest = "sha256:" + hashlib.sha256(body).hexdigest()
	sep = "&" if "?" in loc else "?"
	path = loc.split("registry.test:4443", 1)[-1] + sep + "digest=" + digest
	ctx = ssl.create_default_context(cafile=ca)
	ctx.load_cert_chain(cert, key)
	s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 4443), timeout=60), server_hostname="registry.test")
	s.sendall(("PUT %s HTTP/1.1\r\nHost: registry.test:4443\r\nContent-Type: application/octet-stream\r\n"
	           "Content-Length: %d\r\n\r\n" % (path, len(body))).encode())
	s.sendall(body[: len(body) // 2])
	open("/run/inflight.half", "w").close()
	deadline = time.time() + 60
	while not os.path.exists("/run/inflight.go") and time.time() < deadline:
	    time.sleep(0.05)
	s.sendall(body[len(body) // 2 :])
	head = recv_until(s, b"\r\n")
	with open("/run/inflight.result", "w") as f:
	    f.write(head.split(b"\r\n")[0].decode(errors="replace") + "\n" + digest + "\n")
EOF
inflight=$!
on_exit kill "$inflight"
wait_until 20 th test -e /run/inflight.half || fail "the upload did not start"

step "reload with [push] allow_cidrs = 198.18.0.0/15 and [pull] rate = 1r/s, burst = 1"
set_config "$(printf '[push]\nallow_cidrs = 198.18.0.0/15\n[pull]\nrate = 1r/s\nburst = 1')"
reload
assert_eq "$RRC" 0 "systemctl reload status"

step "a push from 127.0.0.1 is refused and never reaches the registry"
assert_eq "$(push_status 127.0.0.1 outside-7c1d)" 000 "push from 127.0.0.1 after the reload"
refused() { th journalctl -u regvisor --no-pager -o cat REGVISOR_EVENT=refused | grep -q "127.0.0.1 refused: not in allow_cidrs"; }
wait_until 10 refused || fail "the proxy did not log the refusal"

step "a push from $INSIDE gets through and is logged by the registry"
assert_eq "$(push_status "$INSIDE" inside-7c1d)" 202 "push from $INSIDE"
wait_until 20 registry_logged inside-7c1d || fail "the registry did not log the push from $INSIDE"
registry_logged outside-7c1d && fail "the registry logged the push from 127.0.0.1 made after the reload"

step "the upload that was streaming before the reload completes"
th touch /run/inflight.go
wait_until 30 th test -s /run/inflight.result || fail "the in-flight upload never got an answer"
result=$(th cat /run/inflight.result)
assert_contains "$(head -n 1 <<<"$result")" " 201 " "in-flight upload across the reload"
got=$(th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/test/inflight/blobs/$(tail -n 1 <<<"$result")" |
	sha256sum | cut -d' ' -f1)
assert_eq "sha256:$got" "$(tail -n 1 <<<"$result")" "the in-flight blob in the registry"

step "health with allow_cidrs excluding loopback: the push checks run from $INSIDE, OK; /readyz 200"
health
assert_eq "$HRC" 0 "health exit status"
assert_contains "$(grep proxy-push-tls <<<"$HOUT")" "OK"
assert_contains "$(grep proxy-push-tls <<<"$HOUT")" "$INSIDE"
assert_contains "$(grep proxy-push-requires-cert <<<"$HOUT")" "OK"
assert_eq "$(readyz)" 200 "/readyz"
# The supervisor's port probe (/readyz) connects from the same admitted
# address: no refusal of 127.0.0.1 is logged while nobody else connects
# (probe_interval is 300 ms: a window of 5 probes).
n_refused() { th journalctl -u regvisor --no-pager -o cat REGVISOR_EVENT=refused | grep -c "127.0.0.1 refused"; }
before=$(n_refused)
sleep 1.5
assert_eq "$(n_refused)" "$before" "refusals of 127.0.0.1 logged while only the probe connects"

step "the lowered pull rate applies: 429 within 6 quick pulls"
codes=$(pull_codes)
step "codes: $codes"
[[ $codes == *429* ]] || fail "no 429 after lowering the rate: $codes"

step "a configuration that does not parse: reload fails, status shows FILE:LINE, the running one stays"
set_config "$(printf '[push]\nallow_cidrs = 198.18.0.0/15\n[pull]\nrate = fast')"
reload_refused "a broken configuration"
assert_contains "$st" "$CONF:"
assert_contains "$st" "rate"
# Certificates and the CRL are loaded again even so (revocations apply).
crl_reloaded() { th journalctl -u regvisor --no-pager -o cat REGVISOR_EVENT=proxy-reload-failed | grep -q "certificates and CRL reloaded"; }
wait_until 10 crl_reloaded || fail "the proxy did not reload its certificates and CRL"
th systemctl is-active --quiet regvisor.service || fail "regvisor stopped after a failed reload"
assert_eq "$(push_status 127.0.0.1 outside2-7c1d)" 000 "push from 127.0.0.1 after the failed reload"
assert_eq "$(push_status "$INSIDE" inside2-7c1d)" 202 "push from $INSIDE after the failed reload"

step "a restart-only change ([push] listen, [proxy] workers): reload fails naming them"
set_config "$(printf '[push]\nallow_cidrs = 198.18.0.0/15\nlisten = 4444\n[proxy]\nworkers = 3')"
reload_refused "a restart-only change"
assert_contains "$st" "[push] listen"
assert_contains "$st" "[proxy] workers"
assert_eq "$(push_status "$INSIDE" inside3-7c1d)" 202 "push on 4443 after the refused reload"

step "allow_cidrs admitting no address of this host: health says why TLS is not checked, OK; /readyz 200"
set_config "$(printf '[push]\nallow_cidrs = 10.0.0.0/8')"
reload
assert_eq "$RRC" 0 "systemctl reload status"
health
assert_eq "$HRC" 0 "health exit status"
assert_contains "$(grep proxy-push-tls <<<"$HOUT")" "TLS not checked: no address of this host is in allow_cidrs"
assert_contains "$(grep proxy-push-requires-cert <<<"$HOUT")" "closes a connection from 127.0.0.1 before TLS"
assert_eq "$(readyz)" 200 "/readyz"
assert_eq "$(push_status "$INSIDE" inside4-7c1d)" 000 "push from $INSIDE, outside 10.0.0.0/8"

step "back to a good configuration: reload succeeds, everyone may push again"
set_config ""
reload
assert_eq "$RRC" 0 "systemctl reload status"
assert_eq "$(push_status 127.0.0.1 after-7c1d)" 202 "push from 127.0.0.1"
th systemctl status regvisor.service --no-pager 2>&1 | grep -q "reload refused" &&
	fail "systemctl status still reports the refused reload"
true
