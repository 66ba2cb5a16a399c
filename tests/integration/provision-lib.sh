# shellcheck shell=bash
# Helpers for the provisioning tests, sourced after lib.sh.

CONF=/etc/regvisor/regvisor.conf
SOCK=/run/regvisor/registry/registry.sock
# The PKI provision makes (common/config/paths.h), and its CA certificate.
C=/etc/registry/certs
CA=$C/ca/ca.crt
# The client certificate "ci" (write_config asks for it), and curl's options
# for a push over 4443 with it.
CI_CERT=$C/clients/ci.crt
CI_KEY=$C/private/clients/ci.key
MTLS=(--cert "$CI_CERT" --key "$CI_KEY")
# The signing tests' key: the signer's GNUPGHOME (on the host that signs) and
# its public key on the registry host, as [signing] keys.
SIGNER=/root/gnupg-signer
KEYS=/etc/regvisor/signers.asc
# The signing tests' repositories through 4443 (pushes) and 443 (pulls), and
# the clients' default lookaside, where no signature may land.
PUSH=registry.test:4443/test
PULL=registry.test/test
LOCAL_LOOKASIDE=/var/lib/containers/sigstore

# ON=thc (or ths) before write_config, rv_conf or provision: on that host
# instead of the registry host (th). SERVER_NAMES: [tls] server_names.
#
# write_config [EXTRA INI LINES]: a configuration pinning the locally built
# registry image by digest, loaded from its OCI archive (no internet here).
# The tests push with the client certificate "ci", asked for here through
# [tls] initial_client (provision makes none by default); INITIAL_CLIENT=
# (empty) leaves it out.
write_config() {
	local client=${INITIAL_CLIENT-ci}
	_th_write_on "${ON:-th}" "$CONF" 0644 <<-EOF
		[tls]
		server_names = ${SERVER_NAMES:-registry.test, 127.0.0.1}
		${client:+initial_client = $client}
		[registry]
		image = $REGISTRY_REFERENCE
		image_archive = $REGISTRY_ARCHIVE
		$*
	EOF
}

# rv_conf VERB [ARGS]: run regvisor VERB --config $CONF in the guest, keep
# its output in $OUT (and show it), and return its status.
rv_conf() {
	local rc=0 verb=$1
	shift
	OUT=$("${ON:-th}" "$REGVISOR" "$verb" --config "$CONF" "$@" 2>&1) || rc=$?
	printf '%s\n' "$OUT" | sed 's/^/#   /'
	return $rc
}

# provision [ARGS]: regvisor provision, as rv_conf.
provision() {
	rv_conf provision "$@"
}

# stat_of PATH: "owner:group mode" inside the guest.
stat_of() {
	th stat -c '%U:%G %a' "$1"
}

registry_answers() {
	th curl -sf -m 2 -o /dev/null --unix-socket "$SOCK" http://localhost/v2/
}

# svc_podman ARGS...: podman as the service user exactly as its unit runs it
# (state in /var/tmp/podman-UID, configuration from its XDG_CONFIG_HOME).
svc_podman() {
	local uid
	uid=$(th id -u ci-svc)
	as_user ci-svc env XDG_CONFIG_HOME="/var/tmp/podman-$uid/xdg-config" \
		XDG_DATA_HOME="/var/tmp/podman-$uid/xdg-data" \
		podman --root "/var/tmp/podman-$uid/root" --runroot "/run/user/$uid/podman-run" \
		--tmpdir "/var/tmp/podman-$uid/tmp" --events-backend=file "$@"
}

# install_run_unit: install this build as /usr/local/bin/regvisor in the
# guest (the unit's PrivateTmp would hide a checkout below /tmp) and
# units/regvisor.service unchanged but for the test configuration.
install_run_unit() {
	local on=${ON:-th}
	"$on" install -m 0755 "$REGVISOR" /usr/local/bin/regvisor
	sed -e "s|--config /etc/regvisor/regvisor.conf|--config $CONF|" "$REPO/units/regvisor.service" |
		_th_write_on "$on" /etc/systemd/system/regvisor.service
	"$on" systemctl daemon-reload
}

