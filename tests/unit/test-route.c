/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/route.c: path normalization, and the pull and push port
 * policies, in particular every spelling of the listing endpoints.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "macro.h"
#include "route.h"

#define FORBIDDEN 1 /* in tables: normalization succeeds, the pull port refuses the path */

/* Normalizes target; on success checks the output's invariants and that a
 * second normalization changes nothing. */
static int normalize(const char *target, char *out, size_t out_size, size_t *ret_len) {
        char again[4096];
        size_t again_len;
        int r;

        r = route_normalize_path(target, strlen(target), out, out_size, ret_len);
        if (r < 0)
                return r;

        assert_int_equal(strlen(out), *ret_len);
        assert_true(*ret_len > 0 && out[0] == '/');
        assert_null(strstr(out, "//"));
        assert_null(strstr(out, "/./"));
        assert_null(strstr(out, "/../"));
        assert_null(strpbrk(out, "%?#"));
        assert_true(*ret_len < 2 || strcmp(out + *ret_len - 2, "/.") != 0);
        assert_true(*ret_len < 3 || strcmp(out + *ret_len - 3, "/..") != 0);

        assert_int_equal(route_normalize_path(out, *ret_len, again, sizeof(again), &again_len), 0);
        assert_int_equal(again_len, *ret_len);
        assert_string_equal(again, out);
        return 0;
}

static void test_normalize(void **state) {
        static const struct {
                const char *in;
                const char *out; /* NULL: error */
                int error;
        } table[] = {
                {"/", "/", 0},
                {"//", "/", 0},
                {"///", "/", 0},
                {"/v2", "/v2", 0},
                {"/v2/", "/v2/", 0},
                {"/v2//", "/v2/", 0},
                {"//v2", "/v2", 0},
                {"/v2/.", "/v2/", 0},
                {"/v2/./", "/v2/", 0},
                {"/v2/..", "/", 0},
                {"/v2/../", "/", 0},
                {"/v2/a/..", "/v2/", 0},
                {"/a/b/../c", "/a/c", 0},
                {"/a/./b", "/a/b", 0},
                {"/a/b/./../c/", "/a/c/", 0},
                {"/a/.%2e/b", "/b", 0},
                {"/a/%2E%2E/b", "/b", 0},
                {"/a/%2e/b", "/a/b", 0},
                {"/a%2Eb", "/a.b", 0},
                {"/...", "/...", 0},
                {"/.a/b.", "/.a/b.", 0},
                {"/%41%62c", "/Abc", 0},
                {"/Tags/LIST", "/Tags/LIST", 0},
                {"/a?x=%zz#", NULL, -EINVAL},
                {"/a?x=%zz", "/a", 0},
                {"/a?", "/a", 0},
                {"/a?b/../..", "/a", 0},
                {"/v2/x/blobs/sha256:0123?digest=sha256:ab", "/v2/x/blobs/sha256:0123", 0},
                {"/a%5Cb", NULL, -EILSEQ},
                {"/a\\b", NULL, -EINVAL},
                {"/a%22", NULL, -EILSEQ},
                {"/a\"", NULL, -EINVAL},
                {"/a<b>", NULL, -EINVAL},
                {"/a%7B%7D", NULL, -EILSEQ},
                {"/a{}", NULL, -EINVAL},
                {"/a|b", NULL, -EINVAL},
                {"/a^b", NULL, -EINVAL},
                {"/a`b", NULL, -EINVAL},
                {"/[::1]", NULL, -EINVAL},
                {"/a?q=<{|}>\"", "/a", 0},
                {"/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~", 0},
                {"/%3a%40%21%24%26%27%28%29%2a%2b%2c%3b%3d%2d%2e%5f%7e", "/:@!$&'()*+,;=-._~", 0},
                {"/a%7e", "/a~", 0},
                {"", NULL, -EINVAL},
                {"a", NULL, -EINVAL},
                {"?a", NULL, -EINVAL},
                {"*", NULL, -EINVAL},
                {"http://a/v2/", NULL, -EINVAL},
                {"/..", NULL, -EINVAL},
                {"/../v2", NULL, -EINVAL},
                {"/a/../..", NULL, -EINVAL},
                {"/%2e%2e", NULL, -EINVAL},
                {"/a#b", NULL, -EINVAL},
                {"/a?b#c", NULL, -EINVAL},
                {"/a b", NULL, -EINVAL},
                {"/a\001", NULL, -EINVAL},
                {"/a\x7f", NULL, -EINVAL},
                {"/a\xc3\xa9", NULL, -EINVAL},
                {"/a?\xff", NULL, -EINVAL},
                {"/a%", NULL, -EINVAL},
                {"/a%4", NULL, -EINVAL},
                {"/a%4/", NULL, -EINVAL},
                {"/a%4g", NULL, -EINVAL},
                {"/a%g4", NULL, -EINVAL},
                {"/a%%41", NULL, -EINVAL},
                {"/a%00", NULL, -EILSEQ},
                {"/a%0a", NULL, -EILSEQ},
                {"/a%0D%0A", NULL, -EILSEQ},
                {"/a%09", NULL, -EILSEQ},
                {"/a%20", NULL, -EILSEQ},
                {"/a%7F", NULL, -EILSEQ},
                {"/a%80", NULL, -EILSEQ},
                {"/a%c3%a9", NULL, -EILSEQ},
                {"/a%2f", NULL, -EILSEQ},
                {"/a%2Fb", NULL, -EILSEQ},
                {"/a%25", NULL, -EILSEQ},
                {"/a%2541", NULL, -EILSEQ},
                {"/a%3F", NULL, -EILSEQ},
                {"/a%23", NULL, -EILSEQ},
        };
        char out[256];
        size_t len;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                int r = normalize(table[i].in, out, sizeof(out), &len);

                if (table[i].out) {
                        if (r != 0)
                                fail_msg("\"%s\": error %d", table[i].in, r);
                        if (!streq(out, table[i].out))
                                fail_msg("\"%s\": got \"%s\", expected \"%s\"", table[i].in, out,
                                         table[i].out);
                } else if (r != table[i].error)
                        fail_msg("\"%s\": got %d, expected %d", table[i].in, r, table[i].error);
        }
}

