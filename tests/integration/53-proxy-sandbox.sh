#!/usr/bin/env bash
# The proxy workers' sandbox, in the production shape: regvisor run as the
# system unit (its own systemd hardening and SystemCallFilter underneath),
# its child `regvisor proxy`, and that one's workers.
#   - every worker (one per CPU: workers = auto) runs as registry-proxy
#     (real, effective, saved and fs uid and gid; no supplementary groups),
#     with NoNewPrivs 1, every capability set empty (CapInh, CapPrm, CapEff,
#     CapBnd, CapAmb), Seccomp 2 (filter mode), not dumpable (its /proc files
#     belong to root), and no file open but /dev/null (sockets, pipes,
#     epoll and signalfds only: the keys are in memory, not open files);
#   - with the test hook REGVISOR_TEST_FORBIDDEN_SYSCALL=execve, ptrace,
#     netlink, open and fork (proxy/sandbox.h; a systemd drop-in on
#     regvisor.service, which the proxy inherits), each worker is killed by
#     SIGSYS right after lockdown, the proxy parent logs exactly that
#     ("killed by signal SYS (Bad system call): a system call outside the
#     seccomp allowlist; restarting it", proxy/proxy.c describe_exit()) and
#     restarts it: a second worker pid for the same slot is killed the same
#     way. Never SIGABRT (the hook's "still alive" verdict): the kill comes
#     from the worker's own filter, not systemd's EPERM/EAFNOSUPPORT ones;
#   - with the hook removed again, the workers stay up and serve pulls.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
CURL=(curl -s -m 5 --cacert "$C/ca/ca.crt")
DROPIN=/etc/systemd/system/regvisor.service.d/50-forbidden-syscall.conf
ZERO=0000000000000000

th_boot
write_config
on_failure th journalctl -u regvisor --no-pager -n 60
provision >/dev/null || fail "provision failed: $OUT"
install_run_unit
th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'
uid=$(th id -u registry-proxy)
gid=$(th id -g registry-proxy)

proxy_up() {
	th "${CURL[@]}" -f -o /dev/null https://registry.test/v2/
}
# proxy_parent: the `regvisor proxy` child of regvisor.service's main process.
proxy_parent() {
	local main
	main=$(th systemctl show -p MainPID --value regvisor.service)
	[[ $main != 0 ]] || return 1
	th pgrep -P "$main" -f 'regvisor proxy'
}
# workers: the proxy parent's children, one pid per line.
workers() {
	local parent
	parent=$(proxy_parent) || return 1
	th pgrep -P "$parent" | sort
}
invocation() {
	th systemctl show -p InvocationID --value regvisor.service
}
# sigsys_kills INVOCATION: "slot pid" for each worker the proxy reported as
# killed by SIGSYS in that run of regvisor.service.
sigsys_kills() {
	th journalctl --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$1" |
		sed -n 's/^proxy: worker \([0-9]*\) (pid \([0-9]*\)) killed by signal SYS (Bad system call): a system call outside the seccomp allowlist; restarting it$/\1 \2/p'
}

step "the full stack: systemctl start regvisor"
th systemctl start regvisor.service || fail "regvisor.service did not start"
wait_until 20 proxy_up || fail "the proxy does not answer on 443"
parent=$(proxy_parent) || fail "no 'regvisor proxy' child of regvisor.service"
assert_eq "$(th ps -o user= -p "$parent")" root "user of the proxy parent"
ncpu=$(th nproc)
n_workers_is() {
	[[ $(workers | wc -l) == "$1" ]]
}
wait_until 10 n_workers_is "$ncpu" || fail "expected $ncpu workers, have: $(workers | tr '\n' ' ')"

