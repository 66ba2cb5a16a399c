#!/usr/bin/env bash
# The default limits against real clients' pushes and against a flood from
# many addresses (issue 11; 67-limits-real-clients.sh has the pulls, the
# 429 over conn_per_ip and the flood from one address). Under the defaults
# (nothing about limits in the configuration), through the full stack:
#   - a 30-layer image (skopeo pushes it over 4443) pushed again over 4443
#     with the client certificate by podman (certs.d) and by containerd's
#     ctr (hosts.toml with client = [[cert, key]]; ctr checks every blob on
#     ~32 connections at once and fails at the first reset or 429): both
#     succeed, with no 429 and no connection refused;
#   - docker (Debian's docker.io; dockerd in the test host with
#     --iptables=false --bridge=none --storage-driver=vfs) pulls it over
#     443 and pushes it over 4443 (certs.d), also with no 429; without
#     docker.io on this machine that part is skipped, and says so;
#   - a flood from 12 addresses (127.0.1.1-12, 16 connections each, a new
#     TLS connection per request, until told to stop): per-address limits
#     bound each address, so every one of them is refused with 429 and
#     none is served more than its burst plus its rate over the flood's
#     length; while it goes on, skopeo and ctr pull the image from another
#     address (192.0.2.10) and succeed, and draw no 429. What bounds a
#     flood from more addresses than that is global: [proxy]
#     max_connections (a worker stops accepting), the limits table (a new
#     client gets 503 when it is full; 57-proxy-limits-ipv6.sh) and
#     min_rate (slow clients); INSTALL.md, "Per-client limits".
# No timing is asserted: the bound on what a flooding address is served
# scales with the flood's measured length. LIMITS: INI lines added to the
# configuration (the guide's limits, to see the clients fail; RATE and
# BURST then give [pull]'s).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"
REGVISOR=${REGVISOR_UNDER_TEST:-$REGVISOR}

ACCEPT_ANY=/etc/regvisor-test-policy.json
LAYERS=30
HOSTS_DIR=/etc/rvtest-hosts
# [pull] rate and burst's defaults (regvisor.conf).
RATE=${RATE:-10}
BURST=${BURST:-200}
# How long one client may take (client --timeout).
CLIENT_TIMEOUT=300

clients_stack_up "${LIMITS:-}"
# The clients reach registry.test at 192.0.2.10 (on lo), the flood comes
# from 127.0.1.0/24: docker treats a registry at a 127.0.0.0/8 address as
# insecure whatever it is told (no certificate checked, certs.d not read,
# so no client certificate on 4443).
th ip addr add 192.0.2.10/32 dev lo
th sed -i 's/^127\.0\.0\.1 registry\.test$/192.0.2.10 registry.test/' /etc/hosts

step "clients: certs.d, hosts.toml for 443 and 4443 (client certificate), a $LAYERS-layer OCI layout"
client_certs_d
ctr_hosts_443 "$HOSTS_DIR"
th /bin/sh -c "set -e
	mkdir -p $HOSTS_DIR/registry.test:4443
	printf '[host.\"https://registry.test:4443\"]\n  ca = \"%s\"\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n  client = [[\"%s\", \"%s\"]]\n' \
		$CA $CI_CERT $CI_KEY > $HOSTS_DIR/registry.test:4443/hosts.toml"
clients_image "$ACCEPT_ANY" "$LAYERS"
th skopeo --policy "$ACCEPT_ANY" copy oci:/var/tmp/big:1 docker://registry.test:4443/test/big:1 >/dev/null ||
	fail "skopeo push of the $LAYERS-layer image failed"
th ctr images pull --snapshotter native --hosts-dir "$HOSTS_DIR" registry.test/test/big:1 >/dev/null ||
	fail "ctr pull of the $LAYERS-layer image failed"
th podman --runtime=runc pull -q --signature-policy "$ACCEPT_ANY" registry.test/test/big:1 >/dev/null ||
	fail "podman pull of the $LAYERS-layer image failed"
before429=$(n429)
beforeref=$(nrefused)

step "pushes of the $LAYERS-layer image over 4443, each to a new repository (every blob checked and uploaded)"
th ctr images tag registry.test/test/big:1 registry.test:4443/test/ctr:1 >/dev/null
client --timeout "$CLIENT_TIMEOUT" "ctr push over 4443" ctr images push --hosts-dir "$HOSTS_DIR" registry.test:4443/test/ctr:1
client --timeout "$CLIENT_TIMEOUT" "podman push over 4443" podman --runtime=runc push --signature-policy "$ACCEPT_ANY" \
	registry.test/test/big:1 registry.test:4443/test/podman:1

step "docker (Debian's docker.io) in the test host"
if ! command -v dockerd >/dev/null; then
	step "SKIP docker: docker.io is not installed on this machine (INSTALL.md, \"Per-client limits\")"
