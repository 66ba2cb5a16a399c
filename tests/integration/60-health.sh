#!/usr/bin/env bash
# regvisor health on a provisioned systemd test host, driving each state:
# the registry up without a proxy (the host checks OK, the proxy checks
# CRITICAL: the honest state until the proxy lands, exit 2); with a stand-in
# proxy that behaves as the guide's nginx (all OK, exit 0); a server
# certificate expiring in 10 days (WARNING, exit 1); the registry unit
# stopped (2, naming the unit checks); a broken configuration (3, naming
# file and line); a SIGSTOPped registry (an answer within the timeout, /v2/
# CRITICAL). --json is checked with jq and json.tool, --metrics for shape.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

# The checks that must pass on a provisioned host with the registry up, and
# the proxy's, which cannot until `regvisor run` starts the proxy (issue 4).
HOST_CHECKS="linger user-manager registry-unit registry-container registry-http registry-storage podman-state
	cert-server-ca cert-server cert-client-ca cert-clients image-signatures crl
	store store-cache store-secrets"
PROXY_CHECKS="proxy-pull-tls proxy-push-tls proxy-pull-refuses-write proxy-push-requires-cert"

# health [ARGS]: regvisor health in the guest; stdout in $HOUT, exit status
# in $HRC, wall time in $HMS (milliseconds, including the `th` round trip).
health() {
	local t0
	t0=$(_now_us)
	HRC=0
	HOUT=$(th "$REGVISOR" health "$@") || HRC=$?
	HMS=$((($(_now_us) - t0) / 1000))
	printf '%s\n' "$HOUT" | sed 's/^/#   /'
	echo "#   (exit $HRC, ${HMS} ms)"
}

# state_of CHECK: the state on CHECK's line of the last output.
state_of() {
	printf '%s\n' "$HOUT" | awk -v n="$1:" '$2 == n { print $1; exit }'
}

line_of() {
	printf '%s\n' "$HOUT" | awk -v n="$1:" '$2 == n { print; exit }'
}

assert_state() {
	local check=$1 want=$2
	[[ $(state_of "$check") == "$want" ]] ||
		fail "$check: expected $want, got: '$(line_of "$check")'"
}

# A stand-in for the proxy until `regvisor run` starts the real one (issue
# 4): Python's ssl module on 443/4443 with the provisioned certificate,
# behaving as the guide's nginx does (MODE nginx: 403 for a write on the
# pull port, 400 for a push client without a certificate), refusing at the
# TLS layer instead (MODE tls-refuse: the TLS 1.3 "certificate required"
# alert), or letting writes through (MODE open: what the checks must catch).
# It exercises the proxy checks' TLS client for real; replace it with the
# real proxy once it lands.
STANDIN='import socket, ssl, sys, threading
from rawhttp import recv_until
certs, mode = "/etc/registry/certs", sys.argv[1]
def context(push):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(certs + "/registry.crt", certs + "/private/registry.key")
    if push:
        c.load_verify_locations(certs + "/clients/ca.crt")
        c.verify_mode = ssl.CERT_REQUIRED if mode == "tls-refuse" else ssl.CERT_OPTIONAL
    return c
def serve(port, push):
    c = context(push)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        try:
            t = c.wrap_socket(conn, server_side=True)
            req = recv_until(t, b"\r\n\r\n")
            write = req.split(b" ", 1)[0] not in (b"GET", b"HEAD")
            status = 400 if push and not t.getpeercert() else 403 if write and not push and mode != "open" else 200
            t.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % status)
            t.close()
        except (OSError, ssl.SSLError) as e:
            print("connection:", e, flush=True)
            conn.close()
threading.Thread(target=serve, args=(443, False), daemon=True).start()
serve(4443, True)
'

_ports_open() {
	th bash -c ': </dev/tcp/127.0.0.1/443 && : </dev/tcp/127.0.0.1/4443' 2>/dev/null
}

# standin MODE: (re)start the stand-in proxy as a transient unit.
standin() {
	th systemctl stop standin-proxy.service 2>/dev/null || true
	th systemd-run --quiet --unit=standin-proxy /usr/bin/python3 /root/standin-proxy.py "$1" ||
		fail "cannot start the stand-in proxy"
	wait_until 10 _ports_open || fail "the stand-in proxy does not listen"
}

th_boot
write_config
on_failure journalctl --user -M ci-svc@ -u regvisor-registry --no-pager -n 50
on_failure "$REGVISOR" health --config "$CONF"

step "provision and start the registry"
provision >/dev/null || fail "provision failed: $OUT"
user_systemctl ci-svc start regvisor-registry.service || fail "start failed"
wait_until 60 registry_answers || fail "registry does not answer on $SOCK"

