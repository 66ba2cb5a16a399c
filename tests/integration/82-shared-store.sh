#!/usr/bin/env bash
# regvisor on a shared object store (issue 13), on one test host: a
# single-node Swift and a redis on a second address (store-lib.sh), regvisor
# provisioned with [registry] storage = swift, cache = redis://, and a
# shared http secret file:
#   - provision refuses a credentials file others may read (fail closed);
#   - registry.yml: the swift driver, redirects disabled, the redis cache,
#     0640 root:service user; the unit runs the container on slirp4netns
#     without a storage mount; the egress table is loaded;
#   - push over 4443 (mTLS) and pull over 443; a blob GET through 443 is
#     answered by the proxy (200 and the blob), never a 307 to the store;
#   - the blobs are in the Swift container;
#   - from the registry container's network namespace the store and redis
#     are reachable, another port or another address of the host is not;
#   - the Swift key and the http secret are in no world-readable file, no
#     process's command line and not in the journal;
#   - deprovision removes the egress table and its files.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"
. "$(dirname "$0")/store-lib.sh"

ADDR=198.18.7.1     # the store's address (Swift's proxy and redis)
OTHER=198.18.7.2    # another address of the host, with a listener
SECRET=$(openssl rand -hex 32)
ACCEPT_ANY=/etc/regvisor/accept-anything.json

th_boot
store_up th "$ADDR"
step "Swift and redis up on $ADDR"

write_config "$(store_regvisor_files th "$SECRET")"
on_failure th journalctl --no-pager -n 60 -u regvisor
on_failure th journalctl --no-pager -n 60 _SYSTEMD_USER_UNIT=regvisor-registry.service

step "provision refuses a credentials file others may read, and says why"
th chmod 0644 /etc/regvisor/store-credentials
provision && fail "provision accepted a world-readable credentials file"
assert_contains "$OUT" "/etc/regvisor/store-credentials: expected a file of root's that nobody else may read"
th test -e /etc/regvisor/registry.yml && fail "registry.yml written despite the refused credentials"
th chmod 0600 /etc/regvisor/store-credentials

provision || fail "provision failed"
step "registry.yml: swift, redirects disabled, the redis cache, the shared secret; 0640 root:ci-svc"
yml=$(th cat /etc/regvisor/registry.yml)
assert_contains "$yml" "  swift:"
assert_contains "$yml" "authurl: \"http://$ADDR:$STORE_SWIFT_PORT/auth/v1.0\""
assert_contains "$yml" $'  redirect:\n    disable: true'
assert_contains "$yml" $'  cache:\n    blobdescriptor: redis'
assert_contains "$yml" "addr: \"$ADDR:$STORE_REDIS_PORT\""
assert_contains "$yml" "secret: $SECRET"
assert_eq "$(stat_of /etc/regvisor/registry.yml)" "root:ci-svc 640" "registry.yml"
th test -e /etc/regvisor/registry-http-secret && fail "provision made a secret of its own besides the shared one"
unit=$(th cat /etc/systemd/user/regvisor-registry.service)
assert_contains "$unit" "--network=slirp4netns:allow_host_loopback=false,enable_ipv6=false"
[[ $unit == *"--network=none"* ]] && fail "the unit still has --network=none"
[[ $unit == *":/var/lib/registry:rw"* ]] && fail "the unit still mounts a storage directory"
step "the egress table: the store and redis for ci-svc's uid, the rest dropped"
nft=$(th nft list table inet regvisor_egress) || fail "no egress table"
uid=$(th id -u ci-svc)
assert_contains "$nft" "meta skuid $uid ip daddr $ADDR tcp dport $STORE_SWIFT_PORT accept"
assert_contains "$nft" "meta skuid $uid ip daddr $ADDR tcp dport $STORE_REDIS_PORT accept"
assert_eq "$(stat_of /etc/regvisor/registry-egress.nft)" "root:root 600" "egress rules"
th test -e "/etc/systemd/system/user@$uid.service.d/regvisor-egress.conf" || fail "no drop-in for user@$uid"
provision >/dev/null || fail "a second provision failed"
assert_contains "$OUT" "0 changed" "a second provision"

