#!/usr/bin/env bash
# Certificate lifecycle with no one watching (issue 12, part 1), on a
# provisioned host running regvisor.service:
#   - `pki issue-client alice`: `pki list --json` shows her (serial, CN,
#     status valid), the server certificate, both CAs and both CRLs;
#   - `pki renew alice` (same key, new serial) and `pki renew --rekey alice`
#     (new key, 0600): skopeo pushes over 4443 with each renewed certificate;
#     the previous certificate is not revoked and still gets 200 on 4443;
#   - `regvisor run` renews by itself: [pki] renew_before is raised so that
#     the server certificate and both CRLs are due (a controlled clock: the
#     configuration decides what "soon" is, nothing waits for days); within
#     a few seconds of `systemctl reload` the supervisor renews them, the
#     proxy serves the new serial (openssl s_client), the CRL numbers went
#     up, a TLS connection opened before the renewal (a layer's download,
#     held after 64 KiB) completes intact on the old worker, and a push
#     still works;
#   - short validity: server_validity and crl_validity of 40 s; after one
#     `pki renew --server`, the served serial changes again by itself
#     (renewed 20 s before its end), with no command;
#   - `regvisor health`: the crl check is CRITICAL for a CRL 40 s from its
#     nextUpdate, and cert-clients names alice when she expires "soon".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
ALICE=/root/alice
BASE=$'[proxy]\nheader_timeout = 300s\nmin_rate = 0\n[pki]\ncheck_interval = 1s'

pki() {
	th "$REGVISOR" pki --config "$CONF" "$@"
}

# conf [INI LINES]: the test configuration, with [pki] lines appended.
conf() {
	INITIAL_CLIENT='' write_config "$BASE${1:+$'\n'$1}"
}

json() {
	pki list --json
}

# served_serial: the serial of the certificate the proxy serves on 443.
served_serial() {
	th sh -c 'openssl s_client -connect 127.0.0.1:443 -servername registry.test </dev/null 2>/dev/null |
		openssl x509 -noout -serial' | sed 's/^serial=//'
}

serial_changed_from() {
	local now
	now=$(served_serial)
	[[ -n $now && ${now,,} != "${1,,}" ]]
}

# alice_dir: alice's current key and certificate as skopeo's --dest-cert-dir.
alice_dir() {
	th sh -ec "install -d -m 0700 $ALICE
		cp $C/ca/ca.crt $ALICE/ca.crt
		cp $C/clients/alice.crt $ALICE/client.cert
		install -m 0600 $C/private/clients/alice.key $ALICE/client.key"
}

push() {
	local out
	out=$(th skopeo copy -q --dest-cert-dir "$ALICE" "oci-archive:$REGISTRY_ARCHIVE" \
		"docker://registry.test:4443/test/renew:$1" 2>&1) || fail "push $1 with alice's certificate failed: $out"
}

# code_with CERT KEY: the status of GET /v2/ on 4443 with that certificate.
code_with() {
	th curl -s -m 10 --cacert "$C/ca/ca.crt" --cert "$1" --key "$2" -o /dev/null -w '%{http_code}' \
		https://registry.test:4443/v2/ || true
}

th_boot
on_failure th journalctl -u regvisor --no-pager -n 80
conf
step "provision and start regvisor.service"
provision || fail "provision failed"
run_unit_up

step "pki issue-client alice; pki list --json shows her and the tree"
pki issue-client alice >/dev/null || fail "issue-client alice failed"
J=$(json) || fail "pki list --json failed"
printf '%s\n' "$J" | head -n 60 | sed 's/^/#   /'
assert_eq "$(jq -r '.clients[] | select(.name=="alice") | .status' <<<"$J")" valid "alice's status"
assert_eq "$(jq -r '.clients[] | select(.name=="alice") | .cn' <<<"$J")" alice "alice's CN"
A1=$(jq -r '.clients[] | select(.name=="alice") | .serial' <<<"$J")
file_serial=$(th openssl x509 -in "$C/clients/alice.crt" -noout -serial | sed 's/^serial=//')
assert_eq "${A1,,}" "${file_serial,,}" "alice's serial in pki list and in her certificate"
assert_eq "$(jq -r '[.certificates[].name] | join(" ")' <<<"$J")" "server-ca server client-ca" "certificates"
assert_eq "$(jq -r '[.crls[].name] | join(" ")' <<<"$J")" "server-ca-crl client-ca-crl" "CRLs"
for n in server-ca-crl client-ca-crl; do
	[[ $(jq -r ".crls[] | select(.name==\"$n\") | .next_update" <<<"$J") == 20* ]] ||
		fail "$n has no nextUpdate in pki list"
done
text=$(pki list) || fail "pki list failed"
assert_contains "$text" "alice"
assert_contains "$text" "client-ca-crl"

step "push with alice's first certificate"
alice_dir
push 1
th cp "$C/clients/alice.crt" /root/alice-1.crt
key_before=$(th sha256sum "$C/private/clients/alice.key" | cut -d' ' -f1)

step "pki renew alice: same key, new serial; push with it; the old certificate still works"
out=$(pki renew alice) || fail "pki renew alice failed: $out"
assert_contains "$out" "not revoked"
A2=$(json | jq -r '.clients[] | select(.name=="alice") | .serial')
[[ -n $A2 && $A2 != "$A1" ]] || fail "the renewed certificate has the old serial ($A1 -> $A2)"
assert_eq "$(th sha256sum "$C/private/clients/alice.key" | cut -d' ' -f1)" "$key_before" "alice's key after renew"
alice_dir
push 2
assert_eq "$(code_with /root/alice-1.crt "$ALICE/client.key")" 200 "GET /v2/ on 4443 with the previous certificate"

