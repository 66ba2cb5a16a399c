/* SPDX-License-Identifier: MIT */
/*
 * stored_tags_list() on a registry storage tree laid out as Distribution
 * 2.8 writes it: nested repositories, tags with and without current/link,
 * and names that must be skipped (invalid repository or tag names, links
 * that are not a digest, a symlinked repository, the signature store's
 * sha256-HEX.simplesig tags).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fileio.h"
#include "image-signatures.h"
#include "macro.h"
#include "tmpdir.h"

#define D1 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D2 "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define REPOS "docker/registry/v2/repositories"

static char dir[TMPDIR_PATH_MAX];

/* Writes content at dir/REPOS/rel, making the folders on the way. */
static void put(const char *rel, const char *content) {
        _cleanup_free_ char *path = NULL;

        assert_true(asprintf(&path, "%s/" REPOS "/%s", dir, rel) >= 0);
        assert_int_equal(mkdir_parents(path), 0);
        assert_int_equal(write_file_atomic(path, content, strlen(content), 0644, getuid(), getgid()), 0);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int teardown(void **state) {
        return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state) {
        return tmpdir_make(dir, sizeof dir, "test-image-signatures");
}

static void test_empty_storage(void **state) {
        StoredTag *t = NULL;
        size_t n = 1;

        assert_int_equal(stored_tags_list(dir, &t, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(stored_tags_list("/nonexistent-storage", &t, &n), -ENOENT);
}

static void test_tags_listed(void **state) {
        _cleanup_free_ char *link = NULL, *target = NULL;
        StoredTag *t = NULL;
        size_t n = 0;

        put("app/_manifests/tags/v1/current/link", D1);
        put("app/_manifests/tags/v2/current/link", D2);
        put("app/_manifests/tags/deleted/index/sha256/x/link", D1); /* no current/link */
        put("app/_layers/sha256/abc/link", D1);
        put("app/tools/x/_manifests/tags/latest/current/link", D2); /* nested */
        put("app/_manifests/tags/-bad/current/link", D1);            /* invalid tag */
        put("Upper/_manifests/tags/v1/current/link", D1);             /* invalid repository */
        put("junk/_manifests/tags/v1/current/link", "sha256:nothex"); /* not a digest */
        /* The signatures of D1 ([signing] store = registry): not an image, in either mode. */
        put("app/_manifests/tags/sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.simplesig/"
            "current/link",
            D2);
        /* One signature's own tag (one manifest per signature): not an image either. */
        put("app/_manifests/tags/sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.simplesig."
            "00112233445566778899aabbccddeeff/current/link",
            D2);
        assert_true(asprintf(&link, "%s/" REPOS "/linked", dir) >= 0);
        assert_true(asprintf(&target, "%s/" REPOS "/app", dir) >= 0);
        assert_int_equal(symlink(target, link), 0);
        /* A tag whose current/ is a symlink to another tag's: skipped. */
        put("app/_manifests/tags/v3/index/x", "");
        {
                _cleanup_free_ char *cur = NULL, *to = NULL;
                assert_true(asprintf(&cur, "%s/" REPOS "/app/_manifests/tags/v3/current", dir) >= 0);
                assert_true(asprintf(&to, "%s/" REPOS "/app/_manifests/tags/v1/current", dir) >= 0);
                assert_int_equal(symlink(to, cur), 0);
        }

        assert_int_equal(stored_tags_list(dir, &t, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(t[0].repository, "app");
        assert_string_equal(t[0].tag, "v1");
        assert_string_equal(t[0].digest, D1);
        assert_string_equal(t[1].tag, "v2");
        assert_string_equal(t[1].digest, D2);
        assert_string_equal(t[2].repository, "app/tools/x");
        assert_string_equal(t[2].tag, "latest");
        for (size_t i = 0; i < n; i++)
                assert_int_equal(t[i].verdict, TAG_NOT_CHECKED);
        stored_tags_free(t, n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_storage),
                cmocka_unit_test(test_tags_listed),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
