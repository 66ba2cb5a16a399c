/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/scope.c: push scopes, the configuration lines, the
 * matcher, and which repositories a write names.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scope.h"

/* A table from lines "NAME", "PATTERNS" pairs, through the config path. */
static void table_from(ScopeTable *t, const char *const *lines, size_t n) {
        char *text = NULL;
        const char *why = NULL;

        for (size_t i = 0; i < n; i += 2)
                assert_int_equal(scope_entry_append(&text, lines[i], lines[i + 1], false, &why), 0);
        assert_int_equal(scope_table_parse(text, t), 0);
        free(text);
}

static ScopeVerdict check(const ScopeTable *t, const char *cn, const char *method, const char *path) {
        return scope_check_request(t, cn, method, strlen(method), path, strlen(path), NULL, NULL);
}

static void test_entry_canonical(void **state) {
        char *text = NULL;
        const char *why = NULL;

        (void)state;
        assert_int_equal(scope_entry_append(&text, "build-01", "app/*, tools/*", false, &why), 0);
        assert_int_equal(scope_entry_append(&text, "admin", "*", false, &why), 0);
        assert_int_equal(scope_entry_append(&text, "admin", "x", true, &why), 0);
        assert_string_equal(text, "build-01=app/*,tools/*\nadmin=*,x\n");
        /* A continuation of a line that is not the last one. */
        assert_int_equal(scope_entry_append(&text, "build-01", "y", true, &why), -EINVAL);
        /* A second line for one client. */
        why = NULL;
        assert_int_equal(scope_entry_append(&text, "admin", "z", false, &why), -EINVAL);
        assert_non_null(why);
        assert_string_equal(text, "build-01=app/*,tools/*\nadmin=*,x\n");
        free(text);
}

static void test_entry_refused(void **state) {
        static const char *const bad_patterns[] = {
                "",          "app*",     "*/app",  "app/*/x",  "App/*",  "app/../x", "../x",    "app//x",
                "/app",      "app/",     "app/**", "a..b",     "app/.",  "-app",     "app/ *",  "ａpp",
                "app/x*",    "app/*x",   "**",     "app/%2e",  "app\\x", "app;x",
        };
        static const char *const bad_names[] = {"", "Build", "-x", ".x", "a b", "a=b",
                                                "01234567890123456789012345678901234567890123456789012345678901234"};

        (void)state;
        for (size_t i = 0; i < sizeof(bad_patterns) / sizeof(*bad_patterns); i++) {
                char *text = NULL;
                const char *why = NULL;
                int r = scope_entry_append(&text, "c", bad_patterns[i], false, &why);
                if (strcmp(bad_patterns[i], "app/ *") == 0) {
                        /* Blanks separate: "app/" is not a pattern. */
                        assert_int_equal(r, -EINVAL);
                        continue;
                }
                if (r != -EINVAL)
                        fail_msg("pattern '%s' accepted", bad_patterns[i]);
                assert_non_null(why);
                assert_null(text);
        }
        for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++) {
                char *text = NULL;
                const char *why = NULL;
                if (scope_entry_append(&text, bad_names[i], "app/*", false, &why) != -EINVAL)
                        fail_msg("name '%s' accepted", bad_names[i]);
                assert_null(text);
        }
        /* At most SCOPE_MAX_PATTERNS, continuations included. */
        char many[SCOPE_MAX_PATTERNS * 8] = "";
        for (unsigned i = 0; i < SCOPE_MAX_PATTERNS; i++)
                sprintf(many + strlen(many), "r%u,", i);
        char *text = NULL;
        const char *why;
        assert_int_equal(scope_entry_append(&text, "c", many, false, &why), 0);
        assert_int_equal(scope_entry_append(&text, "c", "one-more", true, &why), -EINVAL);
        free(text);
}

static void test_table_parse_refuses_non_canonical(void **state) {
        ScopeTable t = {};

        (void)state;
        assert_int_equal(scope_table_parse(NULL, &t), 0);
        assert_int_equal(t.n_clients, 0);
        assert_int_equal(scope_table_parse("", &t), 0);
        assert_int_equal(scope_table_parse("a=x", &t), -EINVAL);        /* no newline */
        assert_int_equal(scope_table_parse("a=x\na=y\n", &t), -EINVAL); /* duplicate */
        assert_int_equal(scope_table_parse("a=\n", &t), -EINVAL);
        assert_int_equal(scope_table_parse("A=x\n", &t), -EINVAL);
        assert_int_equal(scope_table_parse("ax\n", &t), -EINVAL);
        assert_int_equal(scope_table_parse("a=x/*/y\n", &t), -EINVAL);
        assert_int_equal(t.n_clients, 0);
}

