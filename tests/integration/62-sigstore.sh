#!/usr/bin/env bash
# The signature store process (`regvisor sigstore`, sigstore/), the
# production binary on this machine (no test host: it needs nothing but
# root, a user and a directory), driven over its unix socket with curl the
# way the proxy will forward podman's requests (docs/signature-extension.md):
#   - sandbox: it runs as nobody with NoNewPrivs 1, Seccomp 2, every
#     capability set empty, socket 0660 nobody's; with Landlock (the ABI is
#     reported) its test hook's attempt to create a file in a directory
#     nobody owns outside DIR fails with EACCES and no file appears;
#   - PUT then GET round trip in containers/image v5.23's exact shape
#     (schemaVersion, name, type, content; the bytes come back unchanged);
#     a GET of anything never signed is 200 {"signatures":[]};
#   - a second PUT of the same signature is 201 and stores nothing; the same
#     name with other bytes is 409 DENIED and changes nothing; chunked bodies
#     work; keep-alive works;
#   - caps: a 64 KiB + 1 signature and an oversized body get 413
#     SIZE_INVALID, the 17th signature of a digest 409 DENIED;
#   - bad names, digests, paths and methods: 400 NAME_INVALID / 400
#     DIGEST_INVALID / 404 / 405, all as registry JSON errors, and nothing
#     on disk outside the validated layout;
#   - a temp file left by a crash is removed at the next start;
#   - the process is alive at the end: no request killed it (SIGSYS);
#   - under systemd (a test host, the store a transient service whose
#     stderr is the journal), it logs through sd_journal_send() inside its
#     sandbox: the access lines arrive with REGVISOR_EVENT= and the service
#     stays active.
. "$(dirname "$0")/lib.sh"

D1=sha256:$(printf 'one' | sha256sum | cut -d' ' -f1)
D2=sha256:$(printf 'two' | sha256sum | cut -d' ' -f1)
chmod 0711 "$TEST_TMP"
STORE=$TEST_TMP/store
OUTSIDE=$TEST_TMP/outside
SOCK=$TEST_TMP/sigstore.sock
LOG=$TEST_TMP/sigstore.log
install -d -o nobody -g nogroup -m 0700 "$STORE" "$OUTSIDE"
PID=""

start_store() {
	: >"$LOG"
	REGVISOR_TEST_SIGSTORE_ESCAPE=$OUTSIDE/escaped \
		"$REGVISOR" sigstore --socket "$SOCK" --dir "$STORE" --user nobody >>"$LOG" 2>&1 &
	PID=$!
	wait_until 5 curl -sf -m 2 --unix-socket "$SOCK" -o /dev/null "http://store/extensions/v2/a/signatures/$D1" ||
		fail "the store did not answer"
}
stop_store() {
	if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then
		kill "$PID"
		wait "$PID" 2>/dev/null || true
	fi
	PID=""
}
on_exit stop_store
on_failure cat "$LOG"

# req METHOD PATH [curl args...]: the status in $ST, the body in $BODY.
req() {
	local method=$1 path=$2
	shift 2
	ST=$(curl -s -m 10 --path-as-is --unix-socket "$SOCK" -X "$method" -o "$TEST_TMP/body" \
		-w '%{http_code}' "$@" "http://store$path") || true
	BODY=$(cat "$TEST_TMP/body" 2>/dev/null || true)
}
# expect_error STATUS CODE: the last answer was STATUS with a registry JSON error CODE.
expect_error() {
	assert_eq "$ST" "$1" "status of the last request"
	assert_eq "$(jq -r '.errors[0].code' <<<"$BODY")" "$2" "error code ($BODY)"
	jq -e '.errors[0].message | length > 0' <<<"$BODY" >/dev/null || fail "no message: $BODY"
}
# sig_object DIGEST SUFFIX FILE: the PUT body podman 4.3 sends for the signature bytes in FILE.
sig_object() {
	printf '{"schemaVersion":2,"name":"%s@%s","type":"atomic","content":"%s"}' "$1" "$2" "$(base64 -w0 "$3")"
}
put_sig() { # REPO DIGEST SUFFIX FILE [curl args]
	local repo=$1 digest=$2 suffix=$3 file=$4
	shift 4
	sig_object "$digest" "$suffix" "$file" >"$TEST_TMP/put.json"
	req PUT "/extensions/v2/$repo/signatures/$digest" --data-binary @"$TEST_TMP/put.json" "$@"
}
count_sigs() { # REPO DIGEST
	req GET "/extensions/v2/$1/signatures/$2"
	assert_eq "$ST" 200 "GET $1@$2"
	jq '.signatures | length' <<<"$BODY"
}

