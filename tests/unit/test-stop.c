/* SPDX-License-Identifier: MIT */
/*
 * The stop budget (common/config/stop.h) against the files systemd reads:
 * units/regvisor.service's TimeoutStopSec= must leave room for the proxy's
 * drain, the registry's StopUnit at the longest stop_timeout the
 * configuration accepts, and the margin; the registry's user unit must give
 * up on its container (SIGKILL) no later than the supervisor gives up on
 * the StopUnit job. Run from the repository root (make unit does).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "fileio.h"
#include "macro.h"
#include "proxy.h"
#include "render.h"
#include "stop.h"

#define SERVICE_UNIT "units/regvisor.service"

/* A systemd time span in seconds ("90s", "90", "1min 30s", "2min"), or -1. */
static long parse_timespan_sec(const char *v) {
        long total = 0;

        while (*v) {
                char *end;
                long n;

                while (*v == ' ')
                        v++;
                if (!isdigit((unsigned char) *v))
                        return -1;
                n = strtol(v, &end, 10);
                v = end;
                if (strncmp(v, "min", 3) == 0)
                        n *= 60, v += 3;
                else if (strncmp(v, "sec", 3) == 0)
                        v += 3;
                else if (*v == 's' || *v == ' ' || *v == 0)
                        v += *v == 's';
                else
                        return -1;
                total += n;
                while (*v == ' ')
                        v++;
        }
        return total;
}

/* The value of the last `KEY=` line of a unit text, in seconds; fails the
 * test when the key is missing or not a time span. */
static long unit_timespan(const char *text, const char *key, const char *what) {
        const char *line = text, *found = NULL;
        size_t klen = strlen(key);

        for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, key, klen) == 0 && line[klen] == '=')
                        found = line + klen + 1;
        if (!found)
                fail_msg("%s has no %s=", what, key);
        char value[64];
        size_t n = strcspn(found, "\n");
        if (n >= sizeof value)
                fail_msg("%s: %s= too long", what, key);
        memcpy(value, found, n);
        value[n] = 0;
        long sec = parse_timespan_sec(value);
        if (sec < 0)
                fail_msg("%s: %s=%s is not a time span this test reads", what, key, value);
        return sec;
}

static void test_timespan_parser(void **state) {
        assert_int_equal(parse_timespan_sec("90s"), 90);
        assert_int_equal(parse_timespan_sec("90"), 90);
        assert_int_equal(parse_timespan_sec("1min 30s"), 90);
        assert_int_equal(parse_timespan_sec("1min30s"), 90);
        assert_int_equal(parse_timespan_sec("2min"), 120);
        assert_int_equal(parse_timespan_sec("infinity"), -1);
        assert_int_equal(parse_timespan_sec("5ms"), -1);
}

static void test_service_unit_holds_the_budget(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t n;

        assert_int_equal(read_file(SERVICE_UNIT, 1 << 20, &text, &n), 0);
        long timeout = unit_timespan(text, "TimeoutStopSec", SERVICE_UNIT);

        /* The header says what the unit says... */
        assert_int_equal(timeout, REGVISOR_TIMEOUT_STOP_SEC);
        /* ...and the worst stop fits inside it with the margin to spare. */
        if (REGVISOR_PROXY_STOP_SEC + REGVISOR_STOP_TIMEOUT_MAX_SEC + REGVISOR_STOP_MARGIN_SEC > timeout)
                fail_msg("drain %d s + stop_timeout up to %d s + margin %d s > TimeoutStopSec=%ld s",
                         REGVISOR_PROXY_STOP_SEC, REGVISOR_STOP_TIMEOUT_MAX_SEC, REGVISOR_STOP_MARGIN_SEC,
                         timeout);
        assert_true(REGVISOR_STOP_MARGIN_SEC >= 5);
        /* The proxy's own drain ends before the supervisor kills it. */
        assert_true(PROXY_DRAIN_SECONDS < REGVISOR_PROXY_STOP_SEC);
        /* systemd would otherwise SIGKILL a running proxy first. */
        assert_true(unit_timespan(text, "WatchdogSec", SERVICE_UNIT) < timeout);
}

static int load(const char *extra, Config *c, char **ret_error) {
        _cleanup_free_ char *text = NULL;

        assert_int_equal(config_init_defaults(c), 0);
        assert_true(asprintf(&text, "[tls]\nserver_names = registry.test\n%s", extra) > 0);
        return config_load_string(c, text, "test.conf", ret_error);
}

/* The configuration refuses a stop_timeout the budget has no room for. */
static void test_stop_timeout_bounded_by_the_budget(void **state) {
        char ok[64], over[64];
        Config c;
        char *err = NULL;

        (void) snprintf(ok, sizeof ok, "[supervise]\nstop_timeout = %ds\n", REGVISOR_STOP_TIMEOUT_MAX_SEC);
        (void) snprintf(over, sizeof over, "[supervise]\nstop_timeout = %ds\n", REGVISOR_STOP_TIMEOUT_MAX_SEC + 1);

        assert_int_equal(load("", &c, &err), 0);
        assert_true(c.stop_timeout_ms <= REGVISOR_STOP_TIMEOUT_MAX_SEC * 1000u);
        config_done(&c);

        assert_int_equal(load(ok, &c, &err), 0);
        assert_int_equal(c.stop_timeout_ms, REGVISOR_STOP_TIMEOUT_MAX_SEC * 1000u);
        config_done(&c);

        assert_true(load(over, &c, &err) < 0);
        assert_non_null(err);
        assert_non_null(strstr(err, "stop_timeout"));
        free(err);
        config_done(&c);
}

/* The registry's user unit (rendered by provision) kills a container that
 * does not stop before the supervisor's default stop_timeout runs out, so
 * the StopUnit job ends by systemd's hand, not by the supervisor leaving. */
static void test_registry_unit_stops_within_stop_timeout(void **state) {
        _cleanup_free_ char *unit = NULL;
        char *err = NULL;
        Config c;

        assert_int_equal(load("", &c, &err), 0);
        assert_int_equal(render_registry_unit(&c, 1000, &unit), 0);
        long timeout = unit_timespan(unit, "TimeoutStopSec", "the registry unit");
        assert_true(timeout * 1000 <= (long) c.stop_timeout_ms);
        assert_true(timeout <= REGVISOR_STOP_TIMEOUT_MAX_SEC);
        /* podman stop's own grace (-t) ends before systemd's. */
        const char *t = strstr(unit, "stop --ignore -t ");
        assert_non_null(t);
        assert_true(atol(t + strlen("stop --ignore -t ")) < timeout);
        config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_timespan_parser),
                cmocka_unit_test(test_service_unit_holds_the_budget),
                cmocka_unit_test(test_stop_timeout_bounded_by_the_budget),
                cmocka_unit_test(test_registry_unit_stops_within_stop_timeout),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
