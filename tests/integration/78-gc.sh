#!/usr/bin/env bash
# regvisor gc (issue 12, part 3): with the full stack up and two images
# pushed, an abandoned upload session (its data three days old) and a blob
# no manifest references, `regvisor gc` runs while a loop pulls both images:
#   - inside its window (held there by the REGVISOR_TEST_GC_STOP hook) a
#     push on 4443 gets 503 with Retry-After, the registry answers writes
#     405 (read-only), /metrics says read-only, and pulls succeed;
#   - afterwards the space is back (du of the storage), the unreferenced
#     blob and the upload session are gone, both images pull with the same
#     digests, pushes work again, /metrics and the journal say what was
#     freed;
#   - a dry run over [gc] max_delete_share (0%) stops gc: exit 1, nothing
#     deleted, pushes open and the registry read-write again;
#   - a gc killed inside its window (REGVISOR_TEST_GC_KILL) leaves nothing
#     behind: the supervisor reopens pushes and restarts the registry
#     read-write by itself.
# The pull loops (77-pull-loop.py, two clients per image: a fresh TLS
# connection per round, manifest GET and HEAD, every blob checked against
# its digest) run from before gc until after the killed gc: across the
# registry's restarts (read-only, read-write, twice each, and the
# supervisor's own restore) the proxy holds GET/HEAD ([proxy]
# upstream_hold, its default), so zero pulls fail and none is refused; the
# counts are printed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
CURL=(curl -s -m 10 --cacert $C/ca/ca.crt)
PUSH=(--cert $C/clients/ci.crt --key $C/private/clients/ci.key)
ACCEPT=/var/tmp/accept-any.json
STORE=/var/lib/registry

LOOP=/var/lib/regvisor-test/loop

th_boot
# No pull rate limit: the loops pull from one address as fast as they can,
# and a 429 would count as a failed pull. upstream_hold stays the default.
write_config "[pull]
rate = 0"
on_failure th journalctl -u regvisor --no-pager -n 80
on_failure th journalctl --no-pager -n 40 _SYSTEMD_USER_UNIT=regvisor-registry.service
on_failure th journalctl --no-pager -o cat -n 40 -u regvisor-gc-test
on_failure th sh -c "cat $LOOP/a/stats.json $LOOP/b/stats.json"
provision >/dev/null || fail "provision failed: $OUT"
run_unit_up
client_certs_d
th mkdir -p /etc/containers/certs.d/registry.test:443
th cp $C/ca/ca.crt /etc/containers/certs.d/registry.test:443/ca.crt
th_write "$ACCEPT" <<<'{"default":[{"type":"insecureAcceptAnything"}]}'

metric() {
	th curl -sf -m 3 http://127.0.0.1:9443/metrics | awk -v k="$1" '$1 == k { print $2; f = 1 } END { exit !f }'
}
digest_of() {
	th skopeo --policy "$ACCEPT" inspect --format '{{.Digest}}' "docker://registry.test:443/$1"
}
push_code() { # a POST that starts an upload: 202 open, 503 refused
	th "${CURL[@]}" "${PUSH[@]}" -o /dev/null -w '%{http_code}' -X POST \
		https://registry.test:4443/v2/test/probe/blobs/uploads/
}
pull_both() { # WHEN: both images pull from 443
	local ref
	for ref in test/a:1 test/b:1; do
		th skopeo --policy "$ACCEPT" copy -q "docker://registry.test:443/$ref" dir:/var/tmp/pl-check >/dev/null ||
			fail "pull of $ref $1 failed"
		th rm -rf /var/tmp/pl-check
	done
}
storage_bytes() {
	th du -s -B1 "$STORE" | cut -f1
}

step "push two images over 4443"
th python3 "$REPO/tests/integration/50-proxy-oci.py" /var/tmp/img-a 3 >/dev/null
th python3 "$REPO/tests/integration/50-proxy-oci.py" /var/tmp/img-b 2 >/dev/null
for i in a b; do
	out=$(th skopeo --policy "$ACCEPT" copy "oci:/var/tmp/img-$i:1" "docker://registry.test:4443/test/$i:1" 2>&1) ||
		fail "push of test/$i:1 failed: $out"
done
digest_a=$(digest_of test/a:1) && digest_b=$(digest_of test/b:1) || fail "cannot read the pushed digests"
step "test/a:1 $digest_a, test/b:1 $digest_b"

