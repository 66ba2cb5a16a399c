#!/usr/bin/env bash
# Real container clients through the proxy of the full stack (regvisor run as
# the system unit, the registry in the service user's rootless podman), over
# real TLS, with the certs.d layout an operator would use:
#   - `podman push` of a multi-layer image (built here with `podman build`:
#     the pinned registry image plus three COPY layers) over 4443 with the ci
#     client certificate in /etc/containers/certs.d/registry.test:4443/;
#   - the image removed locally, `podman pull registry.test/...` over 443 with
#     only ca.crt in /etc/containers/certs.d/registry.test/ (no client
#     certificate), and the image RUNS (rootless, as the service user): it
#     prints the sha256 of the payload layer's file, which must be the one
#     built, and the layer diff IDs are the ones pushed;
#   - `podman push` to 443 fails with 403 (DENIED) and creates nothing;
#   - curl to 4443 without a certificate gets 400 and the registry logs
#     nothing for it;
#   - _catalog and tags/list on 443 are 403 in more spellings than
#     50-proxy.sh tries (HEAD, dot segments with queries, leading "//",
#     percent-escaped letters, ...); spellings with an escaped "/", "?" or "#"
#     are refused and never forwarded; the ones with "%2F" that the registry
#     would route to _catalog or tags/list must be 403 too: today they get
#     400, a known bug, reported, marked with `skip` at the very end (after
#     every other assertion).
# Signatures: provision's policy.json requires sigstore signatures for
# registry.test; signing is being added by another engineer (no cosign here).
# Until then the pull and the pushes use --signature-policy with
# insecureAcceptAnything: this checks the transport and the proxy, not the
# signing policy.
# Root podman cannot run containers inside the test host (runc: cgroup v1
# controllers are read-only under nspawn), so the pull and the run happen as
# the service user, rootless, exactly as the registry itself runs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

CURL=(curl -s -m 10 --cacert "$CA")
ACCEPT_ANY=/etc/regvisor/accept-anything.json
CTX=/var/tmp/multi-ctx
PUSHED=registry.test:4443/test/multi:1
PULLED=registry.test/test/multi:1

th_boot
# The limits are the defaults' shape but raised: podman does not retry a 429
# on a manifest (see 50-proxy.sh), and the spelling loop below sends more
# than the default pull burst from one address.
write_config "$(printf '[push]\nrate = 200r/s\nburst = 200\n[pull]\nrate = 200r/s\nburst = 200')"
on_failure th journalctl -u regvisor --no-pager -n 80
on_failure th journalctl --no-pager -n 40 _SYSTEMD_USER_UNIT=regvisor-registry.service
provision >/dev/null || fail "provision failed: $OUT"

step "the full stack: systemctl start regvisor (registry + proxy)"
run_unit_up
# access_logged ERE: the proxy's access log (journal) has a line matching ERE.
access_logged() {
	th journalctl --no-pager -u regvisor REGVISOR_EVENT=access -o cat | grep -Eq -- "$1" ||
		fail "no access log line matches: $1"
}

step "certs.d: client certificate for :4443, CA only for 443"
client_certs_d
th_write "$ACCEPT_ANY" 0644 <<<'{"default":[{"type":"insecureAcceptAnything"}]}'

step "podman build: the registry image plus three COPY layers"
th podman load -q -i "$REGISTRY_ARCHIVE" >/dev/null 2>&1 || fail "podman load of the registry archive failed"
th /bin/sh -c "set -e; mkdir -p $CTX; cd $CTX
	cp /usr/bin/sha256sum sha256sum   # linked against libc only, which the image has
	head -c 1048576 /dev/urandom > payload
	echo 54-proxy-clients > marker
	printf 'FROM %s\nCOPY sha256sum /bin/sha256sum\nCOPY payload /payload\nCOPY marker /marker\n' '$REGISTRY_REFERENCE' > Containerfile"
