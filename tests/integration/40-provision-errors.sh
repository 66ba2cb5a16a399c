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

step "an archive that does not hold the pinned digest fails first, in --dry-run too"
wrong=${REGISTRY_REFERENCE%@*}@sha256:$(printf '0%.0s' {1..64})
write_config
th sed -i "s|^image = .*|image = $wrong|" "$CONF"
for dry in --dry-run ""; do
	# shellcheck disable=SC2086 # no argument when empty
	expect_failure "wrong digest $dry" provision --config "$CONF" $dry
	assert_contains "$OUT" "failed   image-archive"
	assert_contains "$OUT" "not the pinned image $wrong"
	# What the archive does hold, and the line that pins it.
	assert_contains "$OUT" "holds localhost/regvisor-registry:"
	assert_contains "$OUT" "($REGISTRY_DIGEST)"
	assert_contains "$OUT" "set [registry] image = $REGISTRY_REFERENCE"
	assert_contains "$OUT" "not-run  service-user"
done
th test -S /run/regvisor/registry/registry.sock && fail "something started"

step "only image_archive set (image left at its default): refused before users and keys exist"
write_config
th sed -i "/^image = /d" "$CONF"
expect_failure "archive without image" provision --config "$CONF"
assert_contains "$OUT" "failed   image-archive"
assert_contains "$OUT" "not the pinned image docker.io/library/registry@sha256:"
assert_contains "$OUT" "set [registry] image = $REGISTRY_REFERENCE"
th getent passwd ci-svc >/dev/null && fail "user created before the archive was checked"
th test ! -e /etc/registry/certs || fail "PKI created before the archive was checked"

step "an archive whose manifest blob is damaged"
th cp "$REGISTRY_ARCHIVE" /var/tmp/damaged.tar
# Flip one byte inside the manifest blob's content (found by its tar header).
off=$(th python3 -c 'import sys,tarfile
t=tarfile.open(sys.argv[1])
print(t.getmember("blobs/sha256/"+sys.argv[2]).offset_data)' /var/tmp/damaged.tar "${REGISTRY_DIGEST#sha256:}")
printf 'X' | th dd of=/var/tmp/damaged.tar bs=1 seek="$off" conv=notrunc status=none
write_config
th sed -i "s|^image_archive = .*|image_archive = /var/tmp/damaged.tar|" "$CONF"
expect_failure "damaged archive" provision --config "$CONF" --dry-run
assert_contains "$OUT" "failed   image-archive"
assert_contains "$OUT" "does not hash to $REGISTRY_DIGEST"

step "logind unavailable: the linger step fails with a D-Bus error"
write_config
# (ci-svc does not exist yet: the archive checks above stopped before it.)
th getent passwd ci-svc >/dev/null && th loginctl disable-linger ci-svc
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
