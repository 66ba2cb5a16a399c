# shellcheck shell=bash disable=SC2016,SC2034
# (SC2016: single-quoted scripts are expanded by the guest's shell; SC2034:
# variables set here are for the tests that source this file.)
# lib.sh: sourced by every tests/integration/NN-name.sh.
#
# Gives each test: strict mode, a temp dir ($TEST_TMP), one throwaway
# systemd test host (scripts/test-host) torn down on every exit path, bounded
# polling, assertions, log dumps on failure, and a TAP-ish result line:
#   ok - NAME (12.3 s)  |  not ok - NAME: reason  |  ok - NAME # SKIP reason
# Exit status: 0 pass, 1 fail, 77 skip (the automake convention).
#
#   th_boot                   boot the test host into $TH_DIR (once per test)
#   th CMD...                 run CMD inside it (root, clean env)
#   th_boot_two               instead of th_boot: two hosts on one private
#                             network (a zone's bridge, 198.18.0.0/24): the
#                             registry host ($TH_DIR, `th`, $TH_ADDR) and a
#                             client host ($TH_CLIENT_DIR, `thc`,
#                             $TH_CLIENT_ADDR); both resolve registry.test
#                             to $TH_ADDR
#   th_boot_three             th_boot_two plus a third host on the same
#                             zone ($TH_STORE_DIR, `ths`, $TH_STORE_ADDR):
#                             for several regvisor hosts behind a balancer
#                             (th and thc are then both regvisor hosts, ths
#                             the store, the balancer and the client); all
#                             three resolve registry.test to $TH_STORE_ADDR
#                             (or $TH_NAME_ADDR when the test set it)
#   thc CMD... / thc_write PATH [MODE]   as th / th_write, on the client
#   ths CMD... / ths_write PATH [MODE]   as th / th_write, on the third host
#   th_write PATH [MODE]      write stdin to PATH inside (root-owned)
#   th_put SRC PATH [MODE]    copy a host file to PATH inside
#   as_user USER CMD...       run CMD inside as USER with XDG_RUNTIME_DIR and
#                             DBUS_SESSION_BUS_ADDRESS set (runuser, no PAM
#                             session: the process stays outside the user's
#                             systemd; use user_systemctl for that)
#   user_systemctl USER ...   systemctl --user -M USER@ ... (from root)
#   th_linger USER [TIMEOUT]  enable linger; wait for user@UID and its bus
#   wait_until TIMEOUT CMD... poll CMD every 0.2 s until it succeeds
#   step MSG / fail MSG / skip MSG / assert_eq / assert_contains
#   on_exit CMD...            cleanup to run on every exit path
#   on_failure CMD...         extra diagnostics to dump if the test fails
#                             (on the host; `on_failure th CMD...`: inside,
#                             and thc, ths likewise)
#   registry_image            (re)build build/registry-image; sets
#                             REGISTRY_DIGEST, REGISTRY_REFERENCE,
#                             REGISTRY_ARCHIVE (th_boot calls it first, then
#                             points REGISTRY_ARCHIVE at a copy in the guest)
#
# Environment: TH_KEEP=1 keeps a failed test's host running for inspection
# (prints how to enter and remove it).

set -eEuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REGVISOR=$REPO/build/regvisor
REGISTRY_IMAGE_DIR=$REPO/build/registry-image
TEST_HOST=$REPO/scripts/test-host
TEST_NAME=$(basename "$0" .sh)
TH_DIR=""
TH_CLIENT_DIR="" TH_ZONE="" TH_STORE_DIR=""
# 198.18.0.0/15 is reserved for benchmark networks (RFC 2544): never a
# real destination, and the zone's bridge routes nowhere else anyway.
TH_ADDR=198.18.0.1 TH_CLIENT_ADDR=198.18.0.2 TH_STORE_ADDR=198.18.0.3
# The address registry.test resolves to on every host of a zone.
TH_NAME_ADDR=$TH_ADDR
REGISTRY_DIGEST="" REGISTRY_REFERENCE="" REGISTRY_ARCHIVE=""
export REPO REGVISOR REGISTRY_IMAGE_DIR TEST_HOST

