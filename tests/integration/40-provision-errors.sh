#!/usr/bin/env bash
# Bad input gets one clear line naming what is wrong, a non-zero exit, and
# nothing half-written: bad configuration, a wrong pinned digest, D-Bus
# (logind) unavailable, a symlink planted at a managed path.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot

expect_failure() {
	local what=$1
	shift
	local rc=0
	OUT=$(th "$REGVISOR" "$@" 2>&1) || rc=$?
	printf '%s\n' "$OUT" | tail -n 3 | sed 's/^/#   /'
	[[ $rc -ne 0 ]] || fail "$what: exit status 0; output: $OUT"
}

step "missing configuration file"
expect_failure "missing file" provision --config /etc/regvisor/none.conf
assert_contains "$OUT" "/etc/regvisor/none.conf"

step "image without a digest"
printf '[tls]\nserver_names = registry.test\n[registry]\nimage = docker.io/library/registry:2\n' | th_write "$CONF"
expect_failure "tag only" provision --config "$CONF"
assert_contains "$OUT" "$CONF:4: [registry] image"
assert_contains "$OUT" "digest"
th test ! -e /etc/registry || fail "files written despite a bad configuration"
th getent passwd ci-svc >/dev/null && fail "user created despite a bad configuration"

step "unknown key"
printf '[tls]\nserver_names = registry.test\nserver_name = typo.test\n' | th_write "$CONF"
expect_failure "unknown key" provision --config "$CONF"
assert_contains "$OUT" "$CONF:3: unknown key 'server_name'"

step "registry listening beyond loopback is refused"
printf '[tls]\nserver_names = registry.test\n[registry]\nlisten = tcp:0.0.0.0:5000\n' | th_write "$CONF"
expect_failure "tcp listen" provision --config "$CONF"
assert_contains "$OUT" "$CONF:4: [registry] listen"

step "an archive that does not hold the pinned digest"
wrong=${REGISTRY_REFERENCE%@*}@sha256:$(printf '0%.0s' {1..64})
write_config
th sed -i "s|^image = .*|image = $wrong|" "$CONF"
expect_failure "wrong digest" provision --config "$CONF"
assert_contains "$OUT" "failed   registry-image"
assert_contains "$OUT" "does not provide sha256:0000"
assert_contains "$OUT" "$REGISTRY_DIGEST"
th test -S /run/regvisor/registry/registry.sock && fail "something started"

step "logind unavailable: the linger step fails with a D-Bus error"
write_config
th loginctl disable-linger ci-svc
th systemctl mask --runtime systemd-logind.service >/dev/null 2>&1
th systemctl stop systemd-logind.service
expect_failure "no logind" provision --config "$CONF"
assert_contains "$OUT" "failed   linger"
assert_contains "$OUT" "SetUserLinger"
th systemctl unmask --runtime systemd-logind.service >/dev/null 2>&1
th systemctl start systemd-logind.service

step "after the cause is fixed, provision converges"
provision || fail "provision failed after fixing logind"
assert_contains "$OUT" ", 0 failed"

step "a symlink at a managed path is refused, not followed"
th rm -f /etc/regvisor/registry.yml
th ln -s /etc/shadow /etc/regvisor/registry.yml
shadow_before=$(th sha256sum /etc/shadow)
expect_failure "symlink" provision --config "$CONF"
assert_contains "$OUT" "failed   registry-config"
assert_contains "$OUT" "Too many levels of symbolic links"
assert_eq "$(th sha256sum /etc/shadow)" "$shadow_before" "/etc/shadow"
