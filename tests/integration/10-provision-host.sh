#!/usr/bin/env bash
# regvisor provision on a booted systemd host (real logind, real user
# manager, real rootless podman): from nothing to a registry that answers on
# its unix socket; a second run changes nothing; podman state stays outside
# $HOME; owners and modes are the guide's.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
write_config
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl --user -M ci-svc@ -u regvisor-registry --no-pager -n 50

step "dry run on a bare host changes nothing"
provision --dry-run || fail "dry run failed"
assert_contains "$OUT" "would    service-user"
th test ! -e /etc/regvisor/registry.yml || fail "dry run wrote a file"
th getent passwd ci-svc >/dev/null && fail "dry run created a user"

step "first run"
provision || fail "provision failed"
assert_contains "$OUT" ", 0 failed"
assert_contains "$OUT" "changed  linger"
assert_contains "$OUT" "changed  registry-image"

step "second run: nothing changes"
provision || fail "second provision failed"
assert_contains "$OUT" " 0 changed, 0 failed, 0 skipped"

step "linger through logind, user manager active"
uid=$(th id -u ci-svc)
assert_eq "$(th loginctl show-user ci-svc -p Linger --value)" yes "Linger"
th systemctl is-active --quiet "user@$uid.service" || fail "user@$uid.service not active"

step "owners and modes"
assert_eq "$(stat_of /etc/registry/certs/private)" "root:registry-proxy 750" private/
assert_eq "$(stat_of /etc/registry/certs/private/ca.key)" "root:root 600" ca.key
assert_eq "$(stat_of /etc/registry/certs/private/client-ca.key)" "root:root 600" client-ca.key
assert_eq "$(stat_of /etc/registry/certs/private/registry.key)" "root:registry-proxy 640" registry.key
assert_eq "$(stat_of /etc/registry/certs/registry.crt)" "root:root 644" registry.crt
assert_eq "$(stat_of /var/lib/registry)" "ci-svc:ci-svc 750" storage
assert_eq "$(stat_of "/var/tmp/podman-$uid")" "ci-svc:ci-svc 750" podman state
assert_eq "$(stat_of /etc/regvisor/registry.yml)" "root:ci-svc 640" registry.yml
assert_eq "$(stat_of /run/regvisor/registry)" "ci-svc:registry-proxy 2750" socket dir
assert_eq "$(th getent passwd registry-proxy | cut -d: -f7)" /usr/sbin/nologin "proxy shell"
th grep -qx "ci-svc:100000:65536" /etc/subuid || fail "subuid range missing"
th grep -qx "ci-svc:100000:65536" /etc/subgid || fail "subgid range missing"

step "the registry user unit starts from the user manager and answers /v2/"
user_systemctl ci-svc start regvisor-registry.service || fail "start failed"
wait_until 60 registry_answers || fail "registry does not answer on $SOCK"
unit=$(th cat /etc/systemd/user/regvisor-registry.service)
assert_contains "$unit" "$REGISTRY_REFERENCE"
assert_contains "$unit" "--read-only"
assert_contains "$unit" "--cap-drop=ALL"
assert_contains "$unit" "--network=none"

step "the running container is the pinned image"
running=$(svc_podman inspect --format '{{.ImageDigest}}' regvisor-registry)
assert_eq "$running" "$REGISTRY_DIGEST" "running image digest"

step "podman info: GraphRoot and RunRoot outside \$HOME; nothing under \$HOME"
home=$(th getent passwd ci-svc | cut -d: -f6)
info=$(as_user ci-svc env XDG_CONFIG_HOME="/var/tmp/podman-$uid/xdg-config" \
	XDG_DATA_HOME="/var/tmp/podman-$uid/xdg-data" podman info --format '{{.Store.GraphRoot}} {{.Store.RunRoot}}')
assert_eq "$info" "/var/tmp/podman-$uid/root /run/user/$uid/podman-run" "podman info"
left=$(th find "$home" -mindepth 1 -not -name '.bash*' -not -name .profile -print)
assert_eq "$left" "" "files under $home"

step "provision while the registry runs: still nothing to change"
provision || fail "third provision failed"
assert_contains "$OUT" " 0 changed, 0 failed"
registry_answers || fail "registry stopped answering"
