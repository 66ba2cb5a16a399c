/* SPDX-License-Identifier: MIT */
/*
 * Tests for the signatures kept in the registry ([signing] store =
 * registry): sigstore/sigmanifest.c (the tag a digest's signatures live at,
 * the manifest built and parsed strictly, the local store's rules for
 * adding one) and sigstore/sigreg.c against a real Distribution registry
 * (Debian's docker-registry 2.8, the one the test hosts run, on a unix
 * socket in a scratch directory): round trip, order, no overwrite,
 * duplicates, the count cap, a registry that is not there, and the
 * handler (sighandle.c) on that backend.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "sighandle.h"
#include "sigmanifest.h"
#include "sigreg.h"
#include "registry-test.h"

#define HEX1 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define D1 "sha256:" HEX1
#define D2 "sha256:" HEX2

/* ---- the tag */

static void test_tag(void **state) {
        char tag[SIGMANIFEST_TAG_LEN + 1];
        static const char *const not_tags[] = {
                "latest",
                "sha256-" HEX1 ".sig", /* cosign's, sigstore mode */
                "sha256-" HEX1,
                "sha256-" HEX1 ".simplesig2",
                "sha256-" HEX1 "0.simplesig",
                "sha256-0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef.simplesig",
                "sha512-" HEX1 ".simplesig",
                "sha256-" HEX1 ".simplesi",
                "",
        };

        sigmanifest_tag(D1, tag);
        assert_string_equal(tag, "sha256-" HEX1 ".simplesig");
        assert_int_equal(strlen(tag), SIGMANIFEST_TAG_LEN);
        assert_true(strlen(tag) <= 128); /* the distribution spec's tag length */
        assert_true(sigmanifest_is_tag(tag, strlen(tag)));
        for (size_t i = 0; i < ELEMENTSOF(not_tags); i++)
                if (sigmanifest_is_tag(not_tags[i], strlen(not_tags[i])))
                        fail_msg("took \"%s\" for a signature tag", not_tags[i]);
}

/* ---- the manifest */

static SigLayer layer(const char *suffix, const char *digest, size_t size) {
        SigLayer l = {.size = size};

        strcpy(l.suffix, suffix);
        strcpy(l.digest, digest);
        return l;
}

static void test_build_exact(void **state) {
        SigLayer l = layer("abc", D2, 9);
        _cleanup_free_ char *json = NULL;
        size_t len = 0;

        assert_int_equal(sigmanifest_build(&l, 1, D1, D2, &json, &len), 0);
        assert_int_equal(len, strlen(json));
        assert_string_equal(json,
                            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                            "\"config\":{\"mediaType\":\"application/vnd.regvisor.simple-signing.config.v1+json\","
                            "\"digest\":\"" D2 "\",\"size\":52},"
                            "\"layers\":[{\"mediaType\":\"application/vnd.regvisor.simple-signing.signature.v1\","
                            "\"digest\":\"" D2 "\",\"size\":9,"
                            "\"annotations\":{\"org.regvisor.signature.name\":\"abc\"}}],"
                            "\"annotations\":{\"org.regvisor.signed-digest\":\"" D1 "\"}}");
        assert_int_equal(strlen(sigmanifest_config), 52);
}

static void test_round_trip(void **state) {
        SigLayer in[SIGSTORE_MAX_PER_DIGEST], out[SIGSTORE_MAX_PER_DIGEST];
        _cleanup_free_ char *json = NULL;
        size_t len = 0, n = 0;

        for (size_t i = 0; i < SIGSTORE_MAX_PER_DIGEST; i++) {
                char suffix[16], digest[72];

                (void) snprintf(suffix, sizeof suffix, "sig-%zu", i);
                (void) snprintf(digest, sizeof digest, "sha256:%064zx", i + 1);
                in[i] = layer(suffix, digest, i + 1);
        }
        assert_int_equal(sigmanifest_build(in, 0, D1, D2, &json, &len), 0);
        assert_int_equal(sigmanifest_parse(json, len, D1, out, &n, NULL), 0);
        assert_int_equal(n, 0);
        free(json);
        json = NULL;

        assert_int_equal(sigmanifest_build(in, SIGSTORE_MAX_PER_DIGEST, D1, D2, &json, &len), 0);
        assert_true(len < SIGMANIFEST_MAX);
        assert_int_equal(sigmanifest_parse(json, len, D1, out, &n, NULL), 0);
        assert_int_equal(n, SIGSTORE_MAX_PER_DIGEST);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(out[i].suffix, in[i].suffix); /* in order */
                assert_string_equal(out[i].digest, in[i].digest);
                assert_int_equal(out[i].size, in[i].size);
        }
        /* Parsed for another digest: refused (a manifest moved to another tag). */
        assert_int_equal(sigmanifest_parse(json, len, D2, out, &n, NULL), -EBADMSG);
        free(json);
        json = NULL;
        assert_int_equal(sigmanifest_build(in, SIGSTORE_MAX_PER_DIGEST + 1, D1, D2, &json, &len), -EINVAL);
}

