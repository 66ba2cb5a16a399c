/* SPDX-License-Identifier: MIT */
/*
 * Tests for the signatures kept in the registry ([signing] store =
 * registry): sigstore/sigmanifest.c (the tag a digest's signatures live at,
 * the manifest built and parsed strictly, the local store's rules for
 * adding one) and sigstore/sigreg.c against a real Distribution registry
 * (Debian's docker-registry 2.8, the one the test hosts run, on a unix
 * socket in a scratch directory): round trip, order, no overwrite,
 * duplicates, the count cap, a registry that is not there, the handler
 * (sighandle.c) on that backend, concurrent writers through separate
 * clients (none of their acknowledged signatures lost), the first
 * version's one-manifest tag still served, the health check's census
 * of a shared store through the API, a GET that never lists a repository's
 * own tags (counted in the registry's access log), junk at signature
 * tags left out while the valid signature is served, and no signature (nor
 * repository) for an image the registry does not hold.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "macro.h"
#include "image-signatures.h"
#include "sighandle.h"
#include "sigjson.h"
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
                "sha256-" HEX1 ".simplesig.",
                "sha256-" HEX1 ".simplesig.0123456789abcdef0123456789abcde",   /* 31 hex */
                "sha256-" HEX1 ".simplesig.0123456789abcdef0123456789abcdef0", /* 33 */
                "sha256-" HEX1 ".simplesig.0123456789ABCDEF0123456789abcdef",
                "sha256-" HEX1 ".simplesig-0123456789abcdef0123456789abcdef",
                "",
        };
        char sig_tag[SIGMANIFEST_SIG_TAG_LEN + 1];

        sigmanifest_tag(D1, tag);
        assert_string_equal(tag, "sha256-" HEX1 ".simplesig");
        assert_int_equal(strlen(tag), SIGMANIFEST_TAG_LEN);
        assert_true(strlen(tag) <= 128); /* the distribution spec's tag length */
        assert_true(sigmanifest_is_tag(tag, strlen(tag)));
        for (size_t i = 0; i < ELEMENTSOF(not_tags); i++)
                if (sigmanifest_is_tag(not_tags[i], strlen(not_tags[i])))
                        fail_msg("took \"%s\" for a signature tag", not_tags[i]);

        /* One signature's tag: the digest's, "." and 32 hex of the signature's sha256. */
        sigmanifest_sig_tag(D1, D2, sig_tag);
        assert_string_equal(sig_tag, "sha256-" HEX1 ".simplesig.fedcba9876543210fedcba9876543210");
        assert_int_equal(strlen(sig_tag), SIGMANIFEST_SIG_TAG_LEN);
        assert_true(strlen(sig_tag) <= 128);
        assert_true(sigmanifest_is_tag(sig_tag, strlen(sig_tag)));
        assert_true(sigmanifest_is_sig_tag_of(sig_tag, strlen(sig_tag), D1));
        assert_false(sigmanifest_is_sig_tag_of(sig_tag, strlen(sig_tag), D2)); /* another digest's */
        assert_false(sigmanifest_is_sig_tag_of(tag, strlen(tag), D1));         /* the first version's */
        for (size_t i = 0; i < ELEMENTSOF(not_tags); i++)
                assert_false(sigmanifest_is_sig_tag_of(not_tags[i], strlen(not_tags[i]), D1));

        /* The digest's own repository: NAME/<the digest's tag>, a name of at most 255 bytes. */
        {
                char repo[256], name[SIGMANIFEST_REPOSITORY_BASE_MAX + 2];

                assert_int_equal(sigmanifest_repository("app/web", 7, D1, repo), 0);
                assert_string_equal(repo, "app/web/sha256-" HEX1 ".simplesig");
                assert_true(sigmanifest_is_repository(repo, strlen(repo)));
                assert_false(sigmanifest_is_repository("app/web", 7));
                assert_false(sigmanifest_is_repository(tag, strlen(tag))); /* no NAME before it */
                assert_false(sigmanifest_is_repository("app/x", 5));
                for (size_t i = 0; i < ELEMENTSOF(not_tags); i++) {
                        (void) snprintf(repo, sizeof repo, "app/%s", not_tags[i]);
                        assert_false(sigmanifest_is_repository(repo, strlen(repo)));
                }
                memset(name, 'a', sizeof name);
                assert_int_equal(sigmanifest_repository(name, SIGMANIFEST_REPOSITORY_BASE_MAX, D1, repo), 0);
                assert_int_equal(strlen(repo), 255);
                assert_int_equal(sigmanifest_repository(name, SIGMANIFEST_REPOSITORY_BASE_MAX + 1, D1, repo),
                                 -ENAMETOOLONG);
        }
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

