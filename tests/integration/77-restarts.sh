#!/usr/bin/env bash
# Restarts and upgrades drop nothing. With regvisor.socket (socket
# activation, written and started by provision) and [proxy] upstream_hold,
# four pull clients (77-pull-loop.py: a fresh TLS connection per round,
# manifest GET and HEAD, every blob checked against its digest) and a loop
# of skopeo pulls run through
#   (a) systemctl restart regvisor (new supervisor, proxy and registry),
#   (b) an image upgrade: a new digest of the registry image (the local one
#       with another label, built offline), provision, systemctl reload,
#   (c) systemctl reload regvisor,
# with zero refused connections and zero failed pulls; the counts are
# printed per phase. Each phase waits (bounded) until the loops have pulled
# again after it, so every phase is really crossed by pulls.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

LOOP=/var/lib/regvisor-test/loop
CA=/etc/registry/certs/ca/ca.crt
ACCEPT_ANY=/etc/regvisor-test-accept.json

th_boot
# A hold long enough for any restart of the registry on this shared machine;
# no rate limit: the loops pull from one address as fast as they can, and
# a 429 would count as a failed pull.
write_config "[proxy]
upstream_hold = 60s
[pull]
rate = 0"
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor -u regvisor.socket --no-pager -n 80
on_failure "$TEST_HOST" exec "$TH_DIR" sh -c "cat $LOOP/stats.json $LOOP/skopeo.log 2>&1 | tail -n 40"

step "provision writes regvisor.socket; with regvisor.service installed it starts it"
provision || fail "provision failed"
install_run_unit
provision || fail "second provision failed"
assert_contains "$OUT" "proxy-socket"
assert_eq "$(th systemctl is-active regvisor.socket)" active "regvisor.socket"
assert_eq "$(th systemctl is-enabled regvisor.socket)" enabled "regvisor.socket enabled"
th grep -qx 'ListenStream=443' /etc/systemd/system/regvisor.socket || fail "no ListenStream=443"
run_unit_up
th journalctl -u regvisor --no-pager -o cat | grep -q 'pull port 443 from socket activation' ||
	fail "the proxy did not take 443 from regvisor.socket"

