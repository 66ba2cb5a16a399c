#!/usr/bin/env bash
# The command line refuses what it does not understand, with one clear line
# and exit status 2, and never takes a question for a value: `--help`
# anywhere after a verb shows that verb's help; a client name that reads as
# an option ("-v", "--help") issues nothing; extra arguments are refused.
# `pki issue-client` says where the certificate and the key are and where
# they go on the client. No test host: the real binary on a staging tree
# (provision --root), nothing written outside $TEST_TMP.
. "$(dirname "$0")/lib.sh"

S=$TEST_TMP/stage
CONF=$TEST_TMP/regvisor.conf
printf '[tls]\nserver_names = registry.test, 192.0.2.7\n' >"$CONF"
CERTS=$S/etc/registry/certs

# rv EXPECTED_STATUS ARGS...: run regvisor, OUT is its stdout and stderr.
rv() {
	local want=$1 rc=0
	shift
	OUT=$("$REGVISOR" "$@" 2>&1) || rc=$?
	[[ $rc -eq $want ]] || fail "regvisor $*: exit $rc, expected $want; output: $OUT"
}

step "regvisor --help promises only commands that exist"
rv 0 --help
# Every command it names runs (its --help answers), and so does every pki
# command `pki --help` names.
for verb in $(printf '%s\n' "$OUT" | sed -n 's/^  \([a-z-]*\) .*/\1/p'); do
	rv 0 "$verb" --help
	assert_contains "$OUT" "Usage: regvisor $verb"
done
rv 2 pki nosuch
assert_contains "$OUT" "unknown command 'nosuch'"
rv 2 pki list build-01
assert_contains "$OUT" "unexpected argument 'build-01'"

step "run names the missing service user (not '(null)')"
printf '[tls]\nserver_names = registry.test\n[host]\nservice_user = rv-nosuchuser\n' >"$TEST_TMP/nouser.conf"
rv 1 run --config "$TEST_TMP/nouser.conf"
assert_contains "$OUT" "service user rv-nosuchuser does not exist"

step "extra arguments are refused, naming the argument"
rv 2 version extra
assert_contains "$OUT" "unexpected argument 'extra'"
rv 2 --version extra
assert_contains "$OUT" "unexpected argument 'extra'"
rv 0 version
assert_contains "$OUT" "regvisor "
for verb in provision run proxy; do
	rv 2 "$verb" --config "$CONF" extra
	assert_contains "$OUT" "unexpected argument 'extra'"
done

step "provision --root creates a staging DIR that does not exist yet, and says what it skips and why"
rv 0 provision --config "$CONF" --root "$S"
assert_contains "$OUT" "--root: created $S"
# No user of this configuration exists on this machine ([host] names them):
printf '[tls]\nserver_names = registry.test\n[host]\nservice_user = rv-nouser-a\nproxy_user = rv-nouser-b\n' \
	>"$TEST_TMP/nousers.conf"
rv 0 provision --config "$TEST_TMP/nousers.conf" --root "$TEST_TMP/stage2/deeper"
assert_contains "$OUT" "skipped  service-user             (--root: a step on the host itself)"
assert_contains "$OUT" "skipped  podman-state-dir         (needs users rv-nouser-a and rv-nouser-b, which do not exist on this machine)"
assert_contains "$OUT" "--root: 12 steps skipped that act on the host itself"
assert_contains "$OUT" "skipped  registry-egress          (--root: a step on the host itself)"
assert_contains "$OUT" "steps skipped because rv-nouser-a or rv-nouser-b does not exist on this machine"
[[ -f $TEST_TMP/stage2/deeper/etc/regvisor/registry.yml ]] || fail "no registry.yml in the new staging tree"
: >"$TEST_TMP/file"
rv 1 provision --config "$CONF" --root "$TEST_TMP/file"
assert_contains "$OUT" "not a directory"
[[ -f $CERTS/clients/ca.crt ]] || fail "no client CA in the staging tree"

step "--help anywhere after a verb shows that verb's help and does nothing"
for args in "pki issue-client --help" "pki --config $CONF --root $S issue-client --help" \
	"pki revoke ci --help" "provision --config --help" "version --help" "health --help"; do
	# shellcheck disable=SC2086
	rv 0 $args
	assert_contains "$OUT" "Usage: regvisor ${args%% *}"
