/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/prom.c, the one Prometheus text writer behind /metrics
 * (the proxy's counters, the health checks, the supervisor).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "prom.h"

typedef struct {
        FILE *f;
        char *text;
        size_t size;
} Out;

static void out_open(Out *o) {
        *o = (Out){};
        o->f = open_memstream(&o->text, &o->size);
        assert_non_null(o->f);
}

/* Closes the stream and checks it holds exactly want. */
static void out_expect(Out *o, const char *want) {
        assert_int_equal(fclose(o->f), 0);
        assert_string_equal(o->text, want);
        free(o->text);
}

static void test_family(void **state) {
        Out o;
        (void) state;

        out_open(&o);
        prom_family(o.f, "regvisor_x_total", "counter", "Things that happened.");
        out_expect(&o, "# HELP regvisor_x_total Things that happened.\n# TYPE regvisor_x_total counter\n");
}

static void test_samples(void **state) {
        Out o;
        (void) state;

        out_open(&o);
        prom_sample_u64(o.f, "a", NULL, 0, 0);
        prom_sample_u64(o.f, "a", NULL, 0, UINT64_MAX);
        prom_sample_i64(o.f, "b", &(PromLabel){"check", "registry-http"}, 1, -3);
        prom_sample_i64(o.f, "c", (PromLabel[]){{"port", "pull"}, {"method", "GET"}, {"status", "2xx"}}, 3,
                        INT64_MIN);
        prom_sample(o.f, "d_bucket", (PromLabel[]){{"port", "push"}, {"le", "+Inf"}}, 2, "0.000250");
        out_expect(&o, "a 0\n"
                       "a 18446744073709551615\n"
                       "b{check=\"registry-http\"} -3\n"
                       "c{port=\"pull\",method=\"GET\",status=\"2xx\"} -9223372036854775808\n"
                       "d_bucket{port=\"push\",le=\"+Inf\"} 0.000250\n");
}

/* A label value is any text: backslash, quote and newline are escaped, the
 * rest (UTF-8 included) passes unchanged, so one sample stays one line. */
static void test_label_escaping(void **state) {
        Out o;
        (void) state;

        out_open(&o);
        prom_label_value(o.f, "a\\b\"c\nd/é");
        out_expect(&o, "a\\\\b\\\"c\\nd/é");

        out_open(&o);
        prom_sample_u64(o.f, "x", &(PromLabel){"certificate", "client/\"evil\"\nx 1"}, 1, 7);
        out_expect(&o, "x{certificate=\"client/\\\"evil\\\"\\nx 1\"} 7\n");

        out_open(&o);
        prom_sample_u64(o.f, "x", &(PromLabel){"k", ""}, 1, 1);
        out_expect(&o, "x{k=\"\"} 1\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_family),
                cmocka_unit_test(test_samples),
                cmocka_unit_test(test_label_escaping),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
