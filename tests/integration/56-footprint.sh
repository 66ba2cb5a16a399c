#!/usr/bin/env bash
# Least footprint (issue 8, item 9 and the symlink bullet), on a booted
# systemd host with the real stack (regvisor run, its proxy, the registry):
#   - talking to the service user's manager opens no login session: a
#     re-run of provision, `regvisor health` x3 and `regvisor run` leave no
#     "session opened" (PAM) line, no logind session and no wtmp record for
#     the service user, and health still reads the registry unit's state;
#   - after pushes (4443, client certificate) and pulls (443) through the
#     proxy, nothing under the registry's storage nor its socket is
#     accessible to others; the socket is group registry-proxy, 0770;
#   - the service user replaces a directory of its own podman tree with a
#     symlink to /etc while provision is between two rows: provision
#     refuses (ELOOP) and writes nothing in /etc;
#   - regvisor run, sandboxed, starts a stopped user manager and reaches its
#     bus (/run/user/UID mounted after the unit's namespace was made).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

CERTS=/etc/registry/certs
CA=$CERTS/ca/ca.crt
ACCEPT_ANY=/etc/regvisor/accept-anything.json
SVC=ci-svc

th_boot
write_config
th sh -c 'echo "127.0.0.1 registry.test" >> /etc/hosts'
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 60
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl --no-pager -n 40 _SYSTEMD_USER_UNIT=regvisor-registry.service

step "first provision"
provision >/dev/null || fail "provision failed: $OUT"
install_run_unit

# traces: what a login of the service user leaves behind: pam_unix's
# "session opened" lines and logind's "New session" lines in the journal,
# logind sessions now open, and wtmp records (where the file exists).
traces() {
	local pam logind sessions wtmp
	pam=$(th journalctl --no-pager -o cat | grep -c "session opened for user $SVC" || true)
	logind=$(th journalctl --no-pager -o cat -u systemd-logind | grep -c "of user $SVC\.$" || true)
	sessions=$(th loginctl list-sessions --no-legend | grep -cw "$SVC" || true)
	wtmp=$(th sh -c "if test -f /var/log/wtmp; then last -w -f /var/log/wtmp $SVC | grep -c '^$SVC '; else echo none; fi" || true)
	echo "pam=$pam logind=$logind sessions=$sessions wtmp=$wtmp"
}

# The three parts are independent: a broken one is noted and the next still
# runs, so one run shows every part that does not hold.
problems=()
problem() {
	problems+=("$*")
	echo "# PROBLEM: $*" >&2
}

# health: run `regvisor health`, keep its output in $HOUT (its exit status
# depends on load-sensitive checks such as podman info; not asserted here).
health() {
	HOUT=$(th "$REGVISOR" health --config "$CONF" 2>&1) || true
}

step "no login session for the service user: provision again, health x3, regvisor run"
before=$(traces)
step "before: $before"
provision >/dev/null || fail "second provision failed: $OUT"
for _ in 1 2 3; do
	health
done
th systemctl start regvisor.service || fail "regvisor.service did not start"
health
after=$(traces)
step "after:  $after"
[[ $after == "$before" ]] || problem "login traces of $SVC: before '$before', after '$after'"
printf '%s\n' "$HOUT" | sed 's/^/#   /'
grep -Eq '^OK +registry-unit' <<<"$HOUT" || fail "health does not read the registry unit as OK: $HOUT"

step "push over 4443 (client certificate) and pull over 443 through the proxy"
th "$REGVISOR" pki --config "$CONF" issue-client footprint >/dev/null || fail "pki issue-client failed"
th /bin/sh -c "set -e
	mkdir -p /etc/containers/certs.d/registry.test:4443 /etc/containers/certs.d/registry.test:443
	cp $CA /etc/containers/certs.d/registry.test:4443/ca.crt
	cp $CA /etc/containers/certs.d/registry.test:443/ca.crt
	cp $CERTS/clients/footprint.crt /etc/containers/certs.d/registry.test:4443/client.cert
	cp $CERTS/private/clients/footprint.key /etc/containers/certs.d/registry.test:4443/client.key"
