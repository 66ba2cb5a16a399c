# shellcheck shell=bash
# Helpers for the provisioning tests, sourced after lib.sh.

CONF=/etc/regvisor/regvisor.conf
SOCK=/run/regvisor/registry/registry.sock

# write_config [EXTRA INI LINES]: a configuration pinning the locally built
# registry image by digest, loaded from its OCI archive (no internet here).
# The tests push with the client certificate "ci", asked for here through
# [tls] initial_client (provision makes none by default); INITIAL_CLIENT=
# (empty) leaves it out.
write_config() {
	local client=${INITIAL_CLIENT-ci}
	th_write "$CONF" 0644 <<-EOF
		[tls]
		server_names = registry.test, 127.0.0.1
		${client:+initial_client = $client}
		[registry]
		image = $REGISTRY_REFERENCE
		image_archive = $REGISTRY_ARCHIVE
		$*
	EOF
}

# provision [ARGS]: run regvisor provision in the guest, keep its output in
# $OUT, and return its status.
provision() {
	local rc=0
	OUT=$(th "$REGVISOR" provision --config "$CONF" "$@" 2>&1) || rc=$?
	printf '%s\n' "$OUT" | sed 's/^/#   /'
	return $rc
}

# stat_of PATH: "owner:group mode" inside the guest.
stat_of() {
	th stat -c '%U:%G %a' "$1"
}

registry_answers() {
	th curl -sf -m 2 -o /dev/null --unix-socket "$SOCK" http://localhost/v2/
}

# svc_podman ARGS...: podman as the service user exactly as its unit runs it
# (state in /var/tmp/podman-UID, configuration from its XDG_CONFIG_HOME).
svc_podman() {
	local uid
	uid=$(th id -u ci-svc)
	as_user ci-svc env XDG_CONFIG_HOME="/var/tmp/podman-$uid/xdg-config" \
		XDG_DATA_HOME="/var/tmp/podman-$uid/xdg-data" \
		podman --root "/var/tmp/podman-$uid/root" --runroot "/run/user/$uid/podman-run" \
		--tmpdir "/var/tmp/podman-$uid/tmp" --events-backend=file "$@"
}

# install_run_unit: install this build as /usr/local/bin/regvisor in the
# guest (the unit's PrivateTmp would hide a checkout below /tmp) and
# units/regvisor.service unchanged but for the test configuration.
install_run_unit() {
	th install -m 0755 "$REGVISOR" /usr/local/bin/regvisor
	sed -e "s|--config /etc/regvisor/regvisor.conf|--config $CONF|" "$REPO/units/regvisor.service" |
		th_write /etc/systemd/system/regvisor.service
	th systemctl daemon-reload
}

# registry_container_id: the running registry container's ID ("" if none).
registry_container_id() {
	svc_podman ps --filter name=regvisor-registry --format '{{.ID}}' 2>/dev/null
}

# journal_events EVENT: the MESSAGEs regvisor logged with REGVISOR_EVENT=EVENT.
journal_events() {
	th journalctl --no-pager -o cat REGVISOR_EVENT="$1"
}