static void test_normalize_buffer(void **state) {
        char out[8];
        size_t len = 1234;

        (void)state;
        /* len + 1 is always enough, whatever the result... */
        assert_int_equal(route_normalize_path("/abcdef", 7, out, 8, &len), 0);
        assert_string_equal(out, "/abcdef");
        assert_int_equal(route_normalize_path("/a/../b", 7, out, 8, &len), 0);
        assert_string_equal(out, "/b");
        /* ...and checked up front. */
        len = 1234;
        assert_int_equal(route_normalize_path("/abcdef", 7, out, 7, &len), -ENOBUFS);
        assert_int_equal(len, 1234);
        /* The query does not count. */
        assert_int_equal(route_normalize_path("/ab?cdefghijkl", 14, out, 4, &len), 0);
        assert_string_equal(out, "/ab");
        /* Not NUL-terminated input: only len bytes are read. */
        assert_int_equal(route_normalize_path("/v2/_catalogXYZ", 12, out, 8, &len), -ENOBUFS);

        assert_int_equal(route_target_path_len("/a/b?c=d", 8), 4);
        assert_int_equal(route_target_path_len("/a/b", 4), 4);
        assert_int_equal(route_target_path_len("/a/b?", 5), 4);
}

/* Every spelling the registry could route to a listing endpoint: refused by
 * normalization (400) or by the pull policy (403), never forwarded. */
