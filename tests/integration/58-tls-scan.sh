#!/usr/bin/env bash
# Both public ports of the proxy, scanned as an auditor would, against the
# real proxy on a provisioned test host:
#   - sslscan (seconds): only TLS 1.2 and 1.3; every accepted suite is one
#     of the proxy's (ECDHE with AES-GCM or ChaCha20-Poly1305, TLS 1.3's
#     AEADs), none rated null/anonymous/weak/medium; groups X25519 and P-256
#     only; no renegotiation; not vulnerable to heartbleed;
#   - ALPN (openssl s_client): h2 and http/1.1 offered gives http/1.1; h2
#     alone gives none;
#   - session tickets (ticket_key_lifetime = 15s, TLS 1.2 where the ticket
#     comes in the handshake): a ticket resumes under the current key and
#     after one rotation (previous key), a ticket from two rotations ago
#     gets a full handshake; rotations seen from the client's side (the key
#     name at the start of fresh tickets). The renewal of a previous-key
#     ticket is checked in tests/unit/test-tls.c: s_client -sess_out does
#     not save a ticket renewed in a resumed TLS 1.2 handshake;
#   - testssl.sh --server-defaults (the certificate checks) of 443: nothing
#     rated MEDIUM or worse, cert_revocation included: the server
#     certificate has a CRL distribution point (without --phone-out
#     testssl.sh only looks for a URI in the certificate's text; the CRL
#     served there is checked in 58-pki-revocation.sh). 4443 sends the
#     very same chain (compared byte for byte), so the verdict holds there
#     too. One scan, not one a port: most of testssl.sh's 2 to 3 minutes
#     on a busy machine is its own start-up (probing the local openssl),
#     and two at once on 2 cores took 407 s.
# With TLS_SCAN_FULL=DIR the full `testssl.sh --fast` scans of both ports
# run instead (7 minutes here: raise INTEGRATION_TIMEOUT), their logs and
# JSON land in DIR, with the same verdict: that is how docs/tls-scan.md
# was made.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

UNIT=regvisor-proxy-test
CA=/etc/registry/certs/ca/ca.crt
command -v sslscan >/dev/null || skip "sslscan is not installed (scripts/deps)"

th_boot
write_config "[proxy]
ticket_key_lifetime = 15s"
on_failure journalctl -u "$UNIT" --no-pager -n 60

step "provision, start the registry and the proxy"
provision >/dev/null || fail "provision failed: $OUT"
user_systemctl ci-svc start regvisor-registry.service || fail "registry start failed"
th /bin/sh -c 'echo "127.0.0.1 registry.test" >> /etc/hosts'
th systemd-run --unit="$UNIT" "$REGVISOR" proxy --config "$CONF" >/dev/null
proxy_up() {
	th curl -s -m 5 --cacert "$CA" -o /dev/null https://registry.test/v2/
}
wait_until 20 proxy_up || fail "the proxy does not answer on 443"

# sslscan's XML as "kind value" lines: proto, cipher (name strength), group,
# renegotiation, heartbleed.
scan_summary() {
	/usr/bin/python3 -c '
import sys, xml.etree.ElementTree as ET
t = ET.parse(sys.argv[1]).getroot().find("ssltest")
for p in t.findall("protocol"):
    if p.get("enabled") == "1":
        print("proto", p.get("type") + p.get("version"))
for c in t.findall("cipher"):
    print("cipher", c.get("cipher"), c.get("strength"))
for g in t.findall("group"):
    print("group", g.get("name").split()[0])
r = t.find("renegotiation")
print("renegotiation", r.get("supported") if r is not None else "missing")
for h in t.findall("heartbleed"):
    print("heartbleed", h.get("vulnerable"))
' "$1"
}