static void test_matcher_boundaries(void **state) {
        static const char *const lines[] = {"build-01", "app/*, tools/*", "exact", "app", "all", "*"};
        ScopeTable t = {};

        (void)state;
        table_from(&t, lines, sizeof(lines) / sizeof(*lines));
        const ScopeClient *b = scope_table_find(&t, "build-01"), *e = scope_table_find(&t, "exact"),
                          *a = scope_table_find(&t, "all");
        assert_non_null(b);
        assert_non_null(e);
        assert_non_null(a);
        assert_null(scope_table_find(&t, "Build-01"));
        assert_null(scope_table_find(&t, "build-0"));
        assert_null(scope_table_find(&t, NULL));

#define ALLOWS(c, r) scope_client_allows(c, r, strlen(r))
        assert_true(ALLOWS(b, "app/x"));
        assert_true(ALLOWS(b, "app/x/y"));
        assert_true(ALLOWS(b, "tools/y"));
        assert_false(ALLOWS(b, "app"));      /* the subtree pattern is below app only */
        assert_false(ALLOWS(b, "apple/x"));  /* a component boundary */
        assert_false(ALLOWS(b, "app-x/y"));
        assert_false(ALLOWS(b, "App/x"));    /* case-sensitive (and invalid) */
        assert_false(ALLOWS(b, "app/../x")); /* not a name */
        assert_false(ALLOWS(b, "app//x"));
        assert_false(ALLOWS(b, "app/"));
        assert_false(ALLOWS(b, "x/app/y"));
        assert_true(ALLOWS(e, "app"));
        assert_false(ALLOWS(e, "app/x"));
        assert_false(ALLOWS(e, "ap"));
        assert_true(ALLOWS(a, "anything/at/all"));
        assert_false(ALLOWS(a, "Not-A-Name"));
#undef ALLOWS
        scope_table_done(&t);
        scope_table_done(&t);
}

static void test_repositories_of_a_path(void **state) {
        const char *r[4];
        size_t l[4];

        (void)state;
#define REPOS(p) scope_request_repositories(p, strlen(p), r, l, 4)
        assert_int_equal(REPOS("/v2/app/x/manifests/latest"), 1);
        assert_int_equal(l[0], 5);
        assert_memory_equal(r[0], "app/x", 5);
        assert_int_equal(REPOS("/v2/app/x/blobs/uploads/"), 1);
        assert_memory_equal(r[0], "app/x", l[0]);
        assert_int_equal(REPOS("/v2/app/x/blobs/uploads/0b1c-uuid"), 1);
        assert_int_equal(l[0], 5);
        assert_int_equal(REPOS("/v2/app/x/blobs/sha256:00"), 1);
        assert_int_equal(REPOS("/extensions/v2/app/x/signatures/sha256:00"), 1);
        assert_memory_equal(r[0], "app/x", l[0]);
        /* Components the router could read either way: every reading. */
        assert_int_equal(REPOS("/v2/tools/manifests/x/blobs/uploads/"), 1);
        assert_memory_equal(r[0], "tools/manifests/x", l[0]);
        assert_int_equal(REPOS("/v2/app/blobs/blobs/x"), 1);
        assert_memory_equal(r[0], "app/blobs", l[0]);
        /* Nothing to name. */
        assert_int_equal(REPOS("/v2/"), 0);
        assert_int_equal(REPOS("/v2"), 0);
        assert_int_equal(REPOS("/v2/_catalog"), 0);
        assert_int_equal(REPOS("/v2/manifests/x"), 0);
        assert_int_equal(REPOS("/other/app/manifests/x"), 0);
#undef REPOS
}

