#!/usr/bin/env bash
# regvisor health and the status listener against the real stack (regvisor
# run with its proxy): everything up is OK (exit 0) and /readyz 200; a
# registry the supervisor gave up on is CRITICAL (exit 2) naming the checks,
# and /readyz is 503 naming the state.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
# Short delays so the supervisor gives up on a crash loop in seconds.
write_config "$(printf '%s\n' '[supervise]' 'restart_delay = 100ms' 'restart_delay_max = 400ms' 'restart_limit = 3' \
	'probe_interval = 300ms')"
th sh -c 'echo "127.0.0.1 registry.test" >> /etc/hosts'
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 40
provision >/dev/null || fail "provision failed"
start_run_unit

health() {
	HRC=0
	HOUT=$(th "$REGVISOR" health --config "$CONF" "$@" 2>&1) || HRC=$?
	printf '%s\n' "$HOUT" | sed 's/^/#   /'
}
readyz() {
	th curl -s -m 3 -o /dev/null -w '%{http_code}' http://127.0.0.1:9443/readyz
}

step "the whole stack up: regvisor health exits 0, every check OK; /readyz 200"
health
assert_eq "$HRC" 0 "health exit status"
assert_contains "$(head -n 1 <<<"$HOUT")" "REGVISOR OK"
assert_contains "$HOUT" "proxy-push-requires-cert"
assert_eq "$(readyz)" 200 "/readyz"
health --json
th jq -e '.state == "OK"' <<<"$HOUT" >/dev/null 2>&1 || /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["state"]=="OK", d' <<<"$HOUT" ||
	fail "--json does not say OK"

step "the registry fails until the supervisor gives up: exit 2 naming the checks, /readyz 503"
registry_crash_loop
health
assert_eq "$HRC" 2 "health exit status"
assert_contains "$(head -n 1 <<<"$HOUT")" "REGVISOR CRITICAL"
assert_contains "$HOUT" "CRITICAL registry-unit"
assert_contains "$HOUT" "CRITICAL registry-http"
assert_eq "$(readyz)" 503 "/readyz"
assert_contains "$(th curl -s -m 3 http://127.0.0.1:9443/readyz)" "registry: gave-up"

step "fixed and reloaded: back to OK"
th mv /etc/regvisor/registry.yml.good /etc/regvisor/registry.yml
th systemctl reload regvisor.service
ready() { [[ $(readyz) == 200 ]]; }
wait_until 30 ready || fail "/readyz did not come back"
health
assert_eq "$HRC" 0 "health exit status after recovery"
