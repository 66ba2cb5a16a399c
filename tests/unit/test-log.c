/* SPDX-License-Identifier: MIT */
/*
 * Tests for log_escape_value(): bytes a client chose stay one field of a
 * key=value line, whatever they contain.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "log.h"

static void assert_escaped(const char *in, size_t n, const char *want) {
        char buf[64];
        assert_string_equal(log_escape_value(in, n, buf, sizeof(buf)), want);
}

#define ESC(in, want) assert_escaped((in), sizeof(in) - 1, (want))

static void test_plain_values_unchanged(void **state) {
        (void)state;
        ESC("GET", "GET");
        ESC("/v2/library/alpine/manifests/latest", "/v2/library/alpine/manifests/latest");
        ESC("CN=ci,O=regvisor", "CN=ci,O=regvisor");
        ESC("/v2/a/blobs/uploads/x?digest=sha256:00", "/v2/a/blobs/uploads/x?digest=sha256:00");
        assert_escaped(NULL, 0, "-");
        ESC("", "-");
}

static void test_forged_fields_quoted(void **state) {
        (void)state;
        /* A subject that would add fields: spaces and '=' end up inside one
         * quoted value. */
        ESC("CN=x status=200 path=/v2/", "\"CN=x status=200 path=/v2/\"");
        ESC("a\"b\\c", "\"a\\\"b\\\\c\"");
        ESC("x\" evil=\"1", "\"x\\\" evil=\\\"1\"");
}

static void test_forged_lines_hex(void **state) {
        (void)state;
        ESC("/v2/\r\nport=push status=201", "\"/v2/\\x0d\\x0aport=push status=201\"");
        ESC("a\tb\x7f", "\"a\\x09b\\x7f\"");
        ESC("caf\xc3\xa9", "\"caf\\xc3\\xa9\"");
        /* NUL inside the given length is a byte like any other. */
        assert_escaped("a\0b", 3, "\"a\\x00b\"");
}

static void test_truncated_stays_one_field(void **state) {
        char buf[16], big[200];
        (void)state;

        memset(big, 'a', sizeof(big));
        assert_string_equal(log_escape_value(big, sizeof(big), buf, sizeof(buf)), "aaaaaaaaaaaaaaa");
        big[0] = ' ';
        log_escape_value(big, sizeof(big), buf, sizeof(buf));
        assert_true(strlen(buf) < sizeof(buf));
        assert_true(buf[0] == '"' && buf[strlen(buf) - 1] == '"');
        assert_non_null(strstr(buf, "...\""));
        /* Never cut inside an escape: \x.. is whole or absent. */
        for (size_t size = 6; size < 40; size++) {
                char b[40];
                const char *v = log_escape_value("\r\r\r\r\r\r\r\r\r\r\r\r", 12, b, size);
                size_t len = strlen(v);
                assert_true(len < size);
                assert_int_equal(v[0], '"');
                assert_int_equal(v[len - 1], '"');
                assert_true((len - 2) % 4 == 0 || strstr(v, "...\"") != NULL);
                if (strstr(v, "...")) {
                        size_t body = len - 2 - 3;
                        assert_int_equal(body % 4, 0);
                }
        }
        /* Too small for a quoted value at all. */
        assert_string_equal(log_escape_value(" ", 1, buf, 5), "-");
}

static void test_cstring(void **state) {
        char buf[32];
        (void)state;
        assert_string_equal(log_escape(NULL, buf, sizeof(buf)), "-");
        assert_string_equal(log_escape("a b", buf, sizeof(buf)), "\"a b\"");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_values_unchanged),
                cmocka_unit_test(test_forged_fields_quoted),
                cmocka_unit_test(test_forged_lines_hex),
                cmocka_unit_test(test_truncated_stays_one_field),
                cmocka_unit_test(test_cstring),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
