#!/bin/bash
# 00-test-host: the harness works on this machine, and so does everything the
# product builds on: systemd as PID 1 in the test host, a user with subuids,
# linger through logind's D-Bus API, the user's systemd reached from root,
# rootless podman with all its state under one directory, the pinned
# registry image loaded by digest, and the registry run hardened (no network,
# read-only, no capabilities) from a user unit, answering on a unix socket.
# Then: teardown leaves nothing behind, `test-host run` propagates status,
# and an interrupted test (SIGINT) still tears its host down.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

readonly U=rvsmoke

registry_image
step "registry image $REGISTRY_REFERENCE"
th_boot

# --- the test host itself ------------------------------------------------------
assert_eq "$(th readlink /proc/1/exe)" /usr/lib/systemd/systemd "guest PID 1"
state=$(th systemctl is-system-running) || true
[[ $state == running || $state == degraded ]] || fail "guest state is '$state'"
th test -x "$REPO/scripts/test-host" || fail "the repository is not visible at $REPO in the guest"
th test -r "$REGISTRY_ARCHIVE" || fail "$REGISTRY_ARCHIVE not visible in the guest"
assert_eq "$(th stat -c %a /dev/fuse)" 666 "/dev/fuse mode in the guest"
step "systemd is PID 1 and $state"

# The host's /tmp and /var/tmp (busy with other work) are empty in the guest
# (opaque in the overlay's upper layer) and keep their modes, as does /root
# above the scrubbed containers directories.
marker=$(mktemp /tmp/rv-00-marker.XXXXXX)
on_exit rm -f "$marker"
th test -e "$marker" && fail "the host's $marker is visible in the guest"
for d in /tmp /var/tmp /root; do
	assert_eq "$(th stat -c %a "$d")" "$(stat -c %a "$d")" "the guest's $d mode"
done
step "the host's /tmp is not in the guest; /tmp, /var/tmp, /root keep their modes"

# --- a user with subordinate ids, lingering ------------------------------------
th useradd --create-home --shell /bin/bash "$U"
th usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$U"
uid=$(th id -u "$U")
th_linger "$U" 30
step "user $U ($uid): linger on, user@$uid.service active, /run/user/$uid/bus up"
on_failure th journalctl "_UID=$uid" --no-pager -n 100

# --- rootless podman, all state under one directory ----------------------------
# Every path podman would otherwise derive from $HOME is given explicitly:
# --root/--runroot/--tmpdir on the command line (and in storage.conf),
# XDG_CONFIG_HOME (containers.conf, storage.conf), XDG_DATA_HOME, TMPDIR
# (image copy temp files, default /var/tmp).
B=/var/tmp/podman-$uid
th install -d -o "$U" -g "$U" -m 0700 "$B" "$B/root" "$B/runroot" "$B/tmp" "$B/data" \
	"$B/config" "$B/config/containers" "$B/sock" "$B/registry"
# runc: crun fails here ("cgroups in hybrid mode not supported").
# keyring = false: runc cannot join a session keyring under nspawn.
# netavark: silences the CNI config Debian's podman ships (unused anyway:
# the registry runs with --network=none).
th_write "$B/config/containers/containers.conf" <<'EOF'
[containers]
keyring = false

[engine]
runtime = "runc"
events_logger = "file"

[network]
network_backend = "netavark"
EOF
# overlay: on a real host the kernel's native overlay; in the test host (root
# on overlayfs) podman falls back to fuse-overlayfs via the guest's /dev/fuse.
th_write "$B/config/containers/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$B/root"
runroot = "$B/runroot"
EOF
th chown -R "$U:$U" "$B/config"

PODMAN="/usr/bin/podman --root $B/root --runroot $B/runroot --tmpdir $B/tmp --events-backend=file"
PODMAN_ENV="XDG_DATA_HOME=$B/data XDG_CONFIG_HOME=$B/config TMPDIR=$B/tmp"
upodman() {
	# shellcheck disable=SC2086 # both are word lists by construction
	as_user "$U" env $PODMAN_ENV $PODMAN "$@"
}

upodman load --quiet -i "$REGISTRY_ARCHIVE" >/dev/null
images=$(upodman images --digests --format '{{.Repository}}@{{.Digest}}')
assert_contains "$images" "$REGISTRY_REFERENCE" "podman images --digests"
assert_eq "$(upodman image inspect --format '{{.Digest}}' "$REGISTRY_REFERENCE")" "$REGISTRY_DIGEST" \
	"digest of $REGISTRY_REFERENCE"
assert_eq "$(upodman info --format '{{.Store.ConfigFile}}')" "$B/config/containers/storage.conf" \
	"storage.conf podman reads"
step "image loaded as $U, pinned digest resolves"

