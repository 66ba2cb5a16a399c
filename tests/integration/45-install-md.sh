#!/usr/bin/env bash
# An operator follows INSTALL.md on a fresh test host, from the top: the
# commands are the fenced blocks INSTALL.md marks `<!-- install-test: KIND
# -->`, extracted from the document itself, in its order, so the document
# cannot drift from the program:
#   variables  the values the operator sets: this test sets its own (the
#              names must be the ones the document uses)
#   host       run as root in a fresh clone of this checkout's HEAD (make,
#              make install, configuration, provision, start, pki)
#   client     run as root in a directory holding ca.crt, build-01.crt and
#              build-01.key, as the document says to copy them
# Then the outcome: a push over 4443 with the certificate the document
# issued, a pull over 443 with the CA only, the logs where the document says
# they are, and `regvisor health` naming regvisor.service when it is what
# was stopped.
# Not run (network): apt-get, git clone of the public repository,
# scripts/deps. The registry image is the locally built archive
# (air-gapped, as INSTALL.md describes), signatures are not checked (see
# INSTALL.md: sigstore is disabled on Debian 12).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

DOC=$REPO/INSTALL.md
BLOCKS=$TEST_TMP/blocks
HOST=registry.test
SRC=/root/regvisor
CLIENT_DIR=/root/client
C=/etc/registry/certs
ACCEPT_ANY=/etc/regvisor-test/accept-anything.json

