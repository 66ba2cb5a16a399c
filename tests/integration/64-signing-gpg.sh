#!/usr/bin/env bash
# GPG image signatures verified by Debian 12's own podman and skopeo
# (containers-image 5.23.1, built without sigstore) through the policy that
# provision installs with [signing] mode = gpg, and NO policy override:
#   - a signing key and a second, untrusted one, made with gpg in batch
#     mode; the trusted public key is [signing] keys, provision installs it
#     as /etc/containers/keys/regvisor-signers.gpg (root 0644);
#   - a bad key file (a secret key) stops provision at its first step with
#     one error, before anything changed;
#   - `skopeo copy --sign-by` and `podman push --sign-by` over 4443 (client
#     certificate); the signatures go through the registry's signature
#     extension into regvisor's signature store (65-signing-extension.sh
#     tests that transport; this test proves the policy);
#   - `podman pull NAME/repo` and `skopeo copy docker://NAME/repo` over 443
#     accept a signature made for NAME:4443/repo (the remapIdentity rule),
#     by tag and by digest;
#   - refused: an unsigned image, one signed by the untrusted key, and a
#     signature for another repository (test/signed's, copied to
#     test/moved); and, as a control, the signature for NAME:4443/repo with
#     the same signedBy rule but without the remapping.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
CA=$C/ca/ca.crt
SIGNER=/root/gnupg-signer
OTHER=/root/gnupg-other
KEYS=/etc/regvisor/signers.asc
INSTALLED=/etc/containers/keys/regvisor-signers.gpg

th_boot
on_failure th journalctl -u regvisor --no-pager -n 60
on_failure th cat /etc/containers/policy.json

step "gpg --batch: a trusted signing key and an untrusted one"
fpr=$(gen_key th "$SIGNER" "CI signer <ci@registry.test>")
other=$(gen_key th "$OTHER" "Someone else <other@example.test>")
[[ $fpr =~ ^[0-9A-F]{40}$ && $other =~ ^[0-9A-F]{40}$ ]] || fail "fingerprints: '$fpr' '$other'"
th /bin/sh -c "mkdir -p /etc/regvisor && GNUPGHOME=$SIGNER gpg --armor --export $fpr > $KEYS"

step "a secret key as [signing] keys: provision stops at its first step, nothing changed"
th /bin/sh -c "GNUPGHOME=$SIGNER gpg --batch --pinentry-mode loopback --passphrase '' --armor \
	--export-secret-keys $fpr > /etc/regvisor/secret.asc"
write_config "$(printf '[signing]\nkeys = /etc/regvisor/secret.asc')"
provision && fail "provision accepted a secret key: $OUT"
assert_contains "$OUT" "failed   signing-keys"
assert_contains "$OUT" "holds the secret key $fpr"
assert_contains "$OUT" " 0 changed, 1 failed"
th getent passwd ci-svc >/dev/null && fail "provision created a user after the key was refused"
th test ! -e "$INSTALLED" || fail "the refused key was installed"
th rm /etc/regvisor/secret.asc

step "provision with [signing] keys = $KEYS"
signing_config
provision >/dev/null || fail "provision failed: $OUT"
assert_contains "$OUT" "changed  signing-keys"
assert_contains "$OUT" "1 signing key: $fpr"
assert_eq "$(stat_of "$INSTALLED")" "root:root 644" "$INSTALLED"
th cmp -s "$KEYS" "$INSTALLED" || fail "$INSTALLED differs from $KEYS"
policy=$(th cat /etc/containers/policy.json)
rule=$(jq -c '.transports.docker["registry.test"][0]' <<<"$policy")
assert_eq "$rule" '{"type":"signedBy","keyType":"GPGKeys","keyPath":"'$INSTALLED'","signedIdentity":{"type":"remapIdentity","prefix":"registry.test","signedPrefix":"registry.test:4443"}}' "policy rule for registry.test"
provision >/dev/null || fail "second provision failed: $OUT"
assert_contains "$OUT" " 0 changed, 0 failed"

run_unit_up

step "clients: certs.d (client certificate for :4443)"
client_certs_d