#define HEAD "{\"schemaVersion\":2,\"mediaType\":\"" SIGMANIFEST_TYPE "\",\"config\":{\"mediaType\":\"" \
             SIGMANIFEST_CONFIG_TYPE "\",\"digest\":\"" D2 "\",\"size\":52},"
#define TAIL ",\"annotations\":{\"" SIGMANIFEST_DIGEST_ANNOTATION "\":\"" D1 "\"}}"
#define LAYER(type, digest, size, name)                                                                    \
        "{\"mediaType\":\"" type "\",\"digest\":\"" digest "\",\"size\":" size ",\"annotations\":{\"" \
        SIGMANIFEST_NAME_ANNOTATION "\":\"" name "\"}}"
#define GOOD LAYER(SIGMANIFEST_LAYER_TYPE, D2, "9", "abc")

static void test_parse_refusals(void **state) {
        static const char *const bad[] = {
                "",
                "[]",
                "{}",
                HEAD "\"layers\":[" GOOD "]" TAIL " x",
                HEAD "\"layers\":[" GOOD "]" TAIL "{}",
                /* the wrong kind of manifest */
                "{\"schemaVersion\":1,\"mediaType\":\"" SIGMANIFEST_TYPE "\"}",
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
                "\"config\":{\"mediaType\":\"" SIGMANIFEST_CONFIG_TYPE "\"},\"layers\":[]" TAIL,
                "{\"schemaVersion\":2,\"mediaType\":\"" SIGMANIFEST_TYPE "\",\"config\":{\"mediaType\":"
                "\"application/vnd.oci.image.config.v1+json\"},\"layers\":[]" TAIL,
                /* no or another signed digest */
                HEAD "\"layers\":[" GOOD "]}",
                HEAD "\"layers\":[" GOOD "],\"annotations\":{\"" SIGMANIFEST_DIGEST_ANNOTATION "\":\"" D2 "\"}}",
                /* layers */
                HEAD "\"layers\":{}" TAIL,
                HEAD "\"layers\":[" LAYER("application/vnd.oci.image.layer.v1.tar+gzip", D2, "9", "abc") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, "sha512:00", "9", "abc") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, D2, "0", "abc") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, D2, "65537", "abc") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, D2, "\"9\"", "abc") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, D2, "9", ".tmp-x") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, D2, "9", "a/b") "]" TAIL,
                HEAD "\"layers\":[" LAYER(SIGMANIFEST_LAYER_TYPE, D2, "9", "") "]" TAIL,
                HEAD "\"layers\":[" GOOD "," LAYER(SIGMANIFEST_LAYER_TYPE, D1, "9", "abc") "]" TAIL,
                HEAD "\"layers\":[" GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD ","
                     GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD "," GOOD "]" TAIL,
        };
        static const char good[] = HEAD "\"layers\":[" GOOD "]" TAIL;
        SigLayer out[SIGSTORE_MAX_PER_DIGEST];
        size_t n = 0;

        assert_int_equal(sigmanifest_parse(good, strlen(good), D1, out, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(out[0].suffix, "abc");
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *why = NULL;

                if (sigmanifest_parse(bad[i], strlen(bad[i]), D1, out, &n, &why) != -EBADMSG)
                        fail_msg("accepted manifest %zu: %s", i, bad[i]);
                assert_non_null(why);
        }
}

