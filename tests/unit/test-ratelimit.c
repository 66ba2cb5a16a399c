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
#include <netinet/in.h>
#include <string.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ratelimit.h"

static LimitsKey key4(const char *ip, uint8_t port) {
        struct sockaddr_in sa = {.sin_family = AF_INET};
        LimitsKey k;
        assert_int_equal(inet_pton(AF_INET, ip, &sa.sin_addr), 1);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa, port, &k), 0);
        return k;
}

static void test_conn_limit(void **state) {
        LimitsTable *t;
        LimitsKey a = key4("10.0.0.1", 0), b = key4("10.0.0.2", 0), a_push = key4("10.0.0.1", 1);
        int s1, s2, s3, s4;

        assert_int_equal(limits_new(64, 2, &t), 0);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, &s1), 1);
        assert_int_equal(limits_conn_acquire(t, 1, &a, 2, &s2), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, &s3), 0); /* two columns, one address */
        assert_int_equal(limits_conn_acquire(t, 0, &b, 2, &s3), 1); /* another address */
        assert_int_equal(limits_conn_acquire(t, 0, &a_push, 2, &s4), 1); /* another port */
        assert_int_equal(limits_conn_count(t, &a), 2);
        limits_conn_release(t, 0, s1);
        assert_int_equal(limits_conn_count(t, &a), 1);
        assert_int_equal(limits_conn_acquire(t, 0, &a, 2, &s1), 1);
        /* A dead worker's column is forgotten. */
        limits_column_reset(t, 1);
        assert_int_equal(limits_conn_count(t, &a), 1);
        limits_conn_release(t, 1, s2); /* late release after a reset: no underflow */
        assert_int_equal(limits_conn_count(t, &a), 1);
        /* 0 = off: always accepted. */
        for (int i = 0; i < 100; i++)
                assert_int_equal(limits_conn_acquire(t, 0, &b, 0, &s3), 1);
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
                _exit(limits_conn_acquire(t, 1, &a, 5, &s) == 1 ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(status, 0);
        assert_int_equal(limits_conn_count(t, &a), 1); /* the child's count is seen here */
        assert_int_equal(limits_conn_acquire(t, 0, &a, 1, &slot), 0);
        limits_free(t);
}

static void test_full_table_fails_open(void **state) {
        LimitsTable *t;
        int slot, open_ = 0;

        assert_int_equal(limits_new(LIMITS_PROBE, 1, &t), 0);
        for (int i = 0; i < 3 * LIMITS_PROBE; i++) {
                char ip[32];
                snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250);
                LimitsKey k = key4(ip, 0);
                int r = limits_conn_acquire(t, 0, &k, 1, &slot);
                assert_true(r == 1 || r == 2);
                if (r == 2) {
                        assert_int_equal(slot, -1);
                        open_++;
                }
        }
        assert_int_equal(open_, 2 * LIMITS_PROBE);
        limits_free(t);
}

static void test_ipv4_mapped(void **state) {
        struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6};
        LimitsKey k6, k4 = key4("203.0.113.9", 0);

        assert_int_equal(inet_pton(AF_INET6, "::ffff:203.0.113.9", &sa6.sin6_addr), 1);
        assert_int_equal(limits_key_from_sockaddr((struct sockaddr *)&sa6, 0, &k6), 0);
        assert_memory_equal(&k4, &k6, sizeof(k4));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_conn_limit),
                cmocka_unit_test(test_rate_bucket),
                cmocka_unit_test(test_rate_delay),
                cmocka_unit_test(test_shared_across_fork),
                cmocka_unit_test(test_full_table_fails_open),
                cmocka_unit_test(test_ipv4_mapped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
