#!/usr/bin/env bash
# Killing provision at any point and running it again converges: the same
# final state, nothing half-written, no stray temporary files, private keys
# never readable by others even when the kill lands right after the key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
write_config

# Deterministic kill points: right after these steps (or inside the PKI
# step, just after a private key is written and before its certificate).
points=(service-user linger podman-storage-conf pki-key-written pki-server-ca pki-initial-client
	registry-config registry-unit containers-policy registry-image)

for point in "${points[@]}"; do
	step "kill at $point"
	rc=0
	th env REGVISOR_TEST_KILL_AT="$point" "$REGVISOR" provision --config "$CONF" >/dev/null 2>&1 || rc=$?
	# The kill point is reached only if that step had something to change;
	# every point above is on the first run's path, so it must be reached.
	assert_eq "$rc" 137 "exit status when killed at $point"
	# Whatever exists of the keys is private already.
	for key in private/ca.key private/client-ca.key private/clients/ci.key; do
		if th test -e "/etc/registry/certs/$key"; then
			assert_eq "$(stat_of "/etc/registry/certs/$key")" "root:root 600" "$key after kill at $point"
		fi
	done
done

step "kills at random moments"
for ms in 50 150 300 600 900; do
	th timeout -s KILL "0.$(printf %03d "$ms")" "$REGVISOR" provision --config "$CONF" >/dev/null 2>&1 || true
done

step "a clean run converges"
provision || fail "provision after interruptions failed"
assert_contains "$OUT" ", 0 failed"
provision || fail "second provision failed"
assert_contains "$OUT" " 0 changed, 0 failed, 0 skipped"

step "no temporary files left behind"
left=$(th find /etc/regvisor /etc/registry /etc/containers /etc/systemd/user /var/tmp -xdev \
	-name '*.regvisor-tmp-*' -print)
assert_eq "$left" "" "temporary files"

step "the converged PKI verifies"
th openssl verify -CAfile /etc/registry/certs/ca/ca.crt /etc/registry/certs/registry.crt >/dev/null ||
	fail "server certificate does not verify"
th openssl verify -CAfile /etc/registry/certs/clients/ca.crt -CRLfile /etc/registry/certs/clients/crl.pem \
	-crl_check /etc/registry/certs/clients/ci.crt >/dev/null || fail "client certificate does not verify"

step "the registry starts from the converged state"
user_systemctl ci-svc start regvisor-registry.service || fail "start failed"
wait_until 60 registry_answers || fail "registry does not answer"
