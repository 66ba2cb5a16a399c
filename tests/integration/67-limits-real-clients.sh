#!/usr/bin/env bash
# The default limits against real registry clients (issue 11): Debian 12's
# skopeo, podman and containerd open a new TLS connection per request and
# containerd's ctr neither retries a 429 nor survives a reset connection.
# Under the defaults (nothing about limits in the configuration), through
# the full stack (regvisor.service, /metrics on [status] listen):
#   - skopeo pushes a 30-layer image over 4443 (client certificate), skopeo,
#     ctr (hosts.toml) and podman pull it over 443: all succeed, and the
#     proxy's access log has no 429 (nor any closed connection: ctr would
#     fail);
#   - a connection over conn_per_ip is answered 429 with Retry-After after
#     the TLS handshake (read with curl while the limit's worth is held);
#     at twice conn_per_ip it is closed before TLS, and /metrics counts it;
#   - on 4443 a client with a valid certificate is limited as itself: it is
#     served while its address holds conn_per_ip anonymous connections;
#   - a flood from one address (a new connection per request, many at once,
#     sustained) is refused with 429, and /metrics counts it.
# No timing is asserted. REGVISOR_UNDER_TEST runs another build (the
# reproduction before the fix).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"
REGVISOR=${REGVISOR_UNDER_TEST:-$REGVISOR}

ACCEPT_ANY=/etc/regvisor-test-policy.json
LAYERS=30

step "the full stack with the default limits"
clients_stack_up

step "clients: certs.d, hosts.toml, a $LAYERS-layer OCI layout"
client_certs_d
ctr_hosts_443 /etc/rvtest-hosts
clients_image "$ACCEPT_ANY" "$LAYERS"

client "skopeo push over 4443" skopeo --policy "$ACCEPT_ANY" copy oci:/var/tmp/big:1 \
	docker://registry.test:4443/test/big:1
client "skopeo pull over 443" skopeo --policy "$ACCEPT_ANY" copy docker://registry.test/test/big:1 \
	oci:/var/tmp/pulled:1
client "ctr pull over 443" ctr images pull --snapshotter native --hosts-dir /etc/rvtest-hosts \
	registry.test/test/big:1
client "podman pull over 443" podman --runtime=runc pull --signature-policy "$ACCEPT_ANY" registry.test/test/big:1

log=$(access_log)
step "access log of the clients: $(grep -c . <<<"$log") requests; by status: $(grep -o ' status=[0-9]*' <<<"$log" | sort | uniq -c | xargs)"
refused=$(nrefused)
step "connections refused by conn_per_ip: $refused"
((${#FAILED[@]} == 0)) || fail "clients failed under the default limits: ${FAILED[*]}"
assert_eq "$(n429)" 0 "429 answers to the clients"
assert_eq "$refused" 0 "connections of the clients refused by conn_per_ip"

snapshot() {
	th curl -sf -m 3 http://127.0.0.1:9443/metrics | /usr/bin/python3 "$REPO/tests/integration/prom-parse.py"
}
value() {
	printf '%s\n' "$1" | awk -v k="$2" 'index($0, k " ") == 1 { printf "%d\n", $NF; found = 1 } END { if (!found) print 0 }'
}
# [pull] conn_per_ip's default (CONN_PER_IP for another build).
conn_per_ip=${CONN_PER_IP:-128}

step "a connection over conn_per_ip ($conn_per_ip held): 429 with Retry-After, after the handshake"
before=$(snapshot) || fail "/metrics does not parse"
out=$(th "${FLOOD[@]}" hold 127.0.0.1 443 "$CA" "$conn_per_ip" -- \
	curl -s -m 10 --cacert "$CA" -D - -o /dev/null https://registry.test/v2/ | tr -d '\r')
printf '%s\n' "$out" | sed 's/^/#   /'
assert_contains "$out" "HTTP/1.1 429"
assert_contains "$(tr 'A-Z' 'a-z' <<<"$out")" "retry-after: "
after=$(snapshot) || fail "/metrics does not parse"
d=$(($(value "$after" 'regvisor_proxy_connection_limited_total{port="pull"}') - $(value "$before" 'regvisor_proxy_connection_limited_total{port="pull"}')))
((d >= 1)) || fail "regvisor_proxy_connection_limited_total did not count the refusal"

step "at twice conn_per_ip ($((2 * conn_per_ip)) held): closed before TLS, and counted"
before=$(snapshot) || fail "/metrics does not parse"
out=$(th "${FLOOD[@]}" hold 127.0.0.1 443 "$CA" $((2 * conn_per_ip)) -- \
	curl -s -m 10 --cacert "$CA" -o /dev/null -w '%{http_code}' https://registry.test/v2/ || true)
assert_eq "$out" 000 "HTTP status at the ceiling (no handshake, no answer)"
after=$(snapshot) || fail "/metrics does not parse"
k='regvisor_proxy_connection_ceiling_total{port="pull"}'
d=$(($(value "$after" "$k") - $(value "$before" "$k")))
((d >= 1)) || fail "$k did not count the connection closed at the ceiling"

step "4443: over conn_per_ip from one address, a known client (certificate) is served, as itself"
out=$(th "${FLOOD[@]}" hold 127.0.0.1 4443 "$CA" "$conn_per_ip" -- \
	curl -s -m 10 --cacert "$CA" --cert "$CI_CERT" --key "$CI_KEY" -o /dev/null -w '%{http_code}' \
	https://registry.test:4443/v2/ || true)
assert_eq "$out" 200 "a request with the ci certificate while the address holds conn_per_ip connections"

step "a flood from one address: 300 at once, a new connection per request, 5 rounds"
before=$after
out=$(th "${FLOOD[@]}" flood 127.0.0.1 443 "$CA" 300 5) || fail "flood client failed: $out"
step "flood: $out"
n=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"].get("429", 0))' "$out")
((n > 0)) || fail "the flood drew no 429"
after=$(snapshot) || fail "/metrics does not parse"
d=0
for m in rate_limited connection_limited; do
	k="regvisor_proxy_${m}_total{port=\"pull\"}"
	step "/metrics $k: +$(($(value "$after" "$k") - $(value "$before" "$k")))"
	d=$((d + $(value "$after" "$k") - $(value "$before" "$k")))
done
((d >= n)) || fail "/metrics counted $d refusals, the flood saw $n answers of 429"
