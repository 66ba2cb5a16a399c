#!/usr/bin/env bash
# A client machine onboarded with one bundle, on two test hosts (a zone's
# bridge, 198.18.0.0/24; the client reaches the registry as registry.test,
# never 127.0.0.1):
#   - registry host: provision, `pki issue-client build-01`, `pki export
#     build-01` (a 0700 directory, the key 0600, hosts.toml without a
#     top-level server line); an export for a loopback name is refused;
#   - the bundle copied to the client host (tar, modes kept); a copy
#     tampered with for another registry (a CA in certs.d/other.test, a
#     policy rule for docker.io, a malformed rule for registry.test that
#     would make containers/image refuse policy.json, every pull: a
#     signedBy without a key, a reject with an unknown member; a third
#     name, registry.test:5000) is refused whole, nothing written;
#     install without --registry is refused (the bundle does not choose),
#     --registry other.test refuses the real one, and so does the host of
#     a name (registry.test:4443 is not registry.test); `client
#     install --dry-run` names the registry and changes nothing, `client install` writes certs.d
#     (podman's, containerd's, docker's), containerd's hosts.toml, the
#     signers' key and merges policy.json (Debian's default entries stay),
#     which containers/image loads (skopeo --policy copy; the policy a
#     malformed rule made before is refused by the same check);
#     a docker CA file and a policy rule for registry.test the operator had
#     are replaced, and kept;
#   - with only what the bundle installed (no registries.d, no lookaside:
#     signatures go through the registry's extension): `podman push
#     --sign-by` over 4443 (client certificate from certs.d) and `podman
#     pull` over 443 under the installed policy, no override, as root and
#     as a user, and the image runs (rootless podman run); refused by
#     podman: an unsigned image, an image signed by another key, and a valid
#     signature of image A stored (through the extension) under image B's
#     digest, same name and tag; `ctr
#     image pull --hosts-dir /etc/containerd/certs.d` over 443 and `ctr image
#     push` over 4443 with the client certificate named in hosts.toml;
#   - a second install changes nothing (no file rewritten);
#   - uninstall removes every file it added and the record, puts back the
#     operator's docker CA file (content and mode) and registry.test rule,
#     and leaves policy.json as it was before install;
#   - the key that never leaves the client: `client request build-02` on the
#     client, `pki sign --days 30 --scope 'app/*'` on the registry host (the
#     certificate ends within 30 days, the [scopes] line appended once and
#     the proxy reloaded; other patterns for build-02 refused; `pki
#     issue-client --scope` the same, the same scope again writes nothing; a request
#     asking for more,
#     made with openssl: a SAN, CA:TRUE, 10 years, gets none of it; a
#     request under another name than --name is refused), `pki export`
#     without a key, install with the client's own key, a push over 4443;
#   - with the scope pki sign gave (build-02 = app/*), its push to test/
#     is refused and never reaches the registry, to app/ it works;
#   - `pki revoke build-02` on the registry host: within 10 s the client's
#     certificate gets 400 "certificate revoked" on 4443, its skopeo push
#     fails, and the registry has no such repository.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

BUNDLE=/root/bundle-build-01
CB=/root/bundle
RECORD=/var/lib/regvisor-client/installed.list

th_boot_two
on_failure th journalctl -u regvisor --no-pager -n 60

step "client: a signing key; its public key to the registry host as [signing] keys"
signer_key thc "CI <ci@registry.test>"

step "registry host: provision, regvisor.service, pki issue-client build-01"
INITIAL_CLIENT= write_config "$(printf '[signing]\nkeys = %s' "$KEYS")"
provision >/dev/null || fail "provision failed: $OUT"
start_run_unit
th "$REGVISOR" pki --config "$CONF" issue-client build-01 >/dev/null || fail "issue-client build-01 failed"

step "registry host: pki export build-01 (modes, layout, no server line in hosts.toml)"
out=$(th "$REGVISOR" pki --config "$CONF" export build-01 --host 127.0.0.1 --output /root/loop 2>&1) &&
	fail "an export for 127.0.0.1 succeeded: $out"
