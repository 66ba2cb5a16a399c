#!/usr/bin/env bash
# Several regvisor hosts on one shared store behind a balancer (issue 13).
# Three test hosts on one zone (198.18.0.0/24):
#   th   198.18.0.1  regvisor host A
#   thc  198.18.0.2  regvisor host B
#   ths  198.18.0.3  the store (single-node Swift, memcached, redis:
#                    store-lib.sh), HAProxy in TCP mode with send-proxy-v2
#                    on $LB (443, 4443) towards A and B, and the client;
#                    its own address is the balancer's source, the only
#                    [proxy] trusted_proxies entry on A and B.
# A and B share the object store, the http secret, the redis cache, the PKI
# (A's, copied to B before B is provisioned) and the signers' key; their
# signatures live in the registry ([signing] store = registry).
#   - through the balancer (each request a new connection, so the hosts
#     alternate): push an image, then read it back from A and from B
#     directly: the same digest;
#   - a blob upload whose requests alternate between hosts (POST on A,
#     PATCH on B, PUT on A) completes with the right digest, seen on B;
#   - a GPG-signed push through the balancer (the client onboarded with
#     `pki export` + `client install`); its signature is served by both
#     hosts; with A stopped, the verified pull goes through B; `regvisor
#     health` on B counts it signed (and app:1 unsigned) through the
#     registry's API;
#   - a client revoked on A is refused by B once A's PKI directory is
#     copied there again and B reloaded (the procedure INSTALL.md gives);
#   - regvisor stopped on A while pull loops run through the balancer:
#     the pulls go on (the failures during the switch are counted and
#     printed; after it, none);
#   - each host's access log shows the real client ($LB), never the
#     balancer; a PROXY header from an address that is not the balancer is
#     refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"
. "$(dirname "$0")/store-lib.sh"

command -v haproxy >/dev/null || skip "no haproxy (Debian's haproxy package)"
command -v swift-proxy-server >/dev/null || skip "no swift-proxy-server (Debian's swift-proxy package)"

LB=198.18.0.10    # the balancer's frontend, on ths: registry.test everywhere
DIRECT=198.18.0.11 # a client address on ths that is not the balancer's
SECRET=$(openssl rand -hex 32)
HACFG=/etc/haproxy/regvisor-cluster.cfg
HASOCK=/run/haproxy-regvisor-cluster.sock
CACERT=/etc/containers/certs.d/registry.test/ca.crt
PP_HELPER=(/usr/bin/python3 "$REPO/tests/integration/81-proxy-protocol.py")
PULL_LOOP=(/usr/bin/python3 "$REPO/tests/integration/77-pull-loop.py")
BUNDLE=/root/bundle-ci

TH_NAME_ADDR=$LB
th_boot_three
ths ip addr add "$LB/32" dev lo || fail "cannot add $LB"
ths ip addr add "$DIRECT/32" dev lo || fail "cannot add $DIRECT"
for h in th thc; do
	on_failure "$h" journalctl --no-pager -n 40 -u regvisor
	on_failure "$h" journalctl --no-pager -n 30 _SYSTEMD_USER_UNIT=regvisor-registry.service
done

store_up ths "$TH_STORE_ADDR"
step "Swift, memcached and redis up on $TH_STORE_ADDR"

step "client (ths): a signing key; its public key for both regvisor hosts"
signer_key ths "CI <ci@registry.test>"
th cat "$KEYS" | thc_write "$KEYS"

# cluster_config RUNNER: the same configuration on A and B.
cluster_config() {
	ON=$1 SERVER_NAMES="registry.test, $TH_ADDR, $TH_CLIENT_ADDR" \
		write_config "$(store_regvisor_files "$1" "$SECRET")
keys = $KEYS
[proxy]
trusted_proxies = $TH_STORE_ADDR
[status]
listen = 0.0.0.0:9443
allow_cidrs = $TH_STORE_ADDR"
}

step "host A: provision, regvisor.service"
cluster_config th
ON=th provision >/dev/null || fail "provision on A failed: $OUT"
ON=th start_run_unit

step "host B: A's PKI (CAs, server certificate, CRLs), then provision, regvisor.service"
th tar -C / -cf - etc/registry/certs | thc tar -C / -xpf - || fail "cannot copy A's PKI to B"
cluster_config thc
ON=thc provision >/dev/null || fail "provision on B failed: $OUT"
ON=thc start_run_unit
for f in ca/ca.crt clients/ca.crt registry.crt; do
	assert_eq "$(thc sha256sum "$C/$f" | cut -d' ' -f1)" "$(th sha256sum "$C/$f" | cut -d' ' -f1)" "$f on B and A"