step "start the store as nobody"
start_store

step "sandbox: user, capabilities, no_new_privs, seccomp, Landlock"
status=$(cat "/proc/$PID/status")
nobody=$(id -u nobody)
assert_eq "$(awk '/^Uid:/ {print $2,$3,$4,$5}' <<<"$status")" "$nobody $nobody $nobody $nobody" "uids"
assert_eq "$(awk '/^Groups:/ {print $2}' <<<"$status")" "" "supplementary groups"
assert_eq "$(awk '/^NoNewPrivs:/ {print $2}' <<<"$status")" 1 NoNewPrivs
assert_eq "$(awk '/^Seccomp:/ {print $2}' <<<"$status")" 2 "Seccomp (2: filter)"
for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
	assert_eq "$(awk -v k="$cap:" '$1 == k {print $2}' <<<"$status")" 0000000000000000 "$cap"
done
assert_eq "$(stat -c '%a %U' "$SOCK")" "660 root" "socket mode and owner (root: the store never touches it again)"
# The kernel's own answer, asked independently of the store:
# landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION), x86_64 syscall 444.
kernel_abi=$(python3 -c 'import ctypes; print(max(ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1), 0))')
if ((kernel_abi > 0)); then
	step "Landlock ABI $kernel_abi: the store must use it, and writing outside DIR must fail"
	assert_contains "$(cat "$LOG")" "locked down (Landlock ABI $kernel_abi:" "the store's log"
	assert_contains "$(cat "$LOG")" "creating $OUTSIDE/escaped failed: Permission denied" "the store's log"
	[[ ! -e $OUTSIDE/escaped ]] || fail "the store created a file outside its directory"
else
	assert_contains "$(cat "$LOG")" "no Landlock (" "the store's log"
	step "no Landlock on this kernel: only the user and seccomp confine the store (not checked here)"
fi

step "GET of an unsigned digest: 200 and an empty list (every pull asks)"
req GET "/extensions/v2/app/web/signatures/$D1"
assert_eq "$ST" 200 "GET status"
assert_eq "$BODY" '{"signatures":[]}' "GET body"

step "PUT then GET: the exact object back, bytes unchanged"
head -c 700 /dev/urandom >"$TEST_TMP/sig1"
name1=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
put_sig app/web "$D1" "$name1" "$TEST_TMP/sig1"
assert_eq "$ST" 201 "PUT status ($BODY)"
req GET "/extensions/v2/app/web/signatures/$D1"
assert_eq "$ST" 200 "GET status"
assert_eq "$(jq -c '.signatures[0] | [.schemaVersion, .name, .type]' <<<"$BODY")" "[2,\"$D1@$name1\",\"atomic\"]" "entry"
assert_eq "$(jq -c '.signatures[0] | keys' <<<"$BODY")" '["content","name","schemaVersion","type"]' "keys"
jq -r '.signatures[0].content' <<<"$BODY" | base64 -d >"$TEST_TMP/back"
cmp -s "$TEST_TMP/sig1" "$TEST_TMP/back" || fail "the signature came back changed"
assert_eq "$(count_sigs app/web "$D2")" 0 "another digest"
assert_eq "$(count_sigs app "$D1")" 0 "another repository"

step "a second PUT of the same signature: 201, nothing stored twice"
put_sig app/web "$D1" "$name1" "$TEST_TMP/sig1"
assert_eq "$ST" 201 "repeat PUT"
put_sig app/web "$D1" 0123456789abcdef0123456789abcdef "$TEST_TMP/sig1"
assert_eq "$ST" 201 "the same bytes under another name"
assert_eq "$(count_sigs app/web "$D1")" 1 "signatures after repeats"

