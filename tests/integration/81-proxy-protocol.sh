#!/usr/bin/env bash
# regvisor behind a load balancer: Debian's HAProxy in TCP mode with
# send-proxy-v2 in front of 443 and 4443, TLS and mTLS still terminated by
# regvisor. Two test hosts on one zone: the registry host (198.18.0.1,
# [proxy] trusted_proxies = the balancer) and the client host, which runs
# HAProxy (its address towards the registry: 198.18.0.2) listening on a
# second address, 198.18.0.3, that its clients also come from (a third,
# 198.18.0.4, is another client):
#   - HAProxy's health check (option httpchk GET /readyz on port 9443)
#     passes through [status] allow_cidrs; another address is closed;
#   - a push through HAProxy with the client certificate (mTLS end to end)
#     and a pull through it work, and the registry host's access log shows
#     the real client (198.18.0.3), never the balancer; so does the
#     registry's own log (X-Forwarded-For);
#   - a LOCAL header from the balancer (split across two segments) is the
#     balancer itself; a connection from the balancer without a header, or
#     with v1 text, a UNIX family or two headers, is refused and counted;
#   - a PROXY header sent directly from an address that is not trusted is
#     refused before TLS (nothing reaches the registry; logged, counted);
#   - conn_per_ip is per real client: with conn_per_ip = 2, a client holding
#     two connections through the balancer is answered 429 on its third,
#     while another client behind the same balancer is served.
# 443 and 4443 listen dual-stack (one IPv6 socket), so the balancer arrives
# as ::ffff:198.18.0.2: the IPv4 entries match it; the last step names it
# IPv4-mapped (::ffff:198.18.0.2, in trusted_proxies and allow_cidrs), which
# is the same address and must work the same.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

HELPER=(/usr/bin/python3 "$REPO/tests/integration/81-proxy-protocol.py")
LB=198.18.0.3 OTHER=198.18.0.4
CACERT=/etc/containers/certs.d/registry.test/ca.crt
HACFG=/etc/haproxy/regvisor-test.cfg
HASOCK=/run/haproxy-regvisor-test.sock

command -v haproxy >/dev/null || skip "no haproxy (Debian's haproxy package)"
th_boot_two
on_failure th journalctl -u regvisor --no-pager -n 60

step "registry host: trusted_proxies = the balancer, /readyz for it only; provision, regvisor.service"
write_config "$(printf '[proxy]\ntrusted_proxies = %s\n[status]\nlisten = 0.0.0.0:9443\nallow_cidrs = %s' \
	"$TH_CLIENT_ADDR" "$TH_CLIENT_ADDR")"
provision >/dev/null || fail "provision failed: $OUT"
run_unit_up
# Dual-stack: no IPv4 socket on 443/4443, so IPv4 peers arrive mapped.
for port in 443 4443; do
	[ -n "$(th ss -Htln6 "sport = :$port")" ] || fail "no IPv6 (dual-stack) listener on $port"
	[ -z "$(th ss -Htln4 "sport = :$port")" ] || fail "an IPv4 listener on $port: peers would not arrive mapped"
done

step "client host: $LB and $OTHER on lo, registry.test is the balancer ($LB), certs.d"
thc ip addr add "$LB/32" dev lo || fail "cannot add $LB"
thc ip addr add "$OTHER/32" dev lo || fail "cannot add $OTHER"
thc sed -i "s/^$TH_ADDR registry.test\$/$LB registry.test/" /etc/hosts
thc grep -q "^$LB registry.test\$" /etc/hosts || fail "registry.test is not $LB on the client host"
th cat "$CA" | thc_write "$CACERT"
th cat "$CA" | thc_write /etc/containers/certs.d/registry.test:4443/ca.crt
th cat "$CI_CERT" | thc_write /etc/containers/certs.d/registry.test:4443/client.cert
th cat "$CI_KEY" | thc_write /etc/containers/certs.d/registry.test:4443/client.key 0600

step "client host: HAProxy (TCP mode, send-proxy-v2, httpchk /readyz) on $LB:443 and $LB:4443"
thc_write "$HACFG" <<EOC
global
	stats socket $HASOCK mode 600 level admin
defaults
	mode tcp
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend pull
	bind $LB:443
	default_backend pull
