#!/usr/bin/env bash
# Revocation is immediate and cannot be undone by accident (issue 8, items
# 5, 6 and 8), on a provisioned host with the whole stack running as
# regvisor.service, with curl and a Python client over real mTLS:
#   (c) provision makes no client certificate unless asked ([tls]
#       initial_client), and never reissues a name whose certificate was
#       revoked; pki issue-client needs --reissue for it;
#   (b) `pki revoke alice` while alice pushes: within 2 s alice is refused
#       (400, certificate revoked) without a manual reload; her kept-alive
#       connection cannot start another request; the registry's log and
#       storage show nothing of her after the revoke; bob's upload and a
#       slow anonymous pull that span the revoke complete intact;
#   (a) a damaged CRL and a CRL of another CA (same name, other key): provision
#       and pki revoke fail naming the file, leave it byte for byte, and the
#       proxy refuses to reload (or start) with it: alice stays refused;
#   (d) CRL distribution points: the server certificate's and a client
#       certificate's URI (read with openssl x509 -ext) is fetched through the
#       proxy on 443 (and 4443): 200, application/pkix-crl, a DER CRL that
#       verifies against the certificate's own CA; after `pki revoke dave`
#       the client CA's CRL served there lists dave's serial within 5 s;
#       other methods are refused and the registry never sees the path;
#       with no server CA CRL on disk (a host not provisioned since the
#       CRL existed), the reload makes one: regvisor run renews what it
#       owns (pki-renewed), serves it, and provision then has nothing to do.
# PARTS (default "c d b a") picks parts; d, b and a need only the common setup.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

PARTS=${PARTS:-c d b a}
C=/etc/registry/certs
CA=$C/ca/ca.crt
CRL=$C/clients/crl.pem
CURL=(curl -s -m 10 --cacert "$CA")
# Where the test keeps a client's key and certificate, as a client machine
# (or an attacker who took them) would: pki revoke removes the server's copy.
KEEP=/root/clients
MARK=m$RANDOM$RANDOM

has_part() { [[ " $PARTS " == *" $1 "* ]]; }

stop_jobs() {
	kill "$@" 2>/dev/null || true
}

pki() {
	th "$REGVISOR" pki --config "$CONF" "$@"
}

# keep NAME: copy NAME's key and certificate to $KEEP.
keep() {
	th install -D -m 0600 "$C/private/clients/$1.key" "$KEEP/$1.key"
	th install -D -m 0644 "$C/clients/$1.crt" "$KEEP/$1.crt"
}

# push_code NAME PATH [CURL ARGS...]: the status of a request on 4443 with
# NAME's kept certificate (POST unless the arguments say otherwise).
push_code() {
	local name=$1 path=$2
	shift 2
	th "${CURL[@]}" -o /dev/null -w '%{http_code}' --cert "$KEEP/$name.crt" --key "$KEEP/$name.key" \
		-X POST "$@" "https://registry.test:4443$path" || true
}

