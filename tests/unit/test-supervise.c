/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "supervise.h"

static void test_backoff_doubles_to_the_ceiling(void **state) {
        assert_int_equal(supervisor_backoff_ms(1, 1000, 30000), 1000);
        assert_int_equal(supervisor_backoff_ms(2, 1000, 30000), 2000);
        assert_int_equal(supervisor_backoff_ms(3, 1000, 30000), 4000);
        assert_int_equal(supervisor_backoff_ms(5, 1000, 30000), 16000);
        assert_int_equal(supervisor_backoff_ms(6, 1000, 30000), 30000);
        assert_int_equal(supervisor_backoff_ms(60, 1000, 30000), 30000);
        /* No overflow however many attempts. */
        assert_int_equal(supervisor_backoff_ms(4000000000u, 1000, 3600000), 3600000);
        assert_int_equal(supervisor_backoff_ms(1, 200, 100), 100);
}

static void test_names(void **state) {
        for (int s = 0; s < _SUP_STATE_MAX; s++)
                assert_string_not_equal(supervisor_state_to_string(s), "?");
        for (int e = 0; e < _SUP_EVENT_MAX; e++)
                assert_string_not_equal(supervisor_event_to_string(e), "?");
        assert_string_equal(supervisor_state_to_string(_SUP_STATE_MAX), "?");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff_doubles_to_the_ceiling),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