step "skopeo copy --sign-by over 4443; podman push --sign-by over 4443"
out=$(th env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "oci-archive:$REGISTRY_ARCHIVE" \
	"docker://$PUSH/signed:1" 2>&1) || fail "skopeo copy --sign-by failed: $out"
digest=$(th skopeo inspect --no-tags --format '{{.Digest}}' "docker://$PULL/signed:1") ||
	fail "skopeo inspect of $PULL/signed:1 failed"
STORE=/var/lib/regvisor/signatures
n=$(th sh -c "ls $STORE/v1/test+signed/sha256-${digest#sha256:}/ | wc -l")
assert_eq "$n" 1 "signatures stored for test/signed@$digest"
podman_push_signed "$PUSH/podman-signed:1"

step "the key fact: a signature made for NAME:4443/repo is accepted for a pull of NAME/repo (podman, skopeo)"
for ref in "$PULL/signed:1" "$PULL/podman-signed:1" "$PULL/signed@$digest"; do
	out=$(th podman pull -q "$ref" 2>&1) || fail "podman pull $ref (installed policy, no override) failed: $out"
done
out=$(th skopeo copy -q "docker://$PULL/signed:1" dir:/var/tmp/signed-copy 2>&1) ||
	fail "skopeo copy from $PULL/signed:1 failed: $out"
th podman image exists "$PULL/signed:1" || fail "the pulled image is not in local storage"
th podman rmi -f "$PULL/signed:1" "$PULL/podman-signed:1" >/dev/null 2>&1 || true

# refused REF WHY: podman pull REF fails and says WHY.
refused() {
	local out
	out=$(th podman pull -q "$1" 2>&1) && fail "podman pull $1 succeeded: $out"
	assert_contains "$out" "$2" "podman pull $1"
	th podman image exists "$1" && fail "$1 is in local storage after a refused pull"
	return 0
}

step "refused: an unsigned image"
out=$(th skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" "docker://$PUSH/unsigned:1" 2>&1) || fail "push: $out"
refused "$PULL/unsigned:1" "A signature was required, but no signature exists"

step "refused: an image signed by a key that is not in [signing] keys"
out=$(th env GNUPGHOME="$OTHER" skopeo copy -q --sign-by "$other" "oci-archive:$REGISTRY_ARCHIVE" \
	"docker://$PUSH/other-key:1" 2>&1) || fail "push: $out"
refused "$PULL/other-key:1" "Invalid GPG signature"

step "refused: test/signed's signature next to the same image in test/moved"
out=$(th skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" "docker://$PUSH/moved:1" 2>&1) || fail "push: $out"
th install -d -o ci-svc -g ci-svc -m 0750 "$STORE/v1/test+moved"
th cp -a "$STORE/v1/test+signed/sha256-${digest#sha256:}" "$STORE/v1/test+moved/"
refused "$PULL/moved:1" "is not accepted"

step "control: the same signedBy rule without remapIdentity refuses NAME:4443's signature for NAME"
jq --arg k "$INSTALLED" '.transports.docker["registry.test"] =
	[{"type": "signedBy", "keyType": "GPGKeys", "keyPath": $k}]' <<<"$policy" |
	th_write /var/tmp/no-remap.json
out=$(th podman pull -q --signature-policy /var/tmp/no-remap.json "$PULL/signed:1" 2>&1) &&
	fail "a pull without the identity rule succeeded: $out"
assert_contains "$out" "Signature for identity registry.test:4443/test/signed:1 is not accepted"

step "before this change: mode = sigstore (the old rule) refuses the same signed pull on Debian 12"
signing_config "mode = sigstore"
provision >/dev/null || fail "provision with mode = sigstore failed: $OUT"
assert_contains "$(th cat /etc/containers/policy.json)" sigstoreSigned "policy.json with mode = sigstore"
out=$(th podman pull -q "$PULL/signed:1" 2>&1) && fail "a sigstoreSigned pull succeeded on Debian 12: $out"
# (A sigstoreSigned rule reads no GPG signature; Debian's podman could not
# make or verify a sigstore one either: INSTALL.md, known limitation.)
assert_contains "$out" "Source image rejected" "podman pull under the sigstore rule"
