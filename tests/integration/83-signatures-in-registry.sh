#!/usr/bin/env bash
# [signing] store = registry (issue 13, "Signatures across hosts"): the
# signature store keeps what clients push in the registry itself, as OCI
# artifacts, so that every host serving the same registry storage serves
# them. On one host, under `regvisor run` (the unit), with the policy
# provision installs and no override:
#   - `podman push --sign-by` over 4443 stores the signature through the
#     extension, and it lands in the registry: the digest's own repository
#     test/signed/sha256-HEX.simplesig has a tag sha256-HEX.simplesig.<32 hex
#     of the signature's sha256> (the registry's tag list; one tag per
#     signature), test/signed has none, and its manifest (read with curl
#     over 443) is our OCI manifest with one signature layer; the store's
#     own directory stays empty;
#   - a client's PUT or DELETE of a manifest at a signature tag (either
#     form), or any write in the digest's repository, is 403 DENIED on 4443
#     and 443, and the signature is still served;
#   - `podman pull` over 443 verifies it; `regvisor health` counts the
#     image as signed and does not count the signature tag as an image;
#   - the store's state wiped and regvisor restarted: the pull still
#     verifies (the signature was never the store's to lose);
#   - a second signature gets a tag of its own, and `regvisor gc` keeps both;
#   - a true signature by the trusted key, but of another manifest, stored
#     for a digest: listed, and refused by podman; a PUT for a digest the
#     registry does not hold is 404 and makes no repository; health and the census
#     of `regvisor run` (/metrics) count it unsigned, and count no
#     signature tag as an image;
#   - a repository with 3000 tags (pushed straight to the registry's socket):
#     a signature GET never lists them; from the registry's side (a capture
#     on its socket, 69-socket-capture.py) it makes 4 requests for a signed
#     digest and 2 for a random one, and none is NAME's tags/list;
#   - junk at a signature tag (written straight to the registry's socket):
#     left out, the valid signatures still served and the pull verifies, one
#     sigstore-skipped line per GET;
#   - the registry stopped: the extension answers 503.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

STORE=/var/lib/regvisor/signatures
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

th_boot
on_failure th journalctl -u regvisor --no-pager -n 80

step "provision with [signing] keys and store = registry"
signing_provision "store = registry"
run_unit_up
client_certs_d
th journalctl -u regvisor --no-pager -o cat |
	grep -q "sigstore: serving .*, storing in the registry at unix:/run/regvisor/registry/registry.sock as ci-svc" ||
	fail "the store did not say it stores in the registry"
th journalctl -u regvisor --no-pager -o cat | grep "sigstore: locked down\|sigstore: no Landlock" ||
	fail "the store did not log its lockdown"

files_in_store() { th sh -c "find $STORE -mindepth 1 | wc -l"; }
get443() { # PATH [CURL ARGS]: GET through the pull port, anonymous
	local path=$1
	shift
	th curl -s -m 10 --cacert "$CA" -f "$@" "https://registry.test$path"
}

step "podman push --sign-by over 4443: the signature goes into the registry"
assert_eq "$(files_in_store)" 0 "entries in the store's directory before any push"
podman_push_signed "$PUSH/signed:1"
digest=$(th skopeo inspect --no-tags --format '{{.Digest}}' "docker://$PULL/signed:1") ||
	fail "skopeo inspect of $PULL/signed:1 failed"
sigprefix="sha256-${digest#sha256:}.simplesig."
sigrepo="test/signed/${sigprefix%.}"
th test ! -e "$LOCAL_LOOKASIDE" || fail "podman wrote a signature to $LOCAL_LOOKASIDE"
assert_eq "$(sigs_443 test/signed "$digest")" 1 "GET of the extension through 443"