# upload_blob NAME REPO FILE [CURL ARGS...]: a blob upload (POST, then PUT of
# FILE) over 4443 with NAME's certificate; prints the PUT's status.
upload_blob() {
	local name=$1 repo=$2 file=$3 location digest sep='?'
	shift 3
	digest=sha256:$(th sha256sum "$file" | cut -d' ' -f1)
	location=$(th "${CURL[@]}" -X POST -D - -o /dev/null --cert "$KEEP/$name.crt" --key "$KEEP/$name.key" \
		"https://registry.test:4443/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
	[[ -n $location ]] || {
		echo "no-location"
		return 0
	}
	location=${location#https://registry.test:4443}
	[[ $location == *\?* ]] && sep='&'
	th "${CURL[@]}" -m 60 -o /dev/null -w '%{http_code}' -X PUT -T "$file" "$@" \
		-H 'Content-Type: application/octet-stream' --cert "$KEEP/$name.crt" --key "$KEEP/$name.key" \
		"https://registry.test:4443$location${sep}digest=$digest" || true
}

# socket_blob REPO DIGEST: the blob's sha256 as the registry itself serves it.
socket_blob() {
	th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/$1/blobs/$2" | sha256sum | cut -d' ' -f1
}

registry_log() {
	th journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=regvisor-registry.service
}

revoked_refused() {
	local body
	body=$(th "${CURL[@]}" -w '\n%{http_code}' --cert "$KEEP/$1.crt" --key "$KEEP/$1.key" \
		https://registry.test:4443/v2/) || return 1
	[[ ${body##*$'\n'} == 400 && $body == *"certificate revoked"* ]]
}

proxy_up() {
	th "${CURL[@]}" -f -o /dev/null https://registry.test/v2/
}

th_boot
INITIAL_CLIENT='' write_config
on_failure th journalctl -u regvisor --no-pager -n 80
on_failure th journalctl --no-pager -n 40 _SYSTEMD_USER_UNIT=regvisor-registry.service
th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'

step "provision with the default configuration"
provision || fail "provision failed"

if has_part c; then
	step "(c) no client certificate unless asked"
	made=$(th find "$C/clients" "$C/private/clients" -type f ! -name ca.crt ! -name crl.pem)
	assert_eq "$made" "" "client certificates made by a default provision"
	assert_contains "$OUT" "pki-initial-client       none asked for"

	step "(c) [tls] initial_client = carol: made once, then kept"
	th sed -i 's/^\[tls\]$/[tls]\ninitial_client = carol/' "$CONF"
	provision || fail "provision with initial_client failed"
	assert_contains "$OUT" "changed  pki-initial-client       new key and certificate"
	th openssl verify -CAfile "$C/clients/ca.crt" -CRLfile "$CRL" -crl_check "$C/clients/carol.crt" >/dev/null ||
		fail "carol's certificate does not verify"
	provision || fail "second provision failed"
	assert_contains "$OUT" " 0 changed, 0 failed"

	step "(c) after pki revoke carol, provision does not bring carol back"
	out=$(pki revoke carol) || fail "pki revoke carol failed: $out"
	assert_contains "$out" "carol revoked"
	assert_contains "$out" "regvisor.service is inactive: no running proxy to tell"
	for run in 1 2; do
		provision || fail "provision $run after the revoke failed"
		assert_contains "$OUT" "carol's last certificate is revoked: not reissued"
		assert_contains "$OUT" " 0 changed, 0 failed"
		th test ! -e "$C/clients/carol.crt" || fail "provision $run reissued carol"
		th test ! -e "$C/private/clients/carol.key" || fail "provision $run made a key for carol"
	done
	out=$(pki issue-client carol 2>&1) && fail "pki issue-client carol succeeded without --reissue: $out"
	assert_contains "$out" "--reissue"
	th test ! -e "$C/clients/carol.crt" || fail "issue-client without --reissue made carol.crt"
	out=$(pki issue-client --reissue carol 2>&1) || fail "pki issue-client --reissue carol failed: $out"
	th openssl verify -CAfile "$C/clients/ca.crt" -CRLfile "$CRL" -crl_check "$C/clients/carol.crt" >/dev/null ||
		fail "carol's reissued certificate does not verify"
fi

step "clients alice and bob (pki issue-client), the stack as regvisor.service"
pki issue-client alice >/dev/null || fail "issue-client alice"
pki issue-client bob >/dev/null || fail "issue-client bob"
keep alice
keep bob
install_run_unit
th systemctl start regvisor.service || fail "regvisor.service did not start"
wait_until 20 proxy_up || fail "the proxy does not answer on 443"
big=/root/big.bin
th sh -c "head -c $((2 * 1024 * 1024)) /dev/urandom > $big"
assert_eq "$(upload_blob alice "alice/before-$MARK" "$big")" 201 "alice's push before the revoke"
big_digest=sha256:$(th sha256sum "$big" | cut -d' ' -f1)
assert_eq "sha256:$(socket_blob "alice/before-$MARK" "$big_digest")" "$big_digest" "alice's blob in the registry"

# cdp CERT: the one URI of CERT's CRL distribution point.
cdp() {
	th openssl x509 -in "$1" -noout -ext crlDistributionPoints | sed -n 's/^ *URI://p'
}

# fetch_crl URI OUT [CURL ARGS...]: GET URI through the proxy (registry.test
# is 127.0.0.1) into OUT; prints "STATUS CONTENT-TYPE".
fetch_crl() {
	local uri=$1 out=$2
	shift 2
	th "${CURL[@]}" -o "$out" -w '%{http_code} %{content_type}' "$@" "$uri" || true
}

# crl_verifies DER CAFILE: the DER CRL is signed by the CA in CAFILE.
crl_verifies() {
	local out
	out=$(th openssl crl -inform DER -in "$1" -CAfile "$2" -noout -verify 2>&1) ||
		fail "the CRL served as $1 does not verify against $2: $out"
	assert_contains "$out" "verify OK"
}

# crl_lists DER SERIAL: whether the DER CRL lists SERIAL (openssl's hex).
crl_lists() {
	th openssl crl -inform DER -in "$1" -noout -text | grep -q "Serial Number: $2\$"
}

if has_part d; then
	step "(d) the server certificate names the server CA's CRL, and the proxy serves it"
	uri=$(cdp "$C/registry.crt")
	assert_eq "$uri" "https://registry.test/regvisor/crl/server-ca.crl" "the server certificate's CRL distribution point"
	assert_eq "$(fetch_crl "$uri" /root/server-ca.crl)" "200 application/pkix-crl" "GET $uri on 443"
	crl_verifies /root/server-ca.crl "$CA"
	th sh -c "openssl crl -in $C/ca/crl.pem -outform DER | cmp -s - /root/server-ca.crl" ||
		fail "the CRL served is not the server CA's $C/ca/crl.pem"
	head=$(th "${CURL[@]}" -I "$uri" | tr -d '\r')
	assert_contains "$head" "HTTP/1.1 200"
	grep -qix "content-length: $(th stat -c %s /root/server-ca.crl)" <<<"$head" ||
		fail "HEAD $uri: no Content-Length of the CRL's size: $head"

	step "(d) a client certificate names the client CA's CRL; served on 443 and 4443"
	pki issue-client dave >/dev/null || fail "issue-client dave"
	keep dave
	uri=$(cdp "$KEEP/dave.crt")
	assert_eq "$uri" "https://registry.test/regvisor/crl/client-ca.crl" "dave's CRL distribution point"
	assert_eq "$(fetch_crl "$uri" /root/client-ca.crl)" "200 application/pkix-crl" "GET $uri on 443"
	crl_verifies /root/client-ca.crl "$C/clients/ca.crt"
	assert_eq "$(fetch_crl "https://registry.test:4443/regvisor/crl/client-ca.crl" /root/client-ca-4443.crl \
		--cert "$KEEP/bob.crt" --key "$KEEP/bob.key")" "200 application/pkix-crl" "GET of the client CA CRL on 4443"
	th cmp -s /root/client-ca.crl /root/client-ca-4443.crl || fail "443 and 4443 serve different CRLs"
	serial=$(th openssl x509 -in "$KEEP/dave.crt" -noout -serial | cut -d= -f2)
	crl_lists /root/client-ca.crl "$serial" && fail "dave is on the CRL before the revoke"

	step "(d) after pki revoke dave, the served CRL lists dave within 5 s"
	pki revoke dave >/dev/null || fail "pki revoke dave failed"
	dave_listed() {
		[[ $(fetch_crl "$uri" /root/client-ca.crl) == "200 application/pkix-crl" ]] &&
			crl_lists /root/client-ca.crl "$serial"
	}
	wait_until 5 dave_listed || fail "the CRL served at $uri does not list dave ($serial) 5 s after the revoke"
	crl_verifies /root/client-ca.crl "$C/clients/ca.crt"

	step "(d) only GET and HEAD, and the registry never sees the path"
	for m in POST PUT DELETE; do
		code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' -X "$m" "$uri" || true)
		assert_eq "$code" 403 "$m $uri"
	done
	code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' "https://registry.test/regvisor/crl/other.crl" || true)
	assert_eq "$code" 404 "GET of another path below /regvisor/crl/"
	registry_log | grep -q "regvisor/crl" && fail "the registry logged a request for /regvisor/crl"

	step "(d) no server CA CRL (a host not provisioned again): the reload makes one (regvisor run renews what it owns) and serves it"
	th mv "$C/ca/crl.pem" /root/server-crl.pem
	th systemctl reload regvisor.service || fail "reload without the server CA CRL failed"
	server_crl_code() {
		th "${CURL[@]}" -o /dev/null -w '%{http_code}' https://registry.test/regvisor/crl/server-ca.crl || true
	}
	crl_200() { [[ $(server_crl_code) == 200 ]]; }
	wait_until 10 crl_200 || fail "the new server CA CRL is not served: $(server_crl_code)"
	th test -s "$C/ca/crl.pem" || fail "no new server CA CRL in $C/ca/crl.pem"
	journal_events pki-renewed | grep -q "server CA's CRL" || fail "no pki-renewed event for the server CA's CRL"
	proxy_up || fail "443 does not serve after the reload"
	provision || fail "provision after the renewal failed"
	assert_contains "$OUT" "ok       pki-server-crl"
fi

if has_part b; then
	step "(b) before the revoke: bob's slow upload, a slow pull, alice's kept-alive connection"
	th rm -f /root/go
	slow=/root/slow.bin
	th sh -c "head -c $((1536 * 1024)) /dev/urandom > $slow"
	slow_digest=sha256:$(th sha256sum "$slow" | cut -d' ' -f1)
	# ~6 s each at 256 KiB/s: both are in flight when the proxy reloads.
	upload_blob bob "bob/slow-$MARK" "$slow" --limit-rate 256k >"$TEST_TMP/bob.out" &
	bob_pid=$!
	th sh -c "curl -s -m 60 --cacert $CA --limit-rate 400k -o /root/pulled.bin -w '%{http_code}' \
		https://registry.test/v2/alice/before-$MARK/blobs/$big_digest" >"$TEST_TMP/pull.out" &
	pull_pid=$!
	th /usr/bin/python3 "$REPO/tests/integration/58-keepalive.py" registry.test 4443 "$CA" "$KEEP/alice.crt" \
		"$KEEP/alice.key" /root/go "/v2/alice/keepalive-$MARK/blobs/uploads/" >"$TEST_TMP/keepalive.out" &
	ka_pid=$!
	# A second one whose next request is half sent when the proxy reloads.
	th /usr/bin/python3 "$REPO/tests/integration/58-keepalive.py" registry.test 4443 "$CA" "$KEEP/alice.crt" \
		"$KEEP/alice.key" /root/go-partial "/v2/alice/partial-$MARK/blobs/uploads/" partial \
		>"$TEST_TMP/partial.out" &
	partial_pid=$!
	on_exit stop_jobs "$bob_pid" "$pull_pid" "$ka_pid" "$partial_pid"
	ka_ready() { grep -q '^ready 200$' "$TEST_TMP/keepalive.out" && grep -q '^ready 200$' "$TEST_TMP/partial.out"; }
	wait_until 10 ka_ready || fail "alice's kept-alive connections did not start: $(cat "$TEST_TMP"/*.out)"
	sleep 1 # let the upload and the pull get going (their end is checked below)

	step "(b) pki revoke alice while regvisor.service runs"
	# Timed inside the test host (no harness overhead): the revoke, then
	# alice's GET /v2/ every 0.1 s until it is refused, for at most 2 s
	# after the revoke returned.
	th sh -c '
		now() { date +%s%3N; }
		t0=$(now)
		"$1" pki --config "$2" revoke alice > /root/revoke.out 2>&1 || { echo "revoke-failed"; exit 0; }
		t1=$(now)
		while :; do
			body=$(curl -s -m 2 --cacert "$3" --cert "$4/alice.crt" --key "$4/alice.key" \
				-w "\n%{http_code}" https://registry.test:4443/v2/)
			case $body in *"certificate revoked"*400) break ;; esac
			[ $(($(now) - t1)) -lt 2000 ] || { echo "not-refused $((t1 - t0)) $(($(now) - t1))"; exit 0; }
			sleep 0.1
		done
		echo "refused $((t1 - t0)) $(($(now) - t1))"' _ "$REGVISOR" "$CONF" "$CA" "$KEEP" >"$TEST_TMP/revoke.timing"
	th touch /root/go-partial
	read -r verdict revoke_ms refused_ms <"$TEST_TMP/revoke.timing"
	out=$(th cat /root/revoke.out)
	printf '%s\n' "$out" | sed 's/^/#   /'
	step "pki revoke took ${revoke_ms:-?} ms; alice refused ${refused_ms:-?} ms after it returned"
	th journalctl -u regvisor --no-pager -o short-precise -n 30 | grep -E "reload|worker" | tail -n 6 | sed 's/^/#   /'
	assert_eq "$verdict" refused "alice within 2 s of pki revoke"
	assert_contains "$out" "alice revoked"
	assert_contains "$out" "the running proxy was told"

	step "(b) alice's push after the revoke: 400, and the registry saw nothing of it"
	body=$(th "${CURL[@]}" -X POST --cert "$KEEP/alice.crt" --key "$KEEP/alice.key" \
		"https://registry.test:4443/v2/alice/after-$MARK/blobs/uploads/")
	assert_contains "$body" "certificate revoked" "answer to alice's push after the revoke"
	assert_eq "$(push_code alice "/v2/alice/after-$MARK/blobs/uploads/")" 400 "alice's push after the revoke"
	th touch /root/go
	wait "$ka_pid" || true
	ka=$(tail -n 1 "$TEST_TMP/keepalive.out")
	step "alice's kept-alive connection after the revoke: $ka"
	[[ $ka == closed || $ka == "status 400" ]] || fail "alice's kept-alive connection could still push: $ka"
	wait "$partial_pid" || true
	ka=$(tail -n 1 "$TEST_TMP/partial.out")
	step "alice's half-sent request after the revoke: $ka"
	[[ $ka == closed || $ka == "status 400" ]] || fail "alice's half-sent request went through: $ka"

	step "(b) bob's upload and the slow pull that spanned the reload completed"
	wait "$bob_pid" || true
	assert_eq "$(cat "$TEST_TMP/bob.out")" 201 "bob's upload across the reload"
	assert_eq "sha256:$(socket_blob "bob/slow-$MARK" "$slow_digest")" "$slow_digest" "bob's blob in the registry"
	wait "$pull_pid" || true
	assert_eq "$(cat "$TEST_TMP/pull.out")" 200 "slow pull across the reload"
	assert_eq "sha256:$(th sha256sum /root/pulled.bin | cut -d' ' -f1)" "$big_digest" "slow pull's content"
	assert_eq "$(upload_blob bob "bob/after-$MARK" "$slow")" 201 "bob's push after the revoke"

	step "(b) the registry's side: requests of alice before the revoke logged, none after"
	log=$(registry_log)
	assert_contains "$log" "before-$MARK" "the registry's log (alice's push before the revoke)"
	grep -q "alice/after-$MARK" <<<"$log" && fail "the registry logged alice's push after the revoke"
	grep -q "keepalive-$MARK" <<<"$log" && fail "the registry logged alice's kept-alive push after the revoke"
	grep -q "partial-$MARK" <<<"$log" && fail "the registry logged alice's half-sent push after the revoke"
	stored=$(th find /var/lib/registry -path "*alice/after-$MARK*" -o -path "*keepalive-$MARK*" -o \
		-path "*partial-$MARK*")
	assert_eq "$stored" "" "registry storage for alice's pushes after the revoke"
fi

if has_part a; then
	step "(a) alice revoked (if part b did not)"
	if ! revoked_refused alice; then
		pki revoke alice >/dev/null || fail "pki revoke alice failed"
		# Part (a) is about the CRL file: a reload by hand as well, so that
		# it runs on code where pki revoke does not reload.
		th systemctl reload regvisor.service
		wait_until 5 revoked_refused alice || fail "alice is not refused after pki revoke"
	fi
	th cp -p "$CRL" /root/crl.good
	good=$(th sha256sum "$CRL")

	# A CRL of another CA with the same name: a second PKI from the same
	# configuration, staged below /var/tmp/other.
	th mkdir -p /var/tmp/other
	th "$REGVISOR" provision --config "$CONF" --root /var/tmp/other >/dev/null || fail "staging another PKI"
	th cmp -s /var/tmp/other$CRL "$CRL" && fail "the other CA's CRL is the same file"

	damaged=/root/crl.damaged
	th sh -c "head -c 300 /root/crl.good > $damaged"
	for bad in damaged foreign; do
		if [[ $bad == damaged ]]; then
			th cp "$damaged" "$CRL"
			what="does not parse as a PEM X.509 CRL"
		else
			th cp /var/tmp/other$CRL "$CRL"
			what="is not the client CA's CRL"
		fi
		before=$(th sha256sum "$CRL")

		step "(a) $bad CRL: provision fails naming the file, leaves it as it was"
		provision && fail "provision succeeded with a $bad CRL"
		assert_contains "$OUT" "failed   pki-client-crl"
		assert_contains "$OUT" "$CRL $what"
		assert_eq "$(th sha256sum "$CRL")" "$before" "$bad CRL after provision"

		step "(a) $bad CRL: pki revoke bob fails the same way, bob untouched"
		out=$(pki revoke bob 2>&1) && fail "pki revoke bob succeeded with a $bad CRL: $out"
		assert_contains "$out" "$CRL $what"
		assert_eq "$(th sha256sum "$CRL")" "$before" "$bad CRL after pki revoke"
		th test -e "$C/clients/bob.crt" || fail "bob's certificate moved by a failed revoke"

		step "(a) $bad CRL: the proxy refuses to reload with it; alice stays refused, bob still pushes"
		since=$(th date '+%Y-%m-%d %H:%M:%S')
		# systemctl reload fails (the reload's outcome reaches it), and the
		# proxy says why in its log.
		th systemctl reload regvisor.service && fail "systemctl reload succeeded with a $bad CRL"
		reload_refused() {
			th journalctl -u regvisor --no-pager -o cat --since "$since" | grep -q "cannot load the certificates"
		}
		wait_until 10 reload_refused || fail "the proxy did not refuse the reload with a $bad CRL"
		revoked_refused alice || fail "alice is not refused after a reload with a $bad CRL"
		assert_eq "$(upload_blob bob "bob/$bad-$MARK" "$big")" 201 "bob's push with a $bad CRL on disk"
	done

	step "(a) foreign CRL: a restarted proxy does not serve 4443 without its CRL"
	since=$(th date '+%Y-%m-%d %H:%M:%S')
	th systemctl restart --no-block regvisor.service
	crl_refused() {
		th journalctl -u regvisor --no-pager -o cat --since "$since" | grep -q "the CRL is not"
	}
	wait_until 20 crl_refused || fail "no clear error about the CRL at start"
	code=$(push_code alice /v2/ -X GET)
	[[ $code != 200 ]] || fail "alice got 200 from a proxy started with another CA's CRL"
	code=$(push_code bob /v2/ -X GET)
	[[ $code != 200 ]] || fail "4443 served without its CRL"

	step "(a) the good CRL back: provision converges, alice still refused"
	th cp -p /root/crl.good "$CRL"
	assert_eq "$(th sha256sum "$CRL")" "$good" "restored CRL"
	provision || fail "provision with the good CRL failed"
	assert_contains "$OUT" ", 0 failed"
	th systemctl restart regvisor.service || fail "restart with the good CRL"
	wait_until 20 proxy_up || fail "the proxy does not come back"
	wait_until 10 revoked_refused alice || fail "alice not refused after the restart"
	code=$(push_code bob /v2/ -X GET)
	assert_eq "$code" 200 "bob after the restart"
fi