th_write "$ACCEPT_ANY" <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
th python3 "$REPO/tests/integration/50-proxy-oci.py" /var/tmp/img 3 >/dev/null
out=$(th skopeo --policy "$ACCEPT_ANY" copy oci:/var/tmp/img:1 docker://registry.test:4443/test/footprint:1 2>&1) ||
	fail "push over 4443 failed: $out"
out=$(th skopeo --policy "$ACCEPT_ANY" copy docker://registry.test:443/test/footprint:1 oci:/var/tmp/pulled:1 2>&1) ||
	fail "pull over 443 failed: $out"
layers=$(th python3 -c 'import json,sys
idx = json.load(open("/var/tmp/pulled/index.json"))
d = idx["manifests"][0]["digest"].split(":")[1]
print(len(json.load(open("/var/tmp/pulled/blobs/sha256/" + d))["layers"]))')
assert_eq "$layers" 3 "layers pulled back over 443"

step "storage and socket: nothing accessible to others"
n=$(th find /var/lib/registry | wc -l)
((n > 20)) || fail "only $n entries under /var/lib/registry after a push"
loose=$(th find /var/lib/registry /run/regvisor/registry -perm /o=rwx -printf '%m %u:%g %p\n')
[[ -z $loose ]] || problem "$(wc -l <<<"$loose") entries accessible to others after pushes, e.g.:"$'\n'"$(head -n 5 <<<"$loose")"
[[ $(stat_of /run/regvisor/registry) == "$SVC:registry-proxy 2750" ]] ||
	problem "socket directory: $(stat_of /run/regvisor/registry), expected $SVC:registry-proxy 2750"
[[ $(stat_of "$SOCK") == "$SVC:registry-proxy 770" ]] ||
	problem "registry socket: $(stat_of "$SOCK"), expected $SVC:registry-proxy 770"
step "$n entries under /var/lib/registry, none for others; socket $(stat_of "$SOCK")"

step "a directory of the service user's own tree swapped for a symlink to /etc mid-provision"
uid=$(th id -u "$SVC")
xdg=/var/tmp/podman-$uid/xdg-config
etc_before=$(th find /etc -user "$SVC" -printf '%m %u:%g %p\n')
conf_before=$(th sh -c 'sha256sum /etc/containers/containers.conf /etc/containers/storage.conf 2>&1' || true)
# Make the row's content differ, so provision would write it.
as_user "$SVC" sh -c "echo '# changed' >> $xdg/containers/containers.conf"
# Provision stops itself (SIGSTOP) before the row that writes
# $xdg/containers/containers.conf: all rows for the directories have
# passed. Then the service user swaps, and provision continues.
th systemd-run --unit=rv-provision-race -E REGVISOR_TEST_STOP_AT=podman-containers-conf \
	"$REGVISOR" provision --config "$CONF" >/dev/null
on_failure th journalctl -u rv-provision-race --no-pager -o cat
stopped() {
	local pid
	pid=$(th systemctl show -p MainPID --value rv-provision-race)
	[[ $pid != 0 ]] && th grep -q '^State:.*stopped' "/proc/$pid/status"
}
wait_until 60 stopped || fail "provision did not stop before podman-containers-conf"
as_user "$SVC" sh -c "mv $xdg $xdg.real && ln -s /etc $xdg"
th systemctl kill -s CONT rv-provision-race
finished() {
	! th systemctl is-active --quiet rv-provision-race
}
wait_until 60 finished || fail "provision did not finish"
out=$(th journalctl -u rv-provision-race --no-pager -o cat)
printf '%s\n' "$out" | grep -E 'failed|changed|provision:' | sed 's/^/#   /'
etc_after=$(th find /etc -user "$SVC" -printf '%m %u:%g %p\n')
[[ $etc_after == "$etc_before" ]] ||
	problem "provision wrote through the symlink; owned by $SVC in /etc now:"$'\n'"$etc_after"
[[ $(th sh -c 'sha256sum /etc/containers/containers.conf /etc/containers/storage.conf 2>&1' || true) == "$conf_before" ]] ||
	problem "/etc/containers/{containers,storage}.conf changed"
[[ $out == *"failed   podman-containers-conf"*"Too many levels of symbolic links"* ]] ||
	problem "provision did not refuse podman-containers-conf with ELOOP"
[[ $(th systemctl show -p Result --value rv-provision-race) == exit-code ]] ||
	problem "provision did not fail"

step "the service user undoes it: provision converges again"
as_user "$SVC" sh -c "rm $xdg && mv $xdg.real $xdg"
provision >/dev/null || problem "provision after the symlink was removed failed: $OUT"

step "regvisor run starts a stopped user manager and still reaches its bus from its sandbox"
# /run/user/UID is mounted after regvisor.service's namespace was set up:
# BindReadOnlyPaths=/run/user must let it through.
th systemctl stop regvisor.service
th systemctl stop "user@$uid.service"
th test ! -e "/run/user/$uid/bus" || fail "/run/user/$uid/bus still there with user@$uid stopped"
th systemctl start regvisor.service || problem "regvisor.service did not start with user@$uid stopped"
registry_answers || problem "the registry does not answer after regvisor started user@$uid"

((${#problems[@]} == 0)) || fail "${#problems[@]} problem(s): ${problems[*]}"
