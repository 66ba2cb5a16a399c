/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/config/reload.c: which changes a reload refuses (the
 * restart-only table, per owner), that every boundary setting is not among
 * them, and the outcome file's round trip.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "reload.h"
#include "tmpdir.h"

#define BASE "[tls]\nserver_names = registry.test\n"

static void load(Config *c, const char *extra) {
        _cleanup_free_ char *text = NULL, *error = NULL;

        assert_int_equal(config_init_defaults(c), 0);
        assert_true(asprintf(&text, BASE "%s", extra) > 0);
        if (config_load_string(c, text, "test.conf", &error) < 0)
                fail_msg("%s", error ? error : "?");
}

/* The restart-only keys of owners that differ between BASE and BASE+extra. */
static char *changes(const char *extra, unsigned owners, int *ret_n) {
        Config a, b;
        char *list = NULL;

        load(&a, "");
        load(&b, extra);
        *ret_n = reload_restart_only_changes(&a, &b, owners, &list);
        config_done(&a);
        config_done(&b);
        return list;
}

static void test_boundary_settings_apply(void **state) {
        /* Everything the workers enforce is applied by a reload. */
        static const char *const applied[] = {
                "[push]\nallow_cidrs = 10.0.0.0/8\n", "[pull]\nallow_cidrs = 192.168.0.0/16, ::1/128\n",
                "[pull]\nrate = 1r/s\nburst = 1\n",   "[push]\ndelay = no\nconn_per_ip = 3\n",
                "[proxy]\nmax_body = 10M\n",          "[proxy]\nheader_timeout = 3s\nidle_timeout = 5s\nread_timeout = 7s\n",
                "[health]\ncert_warn_days = 10\n",     "[supervise]\nprobe_interval = 1s\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(applied); i++) {
                int n;
                _cleanup_free_ char *list = changes(applied[i], RELOAD_SUPERVISOR | RELOAD_PROXY, &n);
                assert_int_equal(n, 0);
                assert_null(list);
        }
}

static void test_restart_only_named(void **state) {
        _cleanup_free_ char *list = NULL, *proxy = NULL, *sup = NULL;
        int n;

        list = changes("[push]\nlisten = 4444\n[proxy]\nworkers = 3\n[status]\nlisten = 127.0.0.1:9999\n",
                       RELOAD_SUPERVISOR | RELOAD_PROXY, &n);
        assert_int_equal(n, 3);
        assert_string_equal(list, "[push] listen, [proxy] workers, [status] listen");

        /* The proxy alone (`regvisor proxy`) does not own [status]. */
        proxy = changes("[proxy]\nworkers = 3\n[status]\nlisten = 127.0.0.1:9999\n", RELOAD_PROXY, &n);
        assert_int_equal(n, 1);
        assert_string_equal(proxy, "[proxy] workers");

        sup = changes("[registry]\nmemory_max = 2G\n", RELOAD_SUPERVISOR, &n);
        assert_int_equal(n, 1);
        assert_string_equal(sup, "[registry] memory_max");

        /* The signature store is started with [signing] store; a reload cannot move it. */
        {
                _cleanup_free_ char *store = changes("[signing]\nstore = registry\n", RELOAD_SUPERVISOR, &n);
                assert_int_equal(n, 1);
                assert_string_equal(store, "[signing] store");
        }
}

static void test_same_listen_spelled_alike(void **state) {
        _cleanup_free_ char *list = NULL;
        int n;

        /* "4443" is the default: naming it is no change. */
        list = changes("[push]\nlisten = 4443\n", RELOAD_PROXY, &n);
        assert_int_equal(n, 0);
        assert_null(list);
}

static void test_status_round_trip(void **state) {
        char dir[TMPDIR_PATH_MAX], path[TMPDIR_PATH_MAX + 32];
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        unsigned long seq;
        bool ok;

        assert_int_equal(tmpdir_make(dir, sizeof dir, "test-reload"), 0);
        (void) snprintf(path, sizeof path, "%s/status", dir);

        assert_int_equal(reload_status_read(path, &seq, &ok, &msg), 0);
        assert_int_equal(seq, 0);
        assert_null(msg);

        assert_int_equal(reload_status_write(path, 7, false, "a.conf:3: bad\nsecond line"), 0);
        assert_int_equal(reload_status_read(path, &seq, &ok, &msg), 0);
        assert_int_equal(seq, 7);
        assert_false(ok);
        assert_string_equal(msg, "a.conf:3: bad second line");

        assert_int_equal(reload_status_write(path, 8, true, "applied"), 0);
        assert_int_equal(reload_status_read(path, &seq, &ok, &msg2), 0);
        assert_int_equal(seq, 8);
        assert_true(ok);
        assert_string_equal(msg2, "applied");

        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

static void write_conf(const char *path, const char *extra) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        (void) fputs(BASE, f);
        (void) fputs(extra, f);
        assert_int_equal(fclose(f), 0);
}

/* reload_check_file(): the one load-and-refuse of the supervisor and of
 * the proxy's command line: a file that changes only applied keys comes
 * back, one that changes a restart-only key of the owners is refused with
 * its name and how to restart, a broken one with FILE:LINE. */
static void test_check_file(void **state) {
        char dir[TMPDIR_PATH_MAX], path[TMPDIR_PATH_MAX + 32];
        _cleanup_free_ char *refusal = NULL, *refusal2 = NULL;
        Config running, fresh;

        assert_int_equal(tmpdir_make(dir, sizeof dir, "test-reload"), 0);
        (void) snprintf(path, sizeof path, "%s/regvisor.conf", dir);
        load(&running, "");

        write_conf(path, "[proxy]\nidle_timeout = 5s\n");
        assert_int_equal(reload_check_file(path, &running, RELOAD_PROXY, "a restart", &fresh, &refusal), 0);
        assert_null(refusal);
        assert_int_equal(fresh.proxy.idle_timeout, 5);
        config_done(&fresh);

        write_conf(path, "[push]\nlisten = 4444\n");
        assert_true(reload_check_file(path, &running, RELOAD_PROXY, "a restart", &fresh, &refusal) < 0);
        assert_non_null(refusal);
        assert_non_null(strstr(refusal, "[push] listen changes only with a restart"));
        assert_non_null(strstr(refusal, path));

        write_conf(path, "[proxy]\nno_such_key = 1\n");
        assert_true(reload_check_file(path, &running, RELOAD_PROXY, "a restart", &fresh, &refusal2) < 0);
        assert_non_null(refusal2);
        assert_non_null(strstr(refusal2, "regvisor.conf:4:"));

        config_done(&running);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_boundary_settings_apply),
                cmocka_unit_test(test_restart_only_named),
                cmocka_unit_test(test_same_listen_spelled_alike),
                cmocka_unit_test(test_status_round_trip),
                cmocka_unit_test(test_check_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
