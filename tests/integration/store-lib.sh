# shellcheck shell=bash
# A shared object store for the tests, sourced after lib.sh: a single-node
# OpenStack Swift (tempauth, workers = 0, memcached) and a redis, each as a
# transient unit on a host the test runs commands on, reachable on one
# address ($STORE_ADDR). Facts behind it: ../shared/notes/scale-out.md.
#
# store_up RUNNER ADDR: RUNNER is th (the registry's own test host), thc, or
# any function that runs a command on the store's host. The object,
# container and account servers and memcached listen on that host's
# loopback; the proxy (auth and storage URL) and redis on ADDR, which
# store_up adds to lo when the host does not have it yet. Prebuilt rings
# (tests/integration/data/swift: one device on 127.0.0.1:6200-6202, built
# with swift-ring-builder create 8 1 1) spare ~2 s of rebalancing.

STORE_SWIFT_PORT=8080
STORE_REDIS_PORT=6379
STORE_ACCOUNT=test
STORE_USER=tester
STORE_CONTAINER=registry
# The Swift user's key, made per run; the tests look for it where it must
# not be (world-readable files, the journal, command lines).
STORE_KEY=rvkey-$RANDOM$RANDOM$RANDOM
# Root-only on the store's host: ST_AUTH, ST_USER, ST_KEY for the swift CLI
# (never on a command line).
STORE_SWIFT_ENV=/root/swift-env

# _store_conf RUNNER PATH MODE OWNER: stdin to PATH on the store's host.
_store_conf() {
	"$1" install -D -m "$3" -o root -g "$4" /dev/stdin "$2"
}

# store_up RUNNER ADDR: brings the store up and waits (bounded) until Swift
# authenticates and redis answers PING.
store_up() {
	local run=$1 addr=$2 s
	STORE_RUN=$run
	STORE_ADDR=$addr
	"$run" sh -c "ip -o addr show | grep -qw 'inet $addr' || ip addr add $addr/32 dev lo" ||
		fail "cannot give the store's host $addr"
	"$run" sh -c 'set -e; mkdir -p /etc/swift /srv/swift/node/d1 /var/cache/swift /run/swift
		chown -R swift:swift /srv/swift /var/cache/swift /run/swift' || fail "swift directories"
	for s in account container object; do
		"$run" install -m 0644 /dev/stdin "/etc/swift/$s.ring.gz" <"$REPO/tests/integration/data/swift/$s.ring.gz" ||
			fail "cannot install the $s ring"
	done
	_store_conf "$run" /etc/swift/swift.conf 0644 root <<-EOF
		[swift-hash]
		swift_hash_path_suffix = rvtest-$RANDOM
		swift_hash_path_prefix = rvtest
		[storage-policy:0]
		name = Policy-0
		default = yes
	EOF
	local port=6200
	for s in object container account; do
		_store_conf "$run" "/etc/swift/rvtest-$s.conf" 0644 root <<-EOF
			[DEFAULT]
			devices = /srv/swift/node
			mount_check = false
			bind_ip = 127.0.0.1
			bind_port = $port
			workers = 0
			user = swift
			log_level = WARNING
			[pipeline:main]
			pipeline = $s-server
			[app:$s-server]
			use = egg:swift#$s
		EOF
		port=$((port + 1))
	done
	# The proxy's configuration holds the key: root's and swift's only.
	_store_conf "$run" /etc/swift/rvtest-proxy.conf 0640 swift <<-EOF
		[DEFAULT]
		bind_ip = $addr
		bind_port = $STORE_SWIFT_PORT
		workers = 0
		user = swift
		log_level = WARNING
		[pipeline:main]
		pipeline = catch_errors cache tempauth proxy-server
		[app:proxy-server]
		use = egg:swift#proxy
		account_autocreate = true
		[filter:tempauth]
		use = egg:swift#tempauth
		user_${STORE_ACCOUNT}_${STORE_USER} = $STORE_KEY .admin http://$addr:$STORE_SWIFT_PORT/v1/AUTH_$STORE_ACCOUNT
		[filter:cache]
		use = egg:swift#memcache
		memcache_servers = 127.0.0.1:11211
		[filter:catch_errors]
		use = egg:swift#catch_errors
	EOF
	_store_conf "$run" "$STORE_SWIFT_ENV" 0600 root <<-EOF
		export ST_AUTH=http://$addr:$STORE_SWIFT_PORT/auth/v1.0
		export ST_USER=$STORE_ACCOUNT:$STORE_USER
		export ST_KEY=$STORE_KEY
	EOF
	"$run" systemd-run --unit=rvtest-memcached memcached -u memcache -l 127.0.0.1 -p 11211 -m 16 >/dev/null 2>&1 ||
		fail "memcached did not start"
	for s in object container account; do
		"$run" systemd-run --unit="rvtest-swift-$s" "/usr/bin/swift-$s-server" "/etc/swift/rvtest-$s.conf" >/dev/null 2>&1 ||
			fail "swift-$s-server did not start"
	done
	"$run" systemd-run --unit=rvtest-swift-proxy /usr/bin/swift-proxy-server /etc/swift/rvtest-proxy.conf >/dev/null 2>&1 ||
		fail "swift-proxy-server did not start"
	"$run" systemd-run --unit=rvtest-redis --property=User=redis /usr/bin/redis-server --bind "$addr" \
		--port "$STORE_REDIS_PORT" --save "" --appendonly no --protected-mode no --dir /tmp >/dev/null 2>&1 ||
		fail "redis-server did not start"
	on_failure "$run" journalctl --no-pager -n 40 -u 'rvtest-swift-*' -u rvtest-memcached -u rvtest-redis
	wait_until 60 store_swift stat || fail "Swift does not authenticate on $addr:$STORE_SWIFT_PORT"
	wait_until 20 store_redis_ping || fail "redis does not answer on $addr:$STORE_REDIS_PORT"
}

# store_swift ARGS...: the swift CLI on the store's host with the test
# account (credentials from the root-only $STORE_SWIFT_ENV).
store_swift() {
	"$STORE_RUN" sh -c ". $STORE_SWIFT_ENV && exec swift \"\$@\"" _ "$@"
}

store_redis_ping() {
	[[ $("$STORE_RUN" redis-cli -h "$STORE_ADDR" -p "$STORE_REDIS_PORT" ping) == PONG ]]
}

# store_regvisor_files RUNNER SECRET: on a regvisor host, the credentials
# file and the http secret file (root's, 0600) for the store, and prints
# the [registry], [store] and [signing] store lines for write_config
# (signatures in the registry: a shared store requires it).
store_regvisor_files() {
	printf 'username = %s:%s\npassword = %s\n' "$STORE_ACCOUNT" "$STORE_USER" "$STORE_KEY" |
		"$1" install -D -m 0600 -o root -g root /dev/stdin /etc/regvisor/store-credentials ||
		fail "cannot write the store's credentials"
	printf '%s\n' "$2" | "$1" install -D -m 0600 -o root -g root /dev/stdin /etc/regvisor/http-secret ||
		fail "cannot write the http secret"
	printf '%s\n' "storage = swift" "cache = redis://$STORE_ADDR:$STORE_REDIS_PORT" \
		"http_secret_file = /etc/regvisor/http-secret" "[store]" \
		"auth_url = http://$STORE_ADDR:$STORE_SWIFT_PORT/auth/v1.0" "container = $STORE_CONTAINER" \
		"credentials_file = /etc/regvisor/store-credentials" \
		"[signing]" "store = registry"
}