assert_contains "$out" "127"
th test ! -e /root/loop || fail "a refused export left /root/loop"
out=$(th "$REGVISOR" pki --config "$CONF" export build-01 --output "$BUNDLE" 2>&1) || fail "export failed: $out"
assert_eq "$(th stat -c %a "$BUNDLE")" 700 "bundle directory mode"
assert_eq "$(th stat -c %a "$BUNDLE/files/etc/containers/certs.d/registry.test:4443/client.key")" 600 "client.key"
th cmp -s "$BUNDLE/files/etc/containers/certs.d/registry.test/ca.crt" /etc/registry/certs/ca/ca.crt ||
	fail "the bundle's CA is not the server CA"
toml=$(th cat "$BUNDLE/files/etc/containerd/certs.d/registry.test:4443/hosts.toml")
assert_contains "$toml" '[host."https://registry.test:4443"]'
assert_contains "$toml" 'client = [['
grep -q '^server' <<<"$toml" && fail "hosts.toml has a top-level server line: $toml"
out=$(th "$REGVISOR" pki --config "$CONF" export build-01 --output "$BUNDLE" 2>&1) &&
	fail "an export into an existing directory succeeded"

step "client: the bundle copied over (tar, modes kept); install --dry-run changes nothing"
th tar -C "$BUNDLE" -cf - . | thc /bin/sh -c "mkdir -m 0700 $CB && tar -C $CB -xpf -"
assert_eq "$(thc stat -c %a "$CB/files/etc/containers/certs.d/registry.test:4443/client.key")" 600 "copied key"
# Debian's own policy.json, plus entries the operator added: one for
# another registry, one for registry.test that install replaces.
thc /bin/sh -c 'jq ".transports.docker[\"quay.io\"] = [{\"type\": \"reject\"}]
	| .transports.docker[\"registry.test\"] = [{\"type\": \"insecureAcceptAnything\"}]" /etc/containers/policy.json \
	> /etc/containers/policy.json.new && mv /etc/containers/policy.json.new /etc/containers/policy.json'
before=$(thc cat /etc/containers/policy.json)
# A docker CA file the operator had for registry.test.
OLD_DOCKER_CA=/etc/docker/certs.d/registry.test/ca.crt
thc /bin/sh -c "mkdir -p ${OLD_DOCKER_CA%/*} && echo 'the operator s previous CA' > $OLD_DOCKER_CA && chmod 0640 $OLD_DOCKER_CA"
thc test ! -e /etc/containers/certs.d/registry.test || fail "the client already has certs.d for registry.test"
# A bundle is for its own registry alone: a copy that also writes another
# registry's CA, or replaces docker.io's rule, is refused, nothing written.
thc /bin/sh -c "cp -a $CB /root/evil-ca && mkdir /root/evil-ca/files/etc/containers/certs.d/other.test &&
	cp $CB/files/etc/containers/certs.d/registry.test/ca.crt /root/evil-ca/files/etc/containers/certs.d/other.test/ &&
	echo '0644 /etc/containers/certs.d/other.test/ca.crt' >> /root/evil-ca/MANIFEST
	cp -a $CB /root/evil-policy && jq '.transports.docker[\"docker.io\"] = [{\"type\": \"reject\"}]' \
		$CB/policy-fragment.json > /root/evil-policy/policy-fragment.json"
# A rule for its own registry that containers/image refuses (and with it
# the whole policy.json: every pull of the machine), or a third name.
thc /bin/sh -c "cp -a $CB /root/evil-nokey && jq '.transports.docker[\"registry.test\"] = [{\"type\": \"signedBy\"}]' \
		$CB/policy-fragment.json > /root/evil-nokey/policy-fragment.json
	cp -a $CB /root/evil-member && jq '.transports.docker[\"registry.test:4443\"] = [{\"type\": \"reject\", \"bogus\": 1}]' \
		$CB/policy-fragment.json > /root/evil-member/policy-fragment.json
	cp -a $CB /root/evil-port && sed -i 's/^registry registry.test:4443\$/&\nregistry registry.test:5000/' /root/evil-port/MANIFEST"
thc grep -qx 'registry registry.test:5000' /root/evil-port/MANIFEST || fail "evil-port has no third name"
for evil in /root/evil-ca:other.test /root/evil-policy:docker.io '/root/evil-nokey:"registry.test"' \
	'/root/evil-member:"registry.test:4443"' '/root/evil-port:a third name'; do
	out=$(thc "$REGVISOR" client install --registry registry.test "${evil%%:*}" 2>&1) &&
		fail "install of ${evil%%:*} succeeded: $out"
	assert_contains "$out" "${evil##*:}"
	assert_contains "$out" "refused"
	thc test ! -e /etc/containers/certs.d/registry.test -a ! -e /etc/containers/certs.d/other.test \
		-a ! -e /var/lib/regvisor-client || fail "a refused bundle (${evil%%:*}) wrote something"
	assert_eq "$(thc cat /etc/containers/policy.json)" "$before" "policy.json after a refused bundle"
done
out=$(thc "$REGVISOR" client install --registry other.test "$CB" 2>&1) && fail "--registry other.test installed: $out"
assert_contains "$out" "not for --registry other.test"
out=$(thc "$REGVISOR" client install --registry registry.test:4443 "$CB" 2>&1) &&
	fail "--registry registry.test:4443 (not the pull name) installed: $out"
assert_contains "$out" "not for --registry registry.test:4443"
out=$(thc "$REGVISOR" client install "$CB" 2>&1) && fail "install without --registry installed: $out"
assert_contains "$out" "--registry NAME is required"
assert_contains "$out" "says it is for registry.test"
thc test ! -e /etc/containers/certs.d/registry.test || fail "a refused --registry wrote certs.d"
out=$(thc "$REGVISOR" client install --dry-run "$CB" 2>&1) || fail "install --dry-run without --registry failed: $out"
assert_contains "$out" "bundle for the registry registry.test (registry.test, registry.test:4443)"
out=$(thc "$REGVISOR" client install --dry-run --registry registry.test "$CB" 2>&1) ||
	fail "install --dry-run failed: $out"
assert_contains "$out" "bundle for the registry registry.test (registry.test, registry.test:4443)"
assert_contains "$out" "replace the rule for registry.test (insecureAcceptAnything -> signedBy)"
assert_contains "$out" "write /etc/containers/certs.d/registry.test:4443/client.key (0600)"
assert_contains "$out" "merge into /etc/containers/policy.json"
assert_contains "$out" "write /etc/docker/certs.d/registry.test:4443/client.key (0600)"
assert_contains "$out" "replace $OLD_DOCKER_CA (0644): uninstall puts its current content back"
thc test ! -e /etc/containers/certs.d/registry.test || fail "--dry-run wrote certs.d"
assert_eq "$(thc cat /etc/containers/policy.json)" "$before" "policy.json after --dry-run"

step "client: client install"
out=$(thc "$REGVISOR" client install --registry registry.test "$CB" 2>&1) || fail "install failed: $out"
printf '%s\n' "$out" | sed 's/^/#   /'
assert_eq "$(thc stat -c '%U %a' /etc/containers/certs.d/registry.test:4443/client.key)" "root 600" "installed key"
assert_eq "$(thc jq -r '.transports.docker["quay.io"][0].type' /etc/containers/policy.json)" reject "operator entry"
assert_eq "$(thc jq -r '.transports.docker["registry.test"][0].type' /etc/containers/policy.json)" signedBy \
	"registry.test rule"
thc test -s /etc/containers/keys/registry.test/regvisor-signers.gpg || fail "no signers' key installed"
# containers/image loads the policy install wrote: one invalid rule in it
# refuses every pull of the machine, from any registry. The same check
# refuses the policy a bundle's malformed rule made before install rebuilt
# the rules (a signedBy without a key).
out=$(thc skopeo --policy /etc/containers/policy.json copy -q "oci-archive:$REGISTRY_ARCHIVE" dir:/root/policy-check \
	2>&1) || fail "containers/image refuses the installed policy.json: $out"
thc /bin/sh -c 'rm -rf /root/policy-check && jq ".transports.docker[\"registry.test\"] = [{\"type\": \"signedBy\"}]" \
	/etc/containers/policy.json > /root/policy-broken.json'
out=$(thc skopeo --policy /root/policy-broken.json copy -q "oci-archive:$REGISTRY_ARCHIVE" dir:/root/policy-check 2>&1) &&
	fail "skopeo loaded a policy with a signedBy without a key: the check proves nothing"
assert_contains "$out" "invalid policy"
thc rm -rf /root/policy-check /root/policy-broken.json
assert_eq "$(thc stat -c '%U %a' /etc/docker/certs.d/registry.test:4443/client.key)" "root 600" "docker's client.key"
thc cmp -s /etc/docker/certs.d/registry.test:4443/client.cert /etc/containers/certs.d/registry.test:4443/client.cert ||
	fail "docker's client.cert is not the bundle's"
thc cmp -s "$OLD_DOCKER_CA" /etc/containers/certs.d/registry.test/ca.crt || fail "docker's CA was not replaced"
assert_eq "$(thc stat -c '%U %a' /var/lib/regvisor-client/installed.list)" "root 600" "install's record"
thc grep -qx "replaced 0640 1 $OLD_DOCKER_CA" "$RECORD" || fail "the record does not keep the replaced docker CA"

step "client: signed podman push over 4443, verified pull over 443 (installed policy, no override)"
thc test ! -e /etc/containers/registries.d/zz-test-lookaside.yaml || fail "the client has a test lookaside"
id=$(thc podman pull -q "oci-archive:$REGISTRY_ARCHIVE" 2>/dev/null | tail -n 1)
[[ $id =~ ^[0-9a-f]{64}$ ]] || fail "podman pull oci-archive: '$id'"
out=$(thc env GNUPGHOME="$SIGNER" podman push -q --sign-by "$fpr" "$id" registry.test:4443/test/onboard:1 2>&1) ||
	fail "signed podman push over 4443 failed: $out"
out=$(thc podman pull -q registry.test/test/onboard:1 2>&1) || fail "verified pull over 443 failed: $out"
# The signature went through the extension to the registry host's store.
digest=$(thc skopeo inspect --no-tags --format '{{.Digest}}' docker://registry.test/test/onboard:1)
n=$(th curl -s -m 10 --cacert /etc/registry/certs/ca/ca.crt -f \
	"https://registry.test/extensions/v2/test/onboard/signatures/$digest" | jq '.signatures | length')
[ "${n:-0}" -ge 1 ] || fail "no signature for test/onboard@$digest in the registry's extension"
# A user of the client pulls it too (the installed policy, CA and key are
# the machine's) and it runs: rootless, since rootful runc cannot make its
# cgroups in this test host (cgroup v1 read-only); runc, not crun, and
# explicit ulimits, as provision's containers.conf for the service user.
thc /bin/sh -c 'useradd -m -s /bin/sh runner && install -d -o runner -m 0700 /tmp/runner-rt
	install -d -o runner /home/runner/.config /home/runner/.config/containers
	printf "%s\n" "[containers]" "keyring = false" "default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]" \
		"[engine]" "runtime = \"runc\"" "cgroup_manager = \"cgroupfs\"" "events_logger = \"file\"" \
		> /home/runner/.config/containers/containers.conf'
RUNNER=(runuser -u runner -- env XDG_RUNTIME_DIR=/tmp/runner-rt HOME=/home/runner)
out=$(thc "${RUNNER[@]}" podman pull -q registry.test/test/onboard:1 2>&1) ||
	fail "a user's verified pull over 443 failed: $out"
out=$(thc "${RUNNER[@]}" podman run --rm --network none --entrypoint /bin/registry registry.test/test/onboard:1 \
	--version 2>&1) || fail "the pulled image does not run: $out"
assert_contains "$out" "github.com/docker/distribution"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/test/unsigned:1 2>&1) ||
	fail "unsigned push over 4443 failed: $out"
out=$(thc podman pull -q registry.test/test/unsigned:1 2>&1) && fail "an unsigned image was pulled: $out"
assert_contains "$out" "A signature was required"
out=$(thc "${RUNNER[@]}" podman pull -q registry.test/test/unsigned:1 2>&1) &&
	fail "a user pulled an unsigned image: $out"
assert_contains "$out" "A signature was required"
# Signed, but by a key the registry host does not trust.
other=$(gen_key thc /root/gnupg-other "Other <other@test>")
[[ $other =~ ^[0-9A-F]{40}$ ]] || fail "fingerprint: '$other'"
out=$(thc env GNUPGHOME=/root/gnupg-other skopeo copy -q --sign-by "$other" "oci-archive:$REGISTRY_ARCHIVE" \
	docker://registry.test:4443/test/other-key:1 2>&1) || fail "skopeo copy signed by the other key failed: $out"
out=$(thc podman pull -q registry.test/test/other-key:1 2>&1) && fail "an image signed by an untrusted key was pulled: $out"
case $out in *"no signature exists"*) fail "podman did not see the other key's signature: $out" ;; esac
echo "# podman refused the other key's signature: $out"

# A valid signature, by the trusted key, for the same name and tag, but of
# another image: A signed as test/swapped:1, then B (another digest) pushed
# to the same tag, and A's signature stored under B's digest through the
# extension with the client's certificate. podman must check the digest.
out=$(thc env GNUPGHOME="$SIGNER" skopeo copy -q --sign-by "$fpr" "oci-archive:$REGISTRY_ARCHIVE" \
	docker://registry.test:4443/test/swapped:1 2>&1) ||
	fail "signed push of A to test/swapped:1 failed: $out"
da=$(thc skopeo inspect --no-tags --format '{{.Digest}}' docker://registry.test/test/swapped:1)
out=$(thc skopeo copy -q --format v2s2 "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/test/swapped:1 2>&1) ||
	fail "push of B (v2s2) to test/swapped:1 failed: $out"
db=$(thc skopeo inspect --no-tags --format '{{.Digest}}' docker://registry.test/test/swapped:1)
[[ $da =~ ^sha256:[0-9a-f]{64}$ && $db =~ ^sha256:[0-9a-f]{64}$ && $da != "$db" ]] ||
	fail "A and B have no two digests: '$da' '$db'"
thc /bin/sh -c 'd=/etc/containers/certs.d/registry.test:4443; cp $d/ca.crt /root/b1-ca.crt
	cp $d/client.cert /root/b1.crt; cp $d/client.key /root/b1.key'
sig=$(thc curl -s -m 10 --cacert /root/b1-ca.crt -f "https://registry.test/extensions/v2/test/swapped/signatures/$da" |
	jq -c --arg name "$db@0123456789abcdef0123456789abcdef" '.signatures[0] | .name = $name')
[[ $sig == *'"content":"'* ]] || fail "no signature of A to copy: $sig"
code=$(thc curl -s -m 10 --cacert /root/b1-ca.crt --cert /root/b1.crt --key /root/b1.key -o /dev/null \
	-w '%{http_code}' -X PUT -H 'Content-Type: application/json' --data-binary "$sig" \
	"https://registry.test:4443/extensions/v2/test/swapped/signatures/$db")
[[ $code == 20? ]] || fail "storing A's signature under B's digest: HTTP $code"
out=$(thc podman pull -q registry.test/test/swapped:1 2>&1) &&
	fail "image B was pulled with a signature of image A: $out"
case $out in *"no signature exists"*) fail "podman did not see the swapped signature: $out" ;; esac
echo "# podman refused a signature of another digest: $out"
out=$(thc podman pull -q "registry.test/test/swapped@$da" 2>&1) || fail "A itself, by digest, was refused: $out"

step "client: ctr pull over 443 and push over 4443 with the installed hosts.toml"
thc systemctl start containerd.service || fail "containerd did not start"
out=$(thc ctr image pull --hosts-dir /etc/containerd/certs.d registry.test/test/onboard:1 2>&1) ||
	fail "ctr pull with hosts.toml failed: $out"
thc ctr image tag registry.test/test/onboard:1 registry.test:4443/test/ctr:1 >/dev/null
out=$(thc ctr image push --hosts-dir /etc/containerd/certs.d registry.test:4443/test/ctr:1 2>&1) ||
	fail "ctr push over 4443 with the client certificate from hosts.toml failed: $out"
code=$(thc curl -s -m 10 --cacert /etc/containers/certs.d/registry.test/ca.crt -o /dev/null -w '%{http_code}' \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' \
	https://registry.test/v2/test/ctr/manifests/1)
assert_eq "$code" 200 "the image ctr pushed, read over 443"

step "client: a second install changes nothing"
snap() { thc /bin/sh -c "find /etc/containers /etc/containerd /var/lib/regvisor-client -newer $CB/MANIFEST \
	-printf '%p %T@ %m\n' 2>/dev/null | sort; sha256sum /etc/containers/policy.json"; }
s1=$(snap)
out=$(thc "$REGVISOR" client install --registry registry.test "$CB" 2>&1) || fail "second install failed: $out"
assert_contains "$out" "nothing to do"
assert_eq "$(snap)" "$s1" "files after a second install"

step "client: uninstall removes what install added, puts back what it replaced, and nothing else"
added=$(thc awk '$1 == "file" { print $2 }' "$RECORD")
[[ -n $added ]] || fail "the record lists no file"
out=$(thc "$REGVISOR" client uninstall 2>&1) || fail "uninstall failed: $out"
for f in $added; do
	thc test ! -e "$f" || fail "uninstall left $f"
done
thc test ! -e /etc/containers/certs.d/registry.test:4443 || fail "uninstall left certs.d/registry.test:4443"
thc test ! -e /etc/containerd/certs.d || fail "uninstall left /etc/containerd/certs.d"
thc test ! -e "$RECORD" || fail "uninstall left its record"
thc test -d /etc/containers || fail "uninstall removed /etc/containers"
assert_eq "$(thc jq -S . /etc/containers/policy.json)" "$(jq -S . <<<"$before")" "policy.json after uninstall"
assert_eq "$(thc cat "$OLD_DOCKER_CA")" "the operator s previous CA" "the operator's docker CA after uninstall"
assert_eq "$(thc stat -c %a "$OLD_DOCKER_CA")" 640 "its mode"
thc test ! -e /etc/docker/certs.d/registry.test:4443 || fail "uninstall left docker's certs.d/registry.test:4443"
thc test ! -e /var/lib/regvisor-client/saved || fail "uninstall left the saved contents"
out=$(thc "$REGVISOR" client uninstall 2>&1) || fail "a second uninstall failed: $out"
assert_contains "$out" "nothing to do"

step "registry host: [scopes] for the clients that push (pki sign --scope adds to it, never makes it)"
INITIAL_CLIENT= write_config "$(printf '[signing]\nkeys = %s\n[scopes]\nbuild-01 = *' "$KEYS")"
th systemctl reload regvisor.service || fail "systemctl reload regvisor failed"

step "the client's own key: client request build-02, pki sign --days --scope, a keyless bundle, a push over 4443"
out=$(thc /bin/sh -c "cd /root && '$REGVISOR' client request build-02" 2>&1) || fail "client request failed: $out"
assert_eq "$(thc stat -c %a /var/lib/regvisor-client/keys/build-02.key)" 600 "the client's own key"
thc cat /root/build-02.csr | th_write /root/build-02.csr
out=$(th "$REGVISOR" pki --config "$CONF" sign --name build-09 /root/build-02.csr 2>&1) &&
	fail "a request for build-02 was signed as build-09: $out"
out=$(th "$REGVISOR" pki --config "$CONF" sign --days 99999 /root/build-02.csr 2>&1) &&
	fail "pki sign gave 99999 days: $out"
out=$(th "$REGVISOR" pki --config "$CONF" sign --days 30 --scope 'app/*' /root/build-02.csr 2>&1) ||
	fail "pki sign failed: $out"
printf '%s\n' "$out" | sed 's/^/#   /'
th grep -qx 'build-02 = app/\*' "$CONF" || fail "no [scopes] line for build-02 in $CONF: $(th cat "$CONF")"
th openssl x509 -in /etc/registry/certs/clients/build-02.crt -noout -checkend $((29 * 86400)) >/dev/null ||
	fail "build-02's certificate ends within 29 days"
th openssl x509 -in /etc/registry/certs/clients/build-02.crt -noout -checkend $((31 * 86400)) >/dev/null &&
	fail "build-02's certificate does not end within 31 days (--days 30)"
conf_sum=$(th sha256sum "$CONF")
out=$(th "$REGVISOR" pki --config "$CONF" sign --scope 'tools/*' /root/build-02.csr 2>&1) &&
	fail "pki sign gave build-02 another scope: $out"
assert_contains "$out" "already gives build-02 other patterns"
assert_eq "$(th sha256sum "$CONF")" "$conf_sum" "the configuration after a refused --scope"
# The simple path takes a scope too; the same scope again writes nothing.
out=$(th "$REGVISOR" pki --config "$CONF" issue-client --scope 'tools/*' build-04 2>&1) ||
	fail "pki issue-client --scope failed: $out"
th grep -qx 'build-04 = tools/\*' "$CONF" || fail "no [scopes] line for build-04 in $CONF"
conf_sum=$(th sha256sum "$CONF")
out=$(th "$REGVISOR" pki --config "$CONF" revoke build-04 2>&1) || fail "pki revoke build-04 failed: $out"
out=$(th "$REGVISOR" pki --config "$CONF" issue-client --reissue --scope 'tools/*' build-04 2>&1) ||
	fail "pki issue-client --reissue --scope (the same scope) failed: $out"
assert_contains "$out" "already gives build-04 exactly"
assert_eq "$(th sha256sum "$CONF")" "$conf_sum" "the configuration after the same --scope again"
th test ! -e /etc/registry/certs/private/clients/build-02.key || fail "a key for build-02 exists on the registry host"
# A request asking for more than the registry host gives.
th openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /root/greedy.key \
	-subj "/O=Evil/CN=build-03" -addext "subjectAltName=DNS:registry.test" -addext "basicConstraints=critical,CA:TRUE" \
	-out /root/greedy.csr 2>/dev/null || fail "openssl req failed"
out=$(th "$REGVISOR" pki --config "$CONF" sign /root/greedy.csr 2>&1) || fail "pki sign of build-03 failed: $out"
text=$(th openssl x509 -in /etc/registry/certs/clients/build-03.crt -noout -text)
assert_contains "$text" "CA:FALSE"
assert_contains "$text" "TLS Web Client Authentication"
[[ $text != *"DNS:registry.test"* && $text != *"O = Evil"* ]] || fail "the certificate took the request's fields: $text"
out=$(th "$REGVISOR" pki --config "$CONF" export build-02 --output /root/bundle-build-02 2>&1) ||
	fail "export of build-02 failed: $out"
th test ! -e /root/bundle-build-02/files/etc/containers/certs.d/registry.test:4443/client.key ||
	fail "the keyless bundle holds a key"
th tar -C /root/bundle-build-02 -cf - . | thc /bin/sh -c "mkdir -m 0700 /root/bundle2 && tar -C /root/bundle2 -xpf -"
out=$(thc "$REGVISOR" client install --registry registry.test /root/bundle2 2>&1) ||
	fail "install of the keyless bundle failed: $out"
thc cmp -s /var/lib/regvisor-client/keys/build-02.key /etc/containers/certs.d/registry.test:4443/client.key ||
	fail "the installed key is not the client's own"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/app/own-key:1 2>&1) ||
	fail "push over 4443 with the client's own key failed: $out"

step "the scope pki sign gave (build-02 = app/*): the client's push outside it is refused, nothing written"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/test/out-of-scope:1 2>&1) &&
	fail "build-02 pushed outside its scope app/*: $out"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/app/in-scope:1 2>&1) ||
	fail "build-02's push inside its scope failed: $out"
code=$(th curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
	http://localhost/v2/test/out-of-scope/tags/list)
assert_eq "$code" 404 "the registry's tag list of test/out-of-scope after the refused push"

step "registry host: pki revoke build-02; the client's next push over 4443 is refused, nothing written"
th "$REGVISOR" pki --config "$CONF" revoke build-02 >/dev/null || fail "pki revoke build-02 failed"
# curl reads "a:b" in --cert as file a, passphrase b: copies without the colon.
thc /bin/sh -c 'd=/etc/containers/certs.d/registry.test:4443; cp $d/ca.crt /root/b2-ca.crt
	cp $d/client.cert /root/b2.crt; cp $d/client.key /root/b2.key'
revoked_refused() {
	local body
	body=$(thc curl -s -w '\n%{http_code}' --cacert /root/b2-ca.crt --cert /root/b2.crt --key /root/b2.key \
		https://registry.test:4443/v2/)
	[[ ${body##*$'\n'} == 400 && $body == *"certificate revoked"* ]]
}
# pki revoke reloads the running proxy (issue 8): bounded, no manual reload.
wait_until 10 revoked_refused || fail "build-02 still admitted on 4443 10 s after pki revoke"
out=$(thc skopeo copy -q "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/test/after-revoke:1 2>&1) &&
	fail "a revoked client pushed from the client host: $out"
# From the registry's side: the repository does not exist.
code=$(th curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
	http://localhost/v2/test/after-revoke/tags/list)
assert_eq "$code" 404 "the registry's tag list of test/after-revoke after the refused push"

out=$(thc "$REGVISOR" client uninstall 2>&1) || fail "uninstall failed: $out"
thc test ! -e /etc/containers/certs.d/registry.test:4443 || fail "uninstall left certs.d/registry.test:4443"
thc test -e /var/lib/regvisor-client/keys/build-02.key || fail "uninstall removed the client's own key"