step "each worker: registry-proxy ($uid:$gid), no capabilities, no_new_privs, seccomp filter"
for pid in $(workers); do
	status=$(th cat "/proc/$pid/status")
	field() {
		sed -n "s/^$1:[[:space:]]*//p" <<<"$status" | tr -s ' \t' ' ' | sed 's/ $//'
	}
	assert_eq "$(field Uid)" "$uid $uid $uid $uid" "worker $pid Uid (real effective saved fs)"
	assert_eq "$(field Gid)" "$gid $gid $gid $gid" "worker $pid Gid"
	assert_eq "$(field Groups)" "" "worker $pid supplementary groups"
	assert_eq "$(field NoNewPrivs)" 1 "worker $pid NoNewPrivs"
	for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
		assert_eq "$(field $cap)" $ZERO "worker $pid $cap"
	done
	assert_eq "$(field Seccomp)" 2 "worker $pid Seccomp"
	# Not dumpable: the kernel makes the process's /proc files root's.
	assert_eq "$(th stat -c %u "/proc/$pid/environ")" 0 "owner of /proc/$pid/environ (dumpable?)"
	# shellcheck disable=SC2016 # expanded by the guest shell
	files=$(th sh -c 'for f in /proc/$1/fd/*; do readlink "$f"; done' _ "$pid" | grep '^/' | grep -vx /dev/null || true)
	assert_eq "$files" "" "files open in worker $pid"
	step "worker $pid: ok ($(field Seccomp_filters) seccomp filters stacked)"
done

prev_inv=$(invocation)
for syscall in execve ptrace netlink open fork; do
	step "REGVISOR_TEST_FORBIDDEN_SYSCALL=$syscall: SIGSYS, logged, restarted"
	printf '[Service]\nEnvironment=REGVISOR_TEST_FORBIDDEN_SYSCALL=%s\n' "$syscall" | th_write "$DROPIN"
	th systemctl daemon-reload
	# --no-block: the ports accept (the kernel queues connections) even with
	# no worker alive, but do not depend on that here.
	th systemctl restart --no-block regvisor.service
	new_invocation() {
		local i
		i=$(invocation)
		[[ -n $i && $i != "$prev_inv" ]]
	}
	# (wait_until runs its command in a subshell: read the ID again after.)
	wait_until 20 new_invocation || fail "regvisor.service did not restart"
	inv=$(invocation)
	prev_inv=$inv
	# Every worker dies right after lockdown; its slot is restarted 1 s later
	# (a worker that lived < 1 s) and dies again: two SIGSYS deaths with two
	# different pids for one slot prove the parent restarted it.
	restarted_twice() {
		sigsys_kills "$inv" | awk '{ if (!seen[$1 " " $2]++) n[$1]++ } END { for (s in n) if (n[s] >= 2) f = 1; exit !f }'
	}
	wait_until 20 restarted_twice || fail "$syscall: no worker killed by SIGSYS and restarted; kills seen: $(sigsys_kills "$inv" | tr '\n' ',')"
	step "$syscall: $(sigsys_kills "$inv" | wc -l) SIGSYS deaths: $(sigsys_kills "$inv" | tr '\n' ',')"
	log=$(th journalctl --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$inv")
	if grep -E 'killed by signal (ABRT|SEGV|KILL)|exited with status [1-9]' <<<"$log"; then
		fail "$syscall: a worker died otherwise than by SIGSYS"
	fi
done

step "hook removed: the workers stay up and serve pulls"
th rm -f "$DROPIN"
th systemctl daemon-reload
th systemctl restart regvisor.service || fail "regvisor.service did not restart without the hook"
wait_until 20 proxy_up || fail "the proxy does not answer on 443 after the hook was removed"
before=$(workers | tr '\n' ' ')
for i in 1 2 3 4 5 6; do
	code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' https://registry.test/v2/)
	assert_eq "$code" 200 "GET /v2/ #$i on 443"
done
code=$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' --cert "$C/clients/ci.crt" --key "$C/private/clients/ci.key" \
	https://registry.test:4443/v2/)
assert_eq "$code" 200 "GET /v2/ on 4443"
# Over a sweep and a restart delay: no worker died in the meantime.
sleep 1.5
assert_eq "$(workers | tr '\n' ' ')" "$before" "worker pids"
[[ -z $(sigsys_kills "$(invocation)") ]] || fail "SIGSYS deaths without the hook"
true
