/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/ratelimit.c: the shared per-IP connection counts and
 * token buckets, across processes, columns and a full table.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ratelimit.h"

static LimitsKey key4(const char *ip, uint8_t port) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        LimitsKey k;
        assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa, port, LIMITS_DEFAULT_IPV6_PREFIX, &k), 0);
        return k;
}

static LimitsKey key6(const char *ip, unsigned prefix) {
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        LimitsKey k;
        assert_int_equal(inet_pton(AF_INET6, ip, &sa.sin6_addr), 1);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa, 0, prefix, &k), 0);
        return k;
}

static bool same_key(LimitsKey a, LimitsKey b) {
        return memcmp(&a, &b, sizeof(a)) == 0;
}

static void test_conn_limit(void **state) {
        LimitsTable *t;
        LimitsKey a = key4("10.0.0.1", 0), b = key4("10.0.0.2", 0), a_push = key4("10.0.0.1", 1);
        int s1, s2, s3, s4;

        assert_int_equal(limits_new(64, 2, &t), 0);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 2, 0, &s1), 1);
        assert_int_equal(limits_conn_acquire(t, 1, &a, 2, 2, 0, &s2), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 2, 0, &s3), 0); /* two columns, one address */
        assert_int_equal(limits_conn_acquire(t, 0, &b, 2, 2, 0, &s3), 1); /* another address */
        assert_int_equal(limits_conn_acquire(t, 0, &a_push, 2, 2, 0, &s4), 1); /* another port */
        assert_int_equal(limits_conn_count(t, &a), 2);
        limits_conn_release(t, 0, s1);
        assert_int_equal(limits_conn_count(t, &a), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 2, 0, &s1), 1);
        /* A dead worker's column is forgotten. */
        limits_column_reset(t, 1);
        assert_int_equal(limits_conn_count(t, &a), 1);
        limits_conn_release(t, 1, s2); /* late release after a reset: no underflow */
        assert_int_equal(limits_conn_count(t, &a), 1);
        /* 0 = off: always accepted. */
        for (int i = 0; i < 100; i++)
                assert_int_equal(limits_conn_acquire(t, 0, &b, 0, 0, 0, &s3), 1);
        limits_free(t);
}

static void test_rate_bucket(void **state) {
        LimitsTable *t;
        LimitsKey a = key4("192.0.2.7", 0);
        unsigned retry = 0;
        uint64_t now = 1000000;

        assert_int_equal(limits_new(64, 1, &t), 0);
        /* rate 10/s, burst 20: 21 at once, the 22nd refused. */
        for (int i = 0; i < 21; i++)
                assert_int_equal(limits_rate_take(t, &a, 10, 20, now, &retry, NULL), 1);
        assert_int_equal(limits_rate_take(t, &a, 10, 20, now, &retry, NULL), 0);
        assert_int_equal(retry, 1);
        /* 100 ms later one token is back. */
        assert_int_equal(limits_rate_take(t, &a, 10, 20, now + 100, &retry, NULL), 1);
        assert_int_equal(limits_rate_take(t, &a, 10, 20, now + 100, &retry, NULL), 0);
        /* Slow rate: Retry-After in whole seconds, rounded up. */
        LimitsKey b = key4("192.0.2.8", 0);
        assert_int_equal(limits_rate_take(t, &b, 0.25, 0, now, &retry, NULL), 1);
        assert_int_equal(limits_rate_take(t, &b, 0.25, 0, now, &retry, NULL), 0);
        assert_int_equal(retry, 4);
        /* Off. */
        for (int i = 0; i < 100; i++)
                assert_int_equal(limits_rate_take(t, &b, 0, 0, now, &retry, NULL), 1);
        limits_free(t);
}

/* Delay mode, the guide's push port (5r/s, burst 10, no nodelay): the same
 * requests are refused as without delay, the accepted ones are spread out
 * at the rate: nginx's excess / rate. */
