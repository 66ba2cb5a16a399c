/* SPDX-License-Identifier: MIT */
/*
 * Tests for the signature store's pure parts and its storage:
 * sigstore/sigcheck.c (the path, repository names, digests, signature
 * names), sigstore/sigjson.c (the PUT object and GET list in the exact shape
 * containers/image v5.23 reads, errors, strict base64), sigstore/sigfs.c
 * (on a temp dir: round trip, no overwrite, the count cap, crash leftovers)
 * and sigstore/sighandle.c (the status and error code of each refusal).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "sigcheck.h"
#include "sigfs.h"
#include "sighandle.h"
#include "sigjson.h"
#include "tmpdir.h"

#define D1 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D2 "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define EXT(name, digest) "/extensions/v2/" name "/signatures/" digest

static bool repo_ok(const char *s) {
        return sigcheck_repository(s, strlen(s));
}

static void test_repository(void **state) {
        static const char *const good[] = {
                "a", "app", "app/web", "a/b/c/d", "my-app", "my--app", "my_app", "my__app", "my.app",
                "0", "x1/y2", "library/busybox", "a-b-c/d.e_f", "signatures/x",
        };
        static const char *const bad[] = {
                "", "A", "App", "app/", "/app", "app//web", "-app", "app-", ".app", "app.", "_app",
                "app_", "my___app", "my..app", "my._app", "my-.app", "app web", "app%2fweb", "app+web",
                "app/../etc", "..", ".", "app/./x", "ä", "app\n", "app:tag", "app@x",
        };
        char longest[SIGSTORE_REPOSITORY_MAX + 2];

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                if (!repo_ok(good[i]))
                        fail_msg("refused a valid name: \"%s\"", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (repo_ok(bad[i]))
                        fail_msg("accepted an invalid name: \"%s\"", bad[i]);

        /* The length cap: 255 accepted, 256 refused. */
        memset(longest, 'a', sizeof(longest));
        longest[SIGSTORE_REPOSITORY_MAX] = '\0';
        assert_true(repo_ok(longest));
        longest[SIGSTORE_REPOSITORY_MAX] = 'a';
        longest[SIGSTORE_REPOSITORY_MAX + 1] = '\0';
        assert_false(repo_ok(longest));
        /* A NUL inside is not the end of the name. */
        assert_false(sigcheck_repository("ab\0c", 4));
}

/* Each of BAD, whole (strlen), is refused by CHECK. */
static void assert_refused(bool (*check)(const char *, size_t), const char *const *bad, size_t n_bad) {
        for (size_t i = 0; i < n_bad; i++)
                if (check(bad[i], strlen(bad[i])))
                        fail_msg("accepted '%s'", bad[i]);
}

static const char *const digests_refused[] = {
        D1 "0",
        "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "sha256:../../../../../../../../../../../../../../../../../../etc/passwd",
        "",
};

static void test_digest(void **state) {
        assert_true(sigcheck_digest(D1, strlen(D1)));
        assert_false(sigcheck_digest(D1, strlen(D1) - 1));
        assert_refused(sigcheck_digest, digests_refused, ELEMENTSOF(digests_refused));
}

static const char *const suffixes_refused[] = {"", ".", "..", ".tmp-1", "a/b", "a b"};

static void test_suffix(void **state) {
        char longest[SIGSTORE_SUFFIX_MAX + 1];

        assert_true(sigcheck_suffix("0123456789abcdef0123456789abcdef", 32));
        assert_true(sigcheck_suffix("A_b-c.d", 7));
        assert_refused(sigcheck_suffix, suffixes_refused, ELEMENTSOF(suffixes_refused));
        assert_false(sigcheck_suffix("a\0b", 3));
        memset(longest, 'a', sizeof(longest));
        assert_true(sigcheck_suffix(longest, SIGSTORE_SUFFIX_MAX));
        assert_false(sigcheck_suffix(longest, SIGSTORE_SUFFIX_MAX + 1));
}

static int parse_path(const char *target, SigPath *p) {
        return sigcheck_parse_path(target, strlen(target), p);
}