_lib_t0=${EPOCHREALTIME/./}
_lib_fail_reason=""
_lib_skip_reason=""
_lib_dumps=()
_lib_exits=()

_now_us() {
	echo "${EPOCHREALTIME/./}"
}

# _elapsed: seconds since the test started, one decimal.
_elapsed() {
	local us=$(($(_now_us) - _lib_t0))
	printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10))
}

step() {
	echo "# [$(_elapsed) s] $*"
}

fail() {
	_lib_fail_reason="$*"
	echo "# FAIL: $*" >&2
	exit 1
}

skip() {
	_lib_skip_reason="$*"
	exit 77
}

assert_eq() {
	local actual=$1 expected=$2 what=${3:-value}
	[[ $actual == "$expected" ]] || fail "$what: expected '$expected', got '$actual'"
}

assert_contains() {
	local haystack=$1 needle=$2 what=${3:-output}
	[[ $haystack == *"$needle"* ]] || fail "$what does not contain '$needle'; it was: $haystack"
}

# wait_until TIMEOUT CMD...: run CMD (a command or function) every 0.2 s
# until it succeeds (return 0) or TIMEOUT seconds have passed (return 1, and
# print CMD's last output). CMD itself must not block: give it its own
# bound (curl -m, timeout) if it might.
wait_until() {
	local timeout=$1 out deadline
	shift
	deadline=$(($(_now_us) + timeout * 1000000))
	while :; do
		if out=$("$@" 2>&1); then
			return 0
		fi
		if (($(_now_us) >= deadline)); then
			echo "# wait_until: '$*' still failing after ${timeout}s; last output:" >&2
			printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /' >&2
			return 1
		fi
		sleep 0.2
	done
}

# on_exit CMD...: run CMD (a command or function, in this shell) when the
# test exits, however it exits, before the test host is torn down; last
# registered runs first.
on_exit() {
	_lib_exits=("$(printf '%q ' "$@")" "${_lib_exits[@]}")
}

# on_failure CMD...: if the test fails, run CMD on the host (bounded by
# `timeout 20`) and append its output to the dump; `on_failure th CMD...`
# runs CMD in the test host.
on_failure() {
	_lib_dumps+=("$(printf '%q ' "$@")")
}

# registry_image: build the registry image archive if needed (idempotent,
# ~1 s when it must build, ~30 ms when it is current). Runs before boot so
# the guest sees the archive through the overlay's lower layer.
registry_image() {
	REGISTRY_DIGEST=$("$REPO/scripts/build-registry-image" "$REGISTRY_IMAGE_DIR") ||
		fail "cannot build the registry image"
	REGISTRY_REFERENCE=$(<"$REGISTRY_IMAGE_DIR/reference")
	REGISTRY_ARCHIVE=$REGISTRY_IMAGE_DIR/registry.oci.tar
}

th_boot() {
	local t0
	[[ -z $TH_DIR ]] || fail "th_boot called twice"
	[[ -n $REGISTRY_DIGEST ]] || registry_image
	TH_DIR=$TEST_TMP/host
	t0=$(_now_us)
	"$TEST_HOST" boot "$TH_DIR" || fail "test host did not boot (see above)"
	TH_BOOT_MS=$((($(_now_us) - t0) / 1000))
	# The service user loads the archive with podman, and the checkout may
	# be below a directory only root may enter (/root, mktemp -d): the guest
	# gets a copy anyone may read (8 MB, in its overlay, not on the machine).
	th install -D -m 0644 "$REGISTRY_ARCHIVE" /var/lib/regvisor-test/registry.oci.tar ||
		fail "cannot copy the registry image into the test host"
	REGISTRY_ARCHIVE=/var/lib/regvisor-test/registry.oci.tar
	step "test host up in ${TH_BOOT_MS} ms ($TH_DIR)"
}

# th_teardown: stop the host now (the EXIT trap does it otherwise).
th_teardown() {
	[[ -n $TH_DIR ]] || return 0
	"$TEST_HOST" teardown "$TH_DIR" || fail "teardown of $TH_DIR failed"
	TH_DIR=""
}