step "at boot: regvisor-egress.service loads the same table, and ci-svc's manager requires it"
assert_contains "$(th systemctl show -p Requires --value "user@$uid.service")" regvisor-egress.service "user@$uid Requires="
th nft delete table inet regvisor_egress || fail "cannot delete the table"
th systemctl start regvisor-egress.service || fail "regvisor-egress.service failed"
rules() { # the table without its counters
	sed 's/counter packets [0-9]* bytes [0-9]*/counter/' <<<"$1"
}
assert_eq "$(rules "$(th nft list table inet regvisor_egress)")" "$(rules "$nft")" "the table loaded by regvisor-egress.service"

run_unit_up
client_certs_d
th_write "$ACCEPT_ANY" 0644 <<<'{"default":[{"type":"insecureAcceptAnything"}]}'

step "push over 4443 with the client certificate, pull over 443"
out=$(th skopeo copy -q --policy "$ACCEPT_ANY" "oci-archive:$REGISTRY_ARCHIVE" docker://registry.test:4443/shared/app:1 2>&1) ||
	fail "push through 4443 failed: $out"
digest=$(th skopeo inspect --no-tags --format '{{.Digest}}' docker://registry.test/shared/app:1) ||
	fail "shared/app:1 cannot be read over 443"
th skopeo copy -q --policy "$ACCEPT_ANY" docker://registry.test/shared/app:1 dir:/var/tmp/pulled >/dev/null 2>&1 ||
	fail "pull over 443 failed"

step "a blob GET over 443 is the blob itself (200), never a redirect to the store"
manifest=$(th curl -sf -m 10 --cacert "$CA" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	https://registry.test/v2/shared/app/manifests/1) || fail "manifest GET over 443"
layer=$(jq -r '.layers[0].digest' <<<"$manifest")
[[ $layer == sha256:* ]] || fail "no layer in the manifest: $manifest"
got=$(th curl -s -m 20 --cacert "$CA" -o /var/tmp/blob -w '%{http_code} %{redirect_url}' \
	"https://registry.test/v2/shared/app/blobs/$layer")
assert_eq "$got" "200 " "blob GET status and redirect"
assert_eq "sha256:$(th sha256sum /var/tmp/blob | cut -d' ' -f1)" "$layer" "blob digest"

step "the blobs are in the Swift container '$STORE_CONTAINER'"
objects=$(store_swift list "$STORE_CONTAINER") || fail "cannot list the container"
assert_contains "$objects" "docker/registry/v2/blobs/sha256/${layer:7:2}/${layer#sha256:}/data"
assert_contains "$objects" "docker/registry/v2/repositories/shared/app/_manifests/tags/1/current/link"
[[ $(th find /var/lib/registry -type f 2>/dev/null | wc -l) == 0 ]] || fail "files in /var/lib/registry"

step "from the registry's network namespace: the store and redis yes, anything else no"
th ip addr add "$OTHER/32" dev lo || fail "cannot add $OTHER"
th systemd-run --unit=rvtest-other-port python3 -m http.server --bind "$ADDR" 9999 >/dev/null 2>&1
th systemd-run --unit=rvtest-other-addr python3 -m http.server --bind "$OTHER" "$STORE_SWIFT_PORT" >/dev/null 2>&1
on_failure th nft list table inet regvisor_egress
listening() {
	th curl -s -m 2 -o /dev/null "http://$ADDR:9999/" && th curl -s -m 2 -o /dev/null "http://$OTHER:$STORE_SWIFT_PORT/"
}
wait_until 20 listening || fail "the test listeners did not start"
pid=$(svc_podman inspect --format '{{.State.Pid}}' regvisor-registry)
[[ $pid =~ ^[0-9]+$ ]] || fail "no registry container pid: $pid"
# curl in the container's network namespace: its packets leave through
# the container's tap device to slirp4netns, the way the registry's do.
from_registry() {
	th nsenter -t "$pid" -n curl -s -m 5 -o /dev/null -w '%{http_code}' "$@"
}
assert_eq "$(from_registry "http://$ADDR:$STORE_SWIFT_PORT/info")" 200 "the store from the registry's namespace"
got=$(th nsenter -t "$pid" -n bash -c "exec 3<>/dev/tcp/$ADDR/$STORE_REDIS_PORT && printf 'PING\r\n' >&3 && timeout 5 head -c 5 <&3") ||
	fail "redis from the registry's namespace"
assert_contains "$got" "+PONG"
assert_eq "$(from_registry "http://$ADDR:9999/")" 000 "another port of the store's address"
assert_eq "$(from_registry "http://$OTHER:$STORE_SWIFT_PORT/")" 000 "the store's port on another address"
assert_eq "$(from_registry "http://10.0.2.2:$STORE_SWIFT_PORT/")" 000 "the host's loopback through slirp4netns"
th curl -s -m 2 -o /dev/null "http://$ADDR:9999/" || fail "root on the host itself is not restricted"
dropped=$(th nft list table inet regvisor_egress | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
((dropped > 0)) || fail "the drop rule counted nothing"

step "the key and the secret: in no world-readable file, command line or journal"
# The patterns go through a root-only file: on a command line they would
# find themselves.
printf '%s\n' "$STORE_KEY" "$SECRET" | th install -m 0600 /dev/stdin /root/needles
leaks=$(th sh -c 'find /etc /run /var/tmp /var/lib /tmp /root /home -xdev -type f -perm -o=r -size -1M 2>/dev/null |
	xargs -r grep -lF -f /root/needles 2>/dev/null') || true
assert_eq "$leaks" "" "world-readable files holding a secret"
th sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " <"$f"; echo; done 2>/dev/null | grep -F -f /root/needles' &&
	fail "a command line holds a secret"
th sh -c 'for f in /proc/[0-9]*/environ; do tr "\0" "\n" <"$f"; done 2>/dev/null | grep -F -f /root/needles' &&
	fail "an environment holds a secret"
th sh -c 'journalctl --no-pager -o verbose | grep -F -f /root/needles' && fail "the journal holds a secret"

step "regvisor health: the store (Swift auth, the container), redis, the secret files"
health_store() {
	HOUT=$(th "$REGVISOR" health --config "$CONF" --check store --check store-cache --check store-secrets) || true
	printf '%s\n' "$HOUT" | sed 's/^/#   /'
}
health_store
assert_contains "$HOUT" "OK       store: Swift at http://$ADDR:$STORE_SWIFT_PORT/auth/v1.0: auth works, container registry is there"
assert_contains "$HOUT" "OK       store-cache: redis at redis://$ADDR:$STORE_REDIS_PORT: PONG"
assert_contains "$HOUT" "OK       store-secrets: /etc/regvisor/http-secret and /etc/regvisor/store-credentials"
th chmod 0640 /etc/regvisor/http-secret
th systemctl stop rvtest-redis.service
health_store
assert_contains "$HOUT" "CRITICAL store-secrets: /etc/regvisor/http-secret: expected a file of root's"
assert_contains "$HOUT" "WARNING  store-cache: redis at redis://$ADDR:$STORE_REDIS_PORT:"
th chmod 0600 /etc/regvisor/http-secret

step "regvisor gc refuses a shared store and says how"
out=$(th "$REGVISOR" gc --config "$CONF" 2>&1) && fail "gc ran on a shared store: $out"
assert_contains "$out" "Put every host read-only first"

step "deprovision: the egress table and its files are gone"
th systemctl stop regvisor.service regvisor.socket
rv_conf deprovision >/dev/null || fail "deprovision failed: $OUT"
th nft list table inet regvisor_egress >/dev/null 2>&1 && fail "the egress table is still loaded"
th test -e /etc/regvisor/registry-egress.nft && fail "the egress rules file is still there"
th test -e /etc/systemd/system/regvisor-egress.service && fail "regvisor-egress.service is still there"
th test -e /etc/regvisor/http-secret || fail "deprovision removed the operator's shared secret file"
step "ok"