static const struct {
        const char *target;
        int expect; /* FORBIDDEN or a negative errno from normalization */
} listing_spellings[] = {
        {"/v2/_catalog", FORBIDDEN},
        {"/v2/_catalog?n=1", FORBIDDEN},
        {"/v2/_catalog?n=100&last=library%2Fbusybox", FORBIDDEN},
        {"/v2/_catalog/", FORBIDDEN},
        {"/v2/_catalog/.", FORBIDDEN},
        {"/v2/_catalog/x", FORBIDDEN},
        {"/v2//_catalog", FORBIDDEN},
        {"//v2//_catalog//", FORBIDDEN},
        {"/v2/./_catalog", FORBIDDEN},
        {"/./v2/_catalog", FORBIDDEN},
        {"/v2/foo/../_catalog", FORBIDDEN},
        {"/v2/foo/bar/../../_catalog", FORBIDDEN},
        {"/v2/../v2/_catalog", FORBIDDEN},
        {"/v2/%5Fcatalog", FORBIDDEN},
        {"/v2/%5fcatalog", FORBIDDEN},
        {"/v2/%5f%63atalog", FORBIDDEN},
        {"/v2/%5F%63%61%74%61%6C%6F%67", FORBIDDEN},
        {"/%76%32/_catalog", FORBIDDEN},
        {"/v2/%2e/_catalog", FORBIDDEN},
        {"/v2/foo/%2e%2e/_catalog", FORBIDDEN},
        {"/v2/_CATALOG", FORBIDDEN},
        {"/v2/_Catalog", FORBIDDEN},
        {"/V2/_catalog", FORBIDDEN},
        {"/V2/_CATALOG?N=1", FORBIDDEN},
        {"/v2/_catalog#x", -EINVAL},
        {"/v2%2F_catalog", -EILSEQ},
        {"/v2/_catalog%3Fn=1", -EILSEQ},
        {"/v2/_catalog%00", -EILSEQ},
        {"/v2/_catalog%2F", -EILSEQ},
        {"/v2/%255Fcatalog", -EILSEQ},
        {"/v2/library/busybox/tags/list", FORBIDDEN},
        {"/v2/busybox/tags/list", FORBIDDEN},
        {"/v2/a/b/c/tags/list?n=5", FORBIDDEN},
        {"/v2/x/tags/list?last=a&n=1", FORBIDDEN},
        {"/v2/x/tags/%6Cist", FORBIDDEN},
        {"/v2/x/tags/lis%74", FORBIDDEN},
        {"/v2/x/%74%61%67%73/list", FORBIDDEN},
        {"/v2/x//tags//list", FORBIDDEN},
        {"/v2/x/tags/list/", FORBIDDEN},
        {"/v2/x/tags/list/.", FORBIDDEN},
        {"/v2/x/tags/list/foo/..", FORBIDDEN},
        {"/v2/x/tags/./list", FORBIDDEN},
        {"/v2/x/y/../tags/list", FORBIDDEN},
        {"/v2/x/TAGS/LIST", FORBIDDEN},
        {"/V2/X/Tags/List", FORBIDDEN},
        {"/v2/tags/list", FORBIDDEN},
        {"/v2/tags/tags/list", FORBIDDEN},
        {"/v2/x/manifests/../tags/list", FORBIDDEN},
        {"/tags/list", FORBIDDEN},
        {"/foo/bar/tags/list", FORBIDDEN},
        {"/v2/x/tags/list%2F", -EILSEQ},
        {"/v2/x/tags%2Flist", -EILSEQ},
        {"/v2/x/tags/list%00", -EILSEQ},
        {"/v2/x/tags/list%20", -EILSEQ},
        {"/v2/x/tags/list#", -EINVAL},
};

static void test_pull_listing_spellings(void **state) {
        char out[256];
        size_t len;

        (void)state;
        assert_true(ELEMENTSOF(listing_spellings) >= 30);
        for (size_t i = 0; i < ELEMENTSOF(listing_spellings); i++) {
                const char *t = listing_spellings[i].target;
                int r = normalize(t, out, sizeof(out), &len);

                if (listing_spellings[i].expect != FORBIDDEN) {
                        if (r != listing_spellings[i].expect)
                                fail_msg("\"%s\": normalization returned %d, expected %d", t, r,
                                         listing_spellings[i].expect);
                        continue;
                }
                if (r != 0)
                        fail_msg("\"%s\": normalization failed: %d", t, r);
                for (int m = 0; m < 2; m++) {
                        const char *method = m ? "HEAD" : "GET";
                        RouteDecision d = route_decide_pull(method, strlen(method), out, len);

                        if (d != ROUTE_FORBIDDEN_PATH)
                                fail_msg("%s \"%s\" (\"%s\"): %s", method, t, out, route_decision_string(d));
                }
                /* Another method is refused for that first. */
                assert_int_equal(route_decide_pull("POST", 4, out, len), ROUTE_FORBIDDEN_METHOD);
        }
}

