#!/usr/bin/env bash
# regvisor provision --adopt on a host set up by the install guide
# (../shared/seeds/rootless-registry-install-guide.txt), scripted with the
# guide's own steps, offline: the locally built registry image stands in for
# the pulled one. An image is pushed through the guide's nginx with the
# guide's client certificate; a plain provision refuses the host; --adopt
# refuses a half-installed or inconsistent PKI, a key type and a service
# user that would not keep it; --dry-run shows the plan and changes
# nothing; the adoption keeps the CAs, keys, client certificate and
# storage, replaces the guide's units and disables the nginx site on 443
# (another site is untouched); then the same client certificate pushes
# through regvisor on 4443 and the image pushed before pulls over 443 with
# the same digest; a second --adopt and a plain provision change nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

th_boot
on_failure "$TEST_HOST" exec "$TH_DIR" journalctl -u regvisor -u registry-proxy --no-pager -n 60
GUIDE_USER=cirunner
ACCEPT_ANY=/var/lib/regvisor-test/accept-anything.json
# The guide's client certificate and key (its section 3.1).
GUIDE_CERT=$C/clients/client.crt
GUIDE_KEY=$C/private/client.key

# row STATE NAME TEXT: $OUT has the report line of row NAME with STATE and
# a detail starting with TEXT (an extended regular expression).
row() {
	grep -Eq "^$1 +$2 +$3" <<<"$OUT" || fail "no line '$1 $2 $3' in: $OUT"
}

# adopt_config [SERVICE_USER [KEY_TYPE]]: the test configuration for the
# guide's host (write_config's, with the guide's service user and its
# RSA-4096 keys; no initial client: the guide made one); an empty argument
# leaves the default.
adopt_config() {
	th_write "$CONF" 0644 <<-EOF
		[host]
		${1:+service_user = $1}
		[tls]
		server_names = registry.test, 127.0.0.1
		${2:+key_type = $2}
		[registry]
		image = $REGISTRY_REFERENCE
		image_archive = $REGISTRY_ARCHIVE
	EOF
}

step "the guide, step 1-2: users, linger, podman state outside \$HOME, directories"
th useradd --create-home --shell /bin/bash "$GUIDE_USER"
th usermod --add-subuids 100000-165535 "$GUIDE_USER"
th usermod --add-subgids 100000-165535 "$GUIDE_USER"
th_linger "$GUIDE_USER"
uid=$(th id -u "$GUIDE_USER")
th mkdir -p /var/tmp/podman-"$uid"/{root,run,tmp,xdg-data,xdg-config}
th chown -R "$GUIDE_USER:$GUIDE_USER" /var/tmp/podman-"$uid"
th chmod 750 /var/tmp/podman-"$uid"
th useradd -r -s /bin/false registry-proxy
th mkdir -p $C/{private,clients,ca,requests}
th chown -R root:root $C
th chmod 750 $C/private
th chmod 755 $C/{clients,ca,requests}
th mkdir -p /var/lib/registry
th chown "$GUIDE_USER:$GUIDE_USER" /var/lib/registry
th chmod 750 /var/lib/registry
th install -d -o registry-proxy -g registry-proxy /var/log/registry-proxy

# guide_podman ARGS: podman as the guide runs it for its user.
guide_podman() {
	as_user "$GUIDE_USER" env PODMAN_ROOT="/var/tmp/podman-$uid/root" PODMAN_RUNROOT="/run/user/$uid/podman-run" \
		PODMAN_TMPDIR="/var/tmp/podman-$uid/tmp" XDG_DATA_HOME="/var/tmp/podman-$uid/xdg-data" \
		XDG_CONFIG_HOME="/var/tmp/podman-$uid/xdg-config" \
		podman --root="/var/tmp/podman-$uid/root" --runroot="/run/user/$uid/podman-run" \
		--tmpdir="/var/tmp/podman-$uid/tmp" --events-backend=file "$@"
}
# The test host (nspawn) forbids what podman asks by default: a session
# keyring for runc, and more open files than the host's hard limit; the
# guide's user gets what regvisor writes for its own (render.c), nothing
# the guide itself would notice.
th install -d -o "$GUIDE_USER" -g "$GUIDE_USER" "/var/tmp/podman-$uid/xdg-config/containers"
th_write "/var/tmp/podman-$uid/xdg-config/containers/containers.conf" <<'EOF'
[containers]
keyring = false
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
th chown "$GUIDE_USER:$GUIDE_USER" "/var/tmp/podman-$uid/xdg-config/containers/containers.conf"
# Offline: the image the guide pulls is loaded from the local archive.
guide_podman load -q -i "$REGISTRY_ARCHIVE" >/dev/null || fail "podman load as $GUIDE_USER failed"

