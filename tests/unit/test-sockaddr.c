/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/sockaddr.c: the one way a configured address becomes a
 * socket address (proxy listeners and upstream, probes, status, health).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "config-sockaddr.h"

/* s parses to family, canonical address text and port. */
static void assert_parses(const char *s, int family, const char *text, uint16_t port) {
        SocketAddress a;
        char buf[INET6_ADDRSTRLEN];

        assert_int_equal(sockaddr_parse(s, &a), 0);
        assert_int_equal(a.sa.sa_family, family);
        assert_int_equal(sockaddr_ip_text(&a, buf), 0);
        assert_string_equal(buf, text);
        if (family == AF_INET) {
                assert_int_equal(a.len, sizeof(struct sockaddr_in));
                assert_int_equal(ntohs(a.in.sin_port), port);
        } else {
                assert_int_equal(a.len, sizeof(struct sockaddr_in6));
                assert_int_equal(ntohs(a.in6.sin6_port), port);
        }
}

static void assert_refused(const char *s) {
        SocketAddress a = {.len = 4242};

        assert_int_equal(sockaddr_parse(s, &a), -EINVAL);
        assert_int_equal(a.len, 4242); /* untouched on failure */
}

static void test_ipv4(void **state) {
        (void) state;
        assert_parses("127.0.0.1:5000", AF_INET, "127.0.0.1", 5000);
        assert_parses("0.0.0.0:443", AF_INET, "0.0.0.0", 443);
        assert_parses("192.0.2.7:65535", AF_INET, "192.0.2.7", 65535);
        assert_refused("192.0.2:80");
        assert_refused("192.0.2.256:80");
        assert_refused("registry.test:443"); /* names need a resolver: never here */
}

static void test_ipv6(void **state) {
        (void) state;
        assert_parses("[::1]:5000", AF_INET6, "::1", 5000);
        assert_parses("[::]:443", AF_INET6, "::", 443);
        assert_parses("[2001:DB8:0::1]:4443", AF_INET6, "2001:db8::1", 4443);
        assert_parses("[::ffff:10.0.0.1]:80", AF_INET6, "::ffff:10.0.0.1", 80);
        assert_refused("[10.0.0.1]:80"); /* brackets hold IPv6 only */
        assert_refused("[::1:80");
        assert_refused("[]:80");
        assert_refused("[fe80::1%eth0]:80"); /* no zones: a config has no scope */
}

static void test_missing_brackets(void **state) {
        (void) state;
        assert_refused("::1:5000");
        assert_refused("2001:db8::1:443");
        assert_refused("::1]:80");
}

static void test_bad_ports(void **state) {
        (void) state;
        assert_refused("127.0.0.1:0");
        assert_refused("127.0.0.1:65536");
        assert_refused("127.0.0.1:99999999999999999999");
        assert_refused("127.0.0.1:");
        assert_refused("127.0.0.1:-1");
        assert_refused("127.0.0.1:+80");
        assert_refused("127.0.0.1: 80");
        assert_refused("127.0.0.1:0x50");
        assert_refused("[::1]:");
        assert_refused("[::1]");
        assert_refused(":80");
        assert_refused("");
        assert_refused("0");
        assert_refused("65536");
}

static void test_bare_port_is_wildcard(void **state) {
        SocketAddress a;
        (void) state;

        assert_int_equal(sockaddr_parse("443", &a), 0);
        assert_int_equal(a.sa.sa_family, AF_INET6);
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr));
        assert_int_equal(ntohs(a.in6.sin6_port), 443);
        assert_int_equal(sockaddr_from_listen(&(ListenAddress){.port = 4443}, &a), 0);
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&a.in6.sin6_addr));
        assert_int_equal(ntohs(a.in6.sin6_port), 4443);
}

static void test_from_ip(void **state) {
        SocketAddress a;
        (void) state;

        /* Listen hosts come bracketed or not: the same address either way. */
        assert_int_equal(sockaddr_from_ip("[::1]", 80, &a), 0);
        assert_int_equal(a.sa.sa_family, AF_INET6);
        assert_true(IN6_IS_ADDR_LOOPBACK(&a.in6.sin6_addr));
        assert_int_equal(sockaddr_from_ip("::1", 80, &a), 0);
        assert_true(IN6_IS_ADDR_LOOPBACK(&a.in6.sin6_addr));
        assert_int_equal(sockaddr_from_ip("10.1.2.3", 80, &a), 0);
        assert_int_equal(a.sa.sa_family, AF_INET);
        assert_int_equal(sockaddr_from_ip("", 80, &a), -EINVAL);
        assert_int_equal(sockaddr_from_ip("[10.1.2.3]", 80, &a), -EINVAL);
        assert_int_equal(sockaddr_from_ip("localhost", 80, &a), -EINVAL);
}

static void test_unix(void **state) {
        char long_path[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 1];
        SocketAddress a;
        (void) state;

        assert_int_equal(sockaddr_parse("unix:/run/regvisor/registry/registry.sock", &a), 0);
        assert_int_equal(a.sa.sa_family, AF_UNIX);
        assert_string_equal(a.un.sun_path, "/run/regvisor/registry/registry.sock");
        assert_int_equal(a.len, offsetof(struct sockaddr_un, sun_path) + strlen(a.un.sun_path) + 1);
        assert_int_equal(sockaddr_parse("unix:", &a), -EINVAL);

        memset(long_path, 'a', sizeof long_path - 1);
        long_path[0] = '/';
        long_path[sizeof long_path - 1] = 0;
        assert_int_equal(sockaddr_from_unix(long_path, &a), -ENAMETOOLONG);
        long_path[sizeof long_path - 2] = 0; /* exactly fills sun_path with its NUL */
        assert_int_equal(sockaddr_from_unix(long_path, &a), 0);

        assert_int_equal(sockaddr_from_upstream(&(UpstreamAddress){.kind = LISTEN_UNIX, .path = (char *) "/s"}, &a), 0);
        assert_int_equal(a.sa.sa_family, AF_UNIX);
        assert_int_equal(sockaddr_from_upstream(
                                 &(UpstreamAddress){.kind = LISTEN_TCP, .host = (char *) "::1", .port = 5000}, &a),
                         0);
        assert_int_equal(a.sa.sa_family, AF_INET6);
        assert_int_equal(sockaddr_from_upstream(&(UpstreamAddress){.kind = LISTEN_TCP, .port = 5000}, &a), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ipv4),           cmocka_unit_test(test_ipv6),
                cmocka_unit_test(test_missing_brackets), cmocka_unit_test(test_bad_ports),
                cmocka_unit_test(test_bare_port_is_wildcard), cmocka_unit_test(test_from_ip),
                cmocka_unit_test(test_unix),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