/* PATH, normalized into OUT, is WANT on the pull port for GET and HEAD. */
static void assert_pull_read(const char *path, RouteDecision want, char *out, size_t out_size, size_t *ret_len) {
        RouteDecision d;

        assert_int_equal(normalize(path, out, out_size, ret_len), 0);
        d = route_decide_pull("GET", 3, out, *ret_len);
        if (d != want)
                fail_msg("GET \"%s\": %s, expected %s", path, route_decision_string(d), route_decision_string(want));
        assert_int_equal(route_decide_pull("HEAD", 4, out, *ret_len), want);
}

static void test_pull_allowed(void **state) {
        static const char *const allowed[] = {
                "/v2",
                "/v2/",
                "/v2/library/busybox/manifests/latest",
                "/v2/library/busybox/manifests/latest?ns=docker.io",
                "/v2/library/busybox/manifests/sha256:"
                "3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79",
                "/v2/a/b/blobs/sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79",
                "/v2/a/b/c/d/blobs/sha256:3fbc632167424a6d997e74f52b878d7cc478225cffac6bc977eedfe51c7f4e79",
                "/v2/tags/manifests/latest",
                "/v2/tags/list/manifests/latest",
                "/v2/x/tags/manifests/list",
                "/v2/list/tags/manifests/latest",
                "/v2/x/tags/list/blobs/sha256:00",
                "/v2/library/busybox/manifests/_catalog",
                "/v2/x/blobs/uploads/blobs/sha256:00", /* a repository "x/blobs/uploads" */
                "/v2/library/%62usybox/manifests/latest",
        };
        char out[256];
        size_t len;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                assert_pull_read(allowed[i], ROUTE_ALLOW, out, sizeof(out), &len);
}

/* The pull port is an allowlist: what is not the version check, a manifest
 * or a blob by digest is refused, upload sessions above all (a GET there
 * resumes an upload, and with a stale _state cancels it). */
static void test_pull_only_endpoints(void **state) {
        static const char *const refused[] = {
                "/v2/_catalogs",
                "/v2/catalog",
                "/v2/x/tags/lists",
                "/v2/x/tags/list.json",
                "/v2/x/tagslist",
                "/v2/x/blobs/uploads/2a7c1f5e-0c4a-4c0b-9d5d-3e1f2b6a7c8d",
                "/v2/x/blobs/uploads/2a7c1f5e-0c4a-4c0b-9d5d-3e1f2b6a7c8d?_state=abc",
                "/v2/x/blobs/uploads/",
                "/v2/x/blobs/uploads",
                "/v2/x/blobs/latest",
                "/v2/x/blobs/",
                "/v2/x/manifests/",
                "/v2/manifests/latest",
                "/v2/blobs/sha256:00",
                "/v2/x/MANIFESTS/latest",
                "/v2/x/Blobs/sha256:00",
                "/v2/x",
                "/v2/x/y/z",
                "/v2/x/manifests/latest/",
        };
        char out[256];
        size_t len;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                assert_pull_read(refused[i], ROUTE_FORBIDDEN_PATH, out, sizeof(out), &len);
                assert_int_equal(route_decide_push("GET", 3, out, len), ROUTE_ALLOW);
        }
}

static void test_pull_methods(void **state) {
        static const char *const refused[] = {
                "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
                "get",  "Get", "head",  "GETS",   "GE",      "",
        };
        static const char path[] = "/v2/library/busybox/manifests/latest";

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                assert_int_equal(route_decide_pull(refused[i], strlen(refused[i]), path, strlen(path)),
                                 ROUTE_FORBIDDEN_METHOD);
        /* Length, not NUL, ends the method. */
        assert_int_equal(route_decide_pull("GETX", 3, path, strlen(path)), ROUTE_ALLOW);
        assert_int_equal(route_decide_pull("HEADER", 4, path, strlen(path)), ROUTE_ALLOW);
        assert_int_equal(route_decide_pull("HEADER", 6, path, strlen(path)), ROUTE_FORBIDDEN_METHOD);
        /* The method is refused even outside /v2. */
        assert_int_equal(route_decide_pull("POST", 4, "/", 1), ROUTE_FORBIDDEN_METHOD);
}

static void test_not_found(void **state) {
        static const char *const paths[] = {
                "/",        "/v1/",          "/v20", "/v2x/foo", "/V2/x/manifests/latest",
                "/metrics", "/debug/pprof/", "/v",   "/x/v2/",
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                assert_int_equal(route_decide_pull("GET", 3, paths[i], strlen(paths[i])), ROUTE_NOT_FOUND);
                assert_int_equal(route_decide_push("PUT", 3, paths[i], strlen(paths[i])), ROUTE_NOT_FOUND);
        }
}