step "the guide, 2.4-2.5: registry.service user unit, registry-proxy.service, /etc/registry/nginx.conf"
# The guide's unit as printed, but for the image reference.
th_write /etc/systemd/user/registry.service <<EOF
[Unit]
Description=Rootless Docker Registry v2 (loopback only)
After=network-online.target
Wants=network-online.target
[Service]
Environment=PODMAN_ROOT=/var/tmp/podman-%U/root
Environment=PODMAN_RUNROOT=/run/user/%U/podman-run
Environment=PODMAN_TMPDIR=/var/tmp/podman-%U/tmp
Environment=XDG_DATA_HOME=/var/tmp/podman-%U/xdg-data
Environment=XDG_CONFIG_HOME=/var/tmp/podman-%U/xdg-config
ExecStart=/usr/bin/podman --root=\${PODMAN_ROOT} --runroot=\${PODMAN_RUNROOT} --tmpdir=\${PODMAN_TMPDIR} --events-backend=file \\
run --rm --name registry \\
-p 127.0.0.1:5000:5000 \\
--read-only --tmpfs /tmp:size=64m --cap-drop=ALL --security-opt=no-new-privileges \\
-e REGISTRY_HTTP_ADDR=0.0.0.0:5000 \\
-e REGISTRY_STORAGE_DELETE_ENABLED=false \\
-v /var/lib/registry:/var/lib/registry:z \\
$REGISTRY_REFERENCE
ExecStop=/usr/bin/podman --root=\${PODMAN_ROOT} --runroot=\${PODMAN_RUNROOT} --tmpdir=\${PODMAN_TMPDIR} stop -t 10 registry
Restart=on-failure
MemoryMax=1G
CPUQuota=100%
[Install]
WantedBy=default.target
EOF
th_write /etc/systemd/system/registry-proxy.service <<'EOF'
[Unit]
Description=TLS proxy for Docker Registry (443 pulls / 4443 pushes)
After=network-online.target
Wants=network-online.target
[Service]
User=registry-proxy
Group=registry-proxy
UMask=0077
RuntimeDirectory=registry-proxy
LogsDirectory=registry-proxy
ReadWritePaths=/run/registry-proxy /var/log/registry-proxy
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
LimitNOFILE=65536
ExecStartPre=/usr/sbin/nginx -t -c /etc/registry/nginx.conf
ExecStart=/usr/sbin/nginx -g 'daemon off;' -c /etc/registry/nginx.conf
Restart=on-failure
[Install]
WantedBy=multi-user.target
EOF
# As printed but for what nginx refuses (`nginx -t`), so that the guide's
# registry-proxy.service never starts as printed: access_log above http {}
# (moved in), `return 403` in limit_except (not allowed there: `deny all`,
# which answers 403 too), and ssl_ciphers continued with backslashes (nginx
# keeps them in the string: one line). The lines both servers share (the
# guide prints them in each) are included from one file each.
th_write /etc/registry/nginx-tls.conf <<'EOF'
ssl_certificate /etc/registry/certs/registry.crt;
ssl_certificate_key /etc/registry/certs/private/registry.key;
ssl_protocols TLSv1.2 TLSv1.3;
add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
EOF
th_write /etc/registry/nginx-to-registry.conf <<'EOF'
limit_conn perip 20;
proxy_pass http://reg;
proxy_set_header X-Forwarded-Proto https;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
add_header Docker-Distribution-Api-Version "registry/2.0" always;
EOF
th_write /etc/registry/nginx.conf <<'EOF'
worker_processes auto;
events { worker_connections 1024; }
pid /run/registry-proxy/nginx.pid;
error_log /var/log/registry-proxy/error.log;
http {
access_log /var/log/registry-proxy/access.log;
server_tokens off;
limit_req_zone $binary_remote_addr zone=reg_read:10m rate=10r/s;
limit_req_zone $binary_remote_addr zone=reg_write:10m rate=5r/s;
limit_conn_zone $binary_remote_addr zone=perip:10m;
client_max_body_size 2g;
ssl_ciphers 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256';
ssl_ecdh_curve X25519:P-256;
ssl_prefer_server_ciphers on;
ssl_verify_depth 2;
ssl_session_cache shared:SSL:10m;
ssl_session_timeout 10m;
proxy_http_version 1.1;
proxy_set_header Connection "";
proxy_request_buffering off;
proxy_read_timeout 300s;
proxy_temp_path /run/registry-proxy/proxy_temp;
client_body_temp_path /run/registry-proxy/client_temp;
fastcgi_temp_path /run/registry-proxy/fastcgi_temp;
uwsgi_temp_path /run/registry-proxy/uwsgi_temp;
scgi_temp_path /run/registry-proxy/scgi_temp;
upstream reg { server 127.0.0.1:5000; }
# 443: unauthenticated pulls only
server {
listen 443 ssl http2;
include /etc/registry/nginx-tls.conf;
location = /v2/_catalog { return 403; }
location ~ ^/v2/.+/tags/list { return 403; }
location /v2/ {
limit_req zone=reg_read burst=20 nodelay;
proxy_set_header Host $host;
include /etc/registry/nginx-to-registry.conf;
limit_except GET HEAD { deny all; }
}
}
# 4443: authenticated pushes only (mTLS)
server {
listen 4443 ssl http2;
include /etc/registry/nginx-tls.conf;
ssl_client_certificate /etc/registry/certs/clients/ca.crt;
ssl_verify_client on;
location /v2/ {
limit_req zone=reg_write burst=10;
proxy_set_header Host $host:$server_port;
include /etc/registry/nginx-to-registry.conf;
}
}
}
EOF