# run_unit_up: install_run_unit, registry.test on loopback, start
# regvisor.service and wait until 443 answers; defines proxy_up.
run_unit_up() {
	th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'
	start_run_unit
	proxy_up() {
		th curl -s -m 10 --cacert "$CA" -f -o /dev/null https://registry.test/v2/
	}
	wait_until 30 proxy_up || fail "the proxy does not answer on 443"
}

# client_certs_d: podman's and skopeo's certs.d for registry.test: the CA
# for 443, the CA and the client certificate "ci" for :4443.
client_certs_d() {
	th /bin/sh -c "set -e; C=/etc/registry/certs
		mkdir -p /etc/containers/certs.d/registry.test:4443 /etc/containers/certs.d/registry.test
		cp \$C/ca/ca.crt /etc/containers/certs.d/registry.test:4443/ca.crt
		cp \$C/clients/ci.crt /etc/containers/certs.d/registry.test:4443/client.cert
		cp \$C/private/clients/ci.key /etc/containers/certs.d/registry.test:4443/client.key
		cp \$C/ca/ca.crt /etc/containers/certs.d/registry.test/ca.crt"
}

# A proxy alone against a test upstream: the tree `provision --root` stages,
# the upstream's socket and the file it counts requests in.
S=/var/tmp/stage
UP=/run/rvtest/up.sock
COUNT=/run/rvtest/count

# staged_proxy_config FILE [INI]: the two users and a certificate tree staged
# below $S by `provision --root` (nothing else on the host changes); FILE is
# the test configuration with the registry on the unix socket $UP, and INI
# (lines of printf's format) appended.
staged_proxy_config() {
	th useradd --system --user-group --create-home ci-svc
	th useradd --system --user-group --no-create-home registry-proxy
	write_config
	th mkdir -p "$S"
	provision --root "$S" >/dev/null || fail "provision --root failed"
	th /bin/sh -c "sed 's#^\[registry\]#[registry]\nlisten = unix:$UP#' $CONF > $1
		printf '${2-}' >> $1"
}

# counting_upstream CMD...: the test upstream CMD (it listens on $UP and
# counts into $COUNT) as the transient unit rvtest-upstream, its output in
# /run/rvtest/upstream.log (dumped on failure); waits for its socket.
counting_upstream() {
	on_failure th cat /run/rvtest/upstream.log
	th mkdir -p /run/rvtest
	th chmod 0755 /run/rvtest
	th systemd-run --unit=rvtest-upstream --property=StandardOutput=file:/run/rvtest/upstream.log \
		--property=StandardError=file:/run/rvtest/upstream.log "$@" >/dev/null
	wait_until 10 th test -S "$UP" || fail "the test upstream did not start"
}

# registry_crash_loop: break the registry's configuration (the good one kept
# as /etc/regvisor/registry.yml.good) and kill its container, so that every
# restart fails; waits (60 s at most) until the supervisor logs that it
# gave up.
registry_crash_loop() {
	th cp -p /etc/regvisor/registry.yml /etc/regvisor/registry.yml.good
	th sh -c 'echo "version: [not yaml" > /etc/regvisor/registry.yml'
	th kill -KILL "$(svc_podman inspect --format '{{.State.Pid}}' regvisor-registry)"
	gave_up() {
		journal_events gave-up | grep -q "giving up"
	}
	wait_until 60 gave_up || fail "the supervisor did not give up"
}

# registry_container_id: the running registry container's ID ("" if none).
registry_container_id() {
	svc_podman ps --filter name=regvisor-registry --format '{{.ID}}' 2>/dev/null
}

# journal_events EVENT: the MESSAGEs regvisor logged with REGVISOR_EVENT=EVENT.
journal_events() {
	th journalctl --no-pager -o cat REGVISOR_EVENT="$1"
}

# stack_up: provision from $CONF, start the registry's user unit, wait until
# it answers on its socket, and resolve registry.test to loopback. On
# failure, dumps the registry's journal.
stack_up() {
	on_failure journalctl --no-pager -n 60 _SYSTEMD_USER_UNIT=regvisor-registry.service
	provision >/dev/null || fail "provision failed: $OUT"
	user_systemctl ci-svc start regvisor-registry.service || fail "registry start failed"
	wait_until 60 registry_answers || fail "registry does not answer on $SOCK"
	th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'
}