step "all up: every host check OK, the proxy checks CRITICAL (no proxy yet), exit 2"
# How many checks the table has (the proxy's four among them).
N=$(th "$REGVISOR" health --list | wc -l)
((N > 4)) || fail "health --list lists $N checks"
health --config "$CONF"
for c in $HOST_CHECKS; do
	assert_state "$c" OK
done
for c in $PROXY_CHECKS; do
	assert_state "$c" CRITICAL
done
assert_contains "$(line_of proxy-pull-tls)" "nothing listens on 127.0.0.1:443"
assert_eq "$HRC" 2 "exit status with the proxy down"
first=$(head -n 1 <<<"$HOUT")
assert_contains "$first" "REGVISOR CRITICAL - critical: proxy-pull-tls, proxy-push-tls, proxy-pull-refuses-write, proxy-push-requires-cert ($((N - 4)) of $N ok)|"
for p in "registry_response=" "storage_free=" ";20:;10:" "server_cert_days=" ";30:;7:" "server_ca_days=" "client_cert_min_days="; do
	assert_contains "${first#*|}" "$p" "perfdata"
done
assert_eq "$(wc -l <<<"$HOUT")" $((N + 1)) "output lines"
assert_contains "$(line_of registry-container)" "$REGISTRY_DIGEST"

step "the host checks alone: exit 0 (--check, one monitoring service per check)"
args=()
for c in $HOST_CHECKS; do
	args+=(--check "$c")
done
health --config "$CONF" "${args[@]}"
assert_eq "$HRC" 0 "exit status of the host checks"
assert_contains "$(head -n 1 <<<"$HOUT")" "REGVISOR OK - $((N - 4)) checks ok|"

step "--json: one document, the same states"
health --config "$CONF" --json
assert_eq "$HRC" 2 "--json exit status"
jq -e . >/dev/null <<<"$HOUT" || fail "--json output does not parse"
assert_eq "$(jq -r '.state' <<<"$HOUT")" CRITICAL ".state"
assert_eq "$(jq -r '.exit_status' <<<"$HOUT")" 2 ".exit_status"
assert_eq "$(jq -r '.checks | length' <<<"$HOUT")" "$N" "number of checks"
assert_eq "$(jq -r '.checks[] | select(.name == "registry-http") | .state' <<<"$HOUT")" OK "registry-http in JSON"
assert_eq "$(jq -r '[.checks[] | select(.state == "OK")] | length' <<<"$HOUT")" $((N - 4)) "OK checks in JSON"
assert_eq "$(jq -r '.checks[] | select(.name == "cert-server") | .certificates[0].name' <<<"$HOUT")" server \
	"certificate name"
/usr/bin/python3 -m json.tool >/dev/null <<<"$HOUT" || fail "python3 -m json.tool refuses the --json output"

step "--metrics: Prometheus text with the check states and certificate expiry"
health --config "$CONF" --metrics
assert_contains "$HOUT" 'regvisor_health_check_state{check="registry-http"} 0'
assert_contains "$HOUT" 'regvisor_health_check_state{check="proxy-pull-tls"} 2'
assert_contains "$HOUT" 'regvisor_certificate_expiry_timestamp_seconds{certificate="server"} '
assert_contains "$HOUT" 'regvisor_certificate_expiry_timestamp_seconds{certificate="client/ci"} '
/usr/bin/python3 "$REPO/tests/integration/prom-parse.py" <<<"$HOUT" >/dev/null ||
	fail "prometheus_client cannot parse the --metrics output"

step "a stand-in proxy that behaves like the guide's nginx: every check OK, exit 0"
th_write /root/standin-proxy.py 0644 <<<"$STANDIN"
th_put "$REPO/tests/integration/rawhttp.py" /root/rawhttp.py
on_failure journalctl -u standin-proxy --no-pager -n 30
standin nginx
health --config "$CONF"
assert_eq "$HRC" 0 "exit status with everything up"
assert_contains "$(head -n 1 <<<"$HOUT")" "REGVISOR OK - $N checks ok|"
assert_contains "$(line_of proxy-pull-tls)" "certificate verified against the server CA"
assert_contains "$(line_of proxy-pull-refuses-write)" "PUT /v2/ answered 403"
assert_contains "$(line_of proxy-push-requires-cert)" "GET /v2/ answered 400"
assert_contains "$HOUT" "pull_handshake="

step "a server certificate expiring in 10 days: WARNING, exit 1"
th sh -ec 'cd /etc/registry/certs
	cp -p registry.crt /root/registry.crt.orig
	openssl req -new -key private/registry.key -subj /O=regvisor/CN=registry.test -out /tmp/r.csr
	openssl x509 -req -in /tmp/r.csr -CA ca/ca.crt -CAkey private/ca.key -days 10 \
		-set_serial "0x$(openssl rand -hex 16)" -out registry.crt 2>/dev/null' ||
	fail "cannot make the 10-day certificate"