step "the guide, step 3: its openssl CLI PKI (RSA-4096), as printed"
# The project's openssl.conf the guide copies into requests/: the server's
# names as a SAN (req_ext).
th_write $C/requests/openssl.conf <<'EOF'
[req]
prompt = no
distinguished_name = dn
req_extensions = req_ext
[dn]
O = Example
CN = registry.test
[req_ext]
subjectAltName = DNS:registry.test, IP:127.0.0.1
EOF
th /bin/sh -c 'set -e; cd /etc/registry/certs
	openssl genrsa -out private/ca.key 4096 2>/dev/null
	openssl req -new -x509 -key private/ca.key -out ca/ca.crt -days 365 -subj "/O=Example/CN=app-Registry-CA"
	openssl genrsa -out private/registry.key 4096 2>/dev/null
	openssl req -new -key private/registry.key -out requests/registry.csr -config requests/openssl.conf
	openssl x509 -req -in requests/registry.csr -CA ca/ca.crt -CAkey private/ca.key -CAcreateserial \
		-out registry.crt -days 365 -extensions req_ext -extfile requests/openssl.conf 2>/dev/null
	openssl genrsa -out private/client-ca.key 4096 2>/dev/null
	openssl req -new -x509 -key private/client-ca.key -out clients/ca.crt -days 365 -subj "/O=Example/CN=app-Client-CA"
	openssl genrsa -out private/client.key 4096 2>/dev/null
	openssl req -new -key private/client.key -out requests/client.csr -subj "/O=Example/CN=app-CI-Client"
	openssl x509 -req -in requests/client.csr -CA clients/ca.crt -CAkey private/client-ca.key -CAcreateserial \
		-out clients/client.crt -days 365 2>/dev/null
	chmod 600 private/ca.key private/client-ca.key private/client.key
	chmod 644 ca/ca.crt registry.crt clients/client.crt
	chmod 644 requests/registry.csr requests/client.csr requests/openssl.conf
	chgrp registry-proxy private/registry.key clients/ca.crt
	chmod 640 private/registry.key clients/ca.crt
	chgrp registry-proxy private
	chmod 750 private
	chmod 755 /etc/registry/certs' || fail "the guide's PKI commands failed"

