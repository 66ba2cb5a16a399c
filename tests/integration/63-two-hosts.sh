#!/usr/bin/env bash
# Two test hosts on one private network (a network zone's bridge,
# 198.18.0.0/24): the registry host, provisioned by regvisor and running the
# full stack; a client host that is NOT provisioned and reaches the registry
# by name (registry.test -> 198.18.0.1 in its /etc/hosts, never 127.0.0.1):
#   - the client pushes over 4443 with a client certificate copied from the
#     registry host into its certs.d, and pulls over 443 with only the CA;
#     the registry host's access log shows the client's address for both;
#   - from the client, 4443 without a certificate is 400 and a push to 443
#     is refused (403);
#   - a GPG-signed push from the client (its own key, signatures stored in
#     the registry through the signature extension) and a pull over 443 under the registry host's
#     policy (policy.json and the signers' key copied to the client, no
#     override) succeed; an unsigned image is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"


th_boot_two
on_failure th journalctl -u regvisor --no-pager -n 60

step "client: a signing key (gpg --batch), its public key to the registry host as [signing] keys"
signer_key thc "CI <ci@registry.test>"

step "registry host: provision, regvisor.service"
write_config "$(printf '[signing]\nkeys = %s' "$KEYS")"
provision >/dev/null || fail "provision failed: $OUT"
start_run_unit
proxy_up() {
	thc curl -s -m 5 --cacert /etc/containers/certs.d/registry.test/ca.crt -f -o /dev/null https://registry.test/v2/
}

step "client: certs.d from the registry host (CA; client certificate and key for :4443)"
th cat "$CA" | thc_write /etc/containers/certs.d/registry.test/ca.crt
th cat "$CA" | thc_write /etc/containers/certs.d/registry.test:4443/ca.crt
th cat "$C/clients/ci.crt" | thc_write /etc/containers/certs.d/registry.test:4443/client.cert
th cat "$C/private/clients/ci.key" | thc_write /etc/containers/certs.d/registry.test:4443/client.key 0600
wait_until 30 proxy_up || fail "the client does not reach https://registry.test/ (443)"

# access_from PORT METHOD PATH STATUS: the registry host's access log has
# that request from the client's address.
access_from() {
	th journalctl --no-pager -u regvisor REGVISOR_EVENT=access -o cat |
		grep -Eq -- "port=$1 client=${TH_CLIENT_ADDR//./\\.} .*method=$2 path=$3 status=$4 " ||
		fail "no access log line: port=$1 client=$TH_CLIENT_ADDR method=$2 path=$3 status=$4"
}

step "client: skopeo copy over 4443 (client certificate), podman pull over 443, by name"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/test/two:1 2>&1) ||
	fail "push from the client over 4443 failed: $out"
access_from push PUT /v2/test/two/manifests/1 201
# The registry host's own policy is not the client's: the client is not
# provisioned, so its policy is Debian's default (accept anything).
out=$(thc podman pull -q registry.test/test/two:1 2>&1) || fail "pull from the client over 443 failed: $out"
access_from pull GET /v2/test/two/manifests/1 200
thc podman image exists registry.test/test/two:1 || fail "the pulled image is not on the client"

step "client: 4443 without a certificate is 400; a push to 443 is 403"
code=$(thc curl -s -m 10 --cacert /etc/containers/certs.d/registry.test/ca.crt -o /dev/null -w '%{http_code}' \
	https://registry.test:4443/v2/)
assert_eq "$code" 400 "GET /v2/ on 4443 without a certificate from the client"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test/test/to443:1 2>&1) &&
	fail "a push to 443 from the client succeeded: $out"
assert_contains "$out" "denied"

step "client: the registry host's policy and signers' key (no lookaside: the extension)"
th cat /etc/containers/policy.json | thc_write /etc/containers/policy.json
th cat /etc/containers/keys/regvisor-signers.gpg | thc_write /etc/containers/keys/regvisor-signers.gpg

step "client: signed push over 4443, verified pull over 443 (no override); unsigned refused"
out=$(thc env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "oci-archive:$REGISTRY_ARCHIVE" \
	docker://registry.test:4443/test/signed:1 2>&1) || fail "signed push from the client failed: $out"
out=$(thc podman pull -q registry.test/test/signed:1 2>&1) || fail "verified pull on the client failed: $out"
access_from pull GET /v2/test/signed/manifests/1 200
out=$(thc podman pull -q registry.test/test/two:1 2>&1) && fail "an unsigned image was pulled: $out"
assert_contains "$out" "A signature was required, but no signature exists"