# --- the registry as a user unit -------------------------------------------------
# Type=forking with conmon's pid file: in a loop of 25 start/stops here,
# Type=notify + --sdnotify=conmon failed 9 times ("Cannot find unit for
# notify message of PID N", result 'protocol': podman exits right after
# sending READY), forking and a foreground Type=simple never did.
# SuccessExitStatus=2: the registry (Go, no SIGTERM handler) exits 2 when
# `podman stop` sends SIGTERM.
# The cid file must not exist when `podman run --cidfile` starts.
RUN_OPTS="--network=none --read-only --tmpfs /tmp --cap-drop=ALL --security-opt=no-new-privileges \
--ulimit nofile=16384:16384 --ulimit nproc=4096:4096 \
-e REGISTRY_HTTP_NET=unix -e REGISTRY_HTTP_ADDR=/run/sock/registry.sock \
-v $B/sock:/run/sock:z -v $B/registry:/var/lib/registry:z"
th_write /etc/systemd/user/rvsmoke-registry.service <<EOF
[Unit]
Description=regvisor smoke-test registry

[Service]
Type=forking
PIDFile=%t/%N.conmon.pid
SuccessExitStatus=2
Environment=$PODMAN_ENV
ExecStartPre=/bin/rm -f %t/%N.cid %t/%N.conmon.pid
ExecStart=$PODMAN run --detach --rm --replace --name %N --cidfile=%t/%N.cid --conmon-pidfile=%t/%N.conmon.pid --cgroups=no-conmon $RUN_OPTS $REGISTRY_REFERENCE
ExecStop=$PODMAN stop --ignore --time 10 --cidfile=%t/%N.cid
ExecStopPost=$PODMAN rm --force --ignore --cidfile=%t/%N.cid
EOF
on_failure th systemctl --user -M "$U@" status rvsmoke-registry.service --no-pager
on_failure th cat /etc/systemd/user/rvsmoke-registry.service
user_systemctl "$U" daemon-reload
user_systemctl "$U" start rvsmoke-registry.service
step "user unit started"

SOCK=$B/sock/registry.sock
v2_ok() {
	th curl -sf -m 2 -o /dev/null --unix-socket "$SOCK" http://localhost/v2/
}
wait_until 30 v2_ok || fail "registry did not answer on $SOCK"
assert_eq "$(th curl -sS -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/v2/)" 200 "GET /v2/"

# The container really is hardened: no network but loopback, read-only root,
# no capabilities, no_new_privs.
cid=$(th cat "/run/user/$uid/rvsmoke-registry.cid")
assert_eq "$(upodman inspect --format '{{.HostConfig.NetworkMode}} {{.HostConfig.ReadonlyRootfs}}' "$cid")" \
	"none true" "network mode and read-only root"
pid=$(upodman inspect --format '{{.State.Pid}}' "$cid")
status=$(th cat "/proc/$pid/status")
assert_contains "$status" "CapEff:	0000000000000000" "registry process status"
assert_contains "$status" "NoNewPrivs:	1" "registry process status"
# shellcheck disable=SC2016 # awk's $1
assert_eq "$(th awk 'NR > 2 { sub(":", "", $1); print $1 }' "/proc/$pid/net/dev")" lo \
	"network interfaces in the container"