done

step "client (ths): onboarded with A's bundle (pki export ci, client install)"
out=$(th "$REGVISOR" pki --config "$CONF" export ci --output "$BUNDLE" 2>&1) || fail "export failed: $out"
th tar -C "$BUNDLE" -cf - . | ths sh -c "mkdir -m 0700 $BUNDLE && tar -C $BUNDLE -xpf -" ||
	fail "cannot copy the bundle to the client"
out=$(ths "$REGVISOR" client install --registry registry.test "$BUNDLE" 2>&1) || fail "client install failed: $out"

step "ths: HAProxy (TCP, send-proxy-v2, httpchk /readyz) on $LB:443 and $LB:4443 to A and B"
{
	cat <<-EOC
		global
			stats socket $HASOCK mode 600 level admin
		defaults
			mode tcp
			timeout connect 5s
			timeout client 120s
			timeout server 120s
			retries 3
			option redispatch
	EOC
	for fe in pull:443 push:4443; do
		printf 'frontend %s\n\tbind %s:%s\n\tdefault_backend %s\n' "${fe%:*}" "$LB" "${fe#*:}" "${fe%:*}"
		printf 'backend %s\n\tbalance roundrobin\n\toption httpchk GET /readyz\n' "${fe%:*}"
		printf '\tserver %s %s:%s send-proxy-v2 check port 9443 inter 500 fall 1 rise 2\n' \
			a "$TH_ADDR" "${fe#*:}" b "$TH_CLIENT_ADDR" "${fe#*:}"
	done
} | ths_write "$HACFG"
ths haproxy -c -q -f "$HACFG" || fail "haproxy refuses $HACFG"
ths haproxy -D -f "$HACFG" -p /run/haproxy-regvisor-cluster.pid || fail "haproxy did not start"
on_exit ths sh -c 'kill "$(cat /run/haproxy-regvisor-cluster.pid)"'
# lb_servers: "BACKEND SERVER STATUS" of the four servers (a, b) in HAProxy.
lb_servers() {
	ths /usr/bin/python3 "$REPO/tests/integration/haproxy-servers.py" "$HASOCK" | awk '{ print $1, $2, $3 }'
}
all_up() {
	[[ $(lb_servers | grep -c ' UP$') -eq 4 ]]
}
wait_until 60 all_up || fail "HAProxy's checks do not pass: $(lb_servers | tr '\n' ' ')"

# direct HOST ARGS...: curl from ths to one regvisor host, from $DIRECT
# (not the balancer's address), by name.
direct() {
	local addr=$1
	shift
	ths curl -s -m 20 --interface "$DIRECT" --cacert "$CACERT" \
		--resolve "registry.test:443:$addr" --resolve "registry.test:4443:$addr" "$@"
}
# curl reads "FILE:PASSWORD" in --cert: the installed files under names
# without the colon of "registry.test:4443".
ths install -m 0600 /etc/containers/certs.d/registry.test:4443/client.cert /root/ci.crt
ths install -m 0600 /etc/containers/certs.d/registry.test:4443/client.key /root/ci.key
MTLS_C=(--cert /root/ci.crt --key /root/ci.key)
OCI=application/vnd.oci.image.manifest.v1+json