done
for n in --help -v -h; do
	[[ ! -e $CERTS/clients/$n.crt ]] || fail "a certificate named '$n' was issued"
done

step "client names that read as options are refused"
# pki takes its options after the command too: a name that reads as an
# option is an option (and refused as an unknown one); after "--" it is a
# name, and the name rule refuses it.
for n in -v --version -x.; do
	rv 2 pki --config "$CONF" --root "$S" issue-client "$n"
	assert_contains "$OUT" "option"
	rv 2 pki --config "$CONF" --root "$S" issue-client -- "$n"
	assert_contains "$OUT" "client name '$n' must be"
	[[ ! -e $CERTS/clients/$n.crt ]] || fail "a certificate named '$n' was issued"
done
rv 2 pki --config "$CONF" --root "$S" issue-client .hidden
assert_contains "$OUT" "client name '.hidden' must be"
[[ ! -e $CERTS/clients/.hidden.crt ]] || fail "a certificate named '.hidden' was issued"
rv 2 pki --config "$CONF" --root "$S" issue-client
assert_contains "$OUT" "expected a client NAME"
rv 2 pki --config "$CONF" --root "$S" issue-client build-01 build-02
assert_contains "$OUT" "unexpected argument 'build-02'"
[[ ! -e $CERTS/clients/build-01.crt ]] || fail "issued despite an extra argument"

step "issue-client says where the certificate and the key are, and what to do next"
rv 0 pki --config "$CONF" --root "$S" issue-client build-01
printf '%s\n' "$OUT" | sed 's/^/#   /'
assert_contains "$OUT" "$CERTS/clients/build-01.crt"
assert_contains "$OUT" "$CERTS/private/clients/build-01.key"
assert_contains "$OUT" "$CERTS/ca/ca.crt"
assert_contains "$OUT" "/etc/containers/certs.d/registry.test:4443/client.cert"
assert_contains "$OUT" "/etc/containers/certs.d/registry.test:4443/client.key"
assert_contains "$OUT" "/etc/containers/certs.d/registry.test:4443/ca.crt"
assert_contains "$OUT" "/etc/containers/certs.d/registry.test/ca.crt"
# The paths it prints are the real files, and the key matches the certificate.
[[ -f $CERTS/private/clients/build-01.key ]] || fail "the key is not where it says"
assert_eq "$(openssl x509 -in "$CERTS/clients/build-01.crt" -noout -pubkey)" \
	"$(openssl pkey -in "$CERTS/private/clients/build-01.key" -pubout)" "certificate and key"

step "pki list: name, serial, expiry, and valid or revoked, from the certificate tree"
rv 0 pki --config "$CONF" --root "$S" issue-client build-02
rv 0 pki --config "$CONF" --root "$S" revoke build-02
rv 0 pki --config "$CONF" --root "$S" list
printf '%s\n' "$OUT" | sed 's/^/#   /'
serial=$(openssl x509 -in "$CERTS/clients/build-01.crt" -noout -serial | cut -d= -f2)
expires=$(date -u -d "$(openssl x509 -in "$CERTS/clients/build-01.crt" -noout -enddate | cut -d= -f2)" '+%Y-%m-%dT%H:%M:%SZ')
line=$(printf '%s\n' "$OUT" | grep '^build-01 ') || fail "build-01 not listed: $OUT"
assert_contains "$line" "$serial" "build-01's line"
assert_contains "$line" "$expires" "build-01's line"
assert_contains "$line" "valid" "build-01's line"
line=$(printf '%s\n' "$OUT" | grep '^build-02 ') || fail "build-02 not listed: $OUT"
assert_contains "$line" "revoked" "build-02's line"
clients=$(printf '%s\n' "$OUT" | sed '/^$/q')
[[ $clients != *"ca "* ]] || fail "the client CA is listed as a client: $clients"
line=$(printf '%s\n' "$OUT" | grep '^server-ca-crl ') || fail "server-ca-crl not listed: $OUT"
assert_contains "$line" ", 0 revoked" "the server CA's CRL, which revokes nothing"