backend pull
	option httpchk GET /readyz
	server registry $TH_ADDR:443 send-proxy-v2 check port 9443 inter 1s
frontend push
	bind $LB:4443
	default_backend push
backend push
	option httpchk GET /readyz
	server registry $TH_ADDR:4443 send-proxy-v2 check port 9443 inter 1s
EOC
thc haproxy -c -q -f "$HACFG" || fail "haproxy refuses $HACFG"
thc haproxy -D -f "$HACFG" -p /run/haproxy-regvisor-test.pid || fail "haproxy did not start"
# check_status of both servers: L7OK is /readyz answering 200 to the balancer.
lb_checks() {
	thc /usr/bin/python3 "$REPO/tests/integration/haproxy-servers.py" "$HASOCK" | awk '{ print $1, $3, $4 }'
}
checks_ok() {
	[[ $(lb_checks | grep -c ' UP L7OK$') -eq 2 ]]
}
wait_until 30 checks_ok || fail "HAProxy's /readyz checks do not pass: $(lb_checks | tr '\n' ' ')"
step "HAProxy: $(lb_checks | tr '\n' ' ')"

step "[status] allow_cidrs: $OTHER cannot reach /readyz, the balancer can"
out=$(thc curl -s -m 5 --interface "$OTHER" -o /dev/null -w '%{http_code}' "http://$TH_ADDR:9443/readyz") &&
	fail "/readyz answered $out to $OTHER (not in [status] allow_cidrs)"
code=$(thc curl -s -m 5 -o /dev/null -w '%{http_code}' "http://$TH_ADDR:9443/readyz") || true
assert_eq "$code" 200 "/readyz from the balancer's address"

# access_from PORT CLIENT METHOD PATH STATUS: the registry host's access log
# has that request from CLIENT.
access_log() {
	th journalctl --no-pager -u regvisor REGVISOR_EVENT=access -o cat
}
access_logged() {
	access_log | grep -Eq -- "$1"
}
# (the journal has the line a moment after the response: waited for)
access_from() {
	wait_until 10 access_logged "port=$1 client=${2//./\\.} .*method=$3 path=$4 status=$5 " ||
		fail "no access log line: port=$1 client=$2 method=$3 path=$4 status=$5"
}

step "through HAProxy: push over 4443 with the client certificate, pull over 443"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/test/lb:1 2>&1) ||
	fail "push through HAProxy failed: $out"
access_from push "$LB" PUT /v2/test/lb/manifests/1 201
out=$(thc podman pull -q registry.test/test/lb:1 2>&1) || fail "pull through HAProxy failed: $out"
access_from pull "$LB" GET /v2/test/lb/manifests/1 200
n=$(access_log | grep -c "client=${TH_CLIENT_ADDR//./\\.} " || true)
assert_eq "$n" 0 "access log lines naming the balancer ($TH_CLIENT_ADDR) as the client"

step "X-Forwarded-For upstream: the registry's own log names the real client ($OTHER)"
registry_log() {
	th journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=regvisor-registry.service
}
registry_logged() {
	registry_log | grep -q "$1"
}
thc curl -s -m 10 --interface "$OTHER" --cacert "$CACERT" -o /dev/null \
	https://registry.test/v2/test/lb/manifests/xff-lb-marker
wait_until 20 registry_logged xff-lb-marker || fail "the registry did not log the marker request"
lines=$(registry_log | grep xff-lb-marker)
printf '%s\n' "$lines" | head -n 1 | cut -c1-300 | sed 's/^/#   /'
assert_contains "$lines" "remoteaddr=$OTHER"
access_from pull "$OTHER" GET /v2/test/lb/manifests/xff-lb-marker 404

metric() {
	th curl -sf -m 3 http://127.0.0.1:9443/metrics |
		awk -v n="$1" -v p="$2" '$1 == n "{port=\"" p "\"}" { print $2 }'
}

step "from the balancer: a LOCAL header (split in two segments) is the balancer itself"
out=$(thc "${HELPER[@]}" local "$TH_ADDR" 443 "$CACERT") || fail "LOCAL: $out"
assert_eq "$out" "status=200" "GET /v2/ after a LOCAL header"
access_from pull "$TH_CLIENT_ADDR" GET /v2/ 200

