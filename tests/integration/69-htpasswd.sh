#!/usr/bin/env bash
# The optional second factor on 4443 ([push] htpasswd, proxy/htpasswd.h) on
# the full stack (regvisor run as the system unit):
#   - no client certificate: 400, as without htpasswd;
#   - a certificate without credentials: 401 with
#     WWW-Authenticate: Basic realm="regvisor"; with a wrong password or an
#     unknown user: 401; with the right ones: 200;
#   - skopeo copy and podman push with --creds succeed, without fail;
#   - the file changes (a new password): the old one gets 401 and the new
#     one 200 without a reload asked for;
#   - pulls on 443 need nothing;
#   - the password stops at the proxy: a capture on the registry's own
#     socket (69-socket-capture.py, relaying to it) holds every request the
#     proxy forwarded, the pushes included, and no Authorization field nor
#     the credentials' bytes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

C=/etc/registry/certs
CA=$C/ca/ca.crt
HT=/etc/regvisor/htpasswd
ACCEPT_ANY=/etc/regvisor/accept-anything.json
CERT=(--cert "$C/clients/ci.crt" --key "$C/private/clients/ci.key")
CURL=(curl -s -m 10 --cacert "$CA")

# bcrypt PASSWORD: a $2b$ hash by libcrypt (Python's crypt module, cost 5).
bcrypt() {
	th python3 -W ignore -c 'import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))' "$1"
}

th_boot
write_config "$(printf '[push]\nrate = 200r/s\nburst = 200\nhtpasswd = %s\n' "$HT")"
on_failure th journalctl -u regvisor --no-pager -n 80
provision >/dev/null || fail "provision failed: $OUT"
printf 'ci-bot:%s\n' "$(bcrypt 'first pass')" | th_write "$HT" 0600
run_unit_up

CAP=/var/tmp/registry-capture
step "a capture on the registry's socket records what the registry reads"
th systemd-run --unit=socket-capture /usr/bin/python3 "$REPO/tests/integration/69-socket-capture.py" "$SOCK" \
	"$CAP" >/dev/null
on_exit th sh -c 'systemctl stop socket-capture 2>/dev/null || true'
wait_until 10 th test -e "$CAP.ready" || fail "the capture did not take over $SOCK"
# The proxy's workers keep idle registry connections (proxy/upstream-pool.c)
# made before the capture, straight to the registry: a reload starts new
# workers, whose every connection goes through the capture.
th systemctl reload regvisor.service || fail "reload after the capture failed"

# code [CURL ARGS]: the status of GET /v2/ on 4443.
code() {
	th "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" https://registry.test:4443/v2/
}
step "400 without a certificate, 401 without credentials, 200 with them"
assert_eq "$(code)" 400 "no certificate"
head=$(th "${CURL[@]}" -D - -o /dev/null "${CERT[@]}" https://registry.test:4443/v2/ | tr -d '\r')
assert_contains "$head" "HTTP/1.1 401"
assert_contains "$head" 'WWW-Authenticate: Basic realm="regvisor"'
assert_eq "$(code "${CERT[@]}" -u 'ci-bot:wrong')" 401 "wrong password"
assert_eq "$(code "${CERT[@]}" -u 'nobody:first pass')" 401 "unknown user"
assert_eq "$(code "${CERT[@]}" -u 'ci-bot:first pass')" 200 "right credentials"
assert_eq "$(code -u 'ci-bot:first pass')" 400 "credentials without a certificate"
assert_eq "$(th "${CURL[@]}" -o /dev/null -w '%{http_code}' https://registry.test/v2/)" 200 "a pull on 443"

step "skopeo copy and podman push with --creds"
client_certs_d
th_write "$ACCEPT_ANY" 0644 <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
out=$(th skopeo copy -q --policy "$ACCEPT_ANY" --dest-creds 'ci-bot:first pass' "oci-archive:$REGISTRY_ARCHIVE" \
	docker://registry.test:4443/test/ht:1 2>&1) || fail "skopeo copy with --dest-creds failed: $out"
out=$(th skopeo copy -q --policy "$ACCEPT_ANY" "oci-archive:$REGISTRY_ARCHIVE" \
	docker://registry.test:4443/test/ht:nocreds 2>&1) && fail "skopeo copy without credentials succeeded: $out"
th podman load -q -i "$REGISTRY_ARCHIVE" >/dev/null 2>&1 || fail "podman load failed"
th podman tag "$REGISTRY_REFERENCE" localhost/ht:2 || fail "podman tag failed"
out=$(th podman push --signature-policy "$ACCEPT_ANY" --creds 'ci-bot:first pass' localhost/ht:2 \
	registry.test:4443/test/ht:2 2>&1) || fail "podman push with --creds failed: $out"
th skopeo inspect --no-tags docker://registry.test/test/ht:2 >/dev/null || fail "test/ht:2 is not readable on 443"

step "the registry never saw the credentials"
th systemctl stop socket-capture
th test -S "$SOCK.real" && fail "the registry's socket was not put back"
manifests=$(th grep -a -c '^PUT /v2/test/ht/manifests/' "$CAP" || true)
requests=$(th grep -a -c -E '^(GET|HEAD|POST|PUT|PATCH|DELETE) /v2/' "$CAP" || true)
bytes=$(th stat -c %s "$CAP")
step "the registry read $requests requests ($bytes bytes), $manifests manifest pushes"
((manifests >= 2)) || fail "the capture holds no manifest push: it did not see the pushes"
for secret in 'Authorization' "$(printf 'ci-bot:first pass' | base64)" 'first pass' 'Basic '; do
	n=$(th grep -a -c -i -F -e "$secret" "$CAP" || true)
	assert_eq "$n" 0 "lines with '$secret' that reached the registry"
done

step "the file changes: the new password works, the old one no more, without a reload"
printf 'ci-bot:%s\n' "$(bcrypt 'second pass')" | th_write "$HT.new" 0600
th mv "$HT.new" "$HT"
new_ok() { [[ $(code "${CERT[@]}" -u 'ci-bot:second pass') == 200 ]]; }
wait_until 20 new_ok || fail "the new password is not accepted after the file changed"
assert_eq "$(code "${CERT[@]}" -u 'ci-bot:first pass')" 401 "the old password after the change"
th journalctl --no-pager -u regvisor -o cat | grep -q "$HT changed; reloading" || fail "no reload logged"

step "a file that does not load keeps the running entries"
th_write "$HT" 0600 <<<'ci-bot:$apr1$notbcrypt$xxxxxxxxxxxxxxxxxxxxxx'
bad_logged() { th journalctl --no-pager -u regvisor -o cat | grep -q "$HT:1: expected a bcrypt hash"; }
wait_until 20 bad_logged || fail "the bad file's error is not logged"
assert_eq "$(code "${CERT[@]}" -u 'ci-bot:second pass')" 200 "the running entries after a bad file"
