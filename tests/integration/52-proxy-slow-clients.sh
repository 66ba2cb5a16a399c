#!/usr/bin/env bash
# Slow clients (slowloris) against the full stack (regvisor run: registry +
# proxy), header_timeout = 3s:
#   - 500 TLS connections to 443 from 250 loopback source addresses
#     (127.0.1.1..127.0.1.250, two each: far below conn_per_ip, so the per-IP
#     limit cannot be what stops them), of two kinds, half each:
#       tls:  stalls in the TLS handshake, sending a real ClientHello one
#             byte every 0.5 s (the handshake never completes);
#       http: completes the handshake, then sends the request head one byte
#             (one TLS record) every 0.5 s (the head never completes);
#   - while all 500 are open, a normal client (curl with the CA, from
#     127.0.0.1) pulls /v2/ and a 256 KiB blob pushed first over 4443, and
#     gets both, correct, within 2 s;
#   - every slow connection is closed by the proxy, none before
#     header_timeout and all within header_timeout + 2 s of its connect (the
#     deadline runs from accept and is not extended by bytes; the proxy
#     sweeps once a second), and none gets an answer (closed without a word);
#   - no worker died, nothing was refused by conn_per_ip, and a pull works
#     afterwards.
# The slow clients and the timing are 52-slowloris.py (non-blocking sockets,
# selectors, one thread, bounded by its own deadline).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

CURL=(curl -s -m 10 --cacert "$CA")
HEADER_TIMEOUT=3
N=500
ADDRS=250

th_boot
write_config "$(printf '[proxy]\nheader_timeout = %ss' "$HEADER_TIMEOUT")"
on_failure th journalctl -u regvisor --no-pager -n 60
provision >/dev/null || fail "provision failed: $OUT"

step "the full stack: systemctl start regvisor"
run_unit_up

step "push a 256 KiB blob over 4443 with the ci certificate"
th sh -c 'head -c 262144 /dev/urandom > /var/tmp/blob'
digest=sha256:$(th sha256sum /var/tmp/blob | cut -d' ' -f1)
location=$(th "${CURL[@]}" "${MTLS[@]}" -f -X POST -D - -o /dev/null \
	https://registry.test:4443/v2/test/slow/blobs/uploads/ | tr -d '\r' | sed -n 's/^Location: //Ip')
[[ -n $location ]] || fail "no upload location"
[[ $location == /* ]] || location=${location#https://registry.test:4443}
sep='?'
[[ $location == *\?* ]] && sep='&'
code=$(th "${CURL[@]}" "${MTLS[@]}" -o /dev/null -w '%{http_code}' -X PUT --data-binary @/var/tmp/blob \
	-H 'Content-Type: application/octet-stream' "https://registry.test:4443$location${sep}digest=$digest")
assert_eq "$code" 201 "blob upload over 4443"

workers() {
	th pgrep -u registry-proxy -f 'regvisor proxy' | sort | tr '\n' ' '
}
workers_before=$(workers)
[[ -n $workers_before ]] || fail "no proxy workers"

step "$N slow connections from $ADDRS addresses; a normal pull meanwhile"
# The normal client: /v2/ and the blob in one curl run, status codes on
# stdout, the blob to a file; started by the script once all $N are open.
client=(sh -c "curl -s -m 5 --cacert $CA -w '%{http_code}\n' -o /dev/null https://registry.test/v2/ \
	-o /var/tmp/blob.pulled https://registry.test/v2/test/slow/blobs/$digest > /var/tmp/client.out")
t0=$(_now_us)
out=$(th python3 "$REPO/tests/integration/52-slowloris.py" 127.0.0.1 443 "$CA" "$N" "$ADDRS" 0.5 \
	$((HEADER_TIMEOUT + 10)) -- "${client[@]}") || fail "52-slowloris.py failed: $out"
step "done in $((($(_now_us) - t0) / 1000)) ms: $out"
j() {
	python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v:=v[k] for k in sys.argv[2].split(".")]; print(v)' "$out" "$1"
}

step "all $N were opened, spread over $ADDRS addresses"
assert_eq "$(j errors)" "{}" "connect/handshake errors"
assert_eq "$(j addresses)" "$ADDRS" "distinct source addresses"
assert_eq "$(j max_open)" "$N" "slow connections open at once"
assert_eq "$(j tls.established)" $((N / 2)) "connections stalled in the TLS handshake"
assert_eq "$(j http.established)" $((N / 2)) "connections that completed TLS and trickle the head"

step "the normal client pulled while all $N were open"
assert_eq "$(j client.rc)" 0 "curl exit status"
assert_eq "$(j client.slow_open_at_start)" "$N" "slow connections open when the normal client started"
assert_eq "$(th cat /var/tmp/client.out | tr '\n' ' ')" "200 200 " "status of /v2/ and of the blob"
assert_eq "sha256:$(th sha256sum /var/tmp/blob.pulled | cut -d' ' -f1)" "$digest" "digest of the pulled blob"
python3 -c 'import sys; sys.exit(not float(sys.argv[1]) < 2.0)' "$(j client.seconds)" ||
	fail "the normal pull took $(j client.seconds) s with $N slow clients open"

step "every slow connection was closed by the proxy by the header timeout"
for kind in tls http; do
	assert_eq "$(j $kind.closed_by_server)" $((N / 2)) "$kind: connections closed by the proxy"
	assert_eq "$(j $kind.still_open)" 0 "$kind: connections still open at the end"
	assert_eq "$(j $kind.answered)" 0 "$kind: connections that got an answer"
	min=$(j $kind.close_after_min) max=$(j $kind.close_after_max)
	python3 -c 'import sys; t=float(sys.argv[3]); sys.exit(not (float(sys.argv[1]) >= t - 0.1 and float(sys.argv[2]) <= t + 2.0))' \
		"$min" "$max" "$HEADER_TIMEOUT" ||
		fail "$kind: closed between $min and $max s after connect; expected $HEADER_TIMEOUT..$((HEADER_TIMEOUT + 2)) s"
	# At 2 bytes a second no head (or ClientHello) could complete in time.
	(($(j $kind.max_bytes_sent) <= 2 * (HEADER_TIMEOUT + 2) + 1)) || fail "$kind: sent $(j $kind.max_bytes_sent) bytes"
done

step "no worker died, the per-IP limit refused nothing, pulls still work"
assert_eq "$(workers)" "$workers_before" "proxy worker pids"
th journalctl --no-pager -u regvisor -o cat | grep -E 'refused: more than conn_per_ip|worker .* (killed|exited)' &&
	fail "refusals or worker exits in the journal"
code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' "https://registry.test/v2/test/slow/blobs/$digest")
assert_eq "$code" 200 "blob GET after the slow clients"
true