step "garbage: a blob no manifest references, an upload session left three days ago"
th sh -c 'head -c 6291456 /dev/urandom > /var/tmp/junk'
junk=$(registry_blob test/a /var/tmp/junk)
location=$(th curl -sf -m 5 -X POST -D - -o /dev/null --unix-socket "$SOCK" \
	"http://localhost/v2/test/a/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
[[ $location == /v2/test/a/blobs/uploads/* ]] || fail "unexpected upload location: $location"
th sh -c 'head -c 4194304 /dev/urandom > /var/tmp/partial'
code=$(th curl -s -m 20 -o /dev/null -w '%{http_code}' -X PATCH --data-binary @/var/tmp/partial \
	-H 'Content-Type: application/octet-stream' --unix-socket "$SOCK" "http://localhost$location")
assert_eq "$code" 202 "PATCH of the abandoned upload"
upload_id=${location#/v2/test/a/blobs/uploads/}
upload_id=${upload_id%%\?*}
upload_dir=$STORE/docker/registry/v2/repositories/test/a/_uploads/$upload_id
th test -f "$upload_dir/data" || fail "no upload session at $upload_dir"
th touch -d '3 days ago' "$upload_dir/data"
junk_file=$STORE/docker/registry/v2/blobs/sha256/${junk:7:2}/${junk#sha256:}/data
th test -f "$junk_file" || fail "the unreferenced blob is not at $junk_file"
before=$(storage_bytes)

step "two loops pull both images from 443 all along"
for i in a b; do
	th mkdir -p "$LOOP/$i"
	th systemd-run --unit=pull-loop-$i /usr/bin/python3 "$REPO/tests/integration/77-pull-loop.py" "$LOOP/$i" \
		$C/ca/ca.crt test/$i:1 2 >/dev/null
done
on_exit th touch "$LOOP/a/stop" "$LOOP/b/stop"
# loop_sum KEY: both loops' count KEY so far.
loop_sum() {
	th python3 -c 'import json, sys
print(sum(json.load(open(f))[sys.argv[1]] for f in sys.argv[2:]))' "$1" "$LOOP/a/stats.json" "$LOOP/b/stats.json"
}
# no_failures WHEN: nothing refused, nothing failed so far.
no_failures() {
	local refused failed
	refused=$(loop_sum refused) failed=$(loop_sum failed)
	((refused == 0 && failed == 0)) && return 0
	th sh -c "cat $LOOP/a/stats.json $LOOP/b/stats.json" | sed 's/^/#   /'
	fail "$1: $refused refused, $failed failed pulls"
}
some_pulls() { (($(loop_sum rounds_ok) >= 4)); }
wait_until 60 some_pulls || fail "the pull loops do not pull"

step "regvisor gc, held inside its window"
th systemd-run --unit=regvisor-gc-test -E REGVISOR_TEST_GC_STOP=readonly \
	/usr/local/bin/regvisor gc --config "$CONF" >/dev/null
gc_stopped() {
	local pid
	pid=$(th systemctl show -P MainPID regvisor-gc-test.service)
	[[ $pid -gt 0 ]] && [[ $(th ps -o stat= -p "$pid") == T* ]]
}
wait_until 240 gc_stopped || fail "regvisor gc did not reach its read-only window"
assert_eq "$(metric regvisor_registry_readonly)" 1 "regvisor_registry_readonly inside the window"
head=$(th "${CURL[@]}" "${PUSH[@]}" -o /dev/null -D - -X POST https://registry.test:4443/v2/test/a/blobs/uploads/ |
	tr -d '\r')
assert_contains "$head" "HTTP/1.1 503"
assert_contains "$head" "Retry-After: 60"
code=$(th curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Length: 0' --unix-socket "$SOCK" \
	http://localhost/v2/test/a/manifests/x)
assert_eq "$code" 405 "a write straight to the registry inside the window (read-only)"
ok_before=$(loop_sum rounds_ok)
more_pulls() { (($(loop_sum rounds_ok) >= ok_before + 8)); }
wait_until 60 more_pulls || fail "pulls do not go on while the registry is read-only"
no_failures "into the read-only window"
step "pulls into the read-only window: $(loop_sum rounds_ok) ok, $(loop_sum failed) failed"
pull_both "inside the window"
th systemctl kill -s SIGCONT regvisor-gc-test.service

gc_done() { [[ $(th systemctl show -P ActiveState regvisor-gc-test.service) != active ]]; }
wait_until 300 gc_done || fail "regvisor gc did not finish"
th journalctl --no-pager -o cat -u regvisor-gc-test | sed 's/^/#   /'
assert_eq "$(th systemctl show -P ExecMainStatus regvisor-gc-test.service)" 0 "regvisor gc's exit status"
ok_before=$(loop_sum rounds_ok)
wait_until 60 more_pulls || fail "pulls do not go on after gc"
no_failures "across gc (registry read-only and back)"
step "pulls across gc: $(loop_sum rounds_ok) ok, $(loop_sum failed) failed, $(loop_sum refused) refused"
# The restarts were crossed by pulls: the proxy found the registry gone
# and held them (four clients pull back to back; a restart is a podman stop
# and start, far longer than the gap between two of their requests).
held=$(journal_events upstream-hold | grep -c 'holding GET/HEAD' || true)
((held > 0)) || fail "the proxy never held a pull: no registry restart was crossed by a request"
step "the proxy held pulls across the registry's restarts ($held upstream-hold events so far)"

step "the space is back; both images pull with the same digests"
after=$(storage_bytes)
step "storage: $before bytes before, $after after"
((after <= before - (8 << 20))) || fail "gc freed only $((before - after)) bytes (expected >= 8 MiB)"
th test ! -e "$junk_file" || fail "the unreferenced blob is still there"
th test ! -e "$upload_dir" || fail "the abandoned upload session is still there"
assert_eq "$(digest_of test/a:1)" "$digest_a" "digest of test/a:1 after gc"
assert_eq "$(digest_of test/b:1)" "$digest_b" "digest of test/b:1 after gc"
pull_both "after gc"

step "journal and /metrics say what was freed"
done_line=$(journal_events gc-done)
assert_contains "$done_line" "1 blobs deleted, 1 stale upload sessions purged"
assert_eq "$(metric regvisor_gc_last_success)" 1 "regvisor_gc_last_success"
assert_eq "$(metric regvisor_gc_last_deleted_blobs)" 1 "regvisor_gc_last_deleted_blobs"
assert_eq "$(metric regvisor_gc_last_purged_uploads)" 1 "regvisor_gc_last_purged_uploads"
freed=$(metric regvisor_gc_last_freed_bytes)
((freed >= 8 << 20)) || fail "regvisor_gc_last_freed_bytes is $freed"
assert_eq "$(metric regvisor_registry_readonly)" 0 "regvisor_registry_readonly after gc"

step "pushes work again"
out=$(th skopeo --policy "$ACCEPT" copy "oci:/var/tmp/img-b:1" docker://registry.test:4443/test/c:1 2>&1) ||
	fail "push after gc failed: $out"

step "a dry run over [gc] max_delete_share stops gc; pushes and read-write come back"
th sh -c 'head -c 1048576 /dev/urandom > /var/tmp/junk2'
junk2=$(registry_blob test/b /var/tmp/junk2)
junk2_file=$STORE/docker/registry/v2/blobs/sha256/${junk2:7:2}/${junk2#sha256:}/data
th sed -i 's/^\[registry\]$/[gc]\nmax_delete_share = 0%\n&/' "$CONF"
rc=0
out=$(th /usr/local/bin/regvisor gc --config "$CONF" 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/#   /'
assert_eq "$rc" 1 "regvisor gc's exit status with max_delete_share = 0%"
assert_contains "$out" "more than [gc] max_delete_share = 0%; nothing was deleted"
th test -f "$junk2_file" || fail "a refused gc deleted the blob"
assert_eq "$(push_code)" 202 "a push after the refused gc"
assert_eq "$(metric regvisor_registry_readonly)" 0 "regvisor_registry_readonly after the refused gc"
assert_eq "$(metric regvisor_gc_last_success)" 0 "regvisor_gc_last_success after the refused gc"

step "a gc killed inside its window: the supervisor restores pushes and read-write"
th systemd-run --unit=regvisor-gc-kill -E REGVISOR_TEST_GC_KILL=readonly \
	/usr/local/bin/regvisor gc --config "$CONF" >/dev/null
killed() { [[ $(th systemctl show -P Result regvisor-gc-kill.service) == signal ]]; }
wait_until 240 killed || fail "the killed gc did not die at its hook"
pushes_open() { [[ $(push_code) == 202 ]]; }
wait_until 120 pushes_open || fail "pushes stay refused after a gc was killed"
assert_eq "$(metric regvisor_registry_readonly)" 0 "regvisor_registry_readonly after a killed gc"
assert_contains "$(journal_events gc-abandoned)" "reopening pushes and read-write"
out=$(th skopeo --policy "$ACCEPT" copy "oci:/var/tmp/img-a:1" docker://registry.test:4443/test/d:1 2>&1) ||
	fail "push after a killed gc failed: $out"

ok_before=$(loop_sum rounds_ok)
wait_until 60 more_pulls || fail "pulls do not go on after the killed gc"
th touch "$LOOP/a/stop" "$LOOP/b/stop"
loops_stopped() { ! th systemctl is-active -q pull-loop-a pull-loop-b; }
wait_until 200 loops_stopped || fail "the pull loops did not stop"
no_failures "at the end"
step "pull loops: $(loop_sum rounds_ok) pulls on $(loop_sum connections) TLS connections;" \
	"$(loop_sum refused) refused, $(loop_sum failed) failed"
(($(loop_sum rounds_ok) > 0)) || fail "the pull loops pulled nothing"