static void test_add(void **state) {
        SigLayer l[SIGSTORE_MAX_PER_DIGEST], a = layer("a", D1, 3), b = layer("b", D2, 3);
        size_t n = 0;

        assert_int_equal(sigmanifest_add(l, &n, &a), 0);
        assert_int_equal(n, 1);
        /* The same bytes, under its name or another: nothing to do. */
        assert_int_equal(sigmanifest_add(l, &n, &a), 1);
        assert_int_equal(sigmanifest_add(l, &n, &(SigLayer){.suffix = "other", .digest = D1, .size = 3}), 1);
        /* Its name with other bytes: never replaced. */
        assert_int_equal(sigmanifest_add(l, &n, &(SigLayer){.suffix = "a", .digest = D2, .size = 3}), -EEXIST);
        assert_int_equal(n, 1);
        assert_int_equal(sigmanifest_add(l, &n, &b), 0);
        assert_string_equal(l[1].suffix, "b"); /* appended */
        while (n < SIGSTORE_MAX_PER_DIGEST) {
                SigLayer x = {.size = 1};

                (void) snprintf(x.suffix, sizeof x.suffix, "x%zu", n);
                (void) snprintf(x.digest, sizeof x.digest, "sha256:%064zx", n);
                assert_int_equal(sigmanifest_add(l, &n, &x), 0);
        }
        assert_int_equal(sigmanifest_add(l, &n, &(SigLayer){.suffix = "y", .digest = "sha256:" HEX2, .size = 1}),
                         1);
        assert_int_equal(
                sigmanifest_add(l, &n, &(SigLayer){.suffix = "y", .digest = "sha256:" HEX1 "", .size = 1}), 1);
        {
                SigLayer y = {.suffix = "y", .size = 1};
                (void) snprintf(y.digest, sizeof y.digest, "sha256:%064x", 0xabcdefu);
                assert_int_equal(sigmanifest_add(l, &n, &y), -EDQUOT);
        }
}

/* ---- against Distribution 2.8 */

static TestRegistry registry;

static int start_registry(void **state) {
        return test_registry_start(&registry, 0);
}

static int stop_registry(void **state) {
        return test_registry_stop(&registry);
}

static void need_registry(void) {
        if (registry.pid <= 0) {
                fprintf(stderr, "test-sigregistry: no %s (Debian's docker-registry): skipped\n", DOCKER_REGISTRY);
                skip();
        }
}

static SigEntry entry(const char *suffix, const char *content) {
        SigEntry e = {.content = (uint8_t *) content, .content_len = strlen(content)};

        strcpy(e.suffix, suffix);
        return e;
}

