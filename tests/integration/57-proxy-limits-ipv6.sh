#!/usr/bin/env bash
# Per-client limits that an address space cannot dodge, through the real
# proxy over real TLS, from real IPv6 source addresses: the test host routes
# 2001:db8::/32 to lo (`ip -6 route add local`), so a client can connect
# from any address of it, and the proxy listens on [::]:443 (dual stack).
# [pull] rate = 1r/m, burst = 10 (11 requests, then one a minute);
# [proxy] limits_slots = 64 (the smallest table: one probe window, so what
# fits is exact). A counting upstream (57-proxy-limits.py) says what got
# through, by marker.
#   - one /64: 2000 requests, each from its own address of
#     2001:db8:1:0::/64, share one bucket: 11 reach the upstream, the rest
#     get 429;
#   - the table filled: 1000 requests from 1000 different /64s of
#     2001:db8:2::/48: only as many as the table has free slots reach the
#     upstream, every other gets 503 with a JSON error (refused, not waved
#     through untracked);
#   - while it is full: an IPv4 client tracked before keeps its limit (its
#     remaining burst, then 429); a new IPv4 client and a new /64 get 503,
#     and nothing of theirs reaches the upstream;
#   - idle entries are evicted: once the buckets have refilled (1 minute),
#     a new client is served again;
#   - the journal says so (one warning), and the access log has the 429s
#     and the 503s. (/metrics: regvisor_proxy_limits_table_full_total, in
#     the unit tests and 75-metrics.sh; `regvisor proxy` alone has none.)
# Knobs for running it against older code: ONE64, FILL (counts), SLOTS
# (empty: limits_slots unset).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/provision-lib.sh"

LCONF=/etc/regvisor/limits.conf
CERTS=$S/etc/registry/certs
CA=$CERTS/ca/ca.crt
UNIT=regvisor-proxy-limits
HELPER=$REPO/tests/integration/57-proxy-limits.py
ONE64=${ONE64:-2000}
FILL=${FILL:-1000}
SLOTS=${SLOTS-64}
BURST=10

th_boot
on_failure th journalctl -u "$UNIT" --no-pager -n 40

step "users and a staged certificate tree (provision --root)"
staged_proxy_config "$LCONF" "[pull]\nrate = 1r/m\nburst = $BURST\nconn_per_ip = 20\n[push]\nrate = 0\n${SLOTS:+[proxy]\nlimits_slots = $SLOTS\n}"

step "2001:db8::/32 is local: any of its addresses can be a source"
th sysctl -qw net.ipv6.conf.lo.disable_ipv6=0 net.ipv6.conf.all.disable_ipv6=0
th ip -6 route add local 2001:db8::/32 dev lo || fail "cannot add the local route"

step "a counting upstream on a unix socket"
counting_upstream /usr/bin/python3 "$HELPER" upstream "$UP" "$COUNT"
th chmod 0666 "$UP"

step "regvisor proxy on [::]:443, the table at $SLOTS slots"
th systemd-run --unit="$UNIT" "$REGVISOR" proxy --config "$LCONF" --root "$S" >/dev/null
listening() {
	th ss -Hltn 'sport = :443' | grep -q '\[::\]:443\|\*:443'
}
wait_until 20 listening || fail "the proxy does not listen on [::]:443"
T0=$(_now_us)

# upstream MARKER: requests with that marker the upstream received.
upstream() {
	th /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' "$COUNT" "$1"
}
# clients MARKER COUNT SOURCES [THREADS]: run the client, JSON in $OUT.
clients() {
	OUT=$(th /usr/bin/python3 "$HELPER" client 443 "$CA" "$@") || fail "57-proxy-limits.py client failed: $OUT"
	step "$1: $OUT"
}
# status CODE: how many answers had it, in $OUT.
status() {
	/usr/bin/python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"].get(sys.argv[2], 0))' "$OUT" "$1"
}
json() {
	/usr/bin/python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v:=v[k] for k in sys.argv[2].split(".")]; print(v)' "$OUT" "$1"
}