step "extract the marked blocks from INSTALL.md"
mkdir -p "$BLOCKS"
awk -v dir="$BLOCKS" '
	/^<!-- install-test: [a-z]+ -->$/ { kind = $3; want = NR; next }
	want && /^```sh$/ { n++; file = sprintf("%s/%02d-%s.sh", dir, n, kind); inblk = 1; want = 0; next }
	want && NF { printf "INSTALL.md:%d: a marker not followed by a ```sh block\n", want > "/dev/stderr"; exit 1 }
	inblk && /^```$/ { inblk = 0; close(file); next }
	inblk { print > file }
	END { if (inblk) { print "INSTALL.md: an unterminated block" > "/dev/stderr"; exit 1 } }
' "$DOC" || fail "INSTALL.md's marked blocks do not parse"
mapfile -t blocks < <(find "$BLOCKS" -name '*.sh' | sort)
for b in "${blocks[@]}"; do
	echo "# ${b##*/}: $(grep -cv '^[[:space:]]*\(#.*\)\?$' "$b") commands"
done
kinds=$(printf '%s\n' "${blocks[@]##*-}" | sort | uniq -c | tr -s ' ')
assert_contains "$kinds" "1 variables.sh" "the blocks' kinds"
assert_contains "$kinds" "client.sh" "the blocks' kinds"
((${#blocks[@]} >= 6)) || fail "only ${#blocks[@]} marked blocks in INSTALL.md"

# The variables the document has the operator set, and this test's values.
vars_block=$(printf '%s\n' "${blocks[@]}" | grep -- '-variables.sh$')
assert_eq "$(sed -n 's/^\([A-Z_]*\)=.*/\1/p' "$vars_block" | sort | tr '\n' ' ')" \
	"REGISTRY_ARCHIVE REGISTRY_HOST REGISTRY_IMAGE " "the variables INSTALL.md sets"

th_boot
ENV=(env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
	REGISTRY_HOST="$HOST" REGISTRY_IMAGE="$REGISTRY_REFERENCE" REGISTRY_ARCHIVE="$REGISTRY_ARCHIVE")
on_failure th journalctl -u regvisor --no-pager -n 60
on_failure th journalctl --no-pager -n 40 _SYSTEMD_USER_UNIT=regvisor-registry.service

# What the operator's environment provides: the source (a clone of this
# checkout's HEAD, standing for the public repository) and a name for the
# host that clients resolve.
head=$(git -C "$REPO" rev-parse HEAD)
[[ -z $(git -C "$REPO" status --porcelain -- ':!INSTALL.md' ':!tests') ]] ||
	echo "# note: uncommitted changes are not in the clone; it builds $head"
th git clone -q --no-hardlinks "$REPO" "$SRC" || fail "git clone of $REPO failed"
th git -C "$SRC" checkout -q "$head" || fail "checkout of $head failed"
th sh -c "grep -q ' $HOST\$' /etc/hosts || echo '127.0.0.1 $HOST' >> /etc/hosts"
th test ! -e /usr/local/bin/regvisor || fail "regvisor is already installed on the fresh host"

# run_block FILE DIR: the block as a bash script (errexit, pipefail) in DIR
# of the guest, with the operator's variables set.
run_block() {
	local out rc=0
	th_put "$1" "/root/install-blocks/${1##*/}"
	out=$(th "${ENV[@]}" bash -c 'cd "$1" && exec bash -euo pipefail "$2"' _ "$2" \
		"/root/install-blocks/${1##*/}" 2>&1) || rc=$?
	printf '%s\n' "$out" | tail -n 25 | sed 's/^/#   /'
	[[ $rc -eq 0 ]] || fail "INSTALL.md block ${1##*/} failed (exit $rc): $(head -c 2000 <<<"$out")"
}

for b in "${blocks[@]}"; do
	case $b in
	*-variables.sh) continue ;;
	*-host.sh)
		step "INSTALL.md ${b##*/}: $(grep -m1 -v '^[[:space:]]*#' "$b")"
		run_block "$b" "$SRC"
		;;
	*-client.sh)
		step "INSTALL.md ${b##*/}: the files copied to the client first"
		th install -d -m 0700 "$CLIENT_DIR"
		th cp "$C/ca/ca.crt" "$C/clients/build-01.crt" "$C/private/clients/build-01.key" "$CLIENT_DIR/"
		run_block "$b" "$CLIENT_DIR"
		;;
	*) fail "unknown block kind: ${b##*/}" ;;
	esac
done

step "what the blocks did: installed, provisioned, running, one client certificate"
th test -x /usr/local/bin/regvisor || fail "make install did not install /usr/local/bin/regvisor"
th systemctl is-active --quiet regvisor.service || fail "regvisor.service is not active"
th systemctl is-enabled --quiet regvisor.service || fail "regvisor.service is not enabled"
out=$(th "${ENV[@]}" regvisor provision 2>&1) || fail "provision after INSTALL.md failed: $out"
assert_contains "$out" " 0 changed, 0 failed, 0 skipped" "a third provision"
out=$(th "${ENV[@]}" regvisor pki list)
assert_contains "$(grep '^build-01 ' <<<"$out")" "valid" "pki list"

step "push over 4443 with the certificate INSTALL.md issued"
th_write "$ACCEPT_ANY" 0644 <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
th podman load -q -i "$REGISTRY_ARCHIVE" >/dev/null 2>&1 || fail "podman load of the registry archive failed"
out=$(th podman push --signature-policy "$ACCEPT_ANY" "$REGISTRY_REFERENCE" "$HOST:4443/team/app:1" 2>&1) ||
	fail "podman push over 4443 failed: $out"
th journalctl --no-pager -u regvisor REGVISOR_EVENT=access -o cat |
	grep -Eq 'port=push .*subject=CN=build-01(,[^ ]*)? method=PUT path=/v2/team/app/manifests/1 status=201 ' ||
	fail "no access log line for build-01's manifest PUT over 4443"

step "pull over 443 with the CA only"
out=$(th podman pull -q --signature-policy "$ACCEPT_ANY" "$HOST/team/app:1" 2>&1) || fail "podman pull over 443 failed: $out"
assert_eq "$(th podman image inspect --format '{{.Id}}' "$HOST/team/app:1")" \
	"$(th podman image inspect --format '{{.Id}}' "$REGISTRY_REFERENCE")" "the pulled image's ID"
th journalctl --no-pager -u regvisor REGVISOR_EVENT=access -o cat |
	grep -Eq 'port=pull .*subject=- method=GET path=/v2/team/app/manifests/1 status=200 ' ||
	fail "no access log line for the manifest GET over 443"

step "the logs are where INSTALL.md says"
mapfile -t log_cmds < <(sed -n 's/^| [^|]* | `\(journalctl [^`]*\)` |$/\1/p' "$DOC")
((${#log_cmds[@]} >= 2)) || fail "INSTALL.md's log table names ${#log_cmds[@]} journalctl commands"
for cmd in "${log_cmds[@]}"; do
	# shellcheck disable=SC2086 # the document's command, split as a shell would
	n=$(th $cmd --no-pager -o cat | wc -l)
	echo "# $cmd: $n lines"
	((n > 0)) || fail "'$cmd' shows nothing"
done

step "regvisor.service stopped: health names it, not the registry unit alone"
# INSTALL.md, "Stopping regvisor": the socket too, or health's own port
# check would start the service again through it.
th systemctl stop regvisor.socket regvisor.service
rc=0
out=$(th "${ENV[@]}" regvisor health 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/#   /'
assert_eq "$rc" 2 "health's exit status with regvisor.service stopped"
assert_contains "$(grep 'registry-unit' <<<"$out")" "regvisor.service, which starts it, is inactive"
assert_contains "$out" "regvisor.service, which runs the proxy, is inactive"