step "the signature is a registry artifact: its tag and manifest, read over 443"
# The proxy refuses tags/list (policy/proxy-routes.md): the registry's own list, on its socket.
tags=$(th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/$sigrepo/tags/list") ||
	fail "tags/list of $sigrepo on the registry's socket failed"
echo "# tags of $sigrepo: $tags"
sigtag=$(jq -r --arg p "$sigprefix" '.tags[] | select(startswith($p))' <<<"$tags")
[[ $sigtag == "$sigprefix"* && ${sigtag#"$sigprefix"} =~ ^[0-9a-f]{32}$ ]] || fail "not one signature tag of $digest in: $tags"
assert_eq "$(jq -c '.tags' <<<"$tags")" "[\"$sigtag\"]" "tags of $sigrepo"
tags=$(th curl -sf -m 10 --unix-socket "$SOCK" http://localhost/v2/test/signed/tags/list) ||
	fail "tags/list on the registry's socket failed"
assert_eq "$(jq -c '.tags' <<<"$tags")" '["1"]' "tags of test/signed: the image's only"
manifest=$(get443 "/v2/$sigrepo/manifests/$sigtag" -H "Accept: $OCI_MANIFEST") ||
	fail "GET of the signature manifest over 443 failed"
echo "# $sigtag: $manifest"
assert_eq "$(jq -r .mediaType <<<"$manifest")" "$OCI_MANIFEST" "the manifest's mediaType"
assert_eq "$(jq -r .config.mediaType <<<"$manifest")" application/vnd.regvisor.simple-signing.config.v1+json \
	"the config's mediaType"
assert_eq "$(jq -r '.layers | length' <<<"$manifest")" 1 "layers (signatures)"
assert_eq "$(jq -r '.layers[0].mediaType' <<<"$manifest")" application/vnd.regvisor.simple-signing.signature.v1 \
	"the signature layer's mediaType"
assert_eq "$(jq -r '.annotations["org.regvisor.signed-digest"]' <<<"$manifest")" "$digest" "the signed digest"
# The layer is the signature itself: the bytes the extension lists; its tag names its sha256.
layer=$(jq -r '.layers[0].digest' <<<"$manifest")
assert_eq "${sigtag#"$sigprefix"}" "$(cut -c8-39 <<<"$layer")" "the tag's hex and the layer's digest"
from_blob=$(get443 "/v2/$sigrepo/blobs/$layer" | base64 -w0) || fail "GET of the signature blob failed"
from_ext=$(get443 "/extensions/v2/test/signed/signatures/$digest" | jq -r '.signatures[0].content')
assert_eq "$from_blob" "$from_ext" "the layer's bytes and the extension's content"
assert_eq "$(files_in_store)" 0 "entries in the store's directory after the push"

step "a client cannot write signature tags: PUT and DELETE of their manifests are 403 on 4443"
# Only the store writes them (policy/proxy-routes.md 3c): a junk tag that sorts first would
# hide the real signature, a malformed one at the legacy tag would fail every pull.
sigwrite() { # METHOD TAG [CURL ARGS]: prints the status, the body goes to /tmp/sigwrite.json
	local method=$1 tag=$2
	shift 2
	th curl -s -m 30 --cacert "$CA" "${MTLS[@]}" -o /tmp/sigwrite.json -w '%{http_code}' -X "$method" "$@" \
		"https://registry.test:4443/v2/${REPO_W:-test/signed}/manifests/$tag"
}
junk="${sigprefix}00000000000000000000000000000000"
assert_eq "$(sigwrite PUT "$junk" -H "Content-Type: $OCI_MANIFEST" --data-binary "$manifest")" 403 \
	"PUT of a manifest at a .simplesig.<hex> tag through 4443"
answer=$(th cat /tmp/sigwrite.json)
assert_eq "$(jq -r '.errors[0].code' <<<"$answer")" DENIED "the refusal's error code: $answer"
assert_contains "$(jq -r '.errors[0].message' <<<"$answer")" "signature extension"
assert_eq "$(sigwrite PUT "${sigprefix%.}" -H "Content-Type: $OCI_MANIFEST" --data-binary '{}')" 403 \
	"PUT of a malformed manifest at the legacy .simplesig tag through 4443"
assert_eq "$(REPO_W=$sigrepo sigwrite DELETE "$sigtag")" 403 "DELETE of the signature's manifest through 4443"
assert_eq "$(REPO_W=$sigrepo sigwrite PUT "$sigtag" -H "Content-Type: $OCI_MANIFEST" --data-binary "$manifest")" 403 \
	"PUT at the signature's own tag through 4443"
assert_eq "$(REPO_W=$sigrepo sigwrite PUT "$junk" -H "Content-Type: $OCI_MANIFEST" --data-binary "$manifest")" 403 \
	"PUT at another signature tag of the digest's repository through 4443"
# The digest's repository is the store's alone: junk tags there would grow the one list a read makes.
assert_eq "$(REPO_W=$sigrepo sigwrite PUT latest -H "Content-Type: $OCI_MANIFEST" --data-binary "$manifest")" 403 \
	"PUT of a manifest at an image tag in the digest's repository through 4443"
code=$(th curl -s -m 30 --cacert "$CA" "${MTLS[@]}" -o /dev/null -w '%{http_code}' -X POST \
	"https://registry.test:4443/v2/$sigrepo/blobs/uploads/")
assert_eq "$code" 403 "a blob upload to the digest's repository through 4443"
code=$(th curl -s -m 30 --cacert "$CA" -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $OCI_MANIFEST" \
	--data-binary "$manifest" "https://registry.test/v2/test/signed/manifests/$junk")
assert_eq "$code" 403 "PUT at a signature tag through 443"
tags=$(th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/$sigrepo/tags/list") ||
	fail "tags/list on the registry's socket failed"
assert_eq "$(jq -c '.tags' <<<"$tags")" "[\"$sigtag\"]" "tags of $sigrepo after the refused writes"
assert_eq "$(sigs_443 test/signed "$digest")" 1 "GET of the extension after the refused writes"
got=$(get443 "/v2/$sigrepo/manifests/$sigtag" -H "Accept: $OCI_MANIFEST") ||
	fail "GET of the signature manifest over 443 after the refused writes failed"
assert_eq "$(jq -r '.layers[0].digest' <<<"$got")" "$layer" "the signature manifest's layer, still served"

step "podman pull over 443, installed policy, no override: verified"
out=$(th podman pull -q "$PULL/signed:1" 2>&1) || fail "podman pull $PULL/signed:1 failed: $out"
th podman rmi -f "$PULL/signed:1" >/dev/null 2>&1 || true

step "regvisor health: the image is signed, the signature tag is no image"
out=$(th "$REGVISOR" health --config "$CONF" --check image-signatures 2>&1) || fail "health: $out"
assert_contains "$out" "1 of 1 tags carry a valid signature by a trusted key"

step "the store's state wiped, regvisor restarted: the pull still verifies"
th systemctl stop regvisor.service
th sh -c "rm -rf $STORE/* $STORE/.[!.]*" || true
th systemctl start regvisor.service || fail "regvisor.service did not start again"
wait_until 60 proxy_up || fail "the proxy does not answer on 443 after the restart"
listed_again() { [ "$(sigs_443 test/signed "$digest")" = 1 ]; }
wait_until 30 listed_again || fail "the signature is not listed after the restart"
out=$(th podman pull -q "$PULL/signed:1" 2>&1) || fail "podman pull after the wipe and restart failed: $out"
th podman rmi -f "$PULL/signed:1" >/dev/null 2>&1 || true
assert_eq "$(files_in_store)" 0 "entries in the store's directory after the restart"

step "a second signature gets its own tag; regvisor gc keeps both"
out=$(th env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "docker://$PULL/signed:1" "docker://$PUSH/signed:1" 2>&1) ||
	fail "skopeo copy --sign-by of signed:1 failed: $out"
assert_eq "$(sigs_443 test/signed "$digest")" 2 "signatures of test/signed after the second"
sigtags() {
	th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/$sigrepo/tags/list" |
		jq -r --arg p "$sigprefix" '[.tags[] | select(startswith($p))] | length'
}
assert_eq "$(sigtags)" 2 "signature tags of $sigrepo"
out=$(th /usr/local/bin/regvisor gc --config "$CONF" 2>&1) || fail "regvisor gc failed: $out"
printf '%s\n' "$out" | sed 's/^/#   /'
wait_until 60 proxy_up || fail "the proxy does not answer after gc"
pushes_again() { [ "$(sigs_443 test/signed "$digest")" = 2 ]; }
wait_until 60 pushes_again || fail "the signatures are not both listed after gc"
out=$(th podman pull -q "$PULL/signed:1" 2>&1) || fail "podman pull after gc failed: $out"
th podman rmi -f "$PULL/signed:1" >/dev/null 2>&1 || true

step "a signature for another digest: stored on 4443, refused by podman"
misplaced_signature other "$digest"
odigest=$misplaced_digest sig=$misplaced_sig body=$misplaced_body
put() { sig_put 4443 test/other "$odigest" "$1"; }
assert_eq "$(put "$body")" 201 "PUT of a signature for another digest on 4443"
assert_eq "$(put "$body")" 201 "the same PUT again (already there)"
assert_eq "$(put "${body/$sig/AAAA}")" 409 "another signature under the same name"
assert_eq "$(sigs_443 test/other "$odigest")" 1 "GET lists the misplaced signature, once"
# A digest the registry does not hold in test/other: 404, and no repository made for it (each
# one was a new repository in the catalog, without end, for a pusher of one repository).
ghost=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
assert_eq "$(sig_put 4443 test/other "sha256:$ghost" "${body//$odigest/sha256:$ghost}")" 404 "PUT of a signature for a digest the registry lacks"
catalog=$(th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/_catalog") || fail "GET _catalog failed"
assert_contains "$catalog" "test/other"
[[ $catalog != *"$ghost"* ]] || fail "the refused PUT made a repository for sha256:$ghost: $catalog"
pull_refused_misplaced "$PULL/other:1"
signatures_health_warns
assert_contains "$out" "1 of 2 tags carry no valid signature by a trusted key"
assert_contains "$out" "test/other:1 (signed for another digest)"

step "/metrics of regvisor run: the census counts 1 signed of 2 tags, not the signature tags"
th systemctl reload regvisor.service || fail "systemctl reload regvisor failed"
wait_until 90 census_counts 2 1 || fail "/metrics has no census of 2 tags, 1 signed"

step "3000 tags in a repository: a signature GET does not list them (the registry's side)"
# Before, every GET listed NAME's tags (Distribution 2.8 ignores n and last and answers all of
# them): O(tags) registry work per anonymous request, and a 503 past ~30000 long tags.
out=$(th env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "docker://$PULL/signed:1" "docker://$PUSH/many:1" 2>&1) ||
	fail "skopeo copy --sign-by to test/many:1 failed: $out"
type=$(th curl -sf -m 10 --unix-socket "$SOCK" -H "Accept: $OCI_MANIFEST" \
	-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -o /var/tmp/many-manifest.json \
	-w '%{content_type}' http://localhost/v2/test/many/manifests/1) ||
	fail "GET of test/many:1 on the registry's socket failed"
long=$(printf 'x%.0s' $(seq 100)) # tags of ~105 bytes, as CI pipelines make them
# Straight to the registry's socket, one curl on one connection: cheap, and not through the
# proxy's push rate.
codes=$(th curl -s -m 600 --unix-socket "$SOCK" -H "Content-Type: $type" -T /var/tmp/many-manifest.json \
	-o /dev/null -w '%{http_code}\n' "http://localhost/v2/test/many/manifests/$long[1-3000]" | sort | uniq -c)
echo "# PUTs of $type: $codes"
created=$(awk '$2 == 201 { print $1 }' <<<"$codes")
assert_eq "$created" 3000 "tags pushed to test/many"
ntags=$(th curl -sf -m 60 --unix-socket "$SOCK" http://localhost/v2/test/many/tags/list | jq '.tags | length')
assert_eq "$ntags" 3001 "tags of test/many (the registry's list)"
# skopeo copied signed:1's signatures along and added its own.
nsig=$(sigs_443 test/many "$digest")
((nsig >= 1)) || fail "test/many:1 has no signature"
CAP=/var/tmp/registry-capture-83
th rm -f "$CAP" "$CAP.ready"
th systemd-run --unit=socket-capture-83 /usr/bin/python3 "$REPO/tests/integration/69-socket-capture.py" "$SOCK" \
	"$CAP" >/dev/null || fail "the socket capture did not start"
on_exit th sh -c 'systemctl stop socket-capture-83 2>/dev/null || true'
wait_until 10 th test -e "$CAP.ready" || fail "the capture did not take over $SOCK"
assert_eq "$(sigs_443 test/many "$digest")" "$nsig" "signatures of test/many:1 through the capture"
random=sha256:$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
assert_eq "$(sigs_443 test/many "$random")" 0 "signatures of a random digest in test/many"
th systemctl stop socket-capture-83
requests=$(th cat "$CAP" | grep -a -E '^(GET|HEAD|PUT|POST|DELETE|PATCH) /v2/test/many[/?]' | cut -d' ' -f1-2)
printf '%s\n' "$requests" | sed 's/^/#   /'
assert_eq "$(grep -c '/tags/list' <<<"$requests")" 2 "tag lists read (one per GET)"
assert_eq "$(grep -c "^GET /v2/test/many/tags/list" <<<"$requests")" 0 "lists of test/many's own tags"
# Signed: the legacy tag, the digest's tag list, a manifest and a blob per signature; random: the
# legacy tag and the list, both 404.
assert_eq "$(grep -c . <<<"$requests")" $((2 + 2 * nsig + 2)) "requests to the registry for the two GETs"
out=$(th podman pull -q "$PULL/many:1" 2>&1) || fail "podman pull $PULL/many:1 failed: $out"
th podman rmi -f "$PULL/many:1" >/dev/null 2>&1 || true

step "junk at a signature tag (written straight to the registry): left out, the others served, logged once"
# Only the store writes there (the proxy refuses clients), but the storage is shared and may be
# written by hand: one bad manifest must not fail every pull of the digest.
nsig=$(sigs_443 test/signed "$digest")
config=$(jq -c '.config | .mediaType = "application/vnd.oci.image.config.v1+json"' <<<"$manifest")
junk_manifest=$(jq -c --argjson c "$config" '{schemaVersion: 2, mediaType: .mediaType, config: $c, layers: []}' <<<"$manifest")
code=$(printf '%s' "$junk_manifest" | th curl -s -m 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' -X PUT \
	-H "Content-Type: $OCI_MANIFEST" --data-binary @- "http://localhost/v2/$sigrepo/manifests/$junk")
assert_eq "$code" 201 "junk manifest at $junk, on the registry's socket"
skipped() { th journalctl -u regvisor --no-pager -o cat | grep -c '^repository=test/signed digest=.* skipped=[0-9]* first=' || true; }
before=$(skipped)
assert_eq "$(sigs_443 test/signed "$digest")" "$nsig" "signatures of test/signed beside the junk"
logged() { [ "$(skipped)" -ge $((before + 1)) ]; }
wait_until 10 logged || fail "no sigstore-skipped line for the GET: $(skipped) after $before"
th journalctl -u regvisor --no-pager -o cat | grep ' skipped=[0-9]* first=' | tail -1 | sed 's/^/#   /'
assert_eq "$(skipped)" $((before + 1)) "sigstore-skipped lines for one GET"
out=$(th podman pull -q "$PULL/signed:1" 2>&1) || fail "podman pull beside the junk failed: $out"
th podman rmi -f "$PULL/signed:1" >/dev/null 2>&1 || true

step "the registry stopped: the extension answers 503, not an empty list"
user_systemctl ci-svc stop regvisor-registry.service || true
code=$(th curl -s -m 30 --cacert "$CA" -o /dev/null -w '%{http_code}' \
	"https://registry.test/extensions/v2/test/signed/signatures/$digest")
assert_eq "$code" 503 "GET of the extension while the registry is down"
assert_eq "$(files_in_store)" 0 "entries in the store's directory at the end"