step "one /64, $ONE64 addresses, one request each: one bucket"
T1=$(_now_us)
clients one64 "$ONE64" same64:2001:db8:1:0 8
assert_eq "$(json sources)" "$ONE64" "distinct source addresses"
assert_eq "$(json errors)" "{}" "connection errors"
n200=$(status 200) n429=$(status 429)
# 11 at once, then 1 a minute: the minutes the burst took may add one.
max=$((BURST + 1 + ($(_now_us) - T1) / 60000000))
((n200 >= BURST + 1 && n200 <= max)) || fail "one64: $n200 requests served, expected $((BURST + 1))..$max"
assert_eq "$((n200 + n429))" "$ONE64" "one64: 200s and 429s"
assert_eq "$(upstream one64)" "$n200" "one64: requests the upstream received"

step "an IPv4 client (127.0.0.2) takes one request: it is in the table, busy for a minute"
clients v4a 1 fixed:127.0.0.2
assert_eq "$(status 200)" 1 "v4a: first request"

step "fill the table: $FILL requests from $FILL /64s of 2001:db8:2::/48"
# Tracked so far: the one64 /64 and v4a (the readiness check above looked
# at the socket, it sent no request). Each newcomer takes a token and so
# stays busy for a minute (rate 1r/m): the table is full once the free
# slots are taken, until a minute after v4a's request.
T2=$(_now_us)
clients fill "$FILL" many64:2001:db8:2 8
assert_eq "$(json sources)" "$FILL" "distinct source addresses"
assert_eq "$(json errors)" "{}" "connection errors"
f200=$(status 200) f503=$(status 503)
assert_eq "$((f200 + f503))" "$FILL" "fill: every answer a 200 or a 503"
assert_eq "$(upstream fill)" "$f200" "fill: requests the upstream received"
if [[ $SLOTS == 64 ]]; then
	# One probe window is the whole table: exactly the free slots.
	assert_eq "$f200" 62 "fill: clients let in (64 slots, 2 taken)"
fi
assert_contains "$(json bodies.503)" '"code":"UNAVAILABLE"'
assert_contains "$(json bodies.503)" "limits table is full"
assert_eq "$(json retry_after)" "['1']" "Retry-After of the 503s"

step "while full: the tracked IPv4 client is still limited"
clients v4a 15 fixed:127.0.0.2 1
assert_eq "$(status 200)" "$BURST" "v4a: the rest of its burst"
assert_eq "$(status 429)" 5 "v4a: beyond its burst"
assert_eq "$(upstream v4a)" $((BURST + 1)) "v4a: requests the upstream received in all"

step "while full: a new IPv4 client and a new /64 are refused, not waved through"
clients v4b 15 fixed:127.0.0.3 1
assert_eq "$(status 503)" 15 "v4b: refused"
assert_eq "$(upstream v4b)" 0 "v4b: requests the upstream received"
clients new64 15 fixed:2001:db8:3::1 1
assert_eq "$(status 503)" 15 "new64: refused"
assert_eq "$(upstream new64)" 0 "new64: requests the upstream received"
elapsed=$((($(_now_us) - T2) / 1000000))
((elapsed < 55)) || fail "the fill and the checks took $elapsed s: buckets may have refilled, the counts mean nothing"

step "the journal: one warning, the 503s in the access log"
journal=$(th journalctl -u "$UNIT" --no-pager -o cat)
assert_contains "$journal" "per-client limits table is full; refusing new clients with 503"
n=$(grep -c 'status=503' <<<"$journal" || true)
assert_eq "$n" $((f503 + 30)) "503 lines in the access log"
n=$(grep -c 'path=/v2/one64/.* status=429' <<<"$journal" || true)
assert_eq "$n" "$n429" "one64: 429 lines in the access log"

step "idle entries are evicted: a new client is served once the buckets are full again"
served() {
	OUT=$(th /usr/bin/python3 "$HELPER" client 443 "$CA" late 1 fixed:127.0.0.4) && [[ $(status 200) == 1 ]]
}
wait_until 90 served || fail "no new client served 90 s after the table filled: $OUT"
assert_eq "$(upstream late)" 1 "late: requests the upstream received"
step "served $((($(_now_us) - T2) / 1000000)) s after the fill began"