static void test_not_normalized(void **state) {
        static const char *const paths[] = {
                "",        "v2/",      "/v2//_catalog", "/v2/%5Fcatalog", "/v2/./x", "/v2/../x",
                "/v2/x/.", "/v2/x/..", "/v2/x?y",       "/v2/x#",         "/v2/a b", "/v2/\xff",
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                assert_int_equal(route_decide_pull("GET", 3, paths[i], strlen(paths[i])),
                                 ROUTE_FORBIDDEN_PATH);
                assert_int_equal(route_decide_push("GET", 3, paths[i], strlen(paths[i])),
                                 ROUTE_FORBIDDEN_PATH);
        }
        /* Not NUL-terminated: only plen bytes count. */
        assert_int_equal(route_decide_pull("GET", 3, "/v2/a/manifests/t//", 17), ROUTE_ALLOW);
}

static void test_push(void **state) {
        static const struct {
                const char *method;
                const char *path;
                RouteDecision d;
        } table[] = {
                {"GET", "/v2/", ROUTE_ALLOW},
                {"GET", "/v2/_catalog", ROUTE_ALLOW},
                {"GET", "/v2/x/tags/list", ROUTE_ALLOW},
                {"POST", "/v2/x/blobs/uploads/", ROUTE_ALLOW},
                {"PATCH", "/v2/x/blobs/uploads/1", ROUTE_ALLOW},
                {"PUT", "/v2/x/manifests/latest", ROUTE_ALLOW},
                {"DELETE", "/v2/x/manifests/sha256:00", ROUTE_ALLOW},
                {"GET", "/", ROUTE_NOT_FOUND},
                {"POST", "/v2x", ROUTE_NOT_FOUND},
                {"GET", "/V2/", ROUTE_NOT_FOUND},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                assert_int_equal(route_decide_push(table[i].method, strlen(table[i].method), table[i].path,
                                                   strlen(table[i].path)),
                                 table[i].d);
}

/* The CRL routes: answered by the proxy on both ports, GET and HEAD only,
 * the exact normalized path only; any other spelling is what it was. */
static void test_local_crl_routes(void **state) {
        static const struct {
                const char *target;
                RouteDecision d;
        } table[] = {
                {"/regvisor/crl/server-ca.crl", ROUTE_LOCAL_SERVER_CRL},
                {"/regvisor/crl/client-ca.crl", ROUTE_LOCAL_CLIENT_CRL},
                /* Spellings that normalize to it are it (the decision is on
                 * the normalized path, which is also what gets logged). */
                {"//regvisor/./crl/x/../client-ca.crl", ROUTE_LOCAL_CLIENT_CRL},
                {"/regvisor/crl/%73erver-ca.crl?x=1", ROUTE_LOCAL_SERVER_CRL},
                /* Anything else is not. */
                {"/regvisor/crl/server-ca.crl/", ROUTE_NOT_FOUND},
                {"/regvisor/crl/SERVER-CA.crl", ROUTE_NOT_FOUND},
                {"/regvisor/crl/", ROUTE_NOT_FOUND},
                {"/regvisor/crl/other.crl", ROUTE_NOT_FOUND},
                {"/v2/regvisor/crl/server-ca.crl", ROUTE_FORBIDDEN_PATH},
        };
        char out[256];
        size_t len;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                assert_int_equal(normalize(table[i].target, out, sizeof(out), &len), 0);
                RouteDecision d = route_decide_pull("GET", 3, out, len);
                if (d != table[i].d)
                        fail_msg("GET %s on pull: %s", table[i].target, route_decision_string(d));
                assert_int_equal(route_decide_pull("HEAD", 4, out, len), table[i].d);
                if (table[i].d == ROUTE_FORBIDDEN_PATH)
                        continue; /* the push port forwards /v2/... */
                assert_int_equal(route_decide_push("GET", 3, out, len), table[i].d);
                assert_int_equal(route_decide_push("HEAD", 4, out, len), table[i].d);
        }

        /* Only GET and HEAD, on either port: nothing is written there. */
        static const char path[] = "/regvisor/crl/client-ca.crl";
        static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get"};
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                assert_int_equal(route_decide_pull(methods[i], strlen(methods[i]), path, strlen(path)),
                                 ROUTE_FORBIDDEN_METHOD);
                assert_int_equal(route_decide_push(methods[i], strlen(methods[i]), path, strlen(path)),
                                 ROUTE_FORBIDDEN_METHOD);
        }

        assert_true(route_decision_local(ROUTE_LOCAL_SERVER_CRL));
        assert_true(route_decision_local(ROUTE_LOCAL_CLIENT_CRL));
        assert_false(route_decision_local(ROUTE_ALLOW));
        assert_false(route_decision_local(ROUTE_NOT_FOUND));
        assert_int_equal(route_decision_status(ROUTE_LOCAL_SERVER_CRL), 200);
        assert_string_equal(route_decision_string(ROUTE_LOCAL_CLIENT_CRL), "local: client CA CRL");
}