# tls.h's TLS_CIPHERS and TLS 1.3's suites.
allowed="TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256 ECDHE-ECDSA-AES256-GCM-SHA384"
allowed+=" ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-RSA-CHACHA20-POLY1305"
allowed+=" ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256"
for port in 443 4443; do
	step "sslscan of $port"
	th timeout 60 sslscan --no-colour --sni-name=registry.test --xml="/var/tmp/sslscan-$port.xml" \
		"127.0.0.1:$port" >/dev/null || fail "sslscan of $port failed"
	summary=$(scan_summary "$TH_DIR/merged/var/tmp/sslscan-$port.xml")
	printf '%s\n' "$summary" | sed 's/^/#   /'
	assert_eq "$(grep '^proto ' <<<"$summary" | xargs)" "proto tls1.2 proto tls1.3" "protocols on $port"
	assert_eq "$(grep '^renegotiation ' <<<"$summary")" "renegotiation 0" "renegotiation on $port"
	grep -q '^heartbleed 1' <<<"$summary" && fail "heartbleed on $port"
	grep -q '^cipher ' <<<"$summary" || fail "no cipher accepted on $port"
	while read -r _ name strength; do
		[[ " $allowed " == *" $name "* ]] || fail "port $port accepts $name, not one of the proxy's suites"
		case $strength in null | anonymous | weak | medium) fail "port $port accepts $name rated $strength" ;; esac
	done < <(grep '^cipher ' <<<"$summary")
	groups=$(grep '^group ' <<<"$summary" | awk '{ print $2 }' | sort -u | xargs)
	assert_eq "$groups" "secp256r1 x25519" "key exchange groups on $port"

	step "TLS 1.3 on $port: AES-128-GCM chosen from a client that lists AES-256-GCM first (tls.h)"
	suite=$(th sh -c "openssl s_client -connect 127.0.0.1:$port -servername registry.test -CAfile $CA -tls1_3 \
		-ciphersuites TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256 </dev/null 2>/dev/null" |
		sed -n 's/^New, TLSv1.3, Cipher is //p')
	assert_eq "$suite" "TLS_AES_128_GCM_SHA256" "TLS 1.3 suite on $port"

	step "ALPN on $port: h2 and http/1.1 offered, http/1.1 chosen; h2 alone, none chosen"
	alpn() {
		th sh -c "openssl s_client -connect 127.0.0.1:$port -servername registry.test -CAfile $CA \
			-alpn $1 </dev/null 2>/dev/null" | grep -E '^(ALPN protocol|No ALPN)'
	}
	assert_eq "$(alpn h2,http/1.1)" "ALPN protocol: http/1.1" "ALPN for h2,http/1.1 on $port"
	assert_eq "$(alpn h2)" "No ALPN negotiated" "ALPN for h2 alone on $port"
done

step "ticket keys rotate every 15 s: a ticket resumes across one rotation, not two (TLS 1.2)"
# s_client ... -sess_in/-sess_out: "New" or "Reused" for the handshake.
handshake() { # handshake SESS_OUT [SESS_IN]
	th sh -c "openssl s_client -connect 127.0.0.1:443 -servername registry.test -CAfile $CA -tls1_2 \
		-sess_out $1 ${2:+-sess_in $2} </dev/null 2>/dev/null" | grep -Eo '^(New|Reused), TLSv1\.2' || true
}
# The name of the key a saved session's ticket is under: its first 16
# bytes (RFC 5077), the first line of openssl's hex dump.
keyname() {
	th openssl sess_id -in "$1" -noout -text | awk '/TLS session ticket:/ { getline; print substr($0, 1, 56); exit }'
}
# The name of the key the proxy issues tickets under right now.
current_key() {
	[[ $(handshake /var/tmp/probe) == "New, TLSv1.2" ]] && keyname /var/tmp/probe
}
# key_not_in NAME...: whether the current key is none of NAMEs (a
# rotation); it goes to $TEST_TMP/key (wait_until keeps no output).
key_not_in() {
	local k
	k=$(current_key) || return 1
	for n in "$@"; do [[ $k != "$n" ]] || return 1; done
	echo "$k" >"$TEST_TMP/key"
}
# Rotations are observed from the client's side (the key name in fresh
# tickets), not from the journal, which lags on a busy machine; after each
# check a fresh ticket shows that no rotation fell in between, else the
# step is tried again.
ok=""
for attempt in 1 2 3; do
	assert_eq "$(handshake /var/tmp/s1)" "New, TLSv1.2" "the first handshake"
	k1=$(keyname /var/tmp/s1)
	[[ -n $k1 ]] || fail "no session ticket in the first handshake"
	assert_eq "$(handshake /var/tmp/s1b /var/tmp/s1)" "Reused, TLSv1.2" "resumption under the current key"
	wait_until 40 key_not_in "$k1" || fail "no ticket key rotation within 40 s"
	k2=$(cat "$TEST_TMP/key")
	r=$(handshake /var/tmp/s2 /var/tmp/s1)
	[[ $(current_key) == "$k2" ]] || continue # a second rotation fell in between: again
	assert_eq "$r" "Reused, TLSv1.2" "resumption under the previous key (attempt $attempt)"
	wait_until 40 key_not_in "$k1" "$k2" || fail "no second ticket key rotation within 40 s"
	k3=$(cat "$TEST_TMP/key")
	r=$(handshake /var/tmp/s3 /var/tmp/s1)
	[[ $(current_key) == "$k3" ]] || continue
	assert_eq "$r" "New, TLSv1.2" "a ticket from two rotations ago"
	ok=1
	break