static void test_rate_delay(void **state) {
        LimitsTable *t;
        LimitsKey a = key4("192.0.2.9", 1), b = key4("192.0.2.10", 1);
        unsigned retry = 0;
        uint64_t now = 5000000, d = 12345;

        assert_int_equal(limits_new(64, 1, &t), 0);
        /* 11 at once: the first now, the k-th after (k-1) * 200 ms. */
        for (int i = 0; i < 11; i++) {
                assert_int_equal(limits_rate_take(t, &a, 5, 10, now, &retry, &d), 1);
                assert_int_equal(d, (uint64_t)i * 200);
        }
        /* The 12th: beyond the burst, refused now; 200 ms until a token. */
        d = 12345;
        assert_int_equal(limits_rate_take(t, &a, 5, 10, now, &retry, &d), 0);
        assert_int_equal(retry, 1);
        assert_int_equal(d, 0);
        /* 200 ms later one place in the queue is free again; it is the
         * last one: its wait is the whole queue, 10 * 200 ms. */
        assert_int_equal(limits_rate_take(t, &a, 5, 10, now + 200, &retry, &d), 1);
        assert_int_equal(d, 2000);
        assert_int_equal(limits_rate_take(t, &a, 5, 10, now + 200, &retry, &d), 0);
        /* 50 ms later: a quarter token, still refused. */
        assert_int_equal(limits_rate_take(t, &a, 5, 10, now + 250, &retry, &d), 0);
        /* Idle long enough: the bucket is full, served at once again. */
        assert_int_equal(limits_rate_take(t, &a, 5, 10, now + 60000, &retry, &d), 1);
        assert_int_equal(d, 0);
        assert_int_equal(limits_rate_take(t, &a, 5, 10, now + 60000, &retry, &d), 1);
        assert_int_equal(d, 200);
        /* A request every 100 ms at 5r/s: the queue grows by half a
         * request each time, the waits by 100 ms (rounded up to the ms). */
        for (int i = 0; i < 5; i++) {
                assert_int_equal(limits_rate_take(t, &b, 5, 10, now + (uint64_t)i * 100, &retry, &d), 1);
                assert_int_equal(d, (uint64_t)i * 100);
        }
        /* A fractional wait is rounded up: 3 r/s, the second waits 333.3 ms. */
        LimitsKey c = key4("192.0.2.11", 1);
        assert_int_equal(limits_rate_take(t, &c, 3, 10, now, &retry, &d), 1);
        assert_int_equal(limits_rate_take(t, &c, 3, 10, now, &retry, &d), 1);
        assert_int_equal(d, 334);
        /* burst 0: one at a time, nothing to queue. */
        LimitsKey e = key4("192.0.2.12", 1);
        assert_int_equal(limits_rate_take(t, &e, 5, 0, now, &retry, &d), 1);
        assert_int_equal(d, 0);
        assert_int_equal(limits_rate_take(t, &e, 5, 0, now, &retry, &d), 0);
        /* Off: never delayed. */
        assert_int_equal(limits_rate_take(t, &e, 0, 10, now, &retry, &d), 1);
        assert_int_equal(d, 0);
        limits_free(t);
}

