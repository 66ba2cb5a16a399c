#!/usr/bin/env bash
# regvisor provision --root DIR: the whole tree written below DIR for review,
# owners and modes as on a host, a PKI that `openssl verify` accepts with the
# configured SANs, and the host itself untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
write_config
# The users exist (made by hand, as on a host provisioned earlier) so that
# the staging tree carries their owners.
th useradd --system --user-group --create-home ci-svc
th useradd --system --user-group --no-create-home registry-proxy
uid=$(th id -u ci-svc)
S=/var/tmp/stage
th mkdir -p "$S"

step "provision --root"
provision --root "$S" || fail "provision --root failed"
assert_contains "$OUT" "skipped  service-user"
assert_contains "$OUT" "skipped  linger"
assert_contains "$OUT" "skipped  registry-image"
assert_contains "$OUT" ", 0 failed"

step "nothing written outside the staging tree"
th test ! -e /etc/regvisor/registry.yml || fail "/etc/regvisor/registry.yml written on the host"
th test ! -e /etc/registry/certs || fail "/etc/registry/certs written on the host"
th test ! -e /var/lib/systemd/linger/ci-svc || fail "linger enabled on the host"

step "owners and modes"
C=$S/etc/registry/certs
assert_eq "$(stat_of "$C/private")" "root:registry-proxy 750" private/
assert_eq "$(stat_of "$C/private/ca.key")" "root:root 600" ca.key
assert_eq "$(stat_of "$C/private/client-ca.key")" "root:root 600" client-ca.key
assert_eq "$(stat_of "$C/private/clients/ci.key")" "root:root 600" ci.key
assert_eq "$(stat_of "$C/private/registry.key")" "root:registry-proxy 640" registry.key
for f in registry.crt ca/ca.crt clients/ca.crt clients/ci.crt clients/crl.pem; do
	assert_eq "$(stat_of "$C/$f")" "root:root 644" "$f"
done
for d in ca clients requests; do
	assert_eq "$(stat_of "$C/$d")" "root:root 755" "$d/"
done
assert_eq "$(stat_of "$S/var/lib/registry")" "ci-svc:ci-svc 750" storage
assert_eq "$(stat_of "$S/var/tmp/podman-$uid")" "ci-svc:ci-svc 750" "podman state"
assert_eq "$(stat_of "$S/etc/regvisor/registry.yml")" "root:ci-svc 640" registry.yml
assert_eq "$(stat_of "$S/etc/regvisor/registry-http-secret")" "root:root 600" http secret
assert_eq "$(stat_of "$S/etc/systemd/user/regvisor-registry.service")" "root:root 644" unit

step "openssl verify accepts the certificates"
th openssl verify -CAfile "$C/ca/ca.crt" "$C/registry.crt" || fail "server certificate"
th openssl verify -CAfile "$C/clients/ca.crt" -CRLfile "$C/clients/crl.pem" -crl_check "$C/clients/ci.crt" ||
	fail "client certificate"
# The client CA must not vouch for the server, nor the server CA for clients.
th openssl verify -CAfile "$C/clients/ca.crt" "$C/registry.crt" >/dev/null 2>&1 &&
	fail "client CA verifies the server certificate"
th openssl verify -CAfile "$C/ca/ca.crt" "$C/clients/ci.crt" >/dev/null 2>&1 &&
	fail "server CA verifies the client certificate"
th openssl verify -purpose sslserver -CAfile "$C/ca/ca.crt" "$C/registry.crt" >/dev/null ||
	fail "server certificate not for serverAuth"
th openssl verify -purpose sslclient -CAfile "$C/clients/ca.crt" "$C/clients/ci.crt" >/dev/null ||
	fail "client certificate not for clientAuth"
th openssl x509 -in "$C/registry.crt" -noout -checkhost registry.test | grep -q 'does match' ||
	fail "SAN registry.test missing"
th openssl x509 -in "$C/registry.crt" -noout -checkip 127.0.0.1 | grep -q 'does match' ||
	fail "SAN 127.0.0.1 missing"
th openssl pkey -in "$C/private/registry.key" -noout || fail "server key does not parse"

step "second run changes nothing"
provision --root "$S" || fail "second provision --root failed"
assert_contains "$OUT" " 0 changed, 0 failed"

step "a new server name: new server certificate, same CA and key"
ca_before=$(th sha256sum "$C/ca/ca.crt")
key_before=$(th sha256sum "$C/private/registry.key")
th sed -i 's/^server_names = .*/server_names = registry.test, 127.0.0.1, mirror.test/' "$CONF"
provision --root "$S" || fail "provision with a new name failed"
assert_contains "$OUT" "changed  pki-server-cert          new certificate (server_names changed)"
# ... and the new name's signature rule in policy.json (registries.d names
# no namespace with [signing] mode = gpg, the default).
assert_contains "$OUT" " 2 changed, 0 failed"
assert_contains "$(th cat "$S/etc/containers/policy.json")" '"mirror.test:4443"' policy.json
assert_eq "$(th sha256sum "$C/ca/ca.crt")" "$ca_before" "server CA"
assert_eq "$(th sha256sum "$C/private/registry.key")" "$key_before" "server key"
th openssl x509 -in "$C/registry.crt" -noout -checkhost mirror.test | grep -q 'does match' ||
	fail "SAN mirror.test missing"

step "pki issue-client and revoke"
th "$REGVISOR" pki --config "$CONF" --root "$S" issue-client build-01 || fail "issue-client failed"
th openssl verify -CAfile "$C/clients/ca.crt" "$C/clients/build-01.crt" >/dev/null || fail "new client cert"
assert_eq "$(stat_of "$C/private/clients/build-01.key")" "root:root 600" build-01.key
th "$REGVISOR" pki --config "$CONF" --root "$S" revoke build-01 || fail "revoke failed"
th openssl verify -CAfile "$C/clients/ca.crt" -CRLfile "$C/clients/crl.pem" -crl_check \
	"$C/clients/build-01.crt.revoked" >/dev/null 2>&1 && fail "revoked certificate still verifies"
th openssl verify -CAfile "$C/clients/ca.crt" -CRLfile "$C/clients/crl.pem" -crl_check "$C/clients/ci.crt" \
	>/dev/null || fail "ci certificate no longer verifies after revoking another"
provision --root "$S" || fail "provision after revoke failed"
assert_contains "$OUT" " 0 changed, 0 failed"
