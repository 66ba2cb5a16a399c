#!/usr/bin/env bash
# GPG signatures through the registry signature extension, on one host,
# under `regvisor run` (the unit), with the policy provision installs and
# no override, and no lookaside anywhere:
#   - provision makes the store's directory (the service user's, 0750) and
#     the socket's (2750 root:registry-proxy); the unit starts the store
#     (`regvisor sigstore`, as the service user) and the proxy with it;
#   - /v2/ on both ports says X-Registry-Supports-Signatures: 1;
#   - `skopeo copy --sign-by` and `podman push --sign-by` over 4443 store
#     their signatures through PUT /extensions/...: seen in the store's
#     directory and through GET on 443, and nothing in the client's default
#     lookaside (/var/lib/containers/sigstore);
#   - `podman pull` over 443 verifies them; an unsigned image is refused,
#     and so is one whose signature is for another digest; `regvisor
#     health` (image-signatures) names both and counts them in --metrics,
#     and so does the census of `regvisor run` on its /metrics;
#   - a PUT on 443 gets 403 and the store's directory does not change;
#   - a store killed is restarted by `regvisor run`;
#   - the control, what the code before this change did: the same proxy
#     without the store (no header) -> `skopeo copy --sign-by` "succeeds"
#     but writes the signature into a directory on the pushing machine,
#     and the pull that needs it is refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

STORE=/var/lib/regvisor/signatures

th_boot
on_failure th journalctl -u regvisor --no-pager -n 80

step "a signing key; provision with [signing] keys"
signing_provision
assert_contains "$OUT" "changed  sigstore-dir"
assert_eq "$(stat_of $STORE)" "ci-svc:ci-svc 750" "$STORE"
assert_eq "$(stat_of /run/regvisor/sigstore)" "root:registry-proxy 2750" "the store's socket directory"
assert_contains "$(th cat /etc/tmpfiles.d/regvisor.conf)" "d /run/regvisor/sigstore 2750 root registry-proxy -"

run_unit_up

step "the store runs under the unit as the service user; its socket is the proxy group's"
store_pid_of() { # the supervisor's child `regvisor sigstore`
	th pgrep -P "$(th systemctl show -p MainPID --value regvisor.service)" -f '^regvisor sigstore '
}
pid=$(store_pid_of)
[[ $pid =~ ^[0-9]+$ ]] || fail "no regvisor sigstore process in regvisor.service: '$pid'"
assert_eq "$(th awk '/^Uid:/ {print $2}' /proc/$pid/status)" "$(th id -u ci-svc)" "the store's uid"
assert_eq "$(th stat -c '%a %G' /run/regvisor/sigstore/sigstore.sock)" "660 registry-proxy" "the store's socket"
th journalctl -u regvisor --no-pager -o cat | grep -q "sigstore: locked down\|sigstore: no Landlock" ||
	fail "the store did not log its lockdown"