static void test_shared_across_fork(void **state) {
        LimitsTable *t;
        LimitsKey a = key4("198.51.100.1", 0);
        int slot, status;
        pid_t pid;

        assert_int_equal(limits_new(64, 2, &t), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int s;
                _exit(limits_conn_acquire(t, 1, &a, 5, 5, 0, &s) == 1 ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(status, 0);
        assert_int_equal(limits_conn_count(t, &a), 1); /* the child's count is seen here */
        assert_int_equal(limits_conn_acquire(t, 0, &a, 1, 1, 0, &slot), 0);
        limits_free(t);
}

/* More busy clients than slots: the ones beyond are refused (-ENOSPC), by
 * both calls, and never counted; the tracked ones keep their limits. */
static void test_full_table_refuses(void **state) {
        LimitsTable *t;
        int slot, refused = 0;
        uint64_t now = 1000000;

        assert_int_equal(limits_new(LIMITS_PROBE, 1, &t), 0); /* one window: the whole table */
        for (int i = 0; i < 3 * LIMITS_PROBE; i++) {
                char ip[32];
                snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
                LimitsKey k = key4(ip, 0);
                slot = 12345;
                int r = limits_conn_acquire(t, 0, &k, 1, 1, now, &slot);
                assert_true(r == 1 || r == -ENOSPC);
                if (r == -ENOSPC) {
                        assert_int_equal(slot, -1);
                        assert_int_equal(limits_conn_count(t, &k), 0);
                        refused++;
                }
        }
        assert_int_equal(refused, 2 * LIMITS_PROBE);

        /* A request of a client not in the table: refused, not let through. */
        LimitsKey out = key4("192.0.2.200", 0), in = key4("10.1.0.0", 0);
        uint64_t d = 7;
        assert_int_equal(limits_rate_take(t, &out, 10, 20, now, NULL, &d), -ENOSPC);
        assert_int_equal(d, 0);
        /* Tracked clients are still limited: connection and rate. */
        assert_int_equal(limits_conn_acquire(t, 0, &in, 1, 1, now, &slot), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(limits_rate_take(t, &in, 1, 2, now, NULL, NULL), 1);
        assert_int_equal(limits_rate_take(t, &in, 1, 2, now, NULL, NULL), 0);
        /* Rate off: nothing to track, nothing refused. */
        assert_int_equal(limits_rate_take(t, &out, 0, 20, now, NULL, NULL), 1);
        limits_free(t);
}

/* Idle entries (no connection, a full bucket) give their slot to new
 * clients; busy ones (an open connection, or a bucket still refilling)
 * never do. */
static void test_idle_eviction(void **state) {
        LimitsTable *t;
        LimitsKey keys[LIMITS_PROBE];
        int slots[LIMITS_PROBE], slot;
        uint64_t now = 2000000;

        assert_int_equal(limits_new(LIMITS_PROBE, 2, &t), 0);
        /* Every slot: one request at 1 r/s, burst 1 (full again 1 s later),
         * and a connection, opened and closed. */
        for (int i = 0; i < LIMITS_PROBE; i++) {
                char ip[32];
                snprintf(ip, sizeof(ip), "198.18.%d.%d", i / 200, i % 200 + 1);
                keys[i] = key4(ip, 1);
                assert_int_equal(limits_conn_acquire(t, i % 2, &keys[i], 0, 0, now, &slots[i]), 1);
                limits_conn_release(t, i % 2, slots[i]);
                assert_int_equal(limits_rate_take(t, &keys[i], 1, 1, now, NULL, NULL), 1);
        }
        LimitsKey fresh = key4("203.0.113.50", 1), fresh2 = key4("203.0.113.51", 1);
        /* Buckets still refilling: no room. */
        assert_int_equal(limits_conn_acquire(t, 0, &fresh, 0, 0, now, &slot), -ENOSPC);
        assert_int_equal(limits_rate_take(t, &fresh, 1, 1, now + 999, NULL, NULL), -ENOSPC);
        /* The first client holds a connection from now on: it stays. */
        assert_int_equal(limits_conn_acquire(t, 1, &keys[0], 0, 0, now, &slots[0]), 1);
        /* 1 s later every bucket is full: the idle entries are reused. */
        assert_int_equal(limits_rate_take(t, &fresh, 1, 1, now + 1000, NULL, NULL), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &fresh2, 0, 0, now + 1000, &slot), 1);
        /* The busy first client kept its slot and its count; it takes a
         * token now, so its bucket refills until now + 2000. */
        assert_int_equal(limits_conn_count(t, &keys[0]), 1);
        assert_int_equal(limits_rate_take(t, &keys[0], 1, 1, now + 1000, NULL, NULL), 1);
        /* Fill the rest with busy newcomers: every idle entry is taken, the
         * busy one is not, and then there is no room. */
        int taken = 2;
        for (int i = 0; i < 2 * LIMITS_PROBE; i++) {
                char ip[32];
                snprintf(ip, sizeof(ip), "100.64.%d.%d", i / 200, i % 200 + 1);
                LimitsKey k = key4(ip, 1);
                int r = limits_conn_acquire(t, 0, &k, 0, 0, now + 1000, &slot);
                if (r == 1)
                        taken++;
                else
                        assert_int_equal(r, -ENOSPC);
        }
        assert_int_equal(taken, LIMITS_PROBE - 1);
        assert_int_equal(limits_conn_count(t, &keys[0]), 1);
        /* Its connection closed and, later, its bucket full: it goes too. */
        limits_conn_release(t, 1, slots[0]);
        LimitsKey last = key4("100.64.200.1", 1);
        assert_int_equal(limits_conn_acquire(t, 0, &last, 0, 0, now + 1999, &slot), -ENOSPC); /* bucket not full yet */
        /* A connection alone (no request: what a refused client does)
         * moves the clock on: turned-away clients find the room when it
         * comes back. */
        assert_int_equal(limits_conn_acquire(t, 0, &last, 0, 0, now + 2000, &slot), 1);
        assert_int_equal(limits_conn_count(t, &keys[0]), 0);
        assert_int_equal(limits_conn_count(t, &last), 1);
        limits_free(t);
}

static void test_ipv4_mapped(void **state) {
        struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
        LimitsKey k6, k4 = key4("203.0.113.9", 0);

        assert_int_equal(inet_pton(AF_INET6, "::ffff:203.0.113.9", &sa6.sin6_addr), 1);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa6, 0, 64, &k6), 0);
        assert_memory_equal(&k4, &k6, sizeof(k4));
        /* Whatever the IPv6 prefix, an IPv4 client is its whole address:
         * two neighbours are two clients. */
        for (unsigned prefix = 32; prefix <= 128; prefix += 8) {
                assert_true(same_key(key6("::ffff:203.0.113.9", prefix), k4));
                assert_false(same_key(key6("::ffff:203.0.113.9", prefix), key6("::ffff:203.0.113.10", prefix)));
        }
}