health --config "$CONF"
assert_eq "$HRC" 1 "exit status with a certificate expiring in 10 days"
assert_state cert-server WARNING
assert_contains "$(line_of cert-server)" "in 10 days"
assert_contains "$HOUT" "server_cert_days=10;30:;7:"
# The stand-in loaded the old certificate: what a proxy that was not
# reloaded after a renewal serves.
assert_state proxy-pull-tls WARNING
assert_contains "$(line_of proxy-pull-tls)" "serves a certificate other than /etc/registry/certs/registry.crt"
assert_contains "$(head -n 1 <<<"$HOUT")" "REGVISOR WARNING - warning: cert-server, proxy-pull-tls, proxy-push-tls ($((N - 3)) of $N ok)|"
health --config "$CONF" --check cert-server
assert_eq "$HRC" 1 "exit status of cert-server alone"
assert_contains "$(head -n 1 <<<"$HOUT")" "REGVISOR WARNING - warning: cert-server (0 of 1 ok)|server_cert_days=10;30:;7:"
th cp -p /root/registry.crt.orig /etc/registry/certs/registry.crt

proxy_only=()
for c in $PROXY_CHECKS; do
	proxy_only+=(--check "$c")
done

step "a push port that refuses at the TLS layer (TLS 1.3 alert) is as good as a 400"
standin tls-refuse
health --config "$CONF" "${proxy_only[@]}"
assert_eq "$HRC" 0 "exit status with a TLS-level refusal"
assert_contains "$(line_of proxy-push-requires-cert)" "certificate required"

step "a pull port that lets a write through: CRITICAL"
standin open
health --config "$CONF" "${proxy_only[@]}"
assert_eq "$HRC" 2 "exit status with anonymous writes"
assert_state proxy-pull-refuses-write CRITICAL
assert_contains "$(line_of proxy-pull-refuses-write)" "anonymous writes get through"
th systemctl stop standin-proxy.service

step "registry unit stopped: exit 2 naming the unit, container and /v2/ checks"
user_systemctl ci-svc stop regvisor-registry.service || fail "stop failed"
health --config "$CONF"
assert_eq "$HRC" 2 "exit status with the registry stopped"
assert_state registry-unit CRITICAL
assert_contains "$(line_of registry-unit)" "regvisor-registry.service is inactive"
assert_state registry-container CRITICAL
assert_state registry-http CRITICAL
assert_state user-manager OK
assert_state cert-server OK
assert_contains "$(head -n 1 <<<"$HOUT")" "critical: registry-unit, registry-container, registry-http,"
user_systemctl ci-svc start regvisor-registry.service || fail "restart failed"
wait_until 60 registry_answers || fail "registry does not answer after a restart"

step "a broken or missing configuration: UNKNOWN (3) with file and line"
th_write /etc/regvisor/broken.conf <<-'EOF'
	[tls]
	server_names = registry.test
	[registry]
	storage = relative/path
EOF
health --config /etc/regvisor/broken.conf
assert_eq "$HRC" 3 "exit status with a broken configuration"
assert_contains "$HOUT" "REGVISOR UNKNOWN - configuration: /etc/regvisor/broken.conf:4:"
health --config /etc/regvisor/broken.conf --json
assert_eq "$HRC" 3 "--json exit status with a broken configuration"
assert_eq "$(jq -r .state <<<"$HOUT")" UNKNOWN "--json state with a broken configuration"
health --config /etc/regvisor/missing.conf
assert_eq "$HRC" 3 "exit status with a missing configuration"
assert_contains "$HOUT" "REGVISOR UNKNOWN - configuration: /etc/regvisor/missing.conf"

step "a hung registry (SIGSTOP): an answer within the timeout, /v2/ CRITICAL"
pid=$(svc_podman inspect --format '{{.State.Pid}}' regvisor-registry)
[[ $pid =~ ^[0-9]+$ && $pid -gt 1 ]] || fail "no container PID: '$pid'"
th kill -STOP "$pid"
health --config "$CONF"
th kill -CONT "$pid"
((HMS < 10000)) || fail "health took ${HMS} ms with the registry stopped (limit 10 s)"
assert_eq "$HRC" 2 "exit status with the registry hung"
assert_state registry-http CRITICAL
assert_contains "$(line_of registry-http)" "no answer within"
assert_state registry-unit OK
assert_state registry-container OK
step "--timeout 2 bounds the whole run: later checks read UNKNOWN, not a hang"
th kill -STOP "$pid"
health --config "$CONF" --timeout 2
th kill -CONT "$pid"
((HMS < 5000)) || fail "health --timeout 2 took ${HMS} ms"
assert_eq "$HRC" 2 "exit status with --timeout 2"
wait_until 30 registry_answers || fail "registry does not answer after SIGCONT"

step "back to normal: every host check OK again"
health --config "$CONF"
for c in $HOST_CHECKS; do
	assert_state "$c" OK
done
