#!/usr/bin/env bash
# regvisor deprovision on a provisioned, running host: --dry-run changes
# nothing; a file someone changed is refused and left as it is; the run
# removes what provision wrote, in reverse, and nothing foreign (a policy
# rule, a registries.d file, a file in /etc/regvisor, an nginx site); data,
# PKI and users stay; a second run changes nothing; provision again gives a
# working host (the image pushed before still pulls, a new push works);
# --purge --remove-users leaves no regvisor user nor data, and is idempotent
# too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
write_config
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 60
ACCEPT_ANY=/var/lib/regvisor-test/accept-anything.json
C=/etc/registry/certs
POLICY=/etc/containers/policy.json

deprovision() {
	rv_conf deprovision "$@"
}

# row STATE NAME TEXT: $OUT has the report line of row NAME with STATE and
# a detail starting with TEXT.
row() {
	grep -Eq "^$1 +$2 +$3" <<<"$OUT" || fail "no line '$1 $2 $3' in: $OUT"
}

# rows: how many report lines $OUT has.
rows() {
	grep -cE '^(ok|changed|would|skipped|failed|not-run) ' <<<"$OUT"
}

# fingerprint: what deprovision may change: /etc (every file's content,
# mode and owner), the trees of the data and of podman's state two levels
# deep (what a running registry writes below that is its own business, and
# deprovision removes those trees whole or not at all; other services'
# PrivateTmp come and go in /var/tmp), /run/regvisor,
# linger, the units and the users.
fingerprint() {
	th /bin/sh -c 'find /etc /run/regvisor /var/lib/systemd/linger -xdev -printf "%p %m %u %g %y\n" 2>/dev/null | sort
		find /var/lib/registry /var/lib/regvisor /var/tmp/podman-* /home -maxdepth 2 -xdev -printf "%p %m %u %g %y\n" 2>/dev/null | sort
		find /etc -xdev -type f -print0 | sort -z | xargs -0 md5sum
		systemctl is-active regvisor.service user@$(id -u ci-svc 2>/dev/null || echo 0).service || true
		systemctl is-enabled regvisor.service || true
		getent passwd ci-svc registry-proxy || true'
}

# same_host BEFORE WHAT: fingerprint is still BEFORE, else fail with the
# difference.
same_host() {
	local now
	now=$(fingerprint)
	[[ $now == "$1" ]] || fail "$2 changed: $(diff <(printf '%s\n' "$1") <(printf '%s\n' "$now") | head -20)"
}

# push NAME: the registry image pushed over 4443 with the client
# certificate "ci" as test/NAME:1; prints its manifest digest.
push() {
	th skopeo --policy "$ACCEPT_ANY" copy -q "oci-archive:$REGISTRY_ARCHIVE" \
		"docker://registry.test:4443/test/$1:1" >/dev/null 2>&1 || fail "push of test/$1 over 4443 failed"
	th skopeo inspect --format '{{.Digest}}' "docker://registry.test:4443/test/$1:1"
}

# pull NAME: test/NAME:1 pulled over 443 (no certificate); prints the
# digest of the manifest it got.
pull() {
	th rm -rf /var/tmp/pulled
	th skopeo --policy "$ACCEPT_ANY" copy -q "docker://registry.test/test/$1:1" dir:/var/tmp/pulled >/dev/null 2>&1 ||
		fail "pull of test/$1 over 443 failed"
	echo "sha256:$(th sha256sum /var/tmp/pulled/manifest.json | cut -d' ' -f1)"
}

step "provision, regvisor.service enabled and started, a push over 4443 and a pull over 443"
provision >/dev/null || fail "provision failed: $OUT"
provision_rows=$(rows)
run_unit_up
th systemctl enable regvisor.service 2>/dev/null
client_certs_d
th_write "$ACCEPT_ANY" <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
digest=$(push before)
assert_eq "$(pull before)" "$digest" "digest pulled over 443"

step "foreign things: a policy rule, a registries.d and a registries.conf.d file, a file in /etc/regvisor, an nginx site"
th python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))
p["transports"]["docker"]["other.example"] = [{"type": "insecureAcceptAnything"}]
json.dump(p, open(sys.argv[1], "w"), indent=2)' "$POLICY"
th_write /etc/containers/registries.d/other.yaml <<<'docker: {other.example: {use-sigstore-attachments: false}}'
th_write /etc/containers/registries.conf.d/10-other.conf <<<'unqualified-search-registries = ["other.example"]'
th_write /etc/regvisor/operator-notes.txt <<<'not regvisor'"'"'s'
th_write /etc/nginx/sites-available/other-site <<<'server { listen 8080; root /var/www/other; }'
th ln -sf ../sites-available/other-site /etc/nginx/sites-enabled/other-site
foreign() {
	th test -f /etc/containers/registries.d/other.yaml || fail "foreign registries.d file removed"
	th test -f /etc/containers/registries.conf.d/10-other.conf || fail "foreign registries.conf.d file removed"
	th test -f /etc/regvisor/operator-notes.txt || fail "foreign file in /etc/regvisor removed"
	th test -f /etc/nginx/sites-enabled/other-site || fail "foreign nginx site removed"
	th test -f "$CONF" || fail "the configuration was removed"
	th python3 -c 'import json, sys; assert "other.example" in json.load(open(sys.argv[1]))["transports"]["docker"]' \
		"$POLICY" || fail "the foreign policy rule was removed"
}