/* IPv6 clients are their prefix: one /64 is one client by default. */
static void test_ipv6_prefix(void **state) {
        LimitsTable *t;
        LimitsKey a = key6("2001:db8:1:2:aaaa::1", 64), b = key6("2001:db8:1:2:ffff:ffff:ffff:ffff", 64),
                  other = key6("2001:db8:1:3::1", 64);
        uint64_t now = 3000000;
        int slot;

        assert_true(same_key(a, b));
        assert_true(same_key(a, key6("2001:db8:1:2::", 64)));
        assert_false(same_key(a, other));

        assert_int_equal(limits_new(64, 1, &t), 0);
        /* Two addresses of one /64 share one bucket (burst 4: 5 in all)
         * and one connection count; the next /64 has its own. */
        for (int i = 0; i < 5; i++)
                assert_int_equal(limits_rate_take(t, i % 2 ? &a : &b, 10, 4, now, NULL, NULL), 1);
        assert_int_equal(limits_rate_take(t, &a, 10, 4, now, NULL, NULL), 0);
        assert_int_equal(limits_rate_take(t, &b, 10, 4, now, NULL, NULL), 0);
        assert_int_equal(limits_rate_take(t, &other, 10, 4, now, NULL, NULL), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 2, now, &slot), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &b, 2, 2, now, &slot), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &b, 2, 2, now, &slot), 0);
        assert_int_equal(limits_conn_acquire(t, 0, &other, 2, 2, now, &slot), 1);
        limits_free(t);

        /* Configurable: /56 joins the /64s of a site, /128 splits them. */
        assert_true(same_key(key6("2001:db8:1:2::1", 56), key6("2001:db8:1:ff::1", 56)));
        assert_false(same_key(key6("2001:db8:1:2::1", 56), key6("2001:db8:1:100::1", 56)));
        assert_false(same_key(key6("2001:db8:1:2::1", 128), key6("2001:db8:1:2::2", 128)));
        assert_true(same_key(key6("2001:db8:1:2::1", 128), key6("2001:db8:1:2::1", 128)));
        /* Bits, not only bytes: /61 keeps 5 bits of the fourth group's low
         * byte (0x08 and 0x0f agree there, 0x10 does not). */
        assert_true(same_key(key6("2001:db8:1:8::1", 61), key6("2001:db8:1:f::9", 61)));
        assert_false(same_key(key6("2001:db8:1:8::1", 61), key6("2001:db8:1:10::1", 61)));
        assert_true(same_key(key6("2001:db8:1:2:3:4:5:6", 61), key6("2001:db8:1::", 128)));
        /* /32, the widest: everything past the first two groups is zero. */
        assert_true(same_key(key6("2001:db8:ffff:ffff::1", 32), key6("2001:db8::", 128)));

        /* Out of range: refused, the key untouched. */
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        LimitsKey k = {.port = 9};
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &sa.sin6_addr), 1);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa, 0, 31, &k), -EINVAL);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa, 0, 129, &k), -EINVAL);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa, 0, 0, &k), -EINVAL);
        assert_int_equal(k.port, 9);
        struct sockaddr sun = {.sa_family = AF_UNIX};
        assert_int_equal(limits_key_from_sockaddr(&sun, 0, 64, &k), -EAFNOSUPPORT);
}

/* Sizes: a power of two within bounds. */
/* Over max and under the ceiling a connection is counted and marked over
 * (answered 429 after the handshake); at the ceiling it is not counted. */