/* The images the live tests sign: the store takes signatures only for a manifest the registry
 * holds in that repository (sigreg_put()). Two, pushed by digest (no tag: the census sees no
 * image) to each repository a test signs in; their digests, and their hex alone. */
static char d1[SIGSTORE_DIGEST_LEN + 1], d2[SIGSTORE_DIGEST_LEN + 1];
#define hex1 (d1 + 7)
#define hex2 (d2 + 7)

/* Both images into repository, by digest. */
static void push_images(const char *repository) {
        assert_int_equal(test_registry_push_image(&registry, repository, "1", d1), 0);
        assert_int_equal(test_registry_push_image(&registry, repository, "2", d2), 0);
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

        /* Nothing yet (an image without signatures). */
        push_images("app/web");
        assert_int_equal(sigreg_list(&reg, "app/web", 7, d1, &got, &n), 0);
        assert_int_equal(n, 0);

        assert_int_equal(sigreg_put(&reg, "app/web", 7, d1, &a), 0);
        assert_int_equal(sigreg_put(&reg, "app/web", 7, d1, &a), 1);
        /* The same bytes under another name: there already. */
        assert_int_equal(sigreg_put(&reg, "app/web", 7, d1, &(SigEntry){.suffix = "cccc", .content = a.content,
                                                                        .content_len = a.content_len}),
                         1);
        /* Its name with other bytes: never replaced. */
        assert_int_equal(sigreg_put(&reg, "app/web", 7, d1, &(SigEntry){.suffix = "aaaa", .content = b.content,
                                                                        .content_len = b.content_len}),
                         -EEXIST);
        assert_int_equal(sigreg_put(&reg, "app/web", 7, d1, &b), 0);

        assert_int_equal(sigreg_list(&reg, "app/web", 7, d1, &got, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(got[0].suffix, "aaaa"); /* in the order stored */
        assert_int_equal(got[0].content_len, a.content_len);
        assert_memory_equal(got[0].content, a.content, a.content_len);
        assert_string_equal(got[1].suffix, "bbbb");
        assert_memory_equal(got[1].content, b.content, b.content_len);
        sig_entries_free(got, n);

        /* Another digest, another repository: their own. */
        assert_int_equal(sigreg_list(&reg, "app/web", 7, d2, &got, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(sigreg_list(&reg, "app/other", 9, d1, &got, &n), 0);
        assert_int_equal(n, 0);
}

static void test_registry_cap(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        char content[32];
        SigEntry *got = NULL;
        size_t n = 0;

        need_registry();
        push_images("cap");
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        for (int i = 0; i < SIGSTORE_MAX_PER_DIGEST; i++) {
                SigEntry e = {.content = (uint8_t *) content};

                (void) snprintf(e.suffix, sizeof e.suffix, "s%02d", i);
                e.content_len = (size_t) snprintf(content, sizeof content, "signature %d", i);
                assert_int_equal(sigreg_put(&reg, "cap", 3, d2, &e), 0);
        }
        {
                SigEntry e = entry("one-too-many", "signature 99");
                assert_int_equal(sigreg_put(&reg, "cap", 3, d2, &e), -EDQUOT);
        }
        assert_int_equal(sigreg_list(&reg, "cap", 3, d2, &got, &n), 0);
        assert_int_equal(n, SIGSTORE_MAX_PER_DIGEST);
        assert_string_equal(got[SIGSTORE_MAX_PER_DIGEST - 1].suffix, "s15");
        sig_entries_free(got, n);
}

/* Through the handler, with the target as the server hands it over: inside the request line,
 * followed by " HTTP/1.1" (the digest there is not a C string: it once went into the manifest
 * with the rest of the line, and Distribution refused it as MANIFEST_INVALID). */
static void test_registry_handler(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        char line[256], body[256], name[128];
        size_t target_len;
        SigReply rep;

        need_registry();
        push_images("app/line");
        (void) snprintf(line, sizeof line, "/extensions/v2/app/line/signatures/%s HTTP/1.1\r\nHost: x\r\n", d1);
        (void) snprintf(body, sizeof body,
                        "{\"schemaVersion\":2,\"name\":\"%s@0123abcd\",\"type\":\"atomic\",\"content\":\"aGVsbG8=\"}",
                        d1);
        (void) snprintf(name, sizeof name, "\"name\":\"%s@0123abcd\"", d1);
        target_len = strchr(line, ' ') - line;
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        SigBackend b = {.root_fd = -EBADF, .registry = &reg};

        assert_int_equal(sighandle_request(&b, "PUT", 3, line, target_len, body, strlen(body), &rep), 0);
        if (rep.status != 201)
                fail_msg("PUT: %d %s", rep.status, rep.body ? rep.body : "");
        sig_reply_done(&rep);
        assert_int_equal(sighandle_request(&b, "GET", 3, line, target_len, NULL, 0, &rep), 0);
        assert_int_equal(rep.status, 200);
        assert_non_null(strstr(rep.body, name));
        assert_non_null(strstr(rep.body, "\"content\":\"aGVsbG8=\""));
        sig_reply_done(&rep);
}

/* Concurrent PUTs for one digest from several writers, through separate clients (two "hosts",
 * each a SigRegistry and a SigBackend of its own, several processes each): every PUT that was
 * answered 201 must be served by GET. The one-manifest layout of the first version lost some
 * (a read-modify-write of one tag); one tag per signature does not. */
#define WRITERS 8
#define PER_WRITER 2

static void writer(const char *address, int start_fd, int w) {
        SigRegistry reg = {};
        SigBackend b = {.root_fd = -EBADF, .registry = &reg};
        char target[128], go;
        int failed = 0;

        (void) snprintf(target, sizeof target, "/extensions/v2/race/signatures/%s", d1);
        if (sigreg_init(&reg, address) < 0)
                _exit(2);
        if (read(start_fd, &go, 1) != 1) /* all at once: the parent closes the pipe */
                (void) 0;
        for (int i = 0; i < PER_WRITER; i++) {
                char body[512], content[64], b64[128];
                SigReply rep;

                (void) snprintf(content, sizeof content, "signature of writer %d number %d", w, i);
                sigjson_base64_encode((const uint8_t *) content, strlen(content), b64);
                (void) snprintf(body, sizeof body,
                                "{\"schemaVersion\":2,\"name\":\"%s@w%02dn%d\",\"type\":\"atomic\",\"content\":\"%s\"}",
                                d1, w, i, b64);
                if (sighandle_request(&b, "PUT", 3, target, strlen(target), body, strlen(body), &rep) < 0 ||
                    rep.status != 201) {
                        fprintf(stderr, "writer %d: PUT %d: %d %s\n", w, i, rep.status, rep.body ? rep.body : "");
                        failed |= 1 << i;
                }
                sig_reply_done(&rep);
        }
        sigreg_done(&reg);
        _exit(failed);
}

static void test_registry_concurrent(void **state) {
        _cleanup_(sigreg_done) SigRegistry host_a = {}, host_b = {};
        SigEntry *got = NULL;
        int start[2], refused[WRITERS];
        pid_t pids[WRITERS];
        size_t n = 0;

        need_registry();
        push_images("race");
        assert_int_equal(pipe(start), 0);
        for (int w = 0; w < WRITERS; w++) {
                pids[w] = fork();
                assert_true(pids[w] >= 0);
                if (pids[w] == 0) {
                        (void) close(start[1]);
                        writer(registry.address, start[0], w);
                }
        }
        (void) close(start[0]);
        (void) close(start[1]); /* go */
        for (int w = 0; w < WRITERS; w++) {
                int status = 0;

                assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) < (1 << PER_WRITER));
                refused[w] = WEXITSTATUS(status); /* bit i: PUT i was not answered 201 */
        }
        /* Read through both "hosts": each serves every acknowledged signature (the bug was a 201
         * for a signature that is then not served), sorted by name. */
        assert_int_equal(sigreg_init(&host_a, registry.address), 0);
        assert_int_equal(sigreg_init(&host_b, registry.address), 0);
        for (int h = 0; h < 2; h++) {
                size_t lost = 0;

                assert_int_equal(sigreg_list(h ? &host_b : &host_a, "race", 4, d1, &got, &n), 0);
                for (int w = 0; w < WRITERS; w++)
                        for (int i = 0; i < PER_WRITER; i++) {
                                char want[48];
                                bool found = false;

                                (void) snprintf(want, sizeof want, "w%02dn%d", w, i);
                                for (size_t k = 0; k < n; k++)
                                        found = found || streq(got[k].suffix, want);
                                if (!found && !(refused[w] & (1 << i))) {
                                        fprintf(stderr, "acknowledged with 201, not served: %s\n", want);
                                        lost++;
                                }
                        }
                for (size_t k = 1; k < n; k++)
                        assert_true(strcmp(got[k - 1].suffix, got[k].suffix) < 0);
                sig_entries_free(got, n);
                if (lost > 0)
                        fail_msg("%zu acknowledged signatures lost", lost);
                assert_int_equal(n, WRITERS * PER_WRITER);
        }
        /* And none refused: no writer waits for another. */
        for (int w = 0; w < WRITERS; w++)
                if (refused[w])
                        fail_msg("writer %d: PUTs refused (mask %d)", w, refused[w]);
}

/* Writes a file below the registry's scratch directory. */
static void write_file(const char *name, const void *data, size_t len) {
        char path[TMPDIR_PATH_MAX + 64];
        FILE *f;

        (void) snprintf(path, sizeof path, "%s/%s", registry.dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

static void sha256_of(const void *data, size_t len, char ret[static 72]) {
        unsigned char md[32];

        assert_non_null(SHA256(data, len, md));
        strcpy(ret, "sha256:");
        for (int i = 0; i < 32; i++)
                (void) sprintf(ret + 7 + 2 * i, "%02x", md[i]);
}

/* Migration: a digest whose signatures the first version stored, all in one manifest at
 * sha256-HEX.simplesig (written here with curl, as that version wrote it): still served, merged
 * with the per-signature tags written since, and its names and bytes still count for the rules. */
static void test_registry_legacy(void **state) {
        static const char legacy[] = "a signature stored this morning";
        _cleanup_(sigreg_done) SigRegistry reg = {};
        _cleanup_free_ char *json = NULL, *cmd = NULL;
        SigEntry *got = NULL, newer = entry("0-newer", "a signature stored now");
        char config_digest[72];
        SigLayer l = {.suffix = "legacy", .size = strlen(legacy)};
        size_t len = 0, n = 0;

        need_registry();
        push_images("old");
        sha256_of(sigmanifest_config, strlen(sigmanifest_config), config_digest);
        sha256_of(legacy, strlen(legacy), l.digest);
        assert_int_equal(sigmanifest_build(&l, 1, d2, config_digest, &json, &len), 0);
        write_file("config", sigmanifest_config, strlen(sigmanifest_config));
        write_file("legacy", legacy, strlen(legacy));
        write_file("manifest", json, len);
        assert_true(asprintf(&cmd,
                             "set -e; cd '%s'; c='curl -sf --unix-socket %s'; r=http://localhost/v2/old;"
                             "for b in 'config %s' 'legacy %s'; do set -- $b;"
                             " loc=$($c -X POST -D - -o /dev/null $r/blobs/uploads/ | tr -d '\\r' |"
                             " sed -n 's/^[Ll]ocation: *//p');"
                             " $c -X PUT -H 'Content-Type: application/octet-stream' --data-binary @$1"
                             " \"$loc&digest=$2\" -o /dev/null; done;"
                             "$c -X PUT -H 'Content-Type: " SIGMANIFEST_TYPE "' --data-binary @manifest"
                             " $r/manifests/sha256-%s.simplesig -o /dev/null",
                             registry.dir, registry.sock, config_digest, l.digest, hex2) >= 0);
        assert_int_equal(system(cmd), 0);

        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        assert_int_equal(sigreg_list(&reg, "old", 3, d2, &got, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(got[0].suffix, "legacy");
        assert_memory_equal(got[0].content, legacy, strlen(legacy));
        sig_entries_free(got, n);

        /* Its bytes under another name: there already; its name with other bytes: refused. */
        assert_int_equal(sigreg_put(&reg, "old", 3, d2, &(SigEntry){.suffix = "x", .content = (uint8_t *) legacy,
                                                                   .content_len = strlen(legacy)}),
                         1);
        assert_int_equal(sigreg_put(&reg, "old", 3, d2, &(SigEntry){.suffix = "legacy", .content = newer.content,
                                                                   .content_len = newer.content_len}),
                         -EEXIST);
        assert_int_equal(sigreg_put(&reg, "old", 3, d2, &newer), 0);
        assert_int_equal(sigreg_put(&reg, "old", 3, d2, &newer), 1);
        assert_int_equal(sigreg_list(&reg, "old", 3, d2, &got, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(got[0].suffix, "0-newer"); /* by name */
        assert_string_equal(got[1].suffix, "legacy");
        sig_entries_free(got, n);
}

/* Lines of the registry's log that hold needle: its access log has one line per request,
 * '"GET /v2/... HTTP/1.1" 200 ...', written before the connection closes. */
static size_t log_count(const char *needle) {
        char path[TMPDIR_PATH_MAX + 16], line[4096];
        size_t n = 0;
        FILE *f;

        (void) snprintf(path, sizeof path, "%s/registry.log", registry.dir);
        f = fopen(path, "re");
        assert_non_null(f);
        while (fgets(line, sizeof line, f))
                n += strstr(line, needle) != NULL;
        (void) fclose(f);
        return n;
}

/* Pushes the manifest json, with the store's config blob (uploaded first), to repository at each
 * tag the shell words tags expand to, with curl as a client would. */
static void push_manifest(const char *repository, const char *json, const char *tags) {
        _cleanup_free_ char *cmd = NULL;
        char config_digest[72];

        sha256_of(sigmanifest_config, strlen(sigmanifest_config), config_digest);
        write_file("config", sigmanifest_config, strlen(sigmanifest_config));
        write_file("push-manifest", json, strlen(json));
        assert_true(asprintf(&cmd,
                             "set -e; cd '%s'; c='curl -sf --unix-socket %s'; r=http://localhost/v2/%s;"
                             "loc=$($c -X POST -D - -o /dev/null $r/blobs/uploads/ | tr -d '\\r' |"
                             " sed -n 's/^[Ll]ocation: *//p');"
                             "$c -X PUT -H 'Content-Type: application/octet-stream' --data-binary @config"
                             " \"$loc&digest=%s\" -o /dev/null;"
                             "for t in %s; do $c -X PUT -H 'Content-Type: " SIGMANIFEST_TYPE "'"
                             " --data-binary @push-manifest $r/manifests/$t -o /dev/null; done",
                             registry.dir, registry.sock, repository, config_digest, tags) >= 0);
        assert_int_equal(system(cmd), 0);
}

/* An OCI manifest that is not a signature manifest (an image's config type, no layers). */
static char *junk_manifest(void) {
        char config_digest[72], *json = NULL;

        sha256_of(sigmanifest_config, strlen(sigmanifest_config), config_digest);
        assert_true(asprintf(&json,
                             "{\"schemaVersion\":2,\"mediaType\":\"" SIGMANIFEST_TYPE "\",\"config\":{\"mediaType\":"
                             "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
                             "\"layers\":[]}",
                             config_digest, strlen(sigmanifest_config)) >= 0);
        return json;
}

/* A repository with many tags: a signature GET never lists them (Distribution 2.8 answers
 * tags/list with every tag, whatever n and last say, so the old per-GET listing of NAME grew with
 * NAME, past the store's bound at ~30000 tags, and let any anonymous client make the registry list
 * them all per request). It reads the digest's own repository: 2 requests for a digest without
 * signatures, 2 + 2 per signature with. */
#define MANY_TAGS 400

static void test_registry_many_tags(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        _cleanup_free_ char *json = junk_manifest();
        SigEntry a = entry("aaaa", "signature A"), *got = NULL;
        size_t n = 0, before;
        char tags[64], needle[160];

        need_registry();
        (void) snprintf(tags, sizeof tags, "$(seq -f 'v%%g' 1 %d)", MANY_TAGS);
        push_manifest("many", json, tags);
        push_images("many");
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        assert_int_equal(sigreg_put(&reg, "many", 4, d1, &a), 0);

        before = log_count("] \"");
        assert_int_equal(sigreg_list(&reg, "many", 4, d1, &got, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(got[0].suffix, "aaaa");
        sig_entries_free(got, n);
        /* The legacy tag, the digest's tag list, its one manifest, its one blob. */
        assert_int_equal(log_count("] \"") - before, 4);

        before = log_count("] \"");
        assert_int_equal(sigreg_list(&reg, "many", 4, d2, &got, &n), 0); /* any digest, no signature */
        assert_int_equal(n, 0);
        assert_int_equal(log_count("] \"") - before, 2);

        /* Never NAME's tag list, not for a PUT either. */
        assert_int_equal(log_count("\"GET /v2/many/tags/list"), 0);
        (void) snprintf(needle, sizeof needle, "\"GET /v2/many/sha256-%s.simplesig/tags/list?n=", hex1);
        assert_int_equal(log_count(needle), 1 + 1);
}

/* A signature tag that holds what this store did not write (junk at a per-signature tag, a
 * manifest copied to another signature's tag, junk at the legacy tag): left out, the valid
 * signature still served, through the handler too (200, not 500 for the whole digest). */
static void test_registry_malformed(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        _cleanup_free_ char *json = junk_manifest(), *sig_tags = NULL, *copied = NULL, *cmd = NULL;
        SigEntry a = entry("aaaa", "the valid signature"), b = entry("bbbb", "another one"), *got = NULL;
        char a_digest[72], target[160], sig_repo[128], legacy_tag[96], copy_tag[128];
        size_t n = 0;

        need_registry();
        push_images("junk");
        (void) snprintf(target, sizeof target, "/extensions/v2/junk/signatures/%s", d1);
        (void) snprintf(sig_repo, sizeof sig_repo, "junk/sha256-%s.simplesig", hex1);
        (void) snprintf(legacy_tag, sizeof legacy_tag, "sha256-%s.simplesig", hex1);
        (void) snprintf(copy_tag, sizeof copy_tag, "sha256-%s.simplesig.11111111111111111111111111111111", hex1);
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        assert_int_equal(sigreg_put(&reg, "junk", 4, d1, &a), 0);

        /* Junk at two per-signature tags (one sorts before the valid one) and at the legacy tag. */
        assert_true(asprintf(&sig_tags, "%s.00000000000000000000000000000000 %s.ffffffffffffffffffffffffffffffff",
                             legacy_tag, legacy_tag) >= 0);
        push_manifest(sig_repo, json, sig_tags);
        push_manifest("junk", json, legacy_tag);
        /* The valid signature's manifest, copied to a tag that names other bytes. */
        sha256_of(a.content, a.content_len, a_digest);
        assert_true(asprintf(&cmd,
                             "set -e; c='curl -sf --unix-socket %s'; r=http://localhost/v2;"
                             "$c -H 'Accept: " SIGMANIFEST_TYPE "' $r/%s/manifests/%s.%.32s -o '%s/copied'",
                             registry.sock, sig_repo, legacy_tag, a_digest + 7, registry.dir) >= 0);
        assert_int_equal(system(cmd), 0);
        {
                char path[TMPDIR_PATH_MAX + 16];
                FILE *f;

                (void) snprintf(path, sizeof path, "%s/copied", registry.dir);
                f = fopen(path, "re");
                assert_non_null(f);
                copied = calloc(1, 4096);
                assert_true(fread(copied, 1, 4095, f) > 0);
                (void) fclose(f);
        }
        push_manifest(sig_repo, copied, copy_tag);

        assert_int_equal(sigreg_list(&reg, "junk", 4, d1, &got, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(got[0].suffix, "aaaa");
        assert_memory_equal(got[0].content, a.content, a.content_len);
        sig_entries_free(got, n);
        assert_int_equal(reg.n_skipped, 4); /* 3 per-signature tags and the legacy one */
        assert_non_null(strstr(reg.skipped, "is not the signature store's"));

        {
                SigBackend be = {.root_fd = -EBADF, .registry = &reg};
                SigReply rep;
                char want[128];

                assert_int_equal(sighandle_request(&be, "GET", 3, target, strlen(target), NULL, 0, &rep), 0);
                assert_int_equal(rep.status, 200);
                (void) snprintf(want, sizeof want, "\"name\":\"%s@aaaa\"", d1);
                assert_non_null(strstr(rep.body, want));
                sig_reply_done(&rep);
        }
        /* A NAME with no room for the digest's repository: a PUT is refused (400 through the
         * handler), a GET reads the legacy tag only. */
        {
                char name[SIGMANIFEST_REPOSITORY_BASE_MAX + 2], long_target[512];
                SigBackend be = {.root_fd = -EBADF, .registry = &reg};
                static const char body[] = "{\"schemaVersion\":2,\"name\":\"" D1 "@x\",\"type\":\"atomic\","
                                           "\"content\":\"aGVsbG8=\"}";
                SigReply rep;
                size_t len = SIGMANIFEST_REPOSITORY_BASE_MAX + 1, before;

                memset(name, 'a', sizeof name);
                name[len] = '\0';
                assert_int_equal(sigreg_put(&reg, name, len, d1, &a), -ENAMETOOLONG);
                (void) snprintf(long_target, sizeof long_target, "/extensions/v2/%s/signatures/" D1, name);
                assert_int_equal(sighandle_request(&be, "PUT", 3, long_target, strlen(long_target), body,
                                                   strlen(body), &rep),
                                 0);
                assert_int_equal(rep.status, 400);
                assert_string_equal(rep.code, "NAME_INVALID");
                sig_reply_done(&rep);
                before = log_count("] \"");
                assert_int_equal(sigreg_list(&reg, name, len, d1, &got, &n), 0);
                assert_int_equal(n, 0);
                assert_int_equal(log_count("] \"") - before, 1);
        }

        /* A PUT still works beside the junk, and counts only what is valid. */
        assert_int_equal(sigreg_put(&reg, "junk", 4, d1, &b), 0);
        assert_int_equal(sigreg_list(&reg, "junk", 4, d1, &got, &n), 0);
        assert_int_equal(n, 2);
        sig_entries_free(got, n);
}

/* The census of a shared store through the API (supervisor/health/image-signatures.c): after the
 * tests above, the registry holds only signature tags (both forms) in app/web, cap, app/line, race
 * and old; an image tag old:v1 added here is the one tag listed, with its digest (HEAD). */
static void test_registry_census(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        _cleanup_free_ char *cmd = NULL, *manifest = NULL;
        StoredTag *t = NULL;
        char path[TMPDIR_PATH_MAX + 16], digest[72];
        size_t n = 99;
        FILE *f;
        long len;

        need_registry();
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        assert_int_equal(stored_tags_list_api(&reg, &t, &n), 0);
        assert_int_equal(n, 0); /* signature tags only: no image */
        stored_tags_free(t, n);

        /* The first version's manifest file (test_registry_legacy), as an image at old:v1. */
        assert_true(asprintf(&cmd,
                             "curl -sf --unix-socket %s -X PUT -H 'Content-Type: " SIGMANIFEST_TYPE "'"
                             " --data-binary @%s/manifest http://localhost/v2/old/manifests/v1 -o /dev/null",
                             registry.sock, registry.dir) >= 0);
        assert_int_equal(system(cmd), 0);
        (void) snprintf(path, sizeof path, "%s/manifest", registry.dir);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        len = ftell(f);
        rewind(f);
        manifest = malloc((size_t) len);
        assert_int_equal(fread(manifest, 1, (size_t) len, f), (size_t) len);
        (void) fclose(f);
        sha256_of(manifest, (size_t) len, digest);

        reg.deadline_ms = 0;
        assert_int_equal(stored_tags_list_api(&reg, &t, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(t[0].repository, "old");
        assert_string_equal(t[0].tag, "v1");
        assert_string_equal(t[0].digest, digest);
        stored_tags_free(t, n);
        {
                char got[72];
                assert_int_equal(sigreg_resolve(&reg, "old", "v1", got), 0);
                assert_string_equal(got, digest);
                assert_int_equal(sigreg_resolve(&reg, "old", "nope", got), -ENOENT);
        }
}

static int catalog_has_prefix(const char *name, size_t len, void *userdata) {
        const char *prefix = userdata;

        return len >= strlen(prefix) && memcmp(name, prefix, strlen(prefix)) == 0 ? -EEXIST : 0;
}

/* A PUT for a digest the registry does not hold in that repository: refused (404
 * MANIFEST_UNKNOWN through the handler) before anything is written, so no repository appears in
 * the catalog. Each such PUT once made a new NAME/sha256-HEX.simplesig repository: a pusher of one
 * repository could fill the catalog past what the census reads (health UNKNOWN). */
static void test_registry_unknown_image(void **state) {
        _cleanup_(sigreg_done) SigRegistry reg = {};
        SigEntry a = entry("aaaa", "signature of nothing");
        char target[160], body[256];
        SigReply rep;

        need_registry();
        push_images("known"); /* the images exist, but in another repository */
        assert_int_equal(sigreg_init(&reg, registry.address), 0);
        assert_int_equal(sigreg_put(&reg, "ghost", 5, D1, &a), -ENOENT);
        assert_int_equal(sigreg_put(&reg, "ghost", 5, d1, &a), -ENOENT);
        assert_int_equal(sigreg_put(&reg, "known", 5, D1, &a), -ENOENT);

        (void) snprintf(target, sizeof target, "/extensions/v2/ghost/signatures/%s", d2);
        (void) snprintf(body, sizeof body,
                        "{\"schemaVersion\":2,\"name\":\"%s@x\",\"type\":\"atomic\",\"content\":\"aGVsbG8=\"}", d2);
        {
                SigBackend be = {.root_fd = -EBADF, .registry = &reg};

                assert_int_equal(sighandle_request(&be, "PUT", 3, target, strlen(target), body, strlen(body), &rep), 0);
                assert_int_equal(rep.status, 404);
                assert_string_equal(rep.code, "MANIFEST_UNKNOWN");
                sig_reply_done(&rep);
        }

        /* Nothing written: no ghost, no known/sha256-... in the catalog. */
        reg.deadline_ms = 0;
        assert_int_equal(sigreg_each_repository(&reg, catalog_has_prefix, (void *) "ghost"), 0);
        assert_int_equal(sigreg_each_repository(&reg, catalog_has_prefix, (void *) "known/"), 0);
        assert_int_equal(sigreg_each_repository(&reg, catalog_has_prefix, (void *) "known"), -EEXIST);

        /* The image's own digest in its repository: stored. */
        assert_int_equal(sigreg_put(&reg, "known", 5, d1, &a), 0);
        assert_int_equal(sigreg_each_repository(&reg, catalog_has_prefix, (void *) "known/"), -EEXIST);
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
                cmocka_unit_test(test_registry_concurrent),
                cmocka_unit_test(test_registry_legacy),
                cmocka_unit_test(test_registry_census),
                cmocka_unit_test(test_registry_many_tags), /* after the census: they add image tags */
                cmocka_unit_test(test_registry_malformed),
                cmocka_unit_test(test_registry_unknown_image),
        };
        int r = cmocka_run_group_tests_name("sigmanifest", pure, NULL, NULL);

        return r + cmocka_run_group_tests_name("sigreg-distribution", live, start_registry, stop_registry);
}