step "/v2/ on both ports: X-Registry-Supports-Signatures: 1"
client_certs_d
h=$(th curl -s -m 10 --cacert "$CA" -D - -o /dev/null https://registry.test/v2/ | tr -d '\r')
assert_contains "$h" "X-Registry-Supports-Signatures: 1" "443 /v2/"
h=$(th curl -s -m 10 --cacert "$CA" "${MTLS[@]}" -D - -o /dev/null https://registry.test:4443/v2/ | tr -d '\r')
assert_contains "$h" "X-Registry-Supports-Signatures: 1" "4443 /v2/"

count_store() { th sh -c "find $STORE -type f | wc -l"; }

step "skopeo copy --sign-by over 4443: the signature goes into the store"
assert_eq "$(count_store)" 0 "files in the store before any push"
out=$(th env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "oci-archive:$REGISTRY_ARCHIVE" \
	"docker://$PUSH/signed:1" 2>&1) || fail "skopeo copy --sign-by failed: $out"
digest=$(th skopeo inspect --no-tags --format '{{.Digest}}' "docker://$PULL/signed:1") ||
	fail "skopeo inspect of $PULL/signed:1 failed"
n=$(th sh -c "ls $STORE/v1/test+signed/sha256-${digest#sha256:}/ | wc -l")
assert_eq "$n" 1 "signature files for test/signed@$digest in $STORE"
# The unit's UMask=0077 must not leak into the store: its group reads it.
assert_eq "$(th sh -c "stat -c %a $STORE/v1 $STORE/v1/test+signed/sha256-${digest#sha256:}/* | tr '\n' ' '")" \
	"750 640 " "modes of the store's v1 directory and a signature"
assert_eq "$(sigs_443 test/signed "$digest")" 1 "GET through 443 lists it"
th test ! -e "$LOCAL_LOOKASIDE" || fail "a signature went to the client's local lookaside $LOCAL_LOOKASIDE"

step "podman push --sign-by over 4443: the signature goes into the store"
podman_push_signed "$PUSH/podman-signed:1"
pdigest=$(th skopeo inspect --no-tags --format '{{.Digest}}' "docker://$PULL/podman-signed:1")
assert_eq "$(sigs_443 test/podman-signed "$pdigest")" 1 "GET through 443 lists podman's signature"
th test ! -e "$LOCAL_LOOKASIDE" || fail "podman wrote a signature to $LOCAL_LOOKASIDE"

step "podman pull over 443, installed policy, no override: verified"
for ref in "$PULL/signed:1" "$PULL/podman-signed:1" "$PULL/signed@$digest"; do
	out=$(th podman pull -q "$ref" 2>&1) || fail "podman pull $ref failed: $out"
done
th podman rmi -f "$PULL/signed:1" "$PULL/podman-signed:1" >/dev/null 2>&1 || true

step "refused: an unsigned image (GET answers an empty list, the policy refuses)"
out=$(th skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" "docker://$PUSH/unsigned:1" 2>&1) || fail "push: $out"
udigest=$(th skopeo inspect --no-tags --format '{{.Digest}}' "docker://$PULL/unsigned:1")
assert_eq "$(sigs_443 test/unsigned "$udigest")" 0 "GET of an unsigned image"
out=$(th podman pull -q "$PULL/unsigned:1" 2>&1) && fail "podman pull of an unsigned image succeeded: $out"
assert_contains "$out" "A signature was required, but no signature exists"

step "a PUT on 443 is refused (403) and stores nothing"
before=$(count_store)
body='{"schemaVersion":2,"name":"'$udigest'@0123456789abcdef0123456789abcdef","type":"atomic","content":"AAAA"}'
assert_eq "$(sig_put 443 test/unsigned "$udigest" "$body")" 403 "PUT on 443"
assert_eq "$(count_store)" "$before" "files in the store after the PUT on 443"
assert_eq "$(sigs_443 test/unsigned "$udigest")" 0 "GET after the PUT on 443"
code=$(th curl -s -m 10 --cacert "$CA" -o /dev/null -w '%{http_code}' -X DELETE \
	"https://registry.test/extensions/v2/test/signed/signatures/$digest")
assert_eq "$code" 403 "DELETE on 443"
code=$(th curl -s -m 10 --cacert "$CA" "${MTLS[@]}" -o /dev/null -w '%{http_code}' -X DELETE \
	"https://registry.test:4443/extensions/v2/test/signed/signatures/$digest")
assert_eq "$code" 403 "DELETE on 4443"
code=$(th curl -s -m 10 --cacert "$CA" -o /dev/null -w '%{http_code}' "https://registry.test/extensions/v2/Bad/signatures/$digest")
assert_eq "$code" 403 "an invalid name below /extensions/"
assert_eq "$(count_store)" "$before" "files in the store after the refusals"

step "a signature for another digest: stored on 4443, refused by podman, named by health"
# test/unsigned2:1 is another image (the same archive as a Docker schema 2
# manifest). Its signature is a true one by the trusted key, for its name,
# but of test/signed:1's manifest: only the digest is wrong.
misplaced_signature unsigned2 "$digest"
u2digest=$misplaced_digest body=$misplaced_body
assert_eq "$(sig_put 4443 test/unsigned2 "$u2digest" "$body")" 201 "PUT of a signature for another digest on 4443"
assert_eq "$(sigs_443 test/unsigned2 "$u2digest")" 1 "GET lists the misplaced signature"
pull_refused_misplaced "$PULL/unsigned2:1"
signatures_health_warns
assert_contains "$out" "2 of 4 tags carry no valid signature by a trusted key"
assert_contains "$out" "test/unsigned:1 (no signature)"
assert_contains "$out" "test/unsigned2:1 (signed for another digest)"
m=$(th "$REGVISOR" health --config "$CONF" --check image-signatures --metrics 2>&1) || true
assert_contains "$m" 'regvisor_health_perfdata{check="image-signatures",label="signed_tags"} 2'
assert_contains "$m" 'regvisor_health_perfdata{check="image-signatures",label="unsigned_tags"} 2'

step "/metrics of regvisor run: after a reload, the census counts 2 signed of 4 tags"
th systemctl reload regvisor.service || fail "systemctl reload regvisor failed"
wait_until 90 census_counts 4 2 || fail "/metrics has no census of 4 tags, 2 signed"
journal_events census | grep -q "2 of 4 stored tags carry a valid signature" || fail "no census event in the journal"

step "the store killed: regvisor run restarts it, and pulls work again"
th kill -KILL "$pid"
store_back() { p=$(store_pid_of); [[ $p =~ ^[0-9]+$ && $p != "$pid" ]] && [ "$(sigs_443 test/signed "$digest")" = 1 ]; }
wait_until 20 store_back || fail "the store did not come back"
journal_events sigstore-exited | grep -q "killed by signal 9" || fail "no sigstore-exited event"
out=$(th podman pull -q "$PULL/signed:1" 2>&1) || fail "podman pull after the restart failed: $out"

step "control (the code before this change): a proxy without the store"
th systemctl stop regvisor.service
user_systemctl ci-svc start regvisor-registry.service || fail "registry start failed"
wait_until 60 registry_answers || fail "registry does not answer"
th systemd-run --unit=old-proxy "$REGVISOR" proxy --config "$CONF" >/dev/null
wait_until 20 proxy_up || fail "the standalone proxy does not answer"
h=$(th curl -s -m 10 --cacert "$CA" -D - -o /dev/null https://registry.test/v2/ | tr -d '\r')
case $h in *X-Registry-Supports-Signatures*) fail "a proxy without a store announced the extension" ;; esac
before=$(count_store)
out=$(th env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "oci-archive:$REGISTRY_ARCHIVE" \
	"docker://$PUSH/old:1" 2>&1) || fail "skopeo copy --sign-by failed: $out"
assert_eq "$(count_store)" "$before" "files in the store after a signed push without the extension"
n=$(th sh -c "find $LOCAL_LOOKASIDE -type f | wc -l")
[ "$n" -ge 1 ] || fail "no signature in the client's local lookaside $LOCAL_LOOKASIDE"
# A puller on another machine does not have the pushing machine's directory.
th mv "$LOCAL_LOOKASIDE" /var/tmp/pushing-machine-sigstore
out=$(th podman pull -q "$PULL/old:1" 2>&1) && fail "a pull found the signature that stayed on the pushing side: $out"
assert_contains "$out" "A signature was required, but no signature exists"
th systemctl stop old-proxy
