#!/usr/bin/env bash
# regvisor run as the system unit (Type=notify) on a booted systemd host:
# READY once GET /v2/ answers, restarts a killed container within 5 s, keeps
# pushed data, backs off with growing gaps and gives up on a crash loop,
# SIGHUP keeps the container, SIGTERM leaves nothing behind, and a wrong
# pinned digest is refused before anything starts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
# Short delays so the crash loop runs in seconds; the defaults are 1s..30s.
write_config "$(printf '%s\n' '[supervise]' 'restart_delay = 200ms' 'restart_delay_max = 5s' 'restart_limit = 5' \
	'restart_window = 60s' 'probe_interval = 300ms' 'probe_timeout = 1s' 'unhealthy_after = 5s')"
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 60
provision || fail "provision failed"
install_run_unit

step "the system unit is hardened: systemd-analyze security exposure at most 3.0"
exposure=$(systemd-analyze security --offline=yes "$REPO/units/regvisor.service" 2>&1 | tail -n 1)
step "$exposure"
systemd-analyze security --offline=yes --threshold=30 "$REPO/units/regvisor.service" >/dev/null 2>&1 ||
	fail "exposure above 3.0: $exposure"

step "systemctl start regvisor returns once the registry answers (Type=notify, READY=1)"
th systemctl start regvisor.service || fail "regvisor.service did not start"
registry_answers || fail "READY was sent before /v2/ answered"
status=$(th systemctl show -p StatusText --value regvisor.service)
assert_contains "$status" "registry ready" "StatusText"
th systemctl status regvisor.service --no-pager | grep -q "Status: \"registry ready" ||
	fail "systemctl status does not show the STATUS line"

step "the proxy runs under regvisor.service: pulls over TLS on 443, mTLS on 4443"
th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'
C=/etc/registry/certs
assert_eq "$(th curl -s -m 5 -o /dev/null -w '%{http_code}' --cacert $C/ca/ca.crt https://registry.test/v2/)" 200 \
	"GET /v2/ on 443"
assert_eq "$(th curl -s -m 5 -o /dev/null -w '%{http_code}' --cacert $C/ca/ca.crt \
	--cert $C/clients/ci.crt --key $C/private/clients/ci.key https://registry.test:4443/v2/)" 200 "GET /v2/ on 4443 with ci's cert"
assert_contains "$(th systemctl show -p StatusText --value regvisor.service)" "proxy listening" "StatusText"

step "status listener: /livez and /readyz 200, /metrics parses"
status_get() {
	th curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:9443$1"
}
metrics() {
	th curl -sf -m 3 http://127.0.0.1:9443/metrics | /usr/bin/python3 "$REPO/tests/integration/prom-parse.py"
}
assert_eq "$(status_get /livez)" 200 "/livez"
assert_eq "$(status_get /readyz)" 200 "/readyz"
m=$(metrics) || fail "/metrics does not parse as Prometheus text"
assert_contains "$m" 'regvisor_registry_ready{} 1'
assert_contains "$m" 'regvisor_registry_restarts_total{} 0'
assert_contains "$m" 'regvisor_certificate_expiry_timestamp_seconds{certificate="server"}'
assert_contains "$m" 'regvisor_certificate_expiry_timestamp_seconds{certificate="client/ci"}'
assert_eq "$(status_get /nope)" 404 "unknown path"