else
	th /bin/sh -c "mkdir -p /etc/docker/certs.d/registry.test:4443 /etc/docker/certs.d/registry.test
		cp $CA /etc/docker/certs.d/registry.test/ca.crt; cp $CA /etc/docker/certs.d/registry.test:4443/ca.crt
		cp $CI_CERT /etc/docker/certs.d/registry.test:4443/client.cert
		cp $CI_KEY /etc/docker/certs.d/registry.test:4443/client.key"
	th systemd-run --unit rvtest-dockerd -p StandardOutput=journal dockerd --iptables=false --ip6tables=false \
		--bridge=none --storage-driver=vfs --containerd=/run/containerd/containerd.sock >/dev/null ||
		fail "cannot start dockerd"
	on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u rvtest-dockerd --no-pager -n 40
	docker_up() { th docker info >/dev/null 2>&1; }
	if ! wait_until 30 docker_up; then
		why=$(th journalctl -u rvtest-dockerd --no-pager -o cat -n 3 | tr '\n' ' ')
		step "SKIP docker: dockerd does not start in the test host: $why"
	else
		client --timeout "$CLIENT_TIMEOUT" "docker pull over 443" docker pull -q registry.test/test/big:1
		th docker tag registry.test/test/big:1 registry.test:4443/test/docker:1
		client --timeout "$CLIENT_TIMEOUT" "docker push over 4443" docker push -q registry.test:4443/test/docker:1
	fi
	th systemctl stop rvtest-dockerd 2>/dev/null || true
fi

log=$(access_log)
step "access log so far: $(grep -c . <<<"$log") requests; by status: $(grep -o ' status=[0-9]*' <<<"$log" | sort | uniq -c | xargs)"
((${#FAILED[@]} == 0)) || fail "clients failed under the default limits: ${FAILED[*]}"
assert_eq "$(($(n429) - before429))" 0 "429 answers to the pushing clients"
assert_eq "$(($(nrefused) - beforeref))" 0 "connections of the pushing clients refused by conn_per_ip"

SRCS=()
for i in $(seq 1 12); do SRCS+=("127.0.1.$i"); done
step "a flood from ${#SRCS[@]} addresses (16 connections each, a new connection per request), pulls from 192.0.2.10 meanwhile"
READY=/run/rvtest-flood-ready
STOP=/run/rvtest-flood-stop
th rm -f "$READY" "$STOP" /run/rvtest-flood.out
t0=$(date +%s)
th systemd-run --unit rvtest-flood -p StandardOutput=file:/run/rvtest-flood.out \
	"${FLOOD[@]}" many 127.0.0.1 443 "$CA" "${SRCS[@]}" -- 16 "$READY" "$STOP" >/dev/null ||
	fail "cannot start the flood"
on_exit th touch "$STOP"
flood_refused() { th test -e "$READY"; }
wait_until 120 flood_refused || fail "the flood from ${#SRCS[@]} addresses was not refused at every address"
step "every flooding address has been refused; now the pulls"
th ctr images rm --sync registry.test/test/big:1 registry.test:4443/test/ctr:1 >/dev/null
client --timeout "$CLIENT_TIMEOUT" "ctr pull over 443 during the flood" ctr images pull --snapshotter native --hosts-dir "$HOSTS_DIR" \
	registry.test/test/ctr:1
client --timeout "$CLIENT_TIMEOUT" "skopeo pull over 443 during the flood" skopeo --policy "$ACCEPT_ANY" copy \
	docker://registry.test/test/podman:1 oci:/var/tmp/pulled:1
th systemctl is-active -q rvtest-flood || fail "the flood ended before the pulls did"
th touch "$STOP"
flood_done() { ! th systemctl is-active -q rvtest-flood; }
wait_until 60 flood_done || fail "the flood did not stop"
elapsed=$(($(date +%s) - t0 + 1))
out=$(th cat /run/rvtest-flood.out)
step "flood over ~${elapsed} s: $out"
((${#FAILED[@]} == 0)) || fail "clients failed during the flood: ${FAILED[*]}"
# Each address: at most its burst (plus one) and its rate over the flood's
# length.
/usr/bin/python3 - "$out" "$BURST" "$RATE" "$elapsed" "${SRCS[@]}" <<-'EOF' || fail "the flood was not bounded per address"
	import json, sys
	out, burst, rate, elapsed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
	bound, bad = burst + 1 + rate * elapsed, 0
	for src in sys.argv[5:]:
	    st = out[src]["status"]
	    if st.get("429", 0) == 0 or st.get("200", 0) > bound:
	        print(f"# {src}: {st} (served at most {bound} expected, and some 429)")
	        bad += 1
	sys.exit(1 if bad else 0)
EOF
step "the pulls from 192.0.2.10 drew no 429"
n=$(access_log | grep ' client=192\.0\.2\.10[: ]' | grep -c ' status=429' || true)
assert_eq "$n" 0 "429 answers to 192.0.2.10"