step "deprovision --dry-run: every step reported, nothing changed"
before=$(fingerprint)
deprovision --dry-run || fail "deprovision --dry-run failed"
row would system-units "(disable regvisor.socket, )?stop and disable regvisor.service"
row would user-manager-reload "stop regvisor-registry.service"
row would containers-policy "remove the rules for registry.test"
row would linger "disable linger for ci-svc"
row would registries-d "remove /etc/containers/registries.d/regvisor.yaml"
row skipped registry-storage "\(kept: data or PKI; --purge removes it\)"
row skipped pki-server-ca "\(kept: data or PKI"
row skipped service-user "\(kept: --remove-users removes it\)"
row ok etc-dir "kept /etc/regvisor: holds files regvisor did not write"
assert_contains "$OUT" "plan: "
# One line per row of the table (provision's and deprovision's own), in
# reverse: the units first, the archive check last.
assert_eq "$(rows)" "$((provision_rows + 1))" "report lines"
assert_eq "$(grep -m1 -oE '^[a-z-]+ +[a-z-]+' <<<"$OUT" | awk '{print $2}')" system-units "first row"
assert_eq "$(grep -oE '^[a-z-]+ +[a-z-]+' <<<"$OUT" | tail -n1 | awk '{print $2}')" image-archive "last row"
same_host "$before" "host after --dry-run"

step "a file changed since provision is refused and left as it is"
th cp /etc/containers/registries.d/regvisor.yaml /var/tmp/regvisor.yaml.orig
th sh -c 'echo "# the operator was here" >> /etc/containers/registries.d/regvisor.yaml'
deprovision && fail "deprovision removed a changed file"
row failed registries-d "/etc/containers/registries.d/regvisor.yaml: not what regvisor writes"
row not-run containers-policy ""
th grep -q "the operator was here" /etc/containers/registries.d/regvisor.yaml || fail "the changed file was touched"
th cp /var/tmp/regvisor.yaml.orig /etc/containers/registries.d/regvisor.yaml

step "deprovision: what provision wrote is gone, units stopped, data, PKI, users and foreign things stay"
deprovision || fail "deprovision failed"
for f in /etc/containers/registries.d/regvisor.yaml /etc/containers/registries.conf.d/50-regvisor.conf \
	/etc/tmpfiles.d/regvisor.conf /etc/systemd/user/regvisor-registry.service /etc/regvisor/registry.yml \
	/etc/regvisor/registry-http-secret /var/lib/systemd/linger/ci-svc /run/regvisor/registry /run/regvisor/sigstore; do
	th test -e "$f" && fail "$f is still there"
done
uid=$(th id -u ci-svc)
th test -e "/var/tmp/podman-$uid/xdg-config/containers/containers.conf" && fail "podman's containers.conf is still there"
th python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["transports"]["docker"]
assert not [k for k in d if k.startswith("registry.test") or k.startswith("127.0.0.1")], d' "$POLICY" ||
	fail "regvisor's policy rules are still there"
assert_eq "$(th systemctl is-active regvisor.service)" inactive "regvisor.service"
assert_eq "$(th systemctl is-enabled regvisor.service 2>&1)" disabled "regvisor.service enabled"
th test ! -e /etc/systemd/system/regvisor.socket || fail "deprovision left /etc/systemd/system/regvisor.socket"
assert_eq "$(th systemctl is-active regvisor.socket)" inactive "regvisor.socket"
assert_eq "$(th systemctl is-active "user@$uid.service")" inactive "the service user's manager"
foreign
for f in $C/ca/ca.crt $C/private/ca.key $C/clients/ci.crt /var/lib/registry/docker "/var/tmp/podman-$uid/root" \
	/var/lib/regvisor/signatures /home/ci-svc; do
	th test -e "$f" || fail "$f was removed without --purge"
done
th getent passwd ci-svc registry-proxy >/dev/null || fail "a user was removed without --remove-users"

step "deprovision again: nothing to remove"
before=$(fingerprint)
deprovision || fail "second deprovision failed"
assert_contains "$OUT" "deprovision: " "summary"
assert_contains "$OUT" " 0 removed, 0 failed" "summary"
same_host "$before" "host after the second run"

step "provision again: the image pushed before pulls with its digest, a new push over 4443 works"
provision >/dev/null || fail "provision after deprovision failed: $OUT"
th systemctl start regvisor.service || fail "regvisor.service did not start"
wait_until 60 proxy_up || fail "the proxy does not answer on 443"
assert_eq "$(pull before)" "$digest" "digest of the image pushed before deprovision"
digest2=$(push after)
assert_eq "$(pull after)" "$digest2" "digest pulled over 443"
foreign

step "deprovision --dry-run --purge --remove-users: the plan names data and users, nothing changes"
before=$(fingerprint)
deprovision --dry-run --purge --remove-users || fail "deprovision --dry-run --purge --remove-users failed"
row would registry-storage "remove /var/lib/registry and everything in it"
row would tls-dir "remove $C and everything in it"
row would service-user "remove user ci-svc and its home directory"
row would proxy-user "remove user registry-proxy"
same_host "$before" "host after --dry-run --purge --remove-users"

step "deprovision --purge --remove-users: no regvisor user nor data is left"
deprovision --purge --remove-users || fail "deprovision --purge --remove-users failed"
th getent passwd ci-svc && fail "ci-svc is still there"
th getent passwd registry-proxy && fail "registry-proxy is still there"
th grep -q '^ci-svc:' /etc/subuid /etc/subgid && fail "ci-svc's subordinate ids are still there"
for f in /home/ci-svc "/var/tmp/podman-$uid" /var/lib/registry /var/lib/regvisor $C \
	/etc/regvisor/registry.yml /var/lib/systemd/linger/ci-svc; do
	th test -e "$f" && fail "$f is still there"
done
foreign

step "and again: nothing to remove"
deprovision --purge --remove-users || fail "second deprovision --purge --remove-users failed"
assert_contains "$OUT" " 0 removed, 0 failed" "summary"
step "ok"