/* The signature extension (docs/signature-extension.md): its one path, by
 * the store's grammar, GET/HEAD on both ports, PUT on the push port only;
 * anything else below /extensions refused. */
static void test_extension_routes(void **state) {
        static const char good[] = "/extensions/v2/app/web/signatures/sha256:"
                                   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        static const struct {
                const char *path;
                RouteDecision d;
        } table[] = {
                {good, ROUTE_SIGSTORE},
                {"/extensions/v2/a/signatures/b/signatures/sha256:"
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 ROUTE_SIGSTORE},
                {"/extensions/v2/App/signatures/sha256:"
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 ROUTE_FORBIDDEN_PATH},
                {"/extensions/v2/app/signatures/sha256:0123", ROUTE_FORBIDDEN_PATH},
                {"/extensions/v2/app/signatures/", ROUTE_FORBIDDEN_PATH},
                {"/extensions/v2/_catalog", ROUTE_FORBIDDEN_PATH},
                {"/extensions/", ROUTE_FORBIDDEN_PATH},
                {"/extensions", ROUTE_FORBIDDEN_PATH},
                {"/extensionsx", ROUTE_NOT_FOUND},
                {"/Extensions/v2/app/signatures/sha256:"
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 ROUTE_NOT_FOUND},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                size_t n = strlen(table[i].path);
                RouteDecision d = route_decide_pull("GET", 3, table[i].path, n);
                if (d != table[i].d)
                        fail_msg("GET %s on pull: %s", table[i].path, route_decision_string(d));
                assert_int_equal(route_decide_pull("HEAD", 4, table[i].path, n), table[i].d);
                assert_int_equal(route_decide_push("GET", 3, table[i].path, n), table[i].d);
                assert_int_equal(route_decide_push("PUT", 3, table[i].path, n), table[i].d);
        }
        assert_int_equal(route_decide_pull("PUT", 3, good, strlen(good)), ROUTE_FORBIDDEN_METHOD);
        static const char *const methods[] = {"DELETE", "POST", "PATCH", "OPTIONS", "put"};
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                assert_int_equal(route_decide_push(methods[i], strlen(methods[i]), good, strlen(good)),
                                 ROUTE_FORBIDDEN_METHOD);
        assert_true(route_decision_forwarded(ROUTE_SIGSTORE));
        assert_true(route_decision_forwarded(ROUTE_ALLOW));
        assert_false(route_decision_forwarded(ROUTE_LOCAL_CLIENT_CRL));
        assert_int_equal(route_decision_status(ROUTE_SIGSTORE), 0);
        assert_true(route_is_version_check("/v2/", 4));
        assert_true(route_is_version_check("/v2", 3));
        assert_false(route_is_version_check("/v2/x", 5));
}

/* Signature tags (the signature store's, [signing] store = registry): no
 * client may write a manifest there, on either port; reads pass. */
#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
typedef struct SigCase {
        const char *s; /* a tag, or a path */
        bool sig;
} SigCase;