static void test_conn_soft_and_ceiling(void **state) {
        (void)state;
        LimitsTable *t = NULL;
        LimitsKey a = key4("10.0.0.1", 0), b = key4("10.0.0.2", 0);
        int slots[5], s;

        assert_int_equal(limits_new(64, 2, &t), 0);
        assert_int_equal(limits_conn_ceiling(2), 4);
        assert_int_equal(limits_conn_ceiling(0), 0);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 4, 0, &slots[0]), LIMITS_CONN_OK);
        assert_int_equal(limits_conn_acquire(t, 1, &a, 2, 4, 0, &slots[1]), LIMITS_CONN_OK);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 4, 0, &slots[2]), LIMITS_CONN_OVER);
        assert_true(slots[2] >= 0);
        assert_int_equal(limits_conn_acquire(t, 1, &a, 2, 4, 0, &slots[3]), LIMITS_CONN_OVER);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 4, 0, &slots[4]), LIMITS_CONN_CEILING);
        assert_int_equal(slots[4], -1);
        assert_int_equal(limits_conn_count(t, &a), 4);
        /* Another client is not affected. */
        assert_int_equal(limits_conn_acquire(t, 0, &b, 2, 4, 0, &s), LIMITS_CONN_OK);
        /* The over connections count: one of the first two closing leaves
         * the client at 3, still over max. */
        limits_conn_release(t, 0, slots[0]);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 4, 0, &slots[0]), LIMITS_CONN_OVER);
        /* Back below max once the over ones close. */
        limits_conn_release(t, 0, slots[0]);
        limits_conn_release(t, 0, slots[2]);
        limits_conn_release(t, 1, slots[3]);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, 4, 0, &slots[0]), LIMITS_CONN_OK);
        /* max 0: no limit, whatever the ceiling. */
        for (int i = 0; i < 10; i++)
                assert_int_equal(limits_conn_acquire(t, 0, &b, 0, 0, 0, &s), LIMITS_CONN_OK);
        limits_free(t);
}

/* An identity is one key from any address, its own bucket, apart from
 * the addresses' keys and from other identities and ports. */
static void test_identity_key(void **state) {
        (void)state;
        LimitsTable *t = NULL;
        LimitsKey ci, ci2, other, ci_pull, addr = key4("10.0.0.1", 1);
        unsigned retry = 0;

        assert_int_equal(limits_key_from_identity("CN=ci", 1, &ci), 0);
        assert_int_equal(limits_key_from_identity("CN=ci", 1, &ci2), 0);
        assert_int_equal(limits_key_from_identity("CN=other", 1, &other), 0);
        assert_int_equal(limits_key_from_identity("CN=ci", 0, &ci_pull), 0);
        assert_memory_equal(&ci, &ci2, sizeof(ci));
        assert_memory_not_equal(&ci, &other, sizeof(ci));
        assert_memory_not_equal(&ci, &ci_pull, sizeof(ci));
        assert_int_not_equal(ci.port, addr.port);

        assert_int_equal(limits_new(64, 1, &t), 0);
        /* burst 1: two requests, then 429 for ci; other and the address
         * still have theirs. */
        assert_int_equal(limits_rate_take(t, &ci, 1, 1, 1000, &retry, NULL), 1);
        assert_int_equal(limits_rate_take(t, &ci2, 1, 1, 1000, &retry, NULL), 1);
        assert_int_equal(limits_rate_take(t, &ci, 1, 1, 1000, &retry, NULL), 0);
        assert_int_equal(retry, 1);
        assert_int_equal(limits_rate_take(t, &other, 1, 1, 1000, &retry, NULL), 1);
        assert_int_equal(limits_rate_take(t, &addr, 1, 1, 1000, &retry, NULL), 1);
        limits_free(t);
}

static void test_table_sizes(void **state) {
        LimitsTable *t = NULL;

        assert_int_equal(limits_new(LIMITS_PROBE / 2, 1, &t), -EINVAL);
        assert_int_equal(limits_new(1000, 1, &t), -EINVAL);
        assert_int_equal(limits_new(2 * LIMITS_MAX_SLOTS, 1, &t), -EINVAL);
        assert_int_equal(limits_new(64, 0, &t), -EINVAL);
        assert_null(t);
        assert_int_equal(limits_new(LIMITS_MAX_SLOTS, 2, &t), 0);
        limits_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_conn_limit),
                cmocka_unit_test(test_rate_bucket),
                cmocka_unit_test(test_rate_delay),
                cmocka_unit_test(test_shared_across_fork),
                cmocka_unit_test(test_full_table_refuses),
                cmocka_unit_test(test_idle_eviction),
                cmocka_unit_test(test_ipv4_mapped),
                cmocka_unit_test(test_ipv6_prefix),
                cmocka_unit_test(test_table_sizes),
                cmocka_unit_test(test_conn_soft_and_ceiling),
                cmocka_unit_test(test_identity_key),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