step "push through the balancer (its requests alternate between A and B), read back from each"
# An unsigned image: skopeo's own policy accepts anything (the installed
# policy.json wants signatures for registry.test, rightly).
ths_write /etc/regvisor-test-accept.json <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
out=$(ths skopeo copy -q --policy /etc/regvisor-test-accept.json "oci-archive:$REGISTRY_ARCHIVE" \
	docker://registry.test:4443/shared/app:1 2>&1) || fail "push through the balancer failed: $out"
da=$(direct "$TH_ADDR" -sf -o /dev/null -D - -H "Accept: $OCI" https://registry.test/v2/shared/app/manifests/1 |
	tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
db=$(direct "$TH_CLIENT_ADDR" -sf -o /dev/null -D - -H "Accept: $OCI" https://registry.test/v2/shared/app/manifests/1 |
	tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
[[ $da == sha256:* ]] || fail "A does not serve shared/app:1"
assert_eq "$db" "$da" "shared/app:1's digest on B and on A"
step "shared/app:1 is $da on A and on B"

step "one blob upload across hosts: POST on A, PATCH on B, PUT on A"
ths sh -c 'head -c 300000 /dev/urandom > /var/tmp/blob'
bd=sha256:$(ths sha256sum /var/tmp/blob | cut -d' ' -f1)
# location FILE: the Location header of a saved response, as an absolute URL.
loc=$(direct "$TH_ADDR" "${MTLS_C[@]}" -sf -o /dev/null -D - -X POST \
	https://registry.test:4443/v2/shared/upload/blobs/uploads/ |
	tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
[[ -n $loc ]] || fail "POST on A gave no Location"
[[ $loc == /* ]] && loc=https://registry.test:4443$loc
ths sh -c 'head -c 150000 /var/tmp/blob > /var/tmp/blob.1; tail -c +150001 /var/tmp/blob > /var/tmp/blob.2'
loc=$(direct "$TH_CLIENT_ADDR" "${MTLS_C[@]}" -sf -o /dev/null -D - -X PATCH \
	-H 'Content-Type: application/octet-stream' -H 'Content-Range: 0-149999' --data-binary @/var/tmp/blob.1 "$loc" |
	tr -d '\r' | awk -F': ' 'tolower($1) == "location" { print $2 }')
[[ -n $loc ]] || fail "PATCH on B gave no Location (B does not know A's upload)"
[[ $loc == /* ]] && loc=https://registry.test:4443$loc
sep='&'
[[ $loc == *'?'* ]] || sep='?'
code=$(direct "$TH_ADDR" "${MTLS_C[@]}" -o /dev/null -w '%{http_code}' -X PUT \
	-H 'Content-Type: application/octet-stream' --data-binary @/var/tmp/blob.2 "$loc${sep}digest=$bd")
assert_eq "$code" 201 "PUT on A of the upload B continued"
code=$(direct "$TH_CLIENT_ADDR" -o /dev/null -w '%{http_code}' -I "https://registry.test/v2/shared/upload/blobs/$bd")
assert_eq "$code" 200 "HEAD of the finished blob on B"

step "a signed push through the balancer; its signature is served by A and by B"
id=$(ths podman pull -q "oci-archive:$REGISTRY_ARCHIVE" 2>/dev/null | tail -n 1)
[[ $id =~ ^[0-9a-f]{64}$ ]] || fail "podman pull oci-archive: '$id'"
out=$(ths env GNUPGHOME="$SIGNER" podman push -q --sign-by "$fpr" "$id" registry.test:4443/shared/signed:1 2>&1) ||
	fail "signed push through the balancer failed: $out"
ds=$(direct "$TH_ADDR" -sf -o /dev/null -D - -H "Accept: $OCI" \
	-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' https://registry.test/v2/shared/signed/manifests/1 |
	tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }')
[[ $ds == sha256:* ]] || fail "A does not serve shared/signed:1"
for addr in "$TH_ADDR" "$TH_CLIENT_ADDR"; do
	sigs=$(direct "$addr" -sf "https://registry.test/extensions/v2/shared/signed/signatures/$ds") ||
		fail "no signatures for $ds from $addr"
	n=$(jq '.signatures | length' <<<"$sigs")
	assert_eq "$n" 1 "signatures of shared/signed:1 served by $addr"
done
out=$(ths podman pull -q registry.test/shared/signed:1 2>&1) || fail "verified pull through the balancer failed: $out"

step "regvisor health on B counts through the registry's API: signed:1 signed, app:1 not, no signature tag"
# The shared store keeps nothing on B: the catalog, tags and signatures come from B's registry.
rc=0
out=$(thc "$REGVISOR" health --config "$CONF" --check image-signatures 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/#   /'
assert_eq "$rc" 1 "health --check image-signatures on B (WARNING: app:1 is unsigned)"
assert_contains "$out" "1 of 2 tags carry no valid signature by a trusted key: shared/app:1 (no signature)"
assert_contains "$out" "counted through the registry's API at "
# The census behind /metrics runs that check as a child of regvisor run (after a reload).
thc systemctl reload regvisor.service || fail "cannot reload regvisor on B"
census_counted() {
	local m
	m=$(ths curl -sf -m 3 "http://$TH_CLIENT_ADDR:9443/metrics" |
		/usr/bin/python3 "$REPO/tests/integration/prom-parse.py") || return 1
	[[ $m == *'regvisor_image_tags{} 2'* && $m == *'regvisor_image_tags_signed{} 1'* ]]
}
wait_until 90 census_counted || fail "B's /metrics has no census of 2 tags, 1 signed: $(thc journalctl --no-pager -n 5 -u regvisor | grep -i census)"

step "a client revoked on A is refused by B once A's PKI is copied there and B reloaded (INSTALL.md)"
out=$(th "$REGVISOR" pki --config "$CONF" issue-client gone 2>&1) || fail "issue-client gone: $out"
th cat "$C/clients/gone.crt" | ths_write /root/gone.crt 0600
th cat "$C/private/clients/gone.key" | ths_write /root/gone.key 0600
# upload_on ADDR: the status of an upload start on ADDR:4443 with gone's certificate.
upload_on() {
	direct "$1" --cert /root/gone.crt --key /root/gone.key -o /dev/null -w '%{http_code}' -X POST \
		https://registry.test:4443/v2/shared/gone/blobs/uploads/
}
assert_eq "$(upload_on "$TH_CLIENT_ADDR")" 202 "gone's upload on B before the revoke"
out=$(th "$REGVISOR" pki --config "$CONF" revoke gone 2>&1) || fail "revoke gone: $out"
assert_eq "$(upload_on "$TH_ADDR")" 400 "gone's upload on A after the revoke"
th tar -C / -cf - etc/registry/certs | thc tar -C / -xpf - || fail "cannot copy A's PKI to B again"
thc systemctl reload regvisor.service || fail "reload of regvisor on B failed"
refused_on_b() {
	[[ $(upload_on "$TH_CLIENT_ADDR") == 400 ]]
}
wait_until 10 refused_on_b || fail "B still accepts gone's certificate with A's CRL"

step "each host's access log names the real client ($LB), never the balancer"
for h in th thc; do
	log=$("$h" journalctl --no-pager -u regvisor REGVISOR_EVENT=access -o cat)
	assert_contains "$log" "client=$LB "
	[[ $log == *"client=$TH_STORE_ADDR "* ]] && fail "$h's access log names the balancer as a client"
done

step "a PROXY header from A (not the balancer) to B: refused before TLS"
out=$(th "${PP_HELPER[@]}" send "$TH_CLIENT_ADDR" 443 proxy 2>&1) || fail "send proxy: $out"
assert_eq "$out" closed "B's answer to a PROXY header from A"

step "regvisor stopped on A while 4 clients pull in a loop through the balancer"
ths mkdir -p /var/tmp/loop
ths systemd-run --unit=rvtest-pull-loop "${PULL_LOOP[@]}" /var/tmp/loop "$CACERT" shared/app:1 4 >/dev/null ||
	fail "the pull loop did not start"
on_exit ths touch /var/tmp/loop/stop
loop_stat() {
	ths jq -r ".$1" /var/tmp/loop/stats.json 2>/dev/null
}
rounds_past() {
	local n
	n=$(loop_stat rounds_ok) && [[ $n =~ ^[0-9]+$ ]] && ((n >= $1))
}
wait_until 60 rounds_past 8 || fail "the pull loop does not pull: $(ths cat /var/tmp/loop/stats.json)"
th systemctl stop regvisor.socket regvisor.service || fail "cannot stop regvisor on A"
a_down() {
	[[ $(lb_servers | grep -c ' b UP$') -eq 2 && $(lb_servers | grep -c ' a DOWN$') -eq 2 ]]
}
wait_until 30 a_down || fail "HAProxy did not mark A down: $(lb_servers | tr '\n' ' ')"
at_switch=$(ths cat /var/tmp/loop/stats.json)
failed_at_switch=$(loop_stat failed)
ok_at_switch=$(loop_stat rounds_ok)
wait_until 60 rounds_past $((ok_at_switch + 8)) || fail "no pulls after A stopped: $(ths cat /var/tmp/loop/stats.json)"
ths touch /var/tmp/loop/stop
loop_done() {
	! ths systemctl -q is-active rvtest-pull-loop
}
wait_until 120 loop_done || fail "the pull loop does not stop"
final=$(ths cat /var/tmp/loop/stats.json)
step "pull loop: at the switch $at_switch; at the end $final"
assert_eq "$(jq .failed <<<"$final")" "$failed_at_switch" "failed pulls after HAProxy marked A down"
assert_eq "$(jq .refused <<<"$final")" "$(jq .refused <<<"$at_switch")" "refused pulls after A was marked down"

step "with A stopped, the verified pull of shared/signed:1 goes through B"
ths podman rmi -f registry.test/shared/signed:1 >/dev/null 2>&1 || true
out=$(ths podman pull -q registry.test/shared/signed:1 2>&1) || fail "verified pull through B alone failed: $out"
step "ok"