# standalone_proxy UNIT: stack_up, then run `regvisor proxy` alone as the
# transient unit UNIT (no supervisor to restart what a test breaks),
# reachable as registry.test; defines proxy_up (a GET /v2/ on 443 answered).
standalone_proxy() {
	stack_up
	th systemd-run --unit="$1" "$REGVISOR" proxy --config "$CONF" >/dev/null
	proxy_up() {
		th curl -s -m 20 --cacert /etc/registry/certs/ca/ca.crt -f -o /dev/null https://registry.test/v2/
	}
	wait_until 20 proxy_up || fail "the proxy does not answer on 443"
}

# registry_blob REPO FILE: FILE (in the guest) as a blob of REPO, put
# straight into the registry through its socket; prints its digest.
registry_blob() {
	local digest location code
	digest=sha256:$(th sha256sum "$2" | cut -d' ' -f1)
	location=$(th curl -sf -m 5 -X POST -D - -o /dev/null --unix-socket "$SOCK" \
		"http://localhost/v2/$1/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //Ip')
	[[ $location == *\?* ]] || fail "unexpected upload location: $location"
	code=$(th curl -s -m 20 -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$2" \
		-H 'Content-Type: application/octet-stream' --unix-socket "$SOCK" "http://localhost$location&digest=$digest")
	assert_eq "$code" 201 "blob upload to $1"
	echo "$digest"
}

# Signing: GPG keys; and a file:// lookaside for a registry without the
# signature extension (no test uses it since `regvisor run` serves the extension).
SIGSTORE=/var/lib/regvisor-test/sigstore

# gen_key RUNNER HOME UID: in the host RUNNER runs on (th or thc), a new
# ed25519 signing key without passphrase in GNUPGHOME=HOME; prints its
# fingerprint, read from --with-colons (gpg's machine format), never from
# its human output.
gen_key() {
	"$1" /bin/sh -c 'set -e; export GNUPGHOME="$1"; mkdir -p -m 0700 "$GNUPGHOME"
		gpg --batch --passphrase "" --quick-gen-key "$2" ed25519 sign never 2>/dev/null
		gpg --with-colons --list-secret-keys "$2" 2>/dev/null | awk -F: '\''$1 == "fpr" { print $10; exit }'\''' \
		_ "$2" "$3"
}

# signer_key RUNNER UID: a new signing key (gen_key) in GNUPGHOME=$SIGNER on
# the host RUNNER runs on (th or thc); its fingerprint in $fpr, its public
# key written to $KEYS on the registry host (for [signing] keys).
signer_key() {
	fpr=$(gen_key "$1" "$SIGNER" "$2")
	[[ $fpr =~ ^[0-9A-F]{40}$ ]] || fail "fingerprint: '$fpr'"
	"$1" /bin/sh -c "GNUPGHOME=$SIGNER gpg --armor --export $fpr" | th_write "$KEYS"
}

# start_run_unit: install_run_unit, then start regvisor.service (it does not
# wait for the proxy: each test knows from where it can reach it).
start_run_unit() {
	install_run_unit
	"${ON:-th}" systemctl start regvisor.service || fail "regvisor.service did not start"
}

# lookaside RUNNER: in the host RUNNER runs on (th or thc), the directory
# $SIGSTORE and the registries.d entries that store signatures pushed
# through registry.test:4443 there and read them for pulls through
# registry.test (its layout is REPO@sha256=HEX/signature-N, without the
# host, so one directory serves both names).
lookaside() {
	"$1" mkdir -p "$SIGSTORE" /etc/containers/registries.d
	"$1" /bin/sh -c 'cat > /etc/containers/registries.d/zz-test-lookaside.yaml' <<-EOF
		docker:
		  registry.test:4443:
		    lookaside-staging: file://$SIGSTORE
		    lookaside: file://$SIGSTORE
		  registry.test:
		    lookaside: file://$SIGSTORE
	EOF
}

# podman_push_signed REF: the test image loaded into the registry host's
# podman and pushed to REF (over 4443) with `podman push --sign-by $fpr`
# (the signer_key of th), leaving no local image behind.
podman_push_signed() {
	local out
	th podman load -q -i "$REGISTRY_ARCHIVE" >/dev/null 2>&1 || fail "podman load failed"
	th podman tag "$REGISTRY_REFERENCE" localhost/local:1
	out=$(th env GNUPGHOME="$SIGNER" podman push -q --sign-by "$fpr" localhost/local:1 "$1" 2>&1) ||
		fail "podman push --sign-by failed: $out"
	th podman rmi -f localhost/local:1 "$REGISTRY_REFERENCE" >/dev/null 2>&1 || true
}

# sigs_443 REPO DIGEST: how many signatures an anonymous GET of the
# signature extension lists on 443.
sigs_443() {
	th curl -s -m 10 --cacert "$CA" -f "https://registry.test/extensions/v2/$1/signatures/$2" | jq '.signatures | length'
}

# misplaced_signature REPO SIGNED_DIGEST: the test image pushed as
# $PUSH/REPO:1 in Docker schema 2 (a digest other than SIGNED_DIGEST, that
# of $PULL/signed:1), and a
# true signature by $fpr for $PUSH/REPO:1 made of signed:1's manifest:
# only the digest is wrong. Sets misplaced_digest (REPO:1's digest),
# misplaced_sig (the signature, base64) and misplaced_body (the extension's
# JSON for a PUT of it).
misplaced_signature() {
	local out
	out=$(th skopeo copy -q --format v2s2 "oci-archive:$REGISTRY_ARCHIVE" "docker://$PUSH/$1:1" 2>&1) ||
		fail "push: $out"
	misplaced_digest=$(th skopeo inspect --no-tags --format '{{.Digest}}' "docker://$PULL/$1:1")
	[[ $misplaced_digest != "$2" ]] ||
		fail "$1:1 has the digest of signed:1"
	th sh -c "skopeo inspect --raw docker://$PULL/signed:1 > /var/tmp/signed.manifest"
	th env GNUPGHOME="$SIGNER" skopeo standalone-sign -o /var/tmp/other-digest.sig /var/tmp/signed.manifest \
		"$PUSH/$1:1" "$fpr" || fail "skopeo standalone-sign failed"
	misplaced_sig=$(th base64 -w0 /var/tmp/other-digest.sig)
	misplaced_body='{"schemaVersion":2,"name":"'$misplaced_digest'@f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0","type":"atomic","content":"'$misplaced_sig'"}'
}

# pull_refused_misplaced REF: podman pull of REF, whose only signature is
# for another digest, fails: having seen that signature (not for want of
# one).
pull_refused_misplaced() {
	local out
	out=$(th podman pull -q "$1" 2>&1) && fail "podman pulled an image whose signature is for another digest: $out"
	case $out in *"no signature exists"*) fail "podman did not see the misplaced signature: $out" ;; esac
	echo "# podman refused it: $out"
}

# census_counts TAGS SIGNED: /metrics of regvisor run counts TAGS image
# tags, SIGNED of them signed and the rest unsigned (for wait_until).
census_counts() {
	local m
	m=$(th curl -sf -m 3 http://127.0.0.1:9443/metrics | /usr/bin/python3 "$REPO/tests/integration/prom-parse.py") ||
		return 1
	[[ $m == *"regvisor_image_tags{} $1"* && $m == *"regvisor_image_tags_signed{} $2"* &&
		$m == *"regvisor_image_tags_unsigned{} $(($1 - $2))"* ]]
}

# Real registry clients against the full stack (67, 85). FAILED: the names
# of the clients that failed so far; FLOOD: the flood of connections
# (67-flood.py).
FAILED=()
FLOOD=(/usr/bin/python3 "$REPO/tests/integration/67-flood.py")

# access_log: the proxy's access log lines so far (regvisor.service).
access_log() {
	th journalctl -u regvisor --no-pager -o cat | grep 'port=' | grep ' status=' || true
}
# n429: 429 lines in the access log so far.
n429() {
	access_log | grep -c ' status=429' || true
}
# nrefused: connections refused over conn_per_ip so far.
nrefused() {
	th journalctl -u regvisor --no-pager -o cat | grep -c 'refused: more than conn_per_ip' || true
}

# client [--timeout SECONDS] NAME CMD...: run the client CMD in the guest
# (for at most SECONDS when given); a failure is recorded in FAILED, not
# fatal, so that every client's outcome is reported.
client() {
	local limit=() name out
	if [[ $1 == --timeout ]]; then
		limit=(timeout "$2")
		shift 2
	fi
	name=$1
	shift
	if out=$(th "${limit[@]}" "$@" 2>&1); then
		step "$name: ok (429 in the access log so far: $(n429))"
	else
		printf '%s\n' "$out" | tail -n 5 | sed 's/^/#   /'
		step "$name: FAILED (429 in the access log so far: $(n429))"
		FAILED+=("$name")
	fi
}

# ctr_hosts_443 DIR: containerd's hosts.toml below DIR (ctr --hosts-dir
# DIR) for pulls from registry.test over 443, trusting the CA.
ctr_hosts_443() {
	th /bin/sh -c "set -e; mkdir -p $1/registry.test
		printf '[host.\"https://registry.test:443\"]\n  ca = \"%s\"\n  capabilities = [\"pull\", \"resolve\"]\n' $CA \
			> $1/registry.test/hosts.toml"
}

# clients_stack_up [INI]: skip without containerd's ctr, boot, provision
# write_config's configuration (INI appended) and start the full stack
# (run_unit_up); the proxy's journal is dumped on failure.
clients_stack_up() {
	command -v ctr >/dev/null || skip "no ctr (Debian's containerd package)"
	th_boot
	write_config "$@"
	on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor --no-pager -n 60
	provision >/dev/null || fail "provision failed: $OUT"
	run_unit_up
}

# clients_image POLICY LAYERS: an OCI layout /var/tmp/big:1 of LAYERS small
# layers (the number of requests is what the limits see, not bytes), the
# image policy POLICY that accepts anything, and containerd started.
clients_image() {
	th_write "$1" <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
	th python3 "$REPO/tests/integration/50-proxy-oci.py" /var/tmp/big "$2" >/dev/null
	th systemctl start containerd.service || fail "containerd did not start"
}

# signing_config [INI...]: write_config trusting the keys in $KEYS ([signing]
# keys, then each INI line in [signing]), with push and pull rates that the
# clients' bursts of requests stay under.
signing_config() {
	local extra=""
	(($#)) && extra=$(printf '%s\n' "$@")
	write_config "[signing]
keys = $KEYS
$extra
[push]
rate = 200r/s
burst = 200
[pull]
rate = 200r/s
burst = 200"
}

# signing_provision [INI...]: a signing key of the registry host's
# (signer_key th, its fingerprint in $fpr) and provision with signing_config.
signing_provision() {
	signer_key th "CI signer <ci@registry.test>"
	signing_config "$@"
	provision >/dev/null || fail "provision failed: $OUT"
}

# sig_put PORT REPO DIGEST BODY: the HTTP status of a PUT of the signature
# extension's JSON BODY for REPO@DIGEST on PORT (443 anonymous, 4443 with
# the client certificate "ci").
sig_put() {
	local tls=()
	[[ $1 == 4443 ]] && tls=("${MTLS[@]}")
	th curl -s -m 30 --cacert "$CA" "${tls[@]}" -o /dev/null -w '%{http_code}' -X PUT \
		-H 'Content-Type: application/json' --data-binary "$4" \
		"https://registry.test:$1/extensions/v2/$2/signatures/$3"
}

# signatures_health_warns: `regvisor health --check image-signatures` exits
# 1 (WARNING); its output in $out.
signatures_health_warns() {
	local rc=0
	out=$(th "$REGVISOR" health --config "$CONF" --check image-signatures 2>&1) || rc=$?
	assert_eq "$rc" 1 "health --check image-signatures exit code (WARNING): $out"
}