static void test_path(void **state) {
        SigPath p;

        assert_int_equal(parse_path(EXT("app/web", D1), &p), 0);
        assert_int_equal(p.repository_len, 7);
        assert_memory_equal(p.repository, "app/web", 7);
        assert_int_equal(p.digest_len, 71);
        assert_memory_equal(p.digest, D1, 71);

        /* A repository may have a component named "signatures": the last one splits. */
        assert_int_equal(parse_path(EXT("a/signatures/b", D1), &p), 0);
        assert_int_equal(p.repository_len, 14);

        /* Not this route at all. */
        assert_int_equal(parse_path("/v2/app/manifests/latest", &p), -ENOENT);
        assert_int_equal(parse_path("/extensions/v2/", &p), -ENOENT);
        assert_int_equal(parse_path("/extensions/v2/signatures/" D1, &p), -ENOENT);
        assert_int_equal(parse_path("/extensions/v2/app/signature/" D1, &p), -ENOENT);
        assert_int_equal(parse_path("/extensions/v2/app/signatures", &p), -ENOENT);
        assert_int_equal(parse_path("/extensions/v1/app/signatures/" D1, &p), -ENOENT);
        /* Names and digests. */
        assert_int_equal(parse_path(EXT("App", D1), &p), -EINVAL);
        assert_int_equal(parse_path(EXT("app/../x", D1), &p), -EINVAL);
        assert_int_equal(parse_path(EXT("app%2Fx", D1), &p), -EINVAL);
        assert_int_equal(parse_path("/extensions/v2//signatures/" D1, &p), -EINVAL);
        assert_int_equal(parse_path(EXT("app", "sha256:abc"), &p), -EBADMSG);
        assert_int_equal(parse_path(EXT("app", D1 "?x=1"), &p), -EBADMSG);
        assert_int_equal(parse_path(EXT("app", ""), &p), -EBADMSG);
}

/* ---- JSON */