step "push a small image over 4443 (skopeo, client certificate)"
client_certs_d
th_write "$ACCEPT_ANY" <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
th python3 "$REPO/tests/integration/50-proxy-oci.py" /var/tmp/img 3 >/dev/null
out=$(th skopeo --policy "$ACCEPT_ANY" copy oci:/var/tmp/img:1 docker://registry.test:4443/test/loop:1 2>&1) ||
	fail "skopeo push failed: $out"

step "start the loops: 4 pull clients and skopeo pulls"
th mkdir -p "$LOOP"
th systemd-run --unit=pull-loop /usr/bin/python3 "$REPO/tests/integration/77-pull-loop.py" "$LOOP" "$CA" \
	test/loop:1 4 >/dev/null
th systemd-run --unit=skopeo-loop /bin/sh -c "while [ ! -e $LOOP/stop ]; do
	rm -rf $LOOP/pulled
	if out=\$(skopeo --policy $ACCEPT_ANY --command-timeout 120s copy -q docker://registry.test/test/loop:1 \
		dir:$LOOP/pulled 2>&1); then echo ok; else echo \"fail \$(date +%T) \$out\" | tr '\n' ' '; echo; fi >> $LOOP/skopeo.log
done" >/dev/null
on_exit th touch "$LOOP/stop"

# loop_stat KEY: the pull clients' count KEY so far.
loop_stat() {
	th python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$LOOP/stats.json" "$1"
}
skopeo_count() {
	th sh -c "grep -c '^$1' $LOOP/skopeo.log || true"
}
# progressed ROUNDS SKOPEO: both loops got past these counts.
progressed() {
	(($(loop_stat rounds_ok) >= $1 + 8 && $(skopeo_count ok) >= $2 + 1))
}
# no_failures: nothing refused, nothing failed so far.
no_failures() {
	local refused failed sfail
	refused=$(loop_stat refused) failed=$(loop_stat failed) sfail=$(skopeo_count fail)
	((refused == 0 && failed == 0 && sfail == 0)) && return 0
	th cat "$LOOP/stats.json" | sed 's/^/#   /'
	th grep '^fail' "$LOOP/skopeo.log" | head -n 5 | sed 's/^/#   /'
	fail "$1: $refused refused, $failed failed pulls, $sfail failed skopeo pulls"
}
# phase NAME CMD...: run CMD while the loops run; then wait until both
# loops pulled again, and report the counts.
phase() {
	local name=$1 r0 s0 c0
	shift
	r0=$(loop_stat rounds_ok) s0=$(skopeo_count ok) c0=$(loop_stat connections)
	"$@"
	wait_until 180 progressed "$r0" "$s0" || fail "$name: the loops did not pull again after it"
	no_failures "$name"
	step "$name: $(($(loop_stat rounds_ok) - r0)) pulls on $(($(loop_stat connections) - c0)) TLS connections and" \
		"$(($(skopeo_count ok) - s0)) skopeo pulls during and after it; 0 refused, 0 failed"
}

wait_until 60 loop_stat rounds_ok || fail "the pull loop does not report"
wait_until 120 progressed 0 0 || fail "the loops do not pull"
no_failures "before the restarts"

step "(a) systemctl restart regvisor"
pid0=$(th systemctl show -p MainPID --value regvisor)
phase "(a) systemctl restart regvisor" th systemctl restart regvisor
[[ $(th systemctl show -p MainPID --value regvisor) != "$pid0" ]] || fail "regvisor.service was not restarted"

step "(b) an image upgrade: a new digest of the registry image, provision, systemctl reload"
th mkdir -p /var/tmp/upgrade
th chmod 0755 /var/tmp/upgrade
th_write /var/tmp/upgrade/Containerfile 0644 <<-EOF
	FROM $REGISTRY_REFERENCE
	LABEL org.regvisor.test.upgrade=77
EOF
svc_podman build --pull=never -q -t localhost/regvisor-registry:upgrade /var/tmp/upgrade >/dev/null ||
	fail "cannot build the upgraded image"
new_digest=$(svc_podman image inspect --format '{{.Digest}}' localhost/regvisor-registry:upgrade)
[[ $new_digest =~ ^sha256:[0-9a-f]{64}$ && $new_digest != "$REGISTRY_DIGEST" ]] ||
	fail "the upgraded image has no new digest: '$new_digest'"
new_ref=localhost/regvisor-registry@$new_digest
# The archive holds only the old image: the new one is in storage already.
th sed -i -e "s|^image = .*|image = $new_ref|" -e '/^image_archive = /d' "$CONF"
provision || fail "provision with the new image failed"
th grep -q "$new_digest" /etc/systemd/user/regvisor-registry.service || fail "the unit does not run the new digest"
upgraded() {
	local id
	id=$(registry_container_id)
	[[ -n $id ]] && [[ $(svc_podman inspect --format '{{.ImageDigest}}' "$id") == "$new_digest" ]] &&
		th curl -sf -m 2 -o /dev/null http://127.0.0.1:9443/readyz
}
upgrade() {
	th systemctl reload regvisor || fail "systemctl reload with the new image failed"
	wait_until 120 upgraded || fail "the registry does not run $new_digest"
}
phase "(b) image upgrade" upgrade
journal_events upgrade | grep -q "$new_digest" || fail "no upgrade event"
th journalctl -u regvisor --no-pager -o cat REGVISOR_EVENT=upstream-hold | grep -q 'holding GET/HEAD' ||
	fail "the proxy never held a pull: the registry restart was not crossed by a request"

step "(c) systemctl reload regvisor"
phase "(c) systemctl reload regvisor" th systemctl reload regvisor

th touch "$LOOP/stop"
loops_stopped() {
	! th systemctl is-active -q pull-loop skopeo-loop
}
wait_until 200 loops_stopped || fail "the loops did not stop"
no_failures "at the end"
step "in all: $(loop_stat rounds_ok) pulls on $(loop_stat connections) TLS connections, $(skopeo_count ok) skopeo pulls;" \
	"$(loop_stat refused) refused, $(loop_stat failed) failed"