# th CMD...: run CMD in the test host; its status is th's status. It runs
# as a background job plus `wait` because bash defers a trap until a
# foreground command ends but interrupts `wait` at once: a SIGINT/SIGTERM to
# this test then tears down at once even while CMD blocks (teardown kills
# CMD with the guest). <&0 keeps stdin (a background job gets /dev/null).
th() {
	[[ -n $TH_DIR ]] || fail "th: no test host (call th_boot first)"
	_th_on "$TH_DIR" "$@"
}

thc() {
	[[ -n $TH_CLIENT_DIR ]] || fail "thc: no client host (call th_boot_two first)"
	_th_on "$TH_CLIENT_DIR" "$@"
}

_th_on() {
	local dir=$1 pid
	shift
	"$TEST_HOST" exec "$dir" "$@" <&0 &
	pid=$!
	wait "$pid" 2>/dev/null # no "Killed" job notice: the status says it
}

# _th_net RUNNER ADDR: give the host's host0 ADDR/24 and resolve
# registry.test to the registry host's address.
_th_net() {
	"$1" ip addr add "$2/24" dev host0 || fail "cannot give host0 $2"
	"$1" ip link set host0 up || fail "cannot bring host0 up at $2"
	"$1" sh -c 'echo "$1 registry.test" >> /etc/hosts' _ "$TH_NAME_ADDR"
}