# A blob upload proves the storage volume is writable by the rootless
# container (its root is $U on the host).
printf 'regvisor smoke blob\n' | th_write /root/blob
digest=sha256:$(th sha256sum /root/blob | cut -d' ' -f1)
loc=$(th curl -sS -m 5 -o /dev/null -w '%header{location}' --unix-socket "$SOCK" -X POST \
	http://localhost/v2/smoke/blobs/uploads/)
# The registry answers with an absolute URL built from the Host header.
loc=${loc#http://localhost}
[[ $loc == /v2/smoke/blobs/uploads/*\?* ]] || fail "upload POST gave location '$loc'"
assert_eq "$(th curl -sS -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X PUT \
	-H 'Content-Type: application/octet-stream' --data-binary @/root/blob "http://localhost$loc&digest=$digest")" \
	201 "blob upload PUT"
assert_eq "$(th curl -sS -m 5 -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -I \
	"http://localhost/v2/smoke/blobs/$digest")" 200 "HEAD of the uploaded blob"
step "registry answers 200 on /v2/ over the unix socket, blob upload works"

# Nothing written under the user's home: only what useradd copied from skel.
assert_eq "$(th ls -A "/home/$U")" "$(th ls -A /etc/skel)" "contents of /home/$U"

user_systemctl "$U" stop rvsmoke-registry.service
assert_eq "$(user_systemctl "$U" show -p Result --value rvsmoke-registry.service)" success "unit result after stop"
assert_eq "$(upodman ps -aq)" "" "containers left after stop"
step "unit stopped cleanly, container removed"

# --- teardown leaves nothing ----------------------------------------------------
dir=$TH_DIR
nspawn=$(<"$dir/nspawn.pid")
th_teardown
no_mounts_under() {
	! awk -v d="$1" 'index($2, d) == 1 { f = 1 } END { exit !f }' /proc/mounts
}
no_mounts_under "$dir" || fail "mounts left under $dir: $(grep -F "$dir" /proc/mounts)"
[[ ! -e $dir ]] || fail "$dir still exists after teardown"
[[ $(cat "/proc/$nspawn/comm" 2>/dev/null) != systemd-nspawn ]] || fail "systemd-nspawn $nspawn still running"
"$TEST_HOST" teardown "$dir" || fail "second teardown of the same DIR failed"
step "teardown: no mounts, no nspawn, DIR removed; a second teardown is a no-op"

# --- test-host run: status propagates, nothing left mounted ---------------------
runs=$TEST_TMP/runs
mkdir -p "$runs"
rc=0
TEST_HOST_TMPDIR=$runs "$TEST_HOST" run false 2>/dev/null || rc=$?
assert_eq "$rc" 1 "exit status of 'test-host run false'"
rc=0
TEST_HOST_TMPDIR=$runs "$TEST_HOST" run sh -c 'exit 42' 2>/dev/null || rc=$?
assert_eq "$rc" 42 "exit status of 'test-host run sh -c \"exit 42\"'"
no_mounts_under "$runs" || fail "mounts left under $runs"
assert_eq "$(ls -A "$runs")" "" "temp dirs left by test-host run"
step "test-host run propagates exit status (1, 42) and cleans up"

# --- interruption: SIGINT while the guest command blocks -----------------------
# interrupt WHAT DIR CMD...: start CMD in its own session with SIGINT at its
# default disposition (a script's background job inherits it ignored), wait
# until its test host runs `sleep $SLEEP_S`, SIGINT the whole process group as a
# terminal's Ctrl-C would, and check that CMD exits promptly with 130 and
# leaves nothing under DIR (where CMD must put its temp dirs).
# The guest command is `sleep $SLEEP_S`, a duration unique to this test run:
# other test runs on the machine may be sleeping too.
SLEEP_S=3000.$$
sleeping() {
	pgrep -f "^sleep ${SLEEP_S//./\\.}\$" >/dev/null
}
exited() {
	local st
	st=$(ps -o stat= -p "$1") || return 0
	[[ $st == Z* ]]
}
# reap PID DIR: if this test ends while an interrupt() child still runs (it
# is in its own session: our own signals do not reach it), kill it and tear
# down the hosts it booted under DIR.
reap() {
	local h
	kill -KILL -- "-$1" 2>/dev/null || true
	for h in "$2"/*/ "$2"/*/host/; do
		[[ -e $h/nspawn.pid ]] && "$TEST_HOST" teardown "$h"
	done
	return 0
}
interrupt() {
	local what=$1 dir=$2 pid rc t0
	shift 2
	mkdir -p "$dir"
	setsid env --default-signal=INT "$@" >"$dir.log" 2>&1 &
	pid=$!
	on_exit reap "$pid" "$dir"
	on_failure cat "$dir.log"
	wait_until 60 sleeping || fail "$what: the guest never ran 'sleep $SLEEP_S'"
	t0=$(_now_us)
	kill -INT -- "-$pid"
	wait_until 40 exited "$pid" || {
		kill -KILL -- "-$pid" 2>/dev/null || true
		fail "$what: still running 40 s after SIGINT"
	}
	rc=0
	wait "$pid" || rc=$?
	assert_eq "$rc" 130 "$what: exit status after SIGINT"
	no_mounts_under "$dir" || fail "$what: mounts left under $dir"
	[[ -z $(pgrep -f "systemd-nspawn .*$dir/") ]] || fail "$what: systemd-nspawn left running"
	assert_eq "$(ls -A "$dir")" "" "$what: files left under $dir"
	step "$what: SIGINT -> exit 130 after $((($(_now_us) - t0) / 1000)) ms, torn down"
}

interrupt "test-host run sleep" "$TEST_TMP/int-run" \
	env TEST_HOST_TMPDIR="$TEST_TMP/int-run" "$TEST_HOST" run sleep "$SLEEP_S"

# A test script built on this lib, blocked in `th sleep`, interrupted.
cat >"$TEST_TMP/99-interrupted.sh" <<EOF
#!/bin/bash
source "$REPO/tests/integration/lib.sh"
th_boot
th sleep $SLEEP_S
EOF
interrupt "a lib.sh test blocked in th" "$TEST_TMP/int-test" \
	env -u RV_RUNNER RV_TEST_TMPDIR="$TEST_TMP/int-test" bash "$TEST_TMP/99-interrupted.sh"
