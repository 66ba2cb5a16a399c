/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/cidr.c with networks as the configuration parses them:
 * a client that arrives on a dual-stack listener (the proxy's bare-port
 * ones, IPV6_V6ONLY off, as proxy.c opens them) is ::ffff:a.b.c.d, and an
 * IPv4 entry must match it; an IPv4-mapped entry is its IPv4 network and
 * matches that client both ways. Real sockets over loopback.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"

/* The peer of one connection from 127.0.0.1 to a listener of family (the
 * IPv6 one dual-stack, as the proxy's bare-port listeners). */
static void loopback_peer(int family, struct sockaddr_storage *ret) {
        struct sockaddr_storage bound = {};
        socklen_t len = sizeof bound;
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int zero = 0, l, c, a;

        l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(l >= 0);
        if (family == AF_INET6) {
                struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
                assert_int_equal(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero), 0);
                assert_int_equal(bind(l, (struct sockaddr *)&any, sizeof any), 0);
        } else {
                struct sockaddr_in any = {.sin_family = AF_INET};
                assert_int_equal(bind(l, (struct sockaddr *)&any, sizeof any), 0);
        }
        assert_int_equal(listen(l, 1), 0);
        assert_int_equal(getsockname(l, (struct sockaddr *)&bound, &len), 0);
        to.sin_port = family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                         : ((struct sockaddr_in *)&bound)->sin_port;

        c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(c >= 0);
        assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof to), 0);
        len = sizeof *ret;
        a = accept(l, (struct sockaddr *)ret, &len);
        assert_true(a >= 0);
        close(a);
        close(c);
        close(l);
}

/* Whether [proxy] trusted_proxies = entries, and [status] and [pull]
 * allow_cidrs = entries, admit peer; all three must agree. */
static bool admitted(const char *entries, const struct sockaddr_storage *peer) {
        char text[512], *error = NULL;
        Config c;
        bool trusted, status, pull;

        snprintf(text, sizeof text,
                 "[proxy]\ntrusted_proxies = %1$s\n[status]\nallow_cidrs = %1$s\n[pull]\nallow_cidrs = %1$s\n",
                 entries);
        assert_int_equal(config_init_defaults(&c), 0);
        if (config_load_string(&c, text, "test.conf", &error) < 0)
                fail_msg("%s: %s", entries, error);
        trusted = cidr_list_contains(&c.proxy.trusted_proxies, (const struct sockaddr *)peer);
        status = cidr_list_contains(&c.status_allow_cidrs, (const struct sockaddr *)peer);
        pull = cidr_allowed(c.pull.allow_cidrs, c.pull.n_allow_cidrs, (const struct sockaddr *)peer);
        config_done(&c);
        if (trusted != status || trusted != pull)
                fail_msg("%s: trusted_proxies %d, status %d, pull %d", entries, trusted, status, pull);
        return trusted;
}

static const struct {
        const char *entries;
        bool admits; /* 127.0.0.1 */
} cases[] = {
        {"127.0.0.1", true},
        {"127.0.0.0/8", true},
        {"::ffff:127.0.0.1", true},
        {"::ffff:127.0.0.1/128", true},
        {"::ffff:127.0.0.0/104", true},
        {"10.0.0.1, ::ffff:127.0.0.1/128", true},
        {"127.0.0.2", false},
        {"::ffff:127.0.0.2/128", false},
        {"::1", false},
        {"10.0.0.0/8, 2001:db8::/32", false},
};

/* A dual-stack listener: the peer is ::ffff:127.0.0.1. */
static void test_dual_stack_peer(void **state) {
        struct sockaddr_storage peer;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&peer;
        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (probe < 0)
                skip(); /* no IPv6 here: the proxy then listens IPv4 only */
        close(probe);
        loopback_peer(AF_INET6, &peer);
        assert_int_equal(peer.ss_family, AF_INET6);
        assert_true(IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (admitted(cases[i].entries, &peer) != cases[i].admits)
                        fail_msg("'%s' %s ::ffff:127.0.0.1", cases[i].entries,
                                 cases[i].admits ? "does not admit" : "admits");
}

/* An IPv4 listener: the same answers for 127.0.0.1. */
static void test_ipv4_peer(void **state) {
        struct sockaddr_storage peer;

        loopback_peer(AF_INET, &peer);
        assert_int_equal(peer.ss_family, AF_INET);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (admitted(cases[i].entries, &peer) != cases[i].admits)
                        fail_msg("'%s' %s 127.0.0.1", cases[i].entries, cases[i].admits ? "does not admit" : "admits");
}

/* cidr_unmap(): only a network wholly within ::ffff:0:0/96 is IPv4. */
static void test_unmap(void **state) {
        static const struct {
                const char *addr;
                unsigned prefix;
                const char *want;
        } unmap_cases[] = {
                {"::ffff:10.1.2.3", 128, "10.1.2.3/32"},
                {"::ffff:10.1.0.0", 112, "10.1.0.0/16"},
                {"::ffff:0:0", 96, "0.0.0.0/0"},
                {"::fffe:0:0", 95, "::fffe:0:0/95"},
                {"::", 0, "::/0"},
                {"2001:db8::", 32, "2001:db8::/32"},
                {"::10.1.2.3", 128, "::10.1.2.3/128"}, /* IPv4-compatible, not mapped */
                {"10.1.2.3", 32, "10.1.2.3/32"},
        };
        for (size_t i = 0; i < ELEMENTSOF(unmap_cases); i++) {
                Cidr c = {.prefix = unmap_cases[i].prefix};
                char buf[CIDR_STRLEN];

                c.family = inet_pton(AF_INET, unmap_cases[i].addr, c.addr) == 1 ? AF_INET : AF_INET6;
                if (c.family == AF_INET6)
                        assert_int_equal(inet_pton(AF_INET6, unmap_cases[i].addr, c.addr), 1);
                cidr_unmap(&c);
                cidr_format(&c, buf);
                assert_string_equal(buf, unmap_cases[i].want);
                if (c.family == AF_INET)
                        for (size_t b = 4; b < 16; b++)
                                assert_int_equal(c.addr[b], 0); /* lists compare whole (reload) */
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dual_stack_peer),
                cmocka_unit_test(test_ipv4_peer),
                cmocka_unit_test(test_unmap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
