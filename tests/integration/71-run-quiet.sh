#!/usr/bin/env bash
# A ready registry is probed every probe_interval without a journal line per
# probe (before: the registry logged two lines per GET /v2/ probe, ~56 a
# minute, ~80k a day): the registry's own log shows no probe once it is
# ready, while the probe still notices a registry that stops answering
# (SIGSTOP) and the supervisor restarts it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
write_config
# A probe every 300 ms: 10 in each second that the registry must not log.
printf '[supervise]\nprobe_interval = 300ms\nprobe_timeout = 1s\nunhealthy_after = 3s\n' | th sh -c "cat >> $CONF"
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 40
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl --no-pager -n 20 _SYSTEMD_USER_UNIT=regvisor-registry.service
provision || fail "provision failed"
install_run_unit

# registry_log [CURSOR]: the registry's journal lines (after CURSOR).
registry_log() {
	th journalctl --no-pager -o cat _SYSTEMD_USER_UNIT=regvisor-registry.service ${1:+--after-cursor="$1"}
}
last_ready() {
	th curl -sf -m 3 http://127.0.0.1:9443/metrics | sed -n 's/^regvisor_registry_last_ready_timestamp_seconds \([0-9]*\)$/\1/p'
}

step "start; the probe that makes it ready is GET /v2/, and the registry logs it"
th systemctl start regvisor.service || fail "regvisor.service did not start"
registry_answers || fail "not ready"
registry_log | grep -q 'regvisor-probe' || fail "the readiness GET /v2/ is not in the registry's log"
cursor=$(th journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
[[ -n $cursor ]] || fail "no journal cursor"

step "ready: 3 s of successful probes (every 300 ms) and not one line in the registry's log"
t0=$(last_ready)
[[ -n $t0 ]] || fail "no regvisor_registry_last_ready_timestamp_seconds"
advanced() {
	local t
	t=$(last_ready)
	[[ -n $t ]] && ((t >= t0 + 3))
}
wait_until 15 advanced || fail "the probe did not keep succeeding"
lines=$(registry_log "$cursor" | grep -c 'regvisor-probe' || true)
step "probe lines in the registry's log while ready: $lines"
[[ $lines -eq 0 ]] || fail "the registry logged $lines probe lines while ready: $(registry_log "$cursor" | tail -n 2)"
lines=$(th journalctl --no-pager -o cat -u regvisor.service --after-cursor="$cursor" | wc -l)
[[ $lines -eq 0 ]] || fail "regvisor.service logged $lines lines while nothing changed"

step "a registry that stops answering (SIGSTOP) is still noticed and restarted"
pid=$(svc_podman inspect --format '{{.State.Pid}}' regvisor-registry)
[[ $pid -gt 0 ]] || fail "no registry process"
# The restarts from here on: on a loaded machine the registry may have been
# restarted during start-up already (slower than unhealthy_after). Counted,
# not `grep -q` on a pipe (grep leaving early fails the pipe under
# pipefail), and not --after-cursor (with a match it skipped entries here).
restart_lines() {
	local out
	out=$(journal_events restart) || return 1
	grep 'restarting the registry' <<<"$out" || true
}
before=$(restart_lines | wc -l)
th kill -STOP "$pid"
restarted() {
	(($(restart_lines | wc -l) > before))
}
wait_until 30 restarted || fail "a stopped registry was not restarted"
line=$(restart_lines | sed -n "$((before + 1))p")
[[ $line == *"OPTIONS * failing"* ]] || fail "the restart does not name the probe that failed: $line"
# Let the stopped process take the stop signal now rather than at the unit's
# stop timeout: the restart has been decided already.
th kill -CONT "$pid" 2>/dev/null || true
th journalctl --no-pager -o cat -u regvisor.service --after-cursor="$cursor" | sed 's/^/#   /'
step "restarted; waiting for it to answer again"
wait_until 30 registry_answers || fail "registry not back after the restart"
step "answers again"