static void test_signature_tags(void **state) {
        static const SigCase tags[] = {
                {"sha256-" HEX64 ".simplesig", true},
                {"sha256-" HEX64 ".simplesig.0123456789abcdef0123456789abcdef", true},
                {"sha256-" HEX64 ".simplesig.0", true},
                {"sha256-" HEX64 ".simplesig.", true},
                {"sha256-" HEX64 ".simplesig.x.y", true},
                {"sha256-" HEX64 ".sig", false}, /* cosign's: written by clients */
                {"sha256-" HEX64 ".att", false},
                {"sha256-" HEX64 ".simplesigx", false},
                {"sha256-" HEX64 ".simplesi", false},
                {"sha256-" HEX64, false},
                {"sha256-0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef.simplesig", false},
                {"sha256-0123.simplesig", false},
                {"sha512-" HEX64 ".simplesig", false},
                {"latest", false},
                {"", false},
        };
        static const char *const writes[] = {"PUT", "DELETE", "POST", "PATCH", "put"};
        char path[512];

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(tags); i++) {
                size_t n;

                assert_int_equal(route_is_signature_tag(tags[i].s, strlen(tags[i].s)), tags[i].sig);
                n = (size_t)snprintf(path, sizeof(path), "/v2/team/app/manifests/%s", tags[i].s);
                if (tags[i].s[0] == '\0')
                        continue;
                assert_int_equal(route_is_signature_manifest(path, n), tags[i].sig);
                for (size_t j = 0; j < ELEMENTSOF(writes); j++) {
                        assert_int_equal(route_decide_push(writes[j], strlen(writes[j]), path, n),
                                         tags[i].sig ? ROUTE_FORBIDDEN_SIGNATURE_TAG : ROUTE_ALLOW);
                        assert_int_equal(route_decide_pull(writes[j], strlen(writes[j]), path, n),
                                         tags[i].sig ? ROUTE_FORBIDDEN_SIGNATURE_TAG : ROUTE_FORBIDDEN_METHOD);
                }
                assert_int_equal(route_decide_push("GET", 3, path, n), ROUTE_ALLOW);
                assert_int_equal(route_decide_push("HEAD", 4, path, n), ROUTE_ALLOW);
                assert_int_equal(route_decide_pull("GET", 3, path, n), ROUTE_ALLOW);
        }

        /* Only as a manifest reference, under a name; "manifests" in any case. */
        static const SigCase paths[] = {
                {"/v2/x/manifests/sha256-" HEX64 ".simplesig", true},
                {"/v2/x/MANIFESTS/sha256-" HEX64 ".simplesig.ab", true},
                {"/v2/x/manifests/sha256-" HEX64 ".simplesig/", true},
                {"/v2/manifests/sha256-" HEX64 ".simplesig", false}, /* no name */
                {"/v2/x/blobs/sha256-" HEX64 ".simplesig", false},
                {"/v2/sha256-" HEX64 ".simplesig/manifests/latest", false},
                {"/v3/x/manifests/sha256-" HEX64 ".simplesig", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                size_t n = strlen(paths[i].s);

                assert_int_equal(route_is_signature_manifest(paths[i].s, n), paths[i].sig);
                if (paths[i].sig)
                        assert_int_equal(route_decide_push("PUT", 3, paths[i].s, n),
                                         ROUTE_FORBIDDEN_SIGNATURE_TAG);
        }

        /* A digest's own repository of signatures (NAME/sha256-HEX.simplesig): any write below it,
         * of a manifest at any tag or of a blob, is the store's alone; reads stay allowed. */
        static const SigCase repos[] = {
                {"/v2/x/sha256-" HEX64 ".simplesig/manifests/latest", true},
                {"/v2/team/app/sha256-" HEX64 ".simplesig/blobs/uploads/", true},
                {"/v2/team/app/sha256-" HEX64 ".simplesig/blobs/uploads/1234-abcd", true},
                {"/v2/x/sha256-" HEX64 ".simplesig/sub/manifests/1", true},
                {"/v2/sha256-" HEX64 ".simplesig/manifests/latest", false}, /* no NAME before it */
                {"/v2/x/sha256-" HEX64 ".simplesig", false},                /* nothing below it */
                {"/v2/x/sha256-" HEX64 ".simplesig/", false},
                {"/v2/x/sha256-" HEX64 ".simplesig.ab/manifests/latest", false},
                {"/v2/x/sha256-" HEX64 ".sig/manifests/latest", false},
                {"/v2/x/SHA256-" HEX64 ".simplesig/manifests/latest", false},
                {"/v3/x/sha256-" HEX64 ".simplesig/manifests/latest", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(repos); i++) {
                size_t n = strlen(repos[i].s);

                if (route_is_signature_repository(repos[i].s, n) != repos[i].sig)
                        fail_msg("route_is_signature_repository(%s) != %d", repos[i].s, repos[i].sig);
                if (strncmp(repos[i].s, "/v2/", 4) != 0)
                        continue; /* not the registry's API at all: ROUTE_NOT_FOUND */
                for (size_t j = 0; j < ELEMENTSOF(writes); j++)
                        assert_int_equal(route_decide_push(writes[j], strlen(writes[j]), repos[i].s, n),
                                         repos[i].sig ? ROUTE_FORBIDDEN_SIGNATURE_TAG : ROUTE_ALLOW);
                if (repos[i].sig) {
                        assert_int_equal(route_decide_push("GET", 3, repos[i].s, n), ROUTE_ALLOW);
                        assert_int_equal(route_decide_pull("POST", 4, repos[i].s, n),
                                         ROUTE_FORBIDDEN_SIGNATURE_TAG);
                }
        }
        assert_int_equal(route_decision_status(ROUTE_FORBIDDEN_SIGNATURE_TAG), 403);
        assert_false(route_decision_forwarded(ROUTE_FORBIDDEN_SIGNATURE_TAG));
        assert_string_equal(route_decision_string(ROUTE_FORBIDDEN_SIGNATURE_TAG),
                            "signatures go through the signature extension");
}

static void test_strings(void **state) {
        (void)state;
        static const struct {
                RouteDecision d;
                const char *name;
                int status;
        } rows[] = {
                {ROUTE_ALLOW, "allow", 0},
                {ROUTE_FORBIDDEN_METHOD, "forbidden method", 403},
                {ROUTE_FORBIDDEN_PATH, "forbidden path", 403},
                {ROUTE_NOT_FOUND, "not found", 404},
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                assert_string_equal(route_decision_string(rows[i].d), rows[i].name);
                assert_int_equal(route_decision_status(rows[i].d), rows[i].status);
        }
        assert_string_equal(route_decision_string(_ROUTE_DECISION_MAX), "unknown decision");
}

/* "%2F" is refused by normalization (-EILSEQ) but the registry's router
 * decodes it into a separator: the router's reading must still be judged. */
static void test_escaped_slash_as_router(void **state) {
        static const char *const forbidden[] = {
                "/v2/a/tags%2Flist", "/v2/a%2Fb/tags/list", "/v2/_catalog%2F", "/v2%2F_catalog", "/v2/x/tags%2flist?n=1",
        };
        static const char *const other[] = {"/v2/a%2Fb/manifests/latest", "/v2/a/blobs%2Fsha256:00"};
        char out[256];
        size_t n;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                size_t plen = route_target_path_len(forbidden[i], strlen(forbidden[i]));
                assert_int_equal(route_normalize_path(forbidden[i], plen, out, sizeof out, &n), -EILSEQ);
                assert_int_equal(route_normalize_path_as_router(forbidden[i], plen, out, sizeof out, &n), 0);
                assert_int_equal(route_decide_pull("GET", 3, out, n), ROUTE_FORBIDDEN_PATH);
        }
        for (size_t i = 0; i < ELEMENTSOF(other); i++) {
                size_t plen = route_target_path_len(other[i], strlen(other[i]));
                assert_int_equal(route_normalize_path_as_router(other[i], plen, out, sizeof out, &n), 0);
                assert_int_not_equal(route_decide_pull("GET", 3, out, n), ROUTE_FORBIDDEN_PATH);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalize),
                cmocka_unit_test(test_normalize_buffer),
                cmocka_unit_test(test_pull_listing_spellings),
                cmocka_unit_test(test_pull_allowed),
                cmocka_unit_test(test_pull_only_endpoints),
                cmocka_unit_test(test_pull_methods),
                cmocka_unit_test(test_not_found),
                cmocka_unit_test(test_not_normalized),
                cmocka_unit_test(test_push),
                cmocka_unit_test(test_escaped_slash_as_router),
                cmocka_unit_test(test_local_crl_routes),
                cmocka_unit_test(test_extension_routes),
                cmocka_unit_test(test_signature_tags),
                cmocka_unit_test(test_strings),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