static void test_registry_round_trip(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        SigEntry a = entry("aaaa", "signature A"), b = entry("bbbb", "signature B"), *got = NULL;
        size_t n = 99;

        need_registry();
        assert_int_equal(sigreg_init(&reg, registry.address), 0);

        /* Nothing yet, in a repository that does not exist either. */
        assert_int_equal(sigreg_list(&reg, "app/web", 7, D1, &got, &n), 0);
        assert_int_equal(n, 0);

        assert_int_equal(sigreg_put(&reg, "app/web", 7, D1, &a), 0);
        assert_int_equal(sigreg_put(&reg, "app/web", 7, D1, &a), 1);
        /* The same bytes under another name: there already. */
        assert_int_equal(sigreg_put(&reg, "app/web", 7, D1, &(SigEntry){.suffix = "cccc", .content = a.content,
                                                                        .content_len = a.content_len}),
                         1);
        /* Its name with other bytes: never replaced. */
        assert_int_equal(sigreg_put(&reg, "app/web", 7, D1, &(SigEntry){.suffix = "aaaa", .content = b.content,
                                                                        .content_len = b.content_len}),
                         -EEXIST);
        assert_int_equal(sigreg_put(&reg, "app/web", 7, D1, &b), 0);

        assert_int_equal(sigreg_list(&reg, "app/web", 7, D1, &got, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(got[0].suffix, "aaaa"); /* in the order stored */
        assert_int_equal(got[0].content_len, a.content_len);
        assert_memory_equal(got[0].content, a.content, a.content_len);
        assert_string_equal(got[1].suffix, "bbbb");
        assert_memory_equal(got[1].content, b.content, b.content_len);
        sig_entries_free(got, n);

        /* Another digest, another repository: their own. */
        assert_int_equal(sigreg_list(&reg, "app/web", 7, D2, &got, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(sigreg_list(&reg, "app/other", 9, D1, &got, &n), 0);
        assert_int_equal(n, 0);
}

static void test_registry_cap(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        char content[32];
        SigEntry *got = NULL;
        size_t n = 0;

        need_registry();
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        for (int i = 0; i < SIGSTORE_MAX_PER_DIGEST; i++) {
                SigEntry e = {.content = (uint8_t *) content};

                (void) snprintf(e.suffix, sizeof e.suffix, "s%02d", i);
                e.content_len = (size_t) snprintf(content, sizeof content, "signature %d", i);
                assert_int_equal(sigreg_put(&reg, "cap", 3, D2, &e), 0);
        }
        {
                SigEntry e = entry("one-too-many", "signature 99");
                assert_int_equal(sigreg_put(&reg, "cap", 3, D2, &e), -EDQUOT);
        }
        assert_int_equal(sigreg_list(&reg, "cap", 3, D2, &got, &n), 0);
        assert_int_equal(n, SIGSTORE_MAX_PER_DIGEST);
        assert_string_equal(got[SIGSTORE_MAX_PER_DIGEST - 1].suffix, "s15");
        sig_entries_free(got, n);
}

/* Through the handler, with the target as the server hands it over: inside the request line,
 * followed by " HTTP/1.1" (the digest there is not a C string: it once went into the manifest
 * with the rest of the line, and Distribution refused it as MANIFEST_INVALID). */
static void test_registry_handler(void **state) {
        static const char line[] = "/extensions/v2/app/line/signatures/" D1 " HTTP/1.1\r\nHost: x\r\n";
        static const char body[] = "{\"schemaVersion\":2,\"name\":\"" D1 "@0123abcd\",\"type\":\"atomic\","
                                   "\"content\":\"aGVsbG8=\"}";
        _cleanup_(sigreg_done) SigRegistry reg = {};
        size_t target_len = strchr(line, ' ') - line;
        SigReply rep;

        need_registry();
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        SigBackend b = {.root_fd = -EBADF, .registry = &reg};

        assert_int_equal(sighandle_request(&b, "PUT", 3, line, target_len, body, strlen(body), &rep), 0);
        if (rep.status != 201)
                fail_msg("PUT: %d %s", rep.status, rep.body ? rep.body : "");
        sig_reply_done(&rep);
        assert_int_equal(sighandle_request(&b, "GET", 3, line, target_len, NULL, 0, &rep), 0);
        assert_int_equal(rep.status, 200);
        assert_non_null(strstr(rep.body, "\"name\":\"" D1 "@0123abcd\""));
        assert_non_null(strstr(rep.body, "\"content\":\"aGVsbG8=\""));
        sig_reply_done(&rep);
}

static void test_registry_absent(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        SigEntry a = entry("aaaa", "signature A"), *got = NULL;
        size_t n = 0;

        assert_int_equal(sigreg_init(&reg, "unix:/nonexistent/registry.sock"), 0);
        assert_int_equal(sigreg_list(&reg, "app", 3, D1, &got, &n), -EHOSTUNREACH);
        assert_int_equal(sigreg_put(&reg, "app", 3, D1, &a), -EHOSTUNREACH);
        {
                /* Through the handler: 503, never an empty list (that would read as "unsigned"). */
                static const char target[] = "/extensions/v2/app/signatures/" D1;
                SigBackend b = {.root_fd = -EBADF, .registry = &reg};
                SigReply rep;

                assert_int_equal(sighandle_request(&b, "GET", 3, target, strlen(target), NULL, 0, &rep), 0);
                assert_int_equal(rep.status, 503);
                assert_string_equal(rep.code, "UNAVAILABLE");
                sig_reply_done(&rep);
        }
        sigreg_done(&reg);
        assert_int_equal(sigreg_init(&reg, "registry.example:5000"), -EINVAL);
}

int main(void) {
        const struct CMUnitTest pure[] = {
                cmocka_unit_test(test_tag),
                cmocka_unit_test(test_build_exact),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_parse_refusals),
                cmocka_unit_test(test_add),
                cmocka_unit_test(test_registry_absent),
        };
        const struct CMUnitTest live[] = {
                cmocka_unit_test(test_registry_round_trip),
                cmocka_unit_test(test_registry_cap),
                cmocka_unit_test(test_registry_handler),
        };
        int r = cmocka_run_group_tests_name("sigmanifest", pure, NULL, NULL);

        return r + cmocka_run_group_tests_name("sigreg-distribution", live, start_registry, stop_registry);
}