step "the guide, 4.2: services enabled and started; an nginx site on 443 and an unrelated one"
user_systemctl "$GUIDE_USER" daemon-reload
user_systemctl "$GUIDE_USER" enable --now registry.service || fail "the guide's registry.service did not start"
th systemctl enable --now registry-proxy.service || fail "registry-proxy.service did not start"
# A site of the article's kind on 443 (nginx.service is masked on the test
# host, so it only holds the port on paper), and one that is not ours.
th mkdir -p /etc/nginx/sites-available /etc/nginx/sites-enabled /var/www/other
th_write /etc/nginx/sites-available/registry-mtls <<'EOF'
server {
    listen 443 ssl; # mTLS
    listen [::]:443 ssl;
    server_name registry.test;
    ssl_certificate /etc/registry/certs/registry.crt;
    ssl_certificate_key /etc/registry/certs/private/registry.key;
    location / { proxy_pass http://127.0.0.1:5000; }
}
EOF
th ln -sf ../sites-available/registry-mtls /etc/nginx/sites-enabled/registry-mtls
th_write /etc/nginx/sites-available/other-site <<<'server { listen 8080; root /var/www/other; } # not 443'
th ln -sf ../sites-available/other-site /etc/nginx/sites-enabled/other-site
th sh -c 'grep -q registry.test /etc/hosts || echo "127.0.0.1 registry.test" >> /etc/hosts'

step "push through the guide's nginx on 4443 with the guide's client certificate, pull over 443"
# The guide's client trust configuration: its CA, client.crt and client.key.
th /bin/sh -c "set -e; mkdir -p /etc/containers/certs.d/registry.test:4443 /etc/containers/certs.d/registry.test
	cp $C/ca/ca.crt /etc/containers/certs.d/registry.test:4443/ca.crt
	cp $GUIDE_CERT /etc/containers/certs.d/registry.test:4443/client.cert
	cp $GUIDE_KEY /etc/containers/certs.d/registry.test:4443/client.key
	cp $C/ca/ca.crt /etc/containers/certs.d/registry.test/ca.crt"
th_write "$ACCEPT_ANY" <<<'{"default":[{"type":"insecureAcceptAnything"}]}'
guide_up() {
	th curl -s -m 5 --cacert "$C/ca/ca.crt" -f -o /dev/null https://registry.test/v2/
}
wait_until 60 guide_up || fail "the guide's nginx does not answer on 443"

# push NAME: the registry image pushed over 4443 with the guide's client
# certificate as app/NAME:1; prints its manifest digest.
push() {
	th skopeo --policy "$ACCEPT_ANY" copy -q "oci-archive:$REGISTRY_ARCHIVE" \
		"docker://registry.test:4443/app/$1:1" >/dev/null || fail "push of app/$1 over 4443 failed"
	th skopeo inspect --format '{{.Digest}}' "docker://registry.test:4443/app/$1:1"
}

# pull NAME: app/NAME:1 pulled over 443 (no certificate); prints the digest
# of the manifest it got.
pull() {
	th rm -rf /var/tmp/pulled
	th skopeo --policy "$ACCEPT_ANY" copy -q "docker://registry.test/app/$1:1" dir:/var/tmp/pulled >/dev/null ||
		fail "pull of app/$1 over 443 failed"
	echo "sha256:$(th sha256sum /var/tmp/pulled/manifest.json | cut -d' ' -f1)"
}
digest=$(push before)
[[ $digest == sha256:* ]] || fail "no digest: $digest"
assert_eq "$(pull before)" "$digest" "digest pulled over the guide's 443"

# What adoption must keep byte for byte: the CAs, every key, the client
# certificate; and the storage.
kept() {
	th sha256sum $C/private/ca.key $C/ca/ca.crt $C/private/client-ca.key $C/clients/ca.crt \
		$C/private/registry.key $C/private/client.key $C/clients/client.crt
}
# What --dry-run and a failed check must not change.
fingerprint() {
	th /bin/sh -c 'find /etc /var/lib/registry /var/lib/systemd/linger -xdev -printf "%p %m %u %g %y\n" | sort
		find /etc -xdev -type f -print0 | sort -z | xargs -0 md5sum
		systemctl is-active registry-proxy.service; systemctl is-enabled registry-proxy.service' |
		grep -v "$CONF" || true
	user_systemctl "$GUIDE_USER" is-active registry.service || true
}
same_host() {
	local now
	now=$(fingerprint)
	[[ $now == "$1" ]] || fail "$2 changed: $(diff <(printf '%s\n' "$1") <(printf '%s\n' "$now") | head -20)"
}
adopt_config "$GUIDE_USER" rsa-4096
keys_before=$(kept)
other_before=$(th md5sum /etc/nginx/sites-available/other-site)
before=$(fingerprint)

step "plain provision refuses the guide's host and changes nothing"
provision && fail "plain provision ran over the guide's host"
row failed guide-layout "this host runs a registry set up by the install guide \(/etc/systemd/user/registry.service, registry-proxy.service \(running\), nginx site /etc/nginx/sites-enabled/registry-mtls on 443/4443\): .regvisor provision --adopt."
same_host "$before" "host after a refused provision"

step "--adopt refuses what would not keep the guide's PKI and storage"
adopt_config "$GUIDE_USER"
provision --adopt && fail "adopted with key_type ec-p256"
row failed guide-layout "the server CA key $C/private/ca.key is not ec-p256 \(\[tls\] key_type\): set \[tls\] key_type = rsa-4096"
adopt_config "" rsa-4096
provision --adopt && fail "adopted with the wrong service user"
row failed guide-layout "/var/lib/registry belongs to $GUIDE_USER, the guide's CI_SERVICE_USER: set \[host\] service_user = $GUIDE_USER"
adopt_config "$GUIDE_USER" rsa-4096
# A CA key that is not the CA certificate's; then one missing.
th mv $C/private/client-ca.key /var/tmp/client-ca.key
th /bin/sh -c "openssl genrsa -out $C/private/client-ca.key 2048 2>/dev/null"
provision --adopt && fail "adopted a client CA key that is not the CA certificate's"
row failed guide-layout "the client CA key $C/private/client-ca.key does not match its certificate $C/clients/ca.crt: refusing"
th rm $C/private/client-ca.key
provision --adopt && fail "adopted a PKI without its client CA key"
row failed guide-layout "the guide's installation is incomplete: missing $C/private/client-ca.key"
th mv /var/tmp/client-ca.key $C/private/client-ca.key
same_host "$before" "host after refused adoptions"

step "provision --adopt --dry-run: the plan, nothing changed"
provision --adopt --dry-run || fail "provision --adopt --dry-run failed"
row ok guide-layout "adopting the guide's installation: both CAs and their keys kept, client certificates kept \(client\), storage /var/lib/registry kept"
row ok pki-server-ca ""
row would guide-registry-unit "stop and disable registry.service of $GUIDE_USER"
row would guide-proxy "stop and disable what holds 443/4443: registry-proxy.service \(running\), nginx site /etc/nginx/sites-enabled/registry-mtls"
row would pki-server-cert ""
row would guide-storage-modes "[0-9]+ files and directories below /var/lib/registry open to others: o-rwx, as $GUIDE_USER"
same_host "$before" "host after --dry-run"

step "provision --adopt: the guide's units replaced, its PKI and storage kept"
provision --adopt || fail "provision --adopt failed"
row ok guide-layout "adopting"
row ok pki-server-ca ""
row changed guide-registry-unit "registry.service of $GUIDE_USER stopped and disabled, kept as /etc/systemd/user/registry.service.adopted"
row changed guide-proxy "stopped and disabled: registry-proxy.service"
assert_eq "$(kept)" "$keys_before" "the guide's keys, CAs and client certificate"
assert_eq "$(th systemctl is-active registry-proxy.service)" inactive "registry-proxy.service"
assert_eq "$(th systemctl is-enabled registry-proxy.service)" disabled "registry-proxy.service enabled"
th test -e /etc/systemd/user/registry.service && fail "the guide's registry.service is still there"
# Stopped: podman run exits with SIGTERM's status, which the guide's unit
# (no SuccessExitStatus=) counts as failed.
state=$(user_systemctl "$GUIDE_USER" is-active registry.service || true)
[[ $state == inactive || $state == failed ]] || fail "the guide's registry.service is $state"
th test -e /etc/nginx/sites-enabled/registry-mtls && fail "the nginx site on 443 is still enabled"
th test -f /etc/nginx/sites-available/registry-mtls || fail "the disabled site's file was removed"
th test -L /etc/nginx/sites-enabled/other-site || fail "the unrelated nginx site was disabled"
assert_eq "$(th md5sum /etc/nginx/sites-available/other-site)" "$other_before" "the unrelated nginx site"
assert_eq "$(stat_of /var/lib/registry)" "$GUIDE_USER:$GUIDE_USER 750" "storage"
# The guide's registry wrote with umask 022; nothing below is others' now.
row changed guide-storage-modes "[0-9]+ files and directories below /var/lib/registry: others' access removed"
open=$(th find /var/lib/registry ! -type l -perm /o=rwx)
[[ -z $open ]] || fail "storage still open to others: $open"
assert_eq "$(stat_of $C/clients/ca.crt)" "root:root 644" "client CA certificate (the proxy reads it as root)"

step "regvisor serves: the guide's client certificate pushes on 4443, the earlier image pulls on 443"
run_unit_up
assert_eq "$(pull before)" "$digest" "digest of the image pushed through the guide's nginx"
digest2=$(push after)
assert_eq "$(pull after)" "$digest2" "digest pulled over 443"
# Still only the guide's client CA's certificates may push: a request to
# start an upload without a certificate, with one of another CA, or on 443
# gets no upload (202).
th /bin/sh -c 'set -e; cd /var/tmp
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue-ca.key -out rogue-ca.crt \
		-days 1 -subj "/CN=rogue CA" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rogue.key -subj "/CN=app-CI-Client" \
		2>/dev/null | openssl x509 -req -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial -days 1 -out rogue.crt \
		2>/dev/null'
upload() {
	th curl -s -m 10 -o /dev/null -w '%{http_code}' --cacert $C/ca/ca.crt -X POST "$@" || true
}
for args in "https://registry.test:4443/v2/app/x/blobs/uploads/" \
	"--cert /var/tmp/rogue.crt --key /var/tmp/rogue.key https://registry.test:4443/v2/app/x/blobs/uploads/" \
	"--cert $GUIDE_CERT --key $GUIDE_KEY https://registry.test/v2/app/x/blobs/uploads/"; do
	# shellcheck disable=SC2086
	code=$(upload $args)
	[[ $code != 202 ]] || fail "an upload started with: $args"
done
# shellcheck disable=SC2086
assert_eq "$(upload --cert $GUIDE_CERT --key $GUIDE_KEY https://registry.test:4443/v2/app/x/blobs/uploads/)" 202 \
	"an upload with the guide's client certificate"

step "a second provision --adopt, and a plain provision, change nothing"
after=$(th /bin/sh -c 'find /etc /var/lib/registry -maxdepth 3 -xdev -printf "%p %m %u %g\n" | sort; find /etc -xdev -type f -print0 | sort -z | xargs -0 md5sum')
provision --adopt || fail "second provision --adopt failed"
row ok guide-layout "nothing of the guide's left \(adopted already\)"
row ok guide-storage-modes ""
assert_contains "$OUT" " 0 changed, 0 failed" "summary of the second --adopt"
provision || fail "plain provision after adoption failed"
assert_contains "$OUT" " 0 changed, 0 failed" "summary of a plain provision"
now=$(th /bin/sh -c 'find /etc /var/lib/registry -maxdepth 3 -xdev -printf "%p %m %u %g\n" | sort; find /etc -xdev -type f -print0 | sort -z | xargs -0 md5sum')
[[ $now == "$after" ]] || fail "the second runs changed: $(diff <(printf '%s\n' "$after") <(printf '%s\n' "$now") | head)"

step "regvisor pki list shows the guide's client by name"
rv_conf pki list || fail "pki list failed"
grep -Eq '^client ' <<<"$OUT" || fail "the guide's client is not listed: $OUT"

step "deprovision gives the guide back what --adopt disabled (enabled, not started)"
rv_conf deprovision --dry-run || fail "deprovision --dry-run failed"
row would guide-proxy "enable again what provision --adopt disabled"
row would guide-registry-unit "restore /etc/systemd/user/registry.service"
rv_conf deprovision || fail "deprovision failed"
row changed guide-proxy "enabled again what provision --adopt disabled"
row changed guide-registry-unit "/etc/systemd/user/registry.service restored and enabled for $GUIDE_USER"
th test -L /etc/nginx/sites-enabled/registry-mtls || fail "the guide's nginx site was not enabled again"
assert_eq "$(th systemctl is-enabled registry-proxy.service)" enabled "registry-proxy.service enabled"
th test -f /etc/systemd/user/registry.service || fail "the guide's registry.service was not restored"
th test -e /etc/regvisor/adopted-guide && fail "deprovision left /etc/regvisor/adopted-guide"
assert_eq "$(th md5sum /etc/nginx/sites-available/other-site)" "$other_before" "the unrelated nginx site"
assert_eq "$(kept)" "$keys_before" "the guide's keys, CAs and client certificate after deprovision"
step "ok"
