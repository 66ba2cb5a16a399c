/* SPDX-License-Identifier: MIT */
/*
 * Tests for probe_proxy_host(): where the supervisor's port probe and
 * `regvisor health` reach a proxy port, from its configured listen address.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "probe.h"

static void assert_host(const char *listen, int want_r, const char *want_host) {
        PortConfig port = {.listen = {.host = (char *) listen, .port = 443}};
        char host[INET6_ADDRSTRLEN] = "";

        assert_int_equal(probe_proxy_host(&port, host), want_r);
        if (want_host)
                assert_string_equal(host, want_host);
}

static void test_listen_address_itself(void **state) {
        (void) state;
        assert_host("127.0.0.1", 0, "127.0.0.1");
        assert_host("192.0.2.7", 0, "192.0.2.7");
        assert_host("::1", 0, "::1");
        assert_host("[::1]", 0, "::1");
        assert_host("[2001:DB8::1]", 0, "2001:db8::1");
}

static void test_wildcards_use_loopback(void **state) {
        (void) state;
        assert_host(NULL, 0, "127.0.0.1");
        assert_host("0.0.0.0", 0, "127.0.0.1");
        assert_host("::", 0, "::1");
        assert_host("[::]", 0, "::1");
}

static void test_not_an_address(void **state) {
        (void) state;
        assert_host("registry.test", -EINVAL, NULL);
        /* Brackets hold IPv6 only, as in the configuration's grammar (which
         * never lets this through); the probe used to strip them itself. */
        assert_host("[127.0.0.1]", -EINVAL, NULL);
        assert_host("", -EINVAL, NULL);
}

/* A listen address the port's own allow_cidrs leave out: 1, and the
 * address anyway (the proxy closes such connections before TLS). */
static void test_not_admitted(void **state) {
        PortConfig port = {.listen = {.host = (char *) "127.0.0.1", .port = 443}, .n_allow_cidrs = 1};
        char host[INET6_ADDRSTRLEN] = "";
        (void) state;

        port.allow_cidrs[0] = (Cidr){.family = AF_INET, .addr = {10}, .prefix = 8};
        assert_int_equal(probe_proxy_host(&port, host), 1);
        assert_string_equal(host, "127.0.0.1");
        port.allow_cidrs[0] = (Cidr){.family = AF_INET, .addr = {127}, .prefix = 8};
        assert_int_equal(probe_proxy_host(&port, host), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_listen_address_itself),
                cmocka_unit_test(test_wildcards_use_loopback),
                cmocka_unit_test(test_not_an_address),
                cmocka_unit_test(test_not_admitted),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