# _th_reaches RUNNER ADDR: RUNNER reaches ADDR: a connection to a closed
# port is refused at once (no ping in the image; an unreachable host would
# time out instead).
_th_reaches() {
	local out
	out=$("$1" timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/9"' _ "$2" 2>&1) || true
	[[ $out == *"Connection refused"* ]]
}

th_boot_two() {
	[[ -z $TH_DIR && -z $TH_CLIENT_DIR ]] || fail "th_boot_two called after a host was booted"
	# vz-ZONE must fit IFNAMSIZ (15): 10 characters, unique per test run.
	TH_ZONE=rv$(printf '%04x%04x' $RANDOM $RANDOM)
	if [[ -n ${TEST_HOST_REGISTRY:-} ]]; then
		echo "zone $TH_ZONE" >>"$TEST_HOST_REGISTRY"
	fi
	export TEST_HOST_ZONE=$TH_ZONE
	th_boot
	TH_CLIENT_DIR=$TEST_TMP/client
	"$TEST_HOST" boot "$TH_CLIENT_DIR" || fail "client test host did not boot (see above)"
	unset TEST_HOST_ZONE
	thc install -D -m 0644 "$REGISTRY_IMAGE_DIR/registry.oci.tar" "$REGISTRY_ARCHIVE" ||
		fail "cannot copy the registry image into the client host"
	ip link set "vz-$TH_ZONE" up || fail "cannot bring the zone's bridge vz-$TH_ZONE up"
	_th_net th "$TH_ADDR"
	_th_net thc "$TH_CLIENT_ADDR"
	wait_until 10 _th_reaches thc "$TH_ADDR" || fail "the client host does not reach $TH_ADDR"
	step "client host up ($TH_CLIENT_DIR), zone vz-$TH_ZONE: registry.test is $TH_NAME_ADDR"
}

ths() {
	[[ -n $TH_STORE_DIR ]] || fail "ths: no third host (call th_boot_three first)"
	_th_on "$TH_STORE_DIR" "$@"
}

th_boot_three() {
	# registry.test: the third host, unless the test named another address.
	[[ $TH_NAME_ADDR != "$TH_ADDR" ]] || TH_NAME_ADDR=$TH_STORE_ADDR
	th_boot_two
	TH_STORE_DIR=$TEST_TMP/store
	export TEST_HOST_ZONE=$TH_ZONE
	"$TEST_HOST" boot "$TH_STORE_DIR" || fail "third test host did not boot (see above)"
	unset TEST_HOST_ZONE
	ths install -D -m 0644 "$REGISTRY_IMAGE_DIR/registry.oci.tar" "$REGISTRY_ARCHIVE" ||
		fail "cannot copy the registry image into the third host"
	_th_net ths "$TH_STORE_ADDR"
	wait_until 10 _th_reaches ths "$TH_ADDR" || fail "the third host does not reach $TH_ADDR"
	wait_until 10 _th_reaches ths "$TH_CLIENT_ADDR" || fail "the third host does not reach $TH_CLIENT_ADDR"
	step "third host up ($TH_STORE_DIR) at $TH_STORE_ADDR: registry.test is $TH_NAME_ADDR everywhere"
}

thc_write() {
	_th_write_on thc "$@"
}

ths_write() {
	_th_write_on ths "$@"
}

# th_write PATH [MODE]: stdin to PATH inside the guest. Written from inside
# (not through $TH_DIR/merged) so the guest's own symlinks resolve in the
# guest, never against the host's root.
th_write() {
	_th_write_on th "$@"
}

# _th_write_on RUNNER PATH [MODE]: th_write on the host RUNNER names.
_th_write_on() {
	"$1" /bin/sh -c 'umask 022; mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"' \
		_ "$2" "${3:-0644}"
}

th_put() {
	th_write "$2" "${3:-0644}" <"$1"
}

as_user() {
	local user=$1
	shift
	th runuser -u "$user" -- /bin/sh -c '
		uid=$(id -u)
		HOME=$(getent passwd "$uid" | cut -d: -f6)
		USER=$(id -un)
		LOGNAME=$USER
		XDG_RUNTIME_DIR=/run/user/$uid
		DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus
		export HOME USER LOGNAME XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS
		exec "$@"' as_user "$@"
}

user_systemctl() {
	local user=$1
	shift
	th systemctl --user -M "$user@" "$@"
}

_user_manager_up() {
	th systemctl is-active --quiet "user@$1.service" && th test -S "/run/user/$1/bus"
}

# th_linger USER [TIMEOUT]: enable linger through logind, as the product
# will, and wait until the user's systemd and session bus are up.
th_linger() {
	local user=$1 timeout=${2:-30} uid
	uid=$(th id -u "$user") || fail "no user $user"
	th busctl call org.freedesktop.login1 /org/freedesktop/login1 \
		org.freedesktop.login1.Manager SetUserLinger ubb "$uid" true false >/dev/null ||
		fail "SetUserLinger($user) failed"
	wait_until "$timeout" _user_manager_up "$uid" ||
		fail "user@$uid.service or /run/user/$uid/bus not up after ${timeout}s"
}

_lib_dump() {
	local d up=0
	[[ -n $TH_DIR && -s $TH_DIR/leader.pid ]] && up=1
	if ((up)); then
		echo "# ---- guest journal, last 200 lines ----"
		timeout 20 "$TEST_HOST" exec "$TH_DIR" journalctl -b --no-pager 2>&1 | tail -n 200 | sed 's/^/# /' || true
	fi
	local runner dir
	for d in "${_lib_dumps[@]}"; do
		echo "# ---- $d----"
		runner=${d%% *}
		case $runner in
		th) dir=$TH_DIR ;;
		thc) dir=$TH_CLIENT_DIR ;;
		ths) dir=$TH_STORE_DIR ;;
		*) dir="" runner="" ;;
		esac
		if [[ -n $runner ]]; then
			if [[ -n $dir && -s $dir/leader.pid ]]; then
				(eval "timeout 20 \"\$TEST_HOST\" exec \"\$dir\" ${d#"$runner" }") 2>&1 | tail -n 100 | sed 's/^/# /' || true
			else
				echo "# (no test host $runner running)"
			fi
		else
			(eval "timeout 20 $d") 2>&1 | tail -n 100 | sed 's/^/# /' || true
		fi
	done
	if ((up)); then
		echo "# ---- console.log, last 50 lines ----"
		tail -n 50 "$TH_DIR/console.log" 2>/dev/null | sed 's/^/# /' || true
	fi
}