out=$(th podman build --pull=never -q -t localhost/multi:1 "$CTX" 2>&1) || fail "podman build failed: $out"
layers=$(th podman image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' localhost/multi:1)
read -r -a built_layers <<<"$layers"
((${#built_layers[@]} >= 4)) || fail "expected at least 4 layers, got: $layers"
payload_sum=$(th sha256sum "$CTX/payload" | cut -d' ' -f1)

step "podman push of the ${#built_layers[@]}-layer image over 4443 with the client certificate (certs.d)"
out=$(th podman push --signature-policy "$ACCEPT_ANY" localhost/multi:1 "$PUSHED" 2>&1) ||
	fail "podman push over 4443 failed: $out"
access_logged 'port=push client=127\.0\.0\.1 subject=CN=ci(,[^ ]*)? method=PUT path=/v2/test/multi/manifests/1 status=201 '

step "remove it locally, podman pull over 443 without a certificate (rootless, as the service user)"
th podman rmi localhost/multi:1 >/dev/null 2>&1 || fail "podman rmi failed"
th podman image exists localhost/multi:1 && fail "the image is still in local storage"
out=$(svc_podman pull -q --signature-policy "$ACCEPT_ANY" "$PULLED" 2>&1) || fail "podman pull over 443 failed: $out"
pulled_layers=$(svc_podman image inspect --format '{{range .RootFS.Layers}}{{.}} {{end}}' "$PULLED")
assert_eq "$pulled_layers" "$layers" "layer diff IDs pulled over 443"
access_logged 'port=pull client=127\.0\.0\.1 subject=- method=GET path=/v2/test/multi/manifests/1 status=200 '

step "the pulled image runs"
out=$(svc_podman run --rm --network=none --entrypoint /bin/sha256sum "$PULLED" /payload 2>&1) ||
	fail "podman run failed: $out"
assert_eq "${out%% *}" "$payload_sum" "sha256 of /payload computed inside the pulled image"
svc_podman rmi "$PULLED" >/dev/null 2>&1 || true

step "podman push to 443 fails with 403 and creates nothing"
# A fresh layer, so that podman has to start a blob upload (POST), not
# only put the manifest.
th /bin/sh -c "head -c 65536 /dev/urandom > $CTX/payload"
out=$(th podman build --pull=never -q -t localhost/other:1 "$CTX" 2>&1) || fail "podman build failed: $out"
out=$(th podman push --signature-policy "$ACCEPT_ANY" localhost/other:1 registry.test/test/pushed443:1 2>&1) &&
	fail "a push to 443 succeeded: $out"
assert_contains "$out" "denied: requested access to the resource is denied"
access_logged 'port=pull client=127\.0\.0\.1 subject=- method=POST path=/v2/test/pushed443/blobs/uploads/ status=403 '
code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' --cert "$C/clients/ci.crt" --key "$C/private/clients/ci.key" \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json' https://registry.test:4443/v2/test/pushed443/manifests/1)
assert_eq "$code" 404 "manifest of test/pushed443:1 after the refused push"

step "curl to 4443 without a certificate: 400, and the registry logs nothing for it"
marker=nocert-54-$RANDOM$RANDOM
body=$(th "${CURL[@]}" -w '\n%{http_code}' "https://registry.test:4443/v2/$marker/manifests/1")
assert_eq "${body##*$'\n'}" 400 "status without a client certificate"
assert_contains "$body" '"errors":[{"code":'
assert_contains "$body" "No required SSL certificate was sent"
th "${CURL[@]}" -o /dev/null --cert "$C/clients/ci.crt" --key "$C/private/clients/ci.key" \
	"https://registry.test:4443/v2/$marker-withcert/manifests/1"
# The registry's own log: what the service user's processes (conmon and the
# container) wrote. Matched by _UID, which journald takes from the socket's
# credentials; _SYSTEMD_USER_UNIT comes from a cgroup lookup that once missed
# a line under load (CI, 54 failed waiting for a request the registry had
# logged).
registry_journal() {
	th journalctl --no-pager "_UID=$(th id -u ci-svc)" "$@"
}
registry_logged() {
	registry_journal | grep -q -- "$1"
}
# The request with a certificate shows in the registry's log (so the log is
# read right); the one without never does (it would have been logged first).
wait_until 20 registry_logged "$marker-withcert" || fail "the registry's log does not show proxied requests"
registry_journal | grep -- "$marker" | grep -vq -- "$marker-withcert" &&
	fail "the registry logged the request without a certificate"

step "443: _catalog and tags/list are 403 in more spellings"
spellings=(
	/v2/./_catalog/
	'/v2/x/../_catalog?n=1'
	//v2/_catalog
	/./v2/_catalog
	/v2///_catalog///
	/v2/%5F%63atalog
	/v2/%5F%43ATALOG
	/v2/%2E/_catalog
	/v2/%2e%2e/v2/_catalog
	/v2/x/%2e%2e/_catalog
	/v2/_catalog/.
	'/v2/_catalog?'
	'/v2/_Catalog?last=a&n=2'
	/v2/a/b/c/tags/list/
	/v2/a/tags/./list
	/v2/a/tags/x/../list
	/v2/a/%74ags/list
	'/v2/a/TaGs/LiSt?n=1&last=x'
)
for p in "${spellings[@]}"; do
	code=$(th "${CURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' "https://registry.test$p")
	assert_eq "$code" 403 "GET $p on 443"
done
code=$(th "${CURL[@]}" -I -o /dev/null -w '%{http_code}' https://registry.test/v2/_catalog)
assert_eq "$code" 403 "HEAD /v2/_catalog on 443"
code=$(th "${CURL[@]}" -I --path-as-is -o /dev/null -w '%{http_code}' 'https://registry.test/v2/x/../a/tags/list?n=1')
assert_eq "$code" 403 "HEAD /v2/x/../a/tags/list?n=1 on 443"

step "443: spellings with an escaped '/', '?' or '#' are refused and never forwarded"
# The registry (Go) decodes "%2F" to "/" before routing: it routes
# /v2/_catalog%2F (a redirect to /v2/_catalog), /v2/a/tags%2Flist and
# /v2/a%2Fb/tags/list to the catalog and tags/list handlers (checked against
# the registry's socket directly). The proxy refuses such bytes outright
# ("refused byte in the path"). Here: refused (400 or 403), never forwarded;
# that it is 403, as issue 4 requires, is checked at the end.
escaped_routed=(/v2/_catalog%2F /v2/a/tags%2Flist /v2/a%2Fb/tags/list)
for p in "${escaped_routed[@]}" /v2/_catalog%3Fn=1 /v2/_catalog%23x; do
	code=$(th "${CURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' "https://registry.test$p")
	[[ $code == 400 || $code == 403 ]] || fail "GET $p on 443: expected 403 (or 400), got $code"
done
# Neither these nor the 403s reached the registry: its log has none of these
# paths once it shows a request sent after them (one stream, in order).
after=after-spellings-$RANDOM$RANDOM
th "${CURL[@]}" -o /dev/null "https://registry.test/v2/$after/manifests/1"
wait_until 20 registry_logged "$after" || fail "the registry's log does not show the request after the spellings"
log=$(registry_journal -o cat)
for needle in _catalog tags/list TaGs %74ags; do
	[[ $log != *"$needle"* ]] || fail "the registry saw a request for $needle: $(grep -- "$needle" <<<"$log" | head -n 3)"
done
# A spelling the registry does not route (";x" is part of the segment) is
# no endpoint a pull reads either: the pull port's allowlist refuses it.
code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' 'https://registry.test/v2/_catalog;x')
assert_eq "$code" 403 "GET /v2/_catalog;x on 443"

step "443: the escaped spellings the registry routes are 403"
wrong=""
for p in "${escaped_routed[@]}"; do
	code=$(th "${CURL[@]}" --path-as-is -o /dev/null -w '%{http_code}' "https://registry.test$p")
	[[ $code == 403 ]] || wrong+=" $p:$code"
done
# "%2F" is a separator to the registry's router: the proxy answers those
# spellings 403 too (route_normalize_path_as_router()), never forwarding.
[[ -z $wrong ]] || fail "escaped spellings routed to _catalog/tags/list by the registry are not 403:$wrong"
true