step "the same name with other bytes: 409, the stored one unchanged"
head -c 700 /dev/urandom >"$TEST_TMP/sig2"
put_sig app/web "$D1" "$name1" "$TEST_TMP/sig2"
expect_error 409 DENIED
req GET "/extensions/v2/app/web/signatures/$D1"
jq -r '.signatures[0].content' <<<"$BODY" | base64 -d | cmp -s "$TEST_TMP/sig1" - || fail "the signature was overwritten"

step "a chunked PUT (as a re-framing proxy sends it), keep-alive"
put_sig app/web "$D1" chunked0 "$TEST_TMP/sig2" -H 'Transfer-Encoding: chunked'
assert_eq "$ST" 201 "chunked PUT ($BODY)"
out=$(curl -s -m 10 --unix-socket "$SOCK" -w '%{http_code} %{num_connects}\n' -o /dev/null -o /dev/null \
	"http://store/extensions/v2/app/web/signatures/$D1" "http://store/extensions/v2/app/web/signatures/$D2")
assert_eq "$out" $'200 1\n200 0' "two GETs on one connection"

step "caps: signature size, body size, signatures per digest"
head -c $((64 * 1024 + 1)) /dev/urandom >"$TEST_TMP/big"
put_sig app/web "$D2" big "$TEST_TMP/big"
expect_error 413 SIZE_INVALID
head -c $((64 * 1024)) /dev/urandom >"$TEST_TMP/max"
put_sig app/web "$D2" max "$TEST_TMP/max"
assert_eq "$ST" 201 "a signature of exactly 64 KiB"
head -c $((200 * 1024)) /dev/zero >"$TEST_TMP/huge"
req PUT "/extensions/v2/app/web/signatures/$D2" --data-binary @"$TEST_TMP/huge"
expect_error 413 SIZE_INVALID
for i in $(seq 1 15); do
	printf 'signature %d' "$i" >"$TEST_TMP/n"
	put_sig app/web "$D2" "n$i" "$TEST_TMP/n"
	assert_eq "$ST" 201 "signature $i of 16"
done
printf 'one too many' >"$TEST_TMP/n"
put_sig app/web "$D2" seventeen "$TEST_TMP/n"
expect_error 409 DENIED
assert_eq "$(count_sigs app/web "$D2")" 16 "signatures at the cap"

step "bad names, digests, paths, methods and objects"
req GET "/extensions/v2/App/signatures/$D1"
expect_error 400 NAME_INVALID
req GET "/extensions/v2/app/../../../etc/signatures/$D1"
expect_error 400 NAME_INVALID
req GET "/extensions/v2/app%2Fweb/signatures/$D1"
expect_error 400 NAME_INVALID
req GET "/extensions/v2/app/signatures/sha256:abc"
expect_error 400 DIGEST_INVALID
req GET "/extensions/v2/app/signatures/sha512:${D1#sha256:}"
expect_error 400 DIGEST_INVALID
req GET "/extensions/v2/app/signatures/${D1^^}"
expect_error 400 DIGEST_INVALID
req GET "/v2/"
expect_error 404 NOT_FOUND
req DELETE "/extensions/v2/app/web/signatures/$D1"
expect_error 405 UNSUPPORTED
printf '{"version":2,"name":"%s@x","type":"atomic","content":"aGk="}' "$D1" >"$TEST_TMP/put.json"
req PUT "/extensions/v2/app/web/signatures/$D1" --data-binary @"$TEST_TMP/put.json"
expect_error 400 SIGNATURE_INVALID
printf '{"schemaVersion":2,"name":"%s@../../x","type":"atomic","content":"aGk="}' "$D1" >"$TEST_TMP/put.json"
req PUT "/extensions/v2/app/web/signatures/$D1" --data-binary @"$TEST_TMP/put.json"
expect_error 400 SIGNATURE_INVALID
put_sig app/web "$D2" x "$TEST_TMP/sig1"
expect_error 409 DENIED # the cap; and D1's name in D2's URL:
sig_object "$D1" x "$TEST_TMP/sig1" >"$TEST_TMP/put.json"
req PUT "/extensions/v2/app/other/signatures/$D2" --data-binary @"$TEST_TMP/put.json"
expect_error 400 SIGNATURE_INVALID
# A malformed request head: the proxy's strict parser refuses it.
ST=$(python3 - "$SOCK" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET /extensions/v2/a/signatures/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx")
print(s.recv(4096).split(b" ")[1].decode())
EOF
)
assert_eq "$ST" 400 "duplicate Content-Length"