step "pki renew --rekey alice: a new key, 0600, push with it"
out=$(pki renew --rekey alice) || fail "pki renew --rekey alice failed: $out"
assert_eq "$(stat_of "$C/private/clients/alice.key")" "root:root 600" "alice's new key"
[[ $(th sha256sum "$C/private/clients/alice.key" | cut -d' ' -f1) != "$key_before" ]] ||
	fail "--rekey kept the key"
th openssl x509 -in "$C/clients/alice.crt" -noout -checkend 0 >/dev/null || fail "alice's certificate"
alice_dir
push 3

step "regvisor run renews the server certificate and both CRLs when they are due"
J=$(json)
S1=$(served_serial)
[[ -n $S1 ]] || fail "no certificate served on 443"
assert_eq "${S1,,}" "$(jq -r '.certificates[] | select(.name=="server") | .serial' <<<"$J" | tr A-F a-f)" \
	"served serial and pki list's"
N_SRV=$(jq -r '.crls[] | select(.name=="server-ca-crl") | .number' <<<"$J")
N_CLI=$(jq -r '.crls[] | select(.name=="client-ca-crl") | .number' <<<"$J")
# A connection opened before the renewal, in the middle of a response: the
# largest layer of test/renew:1, read 64 KiB then held until the renewal.
LAYER=$(th curl -s -m 10 --cacert "$C/ca/ca.crt" \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
	https://registry.test/v2/test/renew/manifests/1 | jq -r '.layers | max_by(.size) | .digest')
[[ $LAYER == sha256:* ]] || fail "no layer in test/renew:1"
PY='
import hashlib, os, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile="/etc/registry/certs/ca/ca.crt")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=120), server_hostname="registry.test")
s.sendall(b"GET /v2/test/renew/blobs/" + sys.argv[1].encode() + b" HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n")
data = s.recv(65536)
open("/root/pending.up", "w").close()
deadline = time.time() + 120
while not os.path.exists("/root/pending.go") and time.time() < deadline:
    time.sleep(0.1)
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), "sha256:" + hashlib.sha256(body).hexdigest(), len(body))
'
th python3 -c "$PY" "$LAYER" >"$TEST_TMP/pending.out" 2>&1 &
PENDING=$!
on_exit kill "$PENDING"
wait_until 20 th test -e /root/pending.up || fail "the pending connection did not open"
# 9000h (375 days) of margin: the 365-day server certificate and CRLs are
# due; renewed with 20000h of validity they are not due again.
conf $'renew_before = 9000h\nserver_validity = 20000h\ncrl_validity = 20000h'
th systemctl reload regvisor.service || fail "systemctl reload regvisor failed"
wait_until 30 serial_changed_from "$S1" || fail "the proxy still serves serial $S1"
S2=$(served_serial)
J=$(json)
assert_eq "${S2,,}" "$(jq -r '.certificates[] | select(.name=="server") | .serial' <<<"$J" | tr A-F a-f)" \
	"served serial after the renewal"
(($(jq -r '.crls[] | select(.name=="server-ca-crl") | .number' <<<"$J") > N_SRV)) ||
	fail "the server CA's CRL was not renewed"
(($(jq -r '.crls[] | select(.name=="client-ca-crl") | .number' <<<"$J") > N_CLI)) ||
	fail "the client CA's CRL was not renewed"
events=$(journal_events pki-renewed)
printf '%s\n' "$events" | sed 's/^/#   /'
assert_contains "$events" "server certificate"
assert_contains "$events" "client CA's CRL"
step "the connection opened before the renewal completes"
th touch /root/pending.go
wait "$PENDING" || fail "the pending connection failed: $(cat "$TEST_TMP/pending.out")"
cat "$TEST_TMP/pending.out" | sed 's/^/#   /'
assert_contains "$(cat "$TEST_TMP/pending.out")" "HTTP/1.1 200 OK $LAYER"
step "a push after the renewal"
push 4
sleep_check=$(json | jq -r '.certificates[] | select(.name=="server") | .serial')
assert_eq "${sleep_check,,}" "${S2,,}" "the renewed server certificate is not renewed again"

step "short validity: 40 s; renewed 20 s before its end with no command"
conf $'server_validity = 40s\ncrl_validity = 40s'
out=$(pki renew --server) || fail "pki renew --server failed: $out"
assert_contains "$out" "same key"
out=$(pki renew --crl) || fail "pki renew --crl failed: $out"
wait_until 20 serial_changed_from "$S2" || fail "pki renew --server: the proxy still serves $S2"
S3=$(served_serial)
SAN=$(th openssl x509 -in "$C/registry.crt" -noout -ext subjectAltName,crlDistributionPoints)
assert_contains "$SAN" "DNS:registry.test"
assert_contains "$SAN" "IP Address:127.0.0.1"
assert_contains "$SAN" "https://registry.test/regvisor/crl/server-ca.crl"
wait_until 60 serial_changed_from "$S3" || fail "regvisor run did not renew the 40 s certificate"

step "health: a CRL near its nextUpdate is CRITICAL; alice named when expiring soon"
rc=0
H=$(th "$REGVISOR" health --config "$CONF" --check crl) || rc=$?
printf '%s\n' "$H" | sed 's/^/#   /'
assert_eq "$rc" 2 "health --check crl exit status"
assert_contains "$H" "nextUpdate"
conf $'[health]\ncert_warn_days = 400'
rc=0
H=$(th "$REGVISOR" health --config "$CONF" --check cert-clients) || rc=$?
assert_eq "$rc" 1 "health --check cert-clients exit status"
assert_contains "$H" "alice expires in"