done
[[ -n $ok ]] || fail "every attempt saw two rotations within one step: the machine is too slow for 15 s keys"

# The certificate chain a port sends, as PEM (4443 sends it before it asks
# for a client certificate, so no client certificate is needed to see it).
chain_of() {
	th sh -c "openssl s_client -connect 127.0.0.1:$1 -servername registry.test -showcerts </dev/null 2>/dev/null" |
		sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p'
}
step "443 and 4443 send the same certificate chain"
chain443=$(chain_of 443)
[[ -n $chain443 ]] || fail "no certificate from 443"
assert_eq "$(chain_of 4443)" "$chain443" "the chain 4443 sends"

# testssl.sh: --server-defaults (the certificate checks) of 443, or with
# TLS_SCAN_FULL the full --fast scans of both ports at once (which include
# them), JSON and log copied to that directory. --add-ca: the server CA is
# regvisor's own (clients trust it through certs.d), else the chain is
# rated CRITICAL. Nothing may be rated MEDIUM or worse, and testssl.sh must
# see the CRL distribution point.
if [[ -n ${TLS_SCAN_FULL:-} ]] || command -v testssl >/dev/null; then
	command -v testssl >/dev/null || fail "TLS_SCAN_FULL needs testssl.sh (scripts/deps)"
	if [[ -n ${TLS_SCAN_FULL:-} ]]; then
		mkdir -p "$TLS_SCAN_FULL"
		kind=full scan=(--fast) limit=1500 ports="443 4443"
		step "full testssl.sh --fast scans of 443 and 4443, at once (minutes): nothing MEDIUM or worse"
	else
		kind=defaults scan=(--server-defaults) limit=500 ports=443
		step "testssl.sh --server-defaults of 443 (4443's chain is the same): nothing MEDIUM or worse, cert_revocation included"
	fi
	for port in $ports; do
		th timeout "$limit" testssl --color 0 --warnings off --ip 127.0.0.1 --nodns min "${scan[@]}" \
			--add-ca "$CA" --jsonfile "/var/tmp/$kind-$port.json" --logfile "/var/tmp/$kind-$port.log" \
			"registry.test:$port" >/dev/null 2>&1 &
	done
	wait
	for port in $ports; do
		json=$TH_DIR/merged/var/tmp/$kind-$port.json
		[[ -s $json ]] || fail "testssl.sh wrote no result for $port"
		[[ -z ${TLS_SCAN_FULL:-} ]] || cp "$json" "$TH_DIR/merged/var/tmp/$kind-$port.log" "$TLS_SCAN_FULL/"
		jq -r '.[] | select(.id | startswith("cert_crlDistributionPoints") or startswith("cert_revocation"))
			| "#   \(.id) \(.severity): \(.finding)"' "$json"
		assert_eq "$(jq -r '[.[] | select(.id | startswith("cert_crlDistributionPoints"))][0].finding' "$json")" \
			"https://registry.test/regvisor/crl/server-ca.crl" "the CRL distribution point testssl.sh sees on $port"
		bad=$(jq -r '.[] | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL"
			or .severity == "FATAL") | "\(.id) \(.severity): \(.finding)"' "$json")
		[[ -z $bad ]] || fail "testssl findings on port $port rated MEDIUM or worse: $bad"
	done
else
	echo "# testssl.sh is not installed: its scan is skipped (scripts/deps)"
fi
true