step "from the balancer: a header and the ClientHello in one segment"
out=$(thc "${HELPER[@]}" coalesced "$TH_ADDR" 443 "$CACERT" 192.0.2.77) || fail "coalesced: $out"
assert_eq "$out" "status=200" "GET /v2/ after a header coalesced with the ClientHello"
access_from pull 192.0.2.77 GET /v2/ 200

step "from the balancer without a header: refused, counted"
before=$(metric regvisor_proxy_proxy_header_invalid_total pull)
thc curl -s -m 10 --cacert "$CACERT" --resolve "registry.test:443:$TH_ADDR" -o /dev/null https://registry.test/v2/ &&
	fail "a TLS connection from the balancer without a PROXY header was served"
after=$(metric regvisor_proxy_proxy_header_invalid_total pull)
assert_eq "$after" "$((before + 1))" "regvisor_proxy_proxy_header_invalid_total{port=pull}"

step "from the balancer: v1 text, a UNIX family, two headers: refused before TLS, counted"
before=$(metric regvisor_proxy_proxy_header_invalid_total push)
for kind in v1 unix; do
	out=$(thc "${HELPER[@]}" send "$TH_ADDR" 4443 $kind 2>&1) || fail "send $kind: $out"
	assert_eq "$out" closed "the proxy's answer to a $kind header from the balancer"
done
assert_eq "$(metric regvisor_proxy_proxy_header_invalid_total push)" "$((before + 2))" \
	"regvisor_proxy_proxy_header_invalid_total{port=push}"
out=$(thc "${HELPER[@]}" send "$TH_ADDR" 4443 double 2>&1) || fail "send double: $out"
assert_eq "$out" closed "the proxy's answer to two headers from the balancer"
# The worker's line reaches the journal a moment after the close: waited for.
journal_has() {
	th journalctl --no-pager -u regvisor -o cat | grep -q -- "$1"
}
wait_until 10 journal_has "push 203\.0\.113\.9 refused: a second PROXY protocol header" ||
	fail "no journal line for the second PROXY header"

step "a PROXY header from an address that is not trusted: refused before TLS"
lines=$(access_log | wc -l)
out=$(th "${HELPER[@]}" send "$TH_ADDR" 443 proxy 2>&1) || fail "send proxy: $out"
assert_eq "$out" closed "the proxy's answer to a PROXY header from $TH_ADDR"
assert_eq "$(metric regvisor_proxy_proxy_header_refused_total pull)" 1 \
	"regvisor_proxy_proxy_header_refused_total{port=pull}"
wait_until 10 journal_has "pull $TH_ADDR refused: a PROXY protocol header from an address not in \[proxy\] trusted_proxies" ||
	fail "no journal line for the refused PROXY header"
# A marker request after it, so the log is known to be flushed: its line is
# the only new one.
th curl -s -m 10 --cacert "$CA" -o /dev/null https://registry.test/v2/pp-flush-marker/manifests/x
access_from pull "$TH_ADDR" GET /v2/pp-flush-marker/manifests/x 404
assert_eq "$(access_log | wc -l)" "$((lines + 1))" "access log lines after the refused PROXY header and a marker"
access_log | grep -q "client=203\.0\.113\.9" && fail "the refused header's client reached the access log"

step "conn_per_ip = 2 on 443: per real client, not per balancer; the balancer named IPv4-mapped"
write_config "$(printf '[proxy]\ntrusted_proxies = ::ffff:%s\n[status]\nlisten = 0.0.0.0:9443\nallow_cidrs = ::ffff:%s/128\n[pull]\nconn_per_ip = 2' \
	"$TH_CLIENT_ADDR" "$TH_CLIENT_ADDR")"
th systemctl reload regvisor.service || fail "reload failed"
out=$(thc "${HELPER[@]}" buckets "$LB" 443 "$CACERT" "$OTHER" "$LB" 2 2>&1) || fail "buckets: $out"
assert_eq "$out" "a=429 b=200" "third connection of $OTHER (holding two) / first of $LB, both via the balancer"
access_from pull "$OTHER" GET /v2/ 429
access_from pull "$LB" GET /v2/ 200