step "on disk: only the layout, owned by nobody, no temp files, nothing outside"
layout=$(cd "$STORE" && find . -mindepth 1 | sort)
unexpected=$(grep -Ev '^\./v1(/app(\+web)?(/sha256-[0-9a-f]{64}(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)?)?)?$' <<<"$layout" || true)
[[ -z $unexpected ]] || fail "unexpected entries below DIR: $unexpected"
[[ -z $(find "$STORE" ! -user nobody) ]] || fail "files not owned by nobody: $(find "$STORE" ! -user nobody)"
assert_eq "$(stat -c %a "$STORE/v1/app+web/sha256-${D1#sha256:}/$name1")" 640 "signature file mode"
[[ -z $(ls -A "$OUTSIDE") ]] || fail "files outside DIR: $(ls -A "$OUTSIDE")"

step "the store survived everything (no SIGSYS)"
kill -0 "$PID" || fail "the store died: $(cat "$LOG")"

step "a temp file left by a crash is removed at the next start"
dir1=$STORE/v1/app+web/sha256-${D1#sha256:}
runuser -u nobody -- sh -c "printf half > '$dir1/.tmp-00000000deadbeef'"
stop_store
start_store
assert_contains "$(cat "$LOG")" "removed 1 temp files" "the store's log"
[[ ! -e $dir1/.tmp-00000000deadbeef ]] || fail "the temp file is still there"
req GET "/extensions/v2/app/web/signatures/$D1"
jq -r ".signatures[] | select(.name == \"$D1@$name1\") | .content" <<<"$BODY" | base64 -d | cmp -s "$TEST_TMP/sig1" - ||
	fail "the signature did not survive the restart"
stop_store

step "under systemd: logging to the journal from inside the sandbox"
th_boot
th install -d -o nobody -g nogroup -m 0700 /var/lib/sigstore-test
th systemd-run --unit=sigstore-test --service-type=exec \
	"$REGVISOR" sigstore --socket /run/sigstore-test.sock --dir /var/lib/sigstore-test --user nobody >/dev/null
on_failure th journalctl -u sigstore-test --no-pager -n 40
th_get() {
	th curl -sf -m 5 --unix-socket /run/sigstore-test.sock "http://store/extensions/v2/app/signatures/$D1"
}
wait_until 10 th_get || fail "the store in the test host did not answer"
sig_object "$D1" journal0 "$TEST_TMP/sig1" | th_write /tmp/put.json
st=$(th curl -s -m 5 --unix-socket /run/sigstore-test.sock -o /dev/null -w '%{http_code}' -X PUT \
	--data-binary @/tmp/put.json "http://store/extensions/v2/app/signatures/$D1")
assert_eq "$st" 201 "PUT in the test host"
assert_eq "$(th_get | jq '.signatures | length')" 1 "GET in the test host"
assert_eq "$(th systemctl is-active sigstore-test)" active "the store's service"
events() {
	th journalctl -u sigstore-test --no-pager -o cat REGVISOR_EVENT=sigstore-access | grep -c 'method=PUT status=201'
}
wait_until 10 events || fail "no access line with REGVISOR_EVENT=sigstore-access in the journal"
lockdown=$(th journalctl -u sigstore-test --no-pager -o cat | grep -E 'locked down|no Landlock' || true)
[[ -n $lockdown ]] || fail "the store in the test host did not say how it is confined"
step "in the test host: $lockdown"
