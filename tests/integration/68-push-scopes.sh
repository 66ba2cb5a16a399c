#!/usr/bin/env bash
# Push scopes ([scopes], common/scope.h) on the full stack (regvisor run as
# the system unit, the registry and the signature store behind it):
#   - the client "scoped" (app/*) pushes app/x with skopeo over 4443;
#   - its push to tools/y is refused: skopeo fails with "denied", curl's
#     blob upload POST, a manifest PUT and a signature PUT under tools/ get
#     403 with a registry-style DENIED error, and neither the registry's
#     own log (read by the service user's _UID) nor the signature store saw
#     any of these writes (skopeo's HEADs of blobs, reads, do reach it);
#   - "app" itself and "apple/x" are outside "app/*" (component boundary);
#   - reads are not scoped: the scoped client GETs tools/ manifests;
#   - a certificate without a [scopes] line ("stranger") may not push at all;
#   - `systemctl reload` with tools/* added lets the same push through.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
CA=$C/ca/ca.crt
STORE=/var/lib/regvisor/signatures
ACCEPT_ANY=/etc/regvisor/accept-anything.json
SCOPED=(--cert "$C/clients/scoped.crt" --key "$C/private/clients/scoped.key")
STRANGER=(--cert "$C/clients/stranger.crt" --key "$C/private/clients/stranger.key")
CURL=(curl -s -m 10 --cacert "$CA")
marker=r$RANDOM$RANDOM

scopes_config() {
	write_config "$(printf '[push]\nrate = 200r/s\nburst = 200\n[scopes]\nci = *\nscoped = %s\n' "$1")"
}

th_boot
scopes_config 'app/*'
on_failure th journalctl -u regvisor --no-pager -n 80
provision >/dev/null || fail "provision failed: $OUT"
th "$REGVISOR" pki --config "$CONF" issue-client scoped >/dev/null || fail "pki issue-client scoped failed"
th "$REGVISOR" pki --config "$CONF" issue-client stranger >/dev/null || fail "pki issue-client stranger failed"
run_unit_up

step "certs.d for registry.test:4443 with the client certificate 'scoped'"
th /bin/sh -c "set -e; d=/etc/containers/certs.d/registry.test:4443; mkdir -p \$d
	cp $CA \$d/ca.crt; cp $C/clients/scoped.crt \$d/client.cert; cp $C/private/clients/scoped.key \$d/client.key
	mkdir -p /etc/containers/certs.d/registry.test; cp $CA /etc/containers/certs.d/registry.test/ca.crt"
th_write "$ACCEPT_ANY" 0644 <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
copy() { # DEST: skopeo copy of the registry archive to registry.test:4443/DEST
	th skopeo copy -q --policy "$ACCEPT_ANY" "oci-archive:$REGISTRY_ARCHIVE" "docker://registry.test:4443/$1" 2>&1
}

step "in scope: skopeo copy to app/x over 4443"
out=$(copy app/x:1) || fail "push of app/x failed: $out"
digest=$(th skopeo inspect --no-tags --format '{{.Digest}}' docker://registry.test/app/x:1) ||
	fail "app/x:1 cannot be read over 443"

step "out of scope: skopeo copy to tools/$marker is refused"
out=$(copy "tools/$marker:1") && fail "push of tools/$marker succeeded: $out"
assert_contains "$out" "denied"

# status METHOD PATH [CURL ARGS]: the status of a request with the scoped certificate.
status() {
	local m=$1 p=$2
	shift 2
	th "${CURL[@]}" -o /dev/null -w '%{http_code}' -X "$m" "${SCOPED[@]}" "$@" "https://registry.test:4443$p"
}
step "out of scope with curl: POST, PATCH, PUT of a manifest, DELETE, a signature PUT: 403 DENIED"
body=$(th "${CURL[@]}" -w '\n%{http_code}' -X POST "${SCOPED[@]}" "https://registry.test:4443/v2/tools/$marker/blobs/uploads/")
assert_eq "${body##*$'\n'}" 403 "POST blob upload to tools/$marker"
assert_contains "$body" '{"errors":[{"code":"DENIED"'
assert_contains "$body" "outside this client's push scope"
assert_eq "$(status PATCH "/v2/tools/$marker/blobs/uploads/0b1c" --data-binary x)" 403 "PATCH upload"
assert_eq "$(status PUT "/v2/tools/$marker/manifests/1" -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary '{}')" 403 "manifest PUT"
assert_eq "$(status DELETE "/v2/tools/$marker/manifests/$digest")" 403 "manifest DELETE"
before=$(th sh -c "find $STORE -type f | wc -l")
sig='{"schemaVersion":2,"name":"'$digest'@0123456789abcdef0123456789abcdef","type":"atomic","content":"AAAA"}'
assert_eq "$(status PUT "/extensions/v2/tools/$marker/signatures/$digest" -H 'Content-Type: application/json' \
	--data-binary "$sig")" 403 "signature PUT outside the scope"
assert_eq "$(th sh -c "find $STORE -type f | wc -l")" "$before" "files in the signature store"
th test -e "$STORE/v1/tools+$marker" && fail "the signature store has a directory for tools/$marker"

step "component boundaries: 'app' and 'apple/x' are outside app/*"
assert_eq "$(status POST "/v2/app/blobs/uploads/")" 403 "POST to app"
assert_eq "$(status POST "/v2/apple$marker/x/blobs/uploads/")" 403 "POST to apple.../x"
assert_eq "$(status POST "/v2/app/x/blobs/uploads/")" 202 "POST to app/x (in scope)"

step "reads are not scoped; a certificate without a line may not push"
assert_eq "$(status GET /v2/app/x/manifests/1 -H 'Accept: application/vnd.oci.image.manifest.v1+json')" 200 \
	"GET app/x with the scoped certificate"
assert_eq "$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' "${STRANGER[@]}" https://registry.test:4443/v2/)" 200 \
	"GET /v2/ with a certificate without a scope"
body=$(th "${CURL[@]}" -w '\n%{http_code}' -X POST "${STRANGER[@]}" https://registry.test:4443/v2/app/x/blobs/uploads/)
assert_eq "${body##*$'\n'}" 403 "POST with a certificate without a scope"
assert_contains "$body" "has no push scope"

step "the registry's own log shows nothing of the refused pushes"
registry_journal() {
	th journalctl --no-pager "_UID=$(th id -u ci-svc)" "$@"
}
registry_logged() {
	registry_journal | grep -q -- "$1"
}
after=after-$marker
th "${CURL[@]}" -o /dev/null "${SCOPED[@]}" "https://registry.test:4443/v2/$after/manifests/1"
wait_until 20 registry_logged "$after" || fail "the registry's log does not show proxied requests"
# skopeo's HEADs of blobs (reads) reach it, as they should; no write does.
writes=$(registry_journal -o cat | grep -E "\"(POST|PUT|PATCH|DELETE) /v2/(tools/|apple)$marker" || true)
[[ -z $writes ]] || fail "the registry saw a refused write: $(head -n 3 <<<"$writes")"
th journalctl --no-pager -u regvisor -o cat REGVISOR_EVENT=refused | grep -q "client 'scoped', repository tools/$marker" ||
	fail "the proxy did not log the refusal"

step "systemctl reload with tools/* added: the same push goes through"
scopes_config 'app/*, tools/*'
th systemctl reload regvisor.service || fail "systemctl reload failed"
out=$(copy "tools/$marker:1") || fail "push of tools/$marker after the reload failed: $out"
th skopeo inspect --no-tags "docker://registry.test/tools/$marker:1" >/dev/null || fail "tools/$marker:1 not readable"
