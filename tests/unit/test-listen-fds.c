/* SPDX-License-Identifier: MIT */
/* proxy/listen-fds.c: a socket passed by systemd is accepted only for the
 * address the configuration names. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "listen-fds.h"

static SocketAddress ip(const char *host, uint16_t port) {
        SocketAddress a;
        assert_int_equal(sockaddr_from_ip(host, port, &a), 0);
        return a;
}

static void test_wildcard(void **state) {
        SocketAddress v6 = ip(NULL, 443), v4 = ip("0.0.0.0", 443);

        /* "443": [::] dual-stack, or 0.0.0.0 where IPv6 is missing. */
        assert_true(listen_fd_matches(&v6, NULL, 443));
        assert_true(listen_fd_matches(&v4, NULL, 443));
        assert_false(listen_fd_matches(&v6, NULL, 4443));
        /* A specific address is not the wildcard, nor the reverse. */
        SocketAddress lo = ip("127.0.0.1", 443);
        assert_false(listen_fd_matches(&lo, NULL, 443));
        assert_false(listen_fd_matches(&v6, "::1", 443));
}

static void test_specific(void **state) {
        SocketAddress a = ip("198.51.100.7", 443), b = ip("2001:db8::1", 4443);
        char text[64];

        assert_true(listen_fd_matches(&a, "198.51.100.7", 443));
        assert_false(listen_fd_matches(&a, "198.51.100.8", 443));
        assert_false(listen_fd_matches(&a, "198.51.100.7", 444));
        assert_true(listen_fd_matches(&b, "[2001:db8::1]", 4443));
        assert_true(listen_fd_matches(&b, "2001:db8::1", 4443));
        assert_false(listen_fd_matches(&b, "2001:db8::2", 4443));
        assert_false(listen_fd_matches(&b, "198.51.100.7", 4443));
        listen_fd_text(&a, text);
        assert_string_equal(text, "198.51.100.7:443");
        listen_fd_text(&b, text);
        assert_string_equal(text, "[2001:db8::1]:4443");
}

static void test_not_ip(void **state) {
        SocketAddress u;

        assert_int_equal(sockaddr_from_unix("/run/x.sock", &u), 0);
        assert_false(listen_fd_matches(&u, NULL, 443));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_wildcard),
                cmocka_unit_test(test_specific),
                cmocka_unit_test(test_not_ip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