static void test_requests(void **state) {
        static const char *const lines[] = {"build-01", "app/*"};
        ScopeTable t = {}, none = {};
        const char *repo;
        size_t len;

        (void)state;
        table_from(&t, lines, 2);
        /* No scopes: as before, every certificate everywhere. */
        assert_int_equal(check(&none, "anyone", "PUT", "/v2/tools/y/manifests/1"), SCOPE_ALLOW);
        assert_int_equal(check(NULL, "anyone", "PUT", "/v2/tools/y/manifests/1"), SCOPE_ALLOW);

        /* Reads are never scoped. */
        assert_int_equal(check(&t, "build-01", "GET", "/v2/tools/y/manifests/1"), SCOPE_ALLOW);
        assert_int_equal(check(&t, "stranger", "HEAD", "/v2/tools/y/blobs/sha256:00"), SCOPE_ALLOW);
        assert_int_equal(check(&t, "stranger", "GET", "/v2/"), SCOPE_ALLOW);

        /* Every write method and endpoint. */
        static const char *const writes[][3] = {
                {"POST", "/v2/", "/blobs/uploads/"},   {"PATCH", "/v2/", "/blobs/uploads/u-1"},
                {"PUT", "/v2/", "/blobs/uploads/u-1"}, {"DELETE", "/v2/", "/blobs/uploads/u-1"},
                {"PUT", "/v2/", "/manifests/v1"},      {"DELETE", "/v2/", "/manifests/sha256:00"},
                {"DELETE", "/v2/", "/blobs/sha256:00"}, {"PUT", "/extensions/v2/", "/signatures/sha256:00"},
                {"get", "/v2/", "/manifests/v1"}, /* methods are case-sensitive: "get" is not a read */
        };
        for (size_t i = 0; i < sizeof(writes) / sizeof(*writes); i++) {
                char in[128], out[128];
                snprintf(in, sizeof(in), "%sapp/x%s", writes[i][1], writes[i][2]);
                snprintf(out, sizeof(out), "%stools/y%s", writes[i][1], writes[i][2]);
                if (check(&t, "build-01", writes[i][0], in) != SCOPE_ALLOW)
                        fail_msg("%s %s refused", writes[i][0], in);
                if (check(&t, "build-01", writes[i][0], out) != SCOPE_DENY_OUTSIDE)
                        fail_msg("%s %s allowed", writes[i][0], out);
                if (check(&t, "build-02", writes[i][0], in) != SCOPE_DENY_UNLISTED)
                        fail_msg("%s %s allowed to an unlisted client", writes[i][0], in);
        }
        assert_int_equal(scope_check_request(&t, "build-01", "PUT", 3, "/v2/tools/y/manifests/1", 23, &repo, &len),
                         SCOPE_DENY_OUTSIDE);
        assert_int_equal(len, 7);
        assert_memory_equal(repo, "tools/y", 7);
        /* No CN at all. */
        assert_int_equal(check(&t, NULL, "PUT", "/v2/app/x/manifests/1"), SCOPE_DENY_UNLISTED);
        assert_int_equal(check(&t, "", "PUT", "/v2/app/x/manifests/1"), SCOPE_DENY_UNLISTED);
        /* A write that names no repository. */
        assert_int_equal(check(&t, "build-01", "POST", "/v2/"), SCOPE_DENY_NO_NAME);
        assert_int_equal(check(&t, "build-01", "PUT", "/v2/_catalog"), SCOPE_DENY_NO_NAME);
        /* "app" itself is not below "app/". */
        assert_int_equal(check(&t, "build-01", "PUT", "/v2/app/manifests/1"), SCOPE_DENY_OUTSIDE);
        /* A name the router could read as outside the scope. */
        assert_int_equal(check(&t, "build-01", "POST", "/v2/tools/manifests/x/blobs/uploads/"),
                         SCOPE_DENY_OUTSIDE);
        assert_int_equal(check(&t, "build-01", "POST", "/v2/app/manifests/x/blobs/uploads/"), SCOPE_ALLOW);
        /* The mount's target is checked; its source (the query) is a read. */
        assert_int_equal(check(&t, "build-01", "POST", "/v2/tools/y/blobs/uploads/"), SCOPE_DENY_OUTSIDE);
        assert_string_not_equal(scope_verdict_string(SCOPE_DENY_OUTSIDE), "?");
        scope_table_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_entry_canonical),
                cmocka_unit_test(test_entry_refused),
                cmocka_unit_test(test_table_parse_refuses_non_canonical),
                cmocka_unit_test(test_matcher_boundaries),
                cmocka_unit_test(test_repositories_of_a_path),
                cmocka_unit_test(test_requests),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