# ERR trap (set -E: it fires in every function and subshell level a failure
# passes through): report only at the test script's own top level, where
# the line and command are the test's.
_lib_on_err() {
	[[ $BASH_SUBSHELL -eq 0 && ${BASH_SOURCE[1]:-} == "$0" ]] || return 0
	_lib_fail_reason="line $1: '$2' exited $3"
	echo "# error: $_lib_fail_reason" >&2
}

_lib_exit() {
	local rc=$? d
	# Teardown must finish: later signals are ignored (it is bounded).
	trap '' INT TERM HUP
	trap - ERR
	set +e
	case $rc in
	129) _lib_fail_reason=${_lib_fail_reason:-interrupted by SIGHUP} ;;
	130) _lib_fail_reason=${_lib_fail_reason:-interrupted by SIGINT} ;;
	141) _lib_fail_reason=${_lib_fail_reason:-SIGPIPE: output closed} ;;
	143) _lib_fail_reason=${_lib_fail_reason:-interrupted by SIGTERM} ;;
	esac
	if [[ $rc -ne 0 && $rc -ne 77 ]]; then
		_lib_dump >&2
	fi
	for d in "${_lib_exits[@]}"; do
		eval "$d" || true
	done
	if [[ -n $TH_DIR ]]; then
		if [[ $rc -ne 0 && $rc -ne 77 && ${TH_KEEP:-0} == 1 ]]; then
			echo "# kept the test host: $TEST_HOST shell $TH_DIR; then $TEST_HOST teardown $TH_DIR" >&2
			TEST_TMP=""
		else
			"$TEST_HOST" teardown "$TH_DIR" || rc=1
		fi
	fi
	if [[ -n $TH_CLIENT_DIR && -n $TEST_TMP ]]; then
		"$TEST_HOST" teardown "$TH_CLIENT_DIR" || rc=1
	fi
	if [[ -n $TH_STORE_DIR && -n $TEST_TMP ]]; then
		"$TEST_HOST" teardown "$TH_STORE_DIR" || rc=1
	fi
	# nspawn removes a zone's bridge with its last host, but not after a
	# SIGKILL.
	if [[ -n $TH_ZONE && -n $TEST_TMP ]] && ip link show "vz-$TH_ZONE" >/dev/null 2>&1; then
		ip link del "vz-$TH_ZONE" || rc=1
	fi
	if [[ -n $TEST_TMP ]]; then
		if awk -v d="$TEST_TMP/" 'index($5 "/", d) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
			echo "# $TEST_TMP still has mounts: not removed" >&2
			rc=1
		else
			rm -rf --one-file-system -- "$TEST_TMP"
		fi
	fi
	if [[ -z ${RV_RUNNER:-} ]]; then
		case $rc in
		0) echo "ok - $TEST_NAME ($(_elapsed) s)" ;;
		77) echo "ok - $TEST_NAME # SKIP $_lib_skip_reason" ;;
		*) echo "not ok - $TEST_NAME${_lib_fail_reason:+: $_lib_fail_reason} ($(_elapsed) s)" ;;
		esac
	fi
	exit "$rc"
}

[[ $EUID -eq 0 ]] || {
	echo "not ok - $TEST_NAME: integration tests need root (they boot a systemd-nspawn test host)" >&2
	exit 1
}

TEST_TMP=$(mktemp -d "${RV_TEST_TMPDIR:-/var/tmp}/rv-$TEST_NAME.XXXXXX")
# The runner removes it if this test is killed before its EXIT trap runs
# (scripts/test-host registers the hosts it boots in the same file).
if [[ -n ${TEST_HOST_REGISTRY:-} ]]; then
	echo "tmp $TEST_TMP" >>"$TEST_HOST_REGISTRY"
fi
trap _lib_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# Output into a closed pipe (`test | head`) must not kill us before the
# teardown: exit through the EXIT trap instead (a handler, not SIG_IGN, so
# the commands we run still get the default SIGPIPE).
trap 'exit 141' PIPE
trap '_lib_on_err $LINENO "$BASH_COMMAND" $?' ERR