static void test_base64(void **state) {
        uint8_t out[16], all[256];
        char enc[400];

        assert_int_equal(sigjson_base64_decode("aGVsbG8=", 8, out, sizeof(out)), 5);
        assert_memory_equal(out, "hello", 5);
        assert_int_equal(sigjson_base64_decode("aGk=", 4, out, sizeof(out)), 2);
        assert_int_equal(sigjson_base64_decode("aA==", 4, out, sizeof(out)), 1);
        /* Not canonical, not padded, other alphabets, whitespace, padding inside. */
        assert_int_equal(sigjson_base64_decode("aGVsbG8", 7, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("aB==", 4, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("aGl=", 4, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("a-_A", 4, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("aGVs\nbG8=", 9, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("aA==aGk=", 8, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("a===", 4, out, sizeof(out)), -EBADMSG);
        assert_int_equal(sigjson_base64_decode("aGVsbG8=", 8, out, 4), -EFBIG);

        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (uint8_t) i;
        for (size_t n = 0; n < 7; n++) {
                uint8_t back[8];
                size_t len = sigjson_base64_encode(all + 250, n, enc);

                assert_int_equal(len, 4 * ((n + 2) / 3));
                assert_int_equal(sigjson_base64_decode(enc, len, back, sizeof(back)), (long) n);
                assert_memory_equal(back, all + 250, n);
        }
}

static char *put_body(const char *version_key, int version, const char *name, const char *type, const char *content) {
        char *s = NULL;

        assert_true(asprintf(&s, "{\"%s\":%d,\"name\":\"%s\",\"type\":\"%s\",\"content\":\"%s\"}", version_key,
                             version, name, type, content) > 0);
        return s;
}

static int parse_put(const char *body, SigEntry *e) {
        const char *why = NULL;
        int r = sigjson_parse_put(body, strlen(body), D1, strlen(D1), e, &why);

        if (r < 0)
                assert_non_null(why);
        return r;
}

/* Objects in the right shape with one wrong value each. */
static const struct {
        const char *version_key;
        int version;
        const char *name, *type, *content;
} bad_puts[] = {
        /* The prose document's "version" is not the code's key. */
        {"version", 2, D1 "@x", "atomic", "aGk="},
        {"schemaVersion", 1, D1 "@x", "atomic", "aGk="},
        {"schemaVersion", 2, D1 "@x", "AtomicImageV1", "aGk="},
        /* The name must carry the URL's digest, and a safe unique part. */
        {"schemaVersion", 2, D2 "@x", "atomic", "aGk="},
        {"schemaVersion", 2, D1, "atomic", "aGk="},
        {"schemaVersion", 2, D1 "@", "atomic", "aGk="},
        {"schemaVersion", 2, D1 "@../../x", "atomic", "aGk="},
        {"schemaVersion", 2, D1 "@.tmp-1", "atomic", "aGk="},
        /* Content: strict base64, not empty. */
        {"schemaVersion", 2, D1 "@x", "atomic", "aGk"},
        {"schemaVersion", 2, D1 "@x", "atomic", ""},
};

static void test_parse_put(void **state) {
        SigEntry e = {};
        char *b;

        /* What podman 4.3 sends (json.Marshal order). */
        b = put_body("schemaVersion", 2, D1 "@0123456789abcdef0123456789abcdef", "atomic", "aGVsbG8=");
        assert_int_equal(parse_put(b, &e), 0);
        assert_string_equal(e.suffix, "0123456789abcdef0123456789abcdef");
        assert_int_equal(e.content_len, 5);
        assert_memory_equal(e.content, "hello", 5);
        free(e.content);
        free(b);

        /* Key order does not matter; trailing whitespace is fine. */
        e = (SigEntry){};
        assert_int_equal(parse_put("{\"content\":\"aGk=\",\"type\":\"atomic\",\"name\":\"" D1 "@x\",\"schemaVersion\":2}\n", &e), 0);
        free(e.content);

        for (size_t i = 0; i < ELEMENTSOF(bad_puts); i++) {
                b = put_body(bad_puts[i].version_key, bad_puts[i].version, bad_puts[i].name, bad_puts[i].type,
                             bad_puts[i].content);
                if (parse_put(b, &e) != -EBADMSG)
                        fail_msg("accepted: %s", b);
                free(b);
        }

        /* Shapes: extra keys, missing keys, wrong types, lists, trailing bytes, not JSON. */
        assert_int_equal(parse_put("{\"schemaVersion\":2,\"name\":\"" D1 "@x\",\"type\":\"atomic\",\"content\":\"aGk=\",\"x\":1}", &e), -EBADMSG);
        assert_int_equal(parse_put("{\"schemaVersion\":2,\"name\":\"" D1 "@x\",\"type\":\"atomic\"}", &e), -EBADMSG);
        assert_int_equal(parse_put("{\"schemaVersion\":\"2\",\"name\":\"" D1 "@x\",\"type\":\"atomic\",\"content\":\"aGk=\"}", &e), -EBADMSG);
        assert_int_equal(parse_put("{\"schemaVersion\":2.0,\"name\":\"" D1 "@x\",\"type\":\"atomic\",\"content\":\"aGk=\"}", &e), -EBADMSG);
        assert_int_equal(parse_put("{\"signatures\":[{\"schemaVersion\":2}]}", &e), -EBADMSG);
        assert_int_equal(parse_put("{\"schemaVersion\":2,\"name\":\"" D1 "@x\",\"type\":\"atomic\",\"content\":\"aGk=\"}{}", &e), -EBADMSG);
        assert_int_equal(parse_put("[]", &e), -EBADMSG);
        assert_int_equal(parse_put("", &e), -EBADMSG);
        assert_int_equal(parse_put("{", &e), -EBADMSG);
        assert_int_equal(parse_put("{\"schemaVersion\":2,\"name\":\"" D1 "@x\",\"type\":\"atomic\",\"content\":\"aGk=\"} x", &e), -EBADMSG);
}

static void test_parse_put_caps(void **state) {
        size_t max_b64 = 4 * ((SIGSTORE_MAX_SIGNATURE + 2) / 3);
        char *b64 = malloc(max_b64 + 5), *body = NULL;
        uint8_t *raw = calloc(1, SIGSTORE_MAX_SIGNATURE + 3);
        SigEntry e = {};

        assert_non_null(b64);
        assert_non_null(raw);
        /* Exactly the cap: stored. */
        (void) sigjson_base64_encode(raw, SIGSTORE_MAX_SIGNATURE, b64);
        free(body);
        body = put_body("schemaVersion", 2, D1 "@x", "atomic", b64);
        assert_true(strlen(body) < SIGSTORE_MAX_BODY);
        assert_int_equal(parse_put(body, &e), 0);
        assert_int_equal(e.content_len, SIGSTORE_MAX_SIGNATURE);
        free(e.content);
        free(body);
        /* One byte more: too large. */
        (void) sigjson_base64_encode(raw, SIGSTORE_MAX_SIGNATURE + 1, b64);
        body = put_body("schemaVersion", 2, D1 "@x", "atomic", b64);
        assert_int_equal(parse_put(body, &e), -EFBIG);
        free(body);
        free(b64);
        free(raw);
}

static void test_list_json(void **state) {
        SigEntry e[2] = {{.suffix = "aaa", .content = (uint8_t *) "hello", .content_len = 5},
                         {.suffix = "bbb", .content = (uint8_t *) "\0\1\2", .content_len = 3}};
        _cleanup_free_ char *json = NULL, *empty = NULL;
        json_object *o, *sigs, *s0, *v;
        size_t len;

        assert_int_equal(sigjson_list(NULL, 0, D1, strlen(D1), &empty, &len), 0);
        assert_string_equal(empty, "{\"signatures\":[]}");
        assert_int_equal(len, strlen(empty));

        assert_int_equal(sigjson_list(e, 2, D1, strlen(D1), &json, &len), 0);
        assert_string_equal(json, "{\"signatures\":[{\"schemaVersion\":2,\"name\":\"" D1
                                  "@aaa\",\"type\":\"atomic\",\"content\":\"aGVsbG8=\"},{\"schemaVersion\":2,\"name\":\"" D1
                                  "@bbb\",\"type\":\"atomic\",\"content\":\"AAEC\"}]}");
        /* And it is JSON with the keys the Go struct tags name. */
        o = json_tokener_parse(json);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "signatures", &sigs));
        assert_int_equal(json_object_array_length(sigs), 2);
        s0 = json_object_array_get_idx(sigs, 0);
        assert_true(json_object_object_get_ex(s0, "schemaVersion", &v));
        assert_int_equal(json_object_get_int(v), 2);
        (void) json_object_put(o);
}

static void test_error_json(void **state) {
        _cleanup_free_ char *json = NULL;
        size_t len;

        assert_int_equal(sigjson_error("DENIED", "a \"quoted\"\nline\\", &json, &len), 0);
        assert_string_equal(json, "{\"errors\":[{\"code\":\"DENIED\",\"message\":\"a \\\"quoted\\\"\\nline\\\\\"}]}");
        assert_int_equal(len, strlen(json));
}

/* ---- storage */

static char tmpdir[TMPDIR_PATH_MAX];
static int dir_fd = -EBADF, root_fd = -EBADF;

static int setup_store(void **state) {
        assert_int_equal(tmpdir_make(tmpdir, sizeof tmpdir, "test-sigstore"), 0);
        dir_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dir_fd >= 0);
        root_fd = sigfs_open_at(dir_fd);
        assert_true(root_fd >= 0);
        return 0;
}

static int teardown_store(void **state) {
        (void) close(root_fd);
        (void) close(dir_fd);
        assert_int_equal(tmpdir_remove(tmpdir), 0);
        return 0;
}

static int put(const char *repo, const char *digest, const char *suffix, const char *content) {
        SigEntry e = {.content = (uint8_t *) content, .content_len = strlen(content)};

        strcpy(e.suffix, suffix);
        return sigfs_put(root_fd, repo, strlen(repo), digest, &e);
}

static size_t count(const char *repo, const char *digest) {
        SigEntry *e = NULL;
        size_t n = 0;

        assert_int_equal(sigfs_list(root_fd, repo, strlen(repo), digest, &e, &n), 0);
        sig_entries_free(e, n);
        return n;
}

static void test_store_round_trip(void **state) {
        SigEntry *e = NULL;
        size_t n = 99;
        char path[512], buf[16] = {};
        int fd;

        assert_int_equal(sigfs_list(root_fd, "app/web", 7, D1, &e, &n), 0);
        assert_int_equal(n, 0);
        assert_null(e);

        assert_int_equal(put("app/web", D1, "bbb", "second"), 0);
        assert_int_equal(put("app/web", D1, "aaa", "first"), 0);
        assert_int_equal(sigfs_list(root_fd, "app/web", 7, D1, &e, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(e[0].suffix, "aaa"); /* sorted */
        assert_memory_equal(e[0].content, "first", 5);
        assert_string_equal(e[1].suffix, "bbb");
        sig_entries_free(e, n);

        /* The layout: one directory per repository ("/" as "+") and digest. */
        (void) snprintf(path, sizeof(path), "%s/v1/app+web/sha256-%s/aaa", tmpdir, D1 + 7);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, sizeof(buf)), 5);
        (void) close(fd);
        assert_string_equal(buf, "first");

        /* Other repositories and digests are apart; "app" is not "app/web". */
        assert_int_equal(count("app", D1), 0);
        assert_int_equal(count("app/web", D2), 0);
        assert_int_equal(count("app/web/x", D1), 0);
}

static void test_store_no_overwrite(void **state) {
        SigEntry *e = NULL;
        size_t n;

        assert_int_equal(put("app", D1, "name", "original"), 0);
        /* Same name, other bytes: refused, the original stays. */
        assert_int_equal(put("app", D1, "name", "replacement"), -EEXIST);
        /* Same name, same bytes: nothing to do. Same bytes, another name: nothing either. */
        assert_int_equal(put("app", D1, "name", "original"), 1);
        assert_int_equal(put("app", D1, "other", "original"), 1);
        assert_int_equal(sigfs_list(root_fd, "app", 3, D1, &e, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(e[0].content_len, 8);
        assert_memory_equal(e[0].content, "original", 8);
        sig_entries_free(e, n);
}

static void test_store_cap(void **state) {
        char suffix[16], content[16];

        for (int i = 0; i < SIGSTORE_MAX_PER_DIGEST; i++) {
                (void) snprintf(suffix, sizeof(suffix), "s%02d", i);
                (void) snprintf(content, sizeof(content), "c%02d", i);
                assert_int_equal(put("app", D1, suffix, content), 0);
        }
        assert_int_equal(put("app", D1, "one-more", "new bytes"), -EDQUOT);
        /* A repeat is still fine at the cap: nothing is written. */
        assert_int_equal(put("app", D1, "s00", "c00"), 1);
        assert_int_equal(count("app", D1), SIGSTORE_MAX_PER_DIGEST);
        /* Another digest has its own count. */
        assert_int_equal(put("app", D2, "one-more", "new bytes"), 0);
}

static void test_store_crash_leftovers(void **state) {
        char dir[512], path[600], other[600];
        int fd;

        assert_int_equal(put("app", D1, "kept", "bytes"), 0);
        /* What a crash leaves: a temp file, before or after its link. */
        (void) snprintf(dir, sizeof(dir), "%s/v1/app/sha256-%s", tmpdir, D1 + 7);
        (void) snprintf(path, sizeof(path), "%s/.tmp-0000000000000001", dir);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "half", 4), 4);
        (void) close(fd);
        /* ... and one linked already (a crash between linkat() and unlinkat()). */
        (void) snprintf(path, sizeof(path), "%s/kept", dir);
        (void) snprintf(other, sizeof(other), "%s/.tmp-0000000000000002", dir);
        assert_int_equal(link(path, other), 0);

        /* Temp files are never listed, and cleanup removes them all. */
        assert_int_equal(count("app", D1), 1);
        assert_int_equal(sigfs_cleanup(root_fd), 2);
        assert_int_equal(sigfs_cleanup(root_fd), 0);
        assert_int_equal(count("app", D1), 1);
}

static void test_store_foreign_files(void **state) {
        char path[512];
        int fd;

        /* A file that is not a signature we could have written (too large) is an error, not
         * served; a name the store would never write is ignored. */
        assert_int_equal(put("app", D1, "ok", "bytes"), 0);
        (void) snprintf(path, sizeof(path), "%s/v1/app/sha256-%s/has space", tmpdir, D1 + 7);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        (void) close(fd);
        assert_int_equal(count("app", D1), 1);
        (void) snprintf(path, sizeof(path), "%s/v1/app/sha256-%s/big", tmpdir, D1 + 7);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, SIGSTORE_MAX_SIGNATURE + 1), 0);
        (void) close(fd);
        {
                SigEntry *e = NULL;
                size_t n = 0;
                assert_int_equal(sigfs_list(root_fd, "app", 3, D1, &e, &n), -EIO);
        }
}

/* A FIFO among a digest's signatures (the directory is the service user's)
 * is an error at once, like any file the store did not write: opening it
 * used to wait for a writer and stall the store. The alarm turns a
 * regression into a failure rather than a hang. */
static void test_store_fifo(void **state) {
        SigEntry *e = NULL;
        size_t n = 0;
        char path[512];

        assert_int_equal(put("app", D1, "ok", "bytes"), 0);
        (void) snprintf(path, sizeof(path), "%s/v1/app/sha256-%s/fifo", tmpdir, D1 + 7);
        assert_int_equal(mkfifo(path, 0600), 0);
        alarm(10);
        assert_int_equal(sigfs_list(root_fd, "app", 3, D1, &e, &n), -EIO);
        alarm(0);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(count("app", D1), 1);
}

/* ---- requests */

static SigReply request(const char *method, const char *target, const char *body) {
        SigReply r;

        assert_int_equal(sighandle_request(&(SigBackend){.root_fd = root_fd}, method, strlen(method), target,
                                           strlen(target), body,
                                           body ? strlen(body) : 0, &r),
                         0);
        return r;
}

static void expect(const char *method, const char *target, const char *body, int status, const char *code) {
        SigReply r = request(method, target, body);

        if (r.status != status)
                fail_msg("%s %s: status %d, expected %d (%s)", method, target, r.status, status, r.body ? r.body : "");
        if (code) {
                char want[64];
                assert_string_equal(r.code, code);
                (void) snprintf(want, sizeof(want), "{\"errors\":[{\"code\":\"%s\"", code);
                assert_non_null(r.body);
                assert_true(strneq(r.body, want, strlen(want)));
        } else
                assert_null(r.code);
        sig_reply_done(&r);
}

static void test_requests(void **state) {
        char *good = put_body("schemaVersion", 2, D1 "@0123456789abcdef0123456789abcdef", "atomic", "aGVsbG8=");
        char *other = put_body("schemaVersion", 2, D1 "@0123456789abcdef0123456789abcdef", "atomic", "b3RoZXI=");
        SigReply r;

        expect("GET", EXT("app", D1), NULL, 200, NULL);
        expect("PUT", EXT("app", D1), good, 201, NULL);
        expect("PUT", EXT("app", D1), good, 201, NULL);   /* a repeat */
        expect("PUT", EXT("app", D1), other, 409, "DENIED"); /* never overwritten */
        r = request("GET", EXT("app", D1), NULL);
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.body, "\"content\":\"aGVsbG8=\""));
        assert_null(strstr(r.body, "b3RoZXI="));
        sig_reply_done(&r);
        r = request("HEAD", EXT("app", D1), NULL);
        assert_int_equal(r.status, 200);
        sig_reply_done(&r);

        expect("PUT", EXT("app", D2), good, 400, "SIGNATURE_INVALID"); /* the name's digest is D1 */
        expect("PUT", EXT("App", D1), good, 400, "NAME_INVALID");
        expect("GET", EXT("app", "sha256:abc"), NULL, 400, "DIGEST_INVALID");
        expect("GET", "/v2/app/manifests/latest", NULL, 404, "NOT_FOUND");
        expect("DELETE", EXT("app", D1), NULL, 405, "UNSUPPORTED");
        expect("POST", EXT("app", D1), good, 405, "UNSUPPORTED");
        free(good);
        free(other);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_repository),
                cmocka_unit_test(test_digest),
                cmocka_unit_test(test_suffix),
                cmocka_unit_test(test_path),
                cmocka_unit_test(test_base64),
                cmocka_unit_test(test_parse_put),
                cmocka_unit_test(test_parse_put_caps),
                cmocka_unit_test(test_list_json),
                cmocka_unit_test(test_error_json),
                cmocka_unit_test_setup_teardown(test_store_round_trip, setup_store, teardown_store),
                cmocka_unit_test_setup_teardown(test_store_no_overwrite, setup_store, teardown_store),
                cmocka_unit_test_setup_teardown(test_store_cap, setup_store, teardown_store),
                cmocka_unit_test_setup_teardown(test_store_crash_leftovers, setup_store, teardown_store),
                cmocka_unit_test_setup_teardown(test_store_foreign_files, setup_store, teardown_store),
                cmocka_unit_test_setup_teardown(test_store_fifo, setup_store, teardown_store),
                cmocka_unit_test_setup_teardown(test_requests, setup_store, teardown_store),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