step "push a blob through the socket"
blob=$(head -c 65536 /dev/urandom | base64 -w0)
digest=sha256:$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)
location=$(th curl -sf -m 5 -X POST -D - -o /dev/null --unix-socket "$SOCK" \
	http://localhost/v2/test/data/blobs/uploads/ | tr -d '\r' | sed -n 's/^Location: //Ip')
[[ -n $location ]] || fail "no upload location"
sep='?'
[[ $location == *\?* ]] && sep='&'
code=$(printf '%s' "$blob" | th curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT --data-binary @- \
	-H 'Content-Type: application/octet-stream' --unix-socket "$SOCK" "http://localhost$location${sep}digest=$digest")
assert_eq "$code" 201 "blob upload"

step "SIGKILL the container: /v2/ answers again within 5 s"
old_id=$(registry_container_id)
[[ -n $old_id ]] || fail "no registry container"
pid=$(svc_podman inspect --format '{{.State.Pid}}' regvisor-registry)
restarted() {
	local id
	id=$(registry_container_id)
	[[ -n $id && $id != "$old_id" ]] && registry_answers
}
th kill -KILL "$pid"
t0=${EPOCHREALTIME/./}
wait_until 5 restarted || fail "registry not back within 5 s of SIGKILL"
step "back after $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
journal_events restart | grep -q "restart 1" || fail "restart not logged"
assert_contains "$(metrics)" 'regvisor_registry_restarts_total{} 1' "metrics after a restart"

step "data pushed before the kill is served with the same digest"
got=$(th curl -sf -m 10 --unix-socket "$SOCK" "http://localhost/v2/test/data/blobs/$digest" | sha256sum | cut -d' ' -f1)
assert_eq "sha256:$got" "$digest" "blob digest after restart"

step "SIGHUP reloads and keeps the same container"
id=$(registry_container_id)
th systemctl reload regvisor.service
wait_until 10 sh -c "$(printf '%q ' "$TEST_HOST" exec "$TH_DIR") journalctl -o cat REGVISOR_EVENT=reloaded | grep -q ." ||
	fail "reload not logged"
assert_eq "$(registry_container_id)" "$id" "container after SIGHUP"
registry_answers || fail "registry stopped answering after SIGHUP"

step "a crash loop backs off with growing gaps and is given up"
registry_crash_loop
delays=$(journal_events restart-scheduled | sed -n 's/.*delay_ms=\([0-9]*\).*/\1/p' | tail -n 5 | tr '\n' ' ')
step "restart delays: $delays"
read -r -a d <<<"$delays"
[[ ${#d[@]} -ge 4 ]] || fail "expected at least 4 scheduled restarts, got: $delays"
for ((i = 1; i < ${#d[@]}; i++)); do
	((d[i] > d[i - 1])) || fail "restart delays do not grow: $delays"
done
assert_contains "$(th systemctl show -p StatusText --value regvisor.service)" "gave up" "StatusText"
th systemctl is-active --quiet regvisor.service || fail "regvisor itself should stay up to report"
assert_eq "$(status_get /readyz)" 503 "/readyz after giving up"
assert_contains "$(th curl -s -m 3 http://127.0.0.1:9443/readyz)" "registry: gave-up" "/readyz body"
assert_eq "$(status_get /livez)" 200 "/livez while given up"
assert_contains "$(metrics)" 'regvisor_supervisor_state{state="gave-up"} 1' "metrics state"

step "fixed configuration + reload: it tries again and recovers"
th mv /etc/regvisor/registry.yml.good /etc/regvisor/registry.yml
th systemctl reload regvisor.service
wait_until 30 registry_answers || fail "registry did not come back after reload"

step "SIGTERM leaves no container and no stray process"
th systemctl stop regvisor.service
assert_eq "$(svc_podman ps -a --format '{{.Names}}')" "" "containers after stop"
th pgrep -u ci-svc -a -f 'conmon|bin/registry|podman|runc' && fail "stray processes after stop"
th pgrep -a -f 'regvisor (run|proxy|sigstore)' && fail "regvisor processes left after stop"
assert_eq "$(user_systemctl ci-svc is-active regvisor-registry.service || true)" inactive "registry unit"

step "a wrong pinned digest is refused and nothing starts"
wrong=${REGISTRY_REFERENCE%@*}@sha256:$(printf '1%.0s' {1..64})
th sed -i -e "s|^image = .*|image = $wrong|" -e '/^image_archive/d' "$CONF"
th systemctl start regvisor.service && fail "regvisor started with an image that is not there"
refused() { th journalctl -u regvisor --no-pager -o cat | grep -q "refusing to start"; }
wait_until 10 refused || fail "no clear error in the journal"
assert_eq "$(svc_podman ps -a --format '{{.Names}}')" "" "containers"
