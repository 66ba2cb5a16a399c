/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/htpasswd.c: the file, Basic credentials, bcrypt through
 * crypt_r(), the per-worker cache.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "htpasswd.h"

/* A bcrypt hash of password at cost 4 (fast), made by libxcrypt. */
static void bcrypt(const char *password, char out[HTPASSWD_BCRYPT_LEN + 1]) {
        struct crypt_data data = {};
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];

        assert_non_null(crypt_gensalt_rn("$2y$", 4, NULL, 0, setting, sizeof(setting)));
        const char *h = crypt_rn(password, setting, &data, (int)sizeof(data));
        assert_non_null(h);
        assert_int_equal(strlen(h), HTPASSWD_BCRYPT_LEN);
        memcpy(out, h, HTPASSWD_BCRYPT_LEN + 1);
}

/* pattern with each "@H" replaced by hash, into out. */
static void subst(const char *pattern, const char *hash, char *out, size_t size) {
        size_t n = 0;

        for (const char *p = pattern; *p; p++) {
                const char *add = p[0] == '@' && p[1] == 'H' ? hash : (const char[]){*p, 0};
                assert_true(n + strlen(add) < size);
                memcpy(out + n, add, strlen(add));
                n += strlen(add);
                p += add == hash;
        }
        out[n] = 0;
}

static void test_parse(void **state) {
        char a[HTPASSWD_BCRYPT_LEN + 1], b[HTPASSWD_BCRYPT_LEN + 1], text[512];
        Htpasswd h = {};
        unsigned line = 0;
        const char *why = NULL;

        (void)state;
        bcrypt("secret", a);
        bcrypt("other", b);
        snprintf(text, sizeof(text), "# users\n\nci:%s\r\nbuild-01@example:%s", a, b);
        assert_int_equal(htpasswd_parse(text, strlen(text), &h, &line, &why), 0);
        assert_int_equal(h.n, 2);
        assert_string_equal(h.entries[0].user, "ci");
        assert_string_equal(h.entries[1].hash, b);
        assert_non_null(h.dummy);
        htpasswd_done(&h);
        htpasswd_done(&h);

        static const char *const bad[] = {
                "ci:$apr1$abc$0123456789012345678901",    /* MD5-crypt */
                "ci:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",  /* SHA1 */
                "ci:plain",                              /* plain text */
                "ci",                                    /* no hash */
                ":@H",                                   /* no user */
                "c i:@H",                                /* blank in the name */
                "ci:@H\nci:@H",                          /* twice */
                "ci:@H ",                                /* trailing blank */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                subst(bad[i], a, text, sizeof(text));
                line = 0;
                why = NULL;
                if (htpasswd_parse(text, strlen(text), &h, &line, &why) != -EINVAL)
                        fail_msg("accepted: %s", text);
                assert_non_null(why);
                assert_true(line >= 1);
        }
        /* The line of the error. */
        snprintf(text, sizeof(text), "ci:%s\n\nbad\n", a);
        assert_int_equal(htpasswd_parse(text, strlen(text), &h, &line, &why), -EINVAL);
        assert_int_equal(line, 3);
        /* A bad cost. */
        memcpy(text, a, sizeof(a));
        text[4] = '9';
        char t2[sizeof(text) + 4];
        snprintf(t2, sizeof(t2), "ci:%s", text);
        assert_int_equal(htpasswd_parse(t2, strlen(t2), &h, &line, &why), -EINVAL);
}

static void test_basic_decode(void **state) {
        char buf[64];
        const char *u, *p;

        (void)state;
        /* "ci:pass word:x" */
        static const char v[] = "Basic Y2k6cGFzcyB3b3JkOng=";
        assert_int_equal(htpasswd_basic_decode(v, strlen(v), buf, sizeof(buf), &u, &p), 0);
        assert_string_equal(u, "ci");
        assert_string_equal(p, "pass word:x");
        static const char lower[] = "basic Y2k6eA==";
        assert_int_equal(htpasswd_basic_decode(lower, strlen(lower), buf, sizeof(buf), &u, &p), 0);
        assert_string_equal(p, "x");
        static const char *const bad[] = {
                "Bearer Y2k6eA==", "Basic", "Basic ", "Basic Y2k6eA=", "Basic Y2k6eA=x", "Basic Y2k=",
                "Basic Y2k6eA==Y2k6", "Basic Y2k6eA\x01=", "Basic Y2kAOng=", /* "ci\0:x" */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                if (htpasswd_basic_decode(bad[i], strlen(bad[i]), buf, sizeof(buf), &u, &p) >= 0)
                        fail_msg("accepted: %s", bad[i]);
        assert_int_equal(htpasswd_basic_decode(v, strlen(v), buf, 8, &u, &p), -E2BIG);
}

static void test_verify_and_cache(void **state) {
        static struct crypt_data data;
        char a[HTPASSWD_BCRYPT_LEN + 1], text[256];
        Htpasswd h = {};
        HtpasswdCache cache = {};
        unsigned line;
        const char *why;
        unsigned char k1[32], k2[32], k3[32];

        (void)state;
        bcrypt("secret", a);
        snprintf(text, sizeof(text), "ci:%s\n", a);
        assert_int_equal(htpasswd_parse(text, strlen(text), &h, &line, &why), 0);
        assert_true(htpasswd_verify(&h, "ci", "secret", &data));
        assert_false(htpasswd_verify(&h, "ci", "Secret", &data));
        assert_false(htpasswd_verify(&h, "ci", "", &data));
        assert_false(htpasswd_verify(&h, "CI", "secret", &data));
        /* An unknown user with the right password of another: no. */
        assert_false(htpasswd_verify(&h, "nobody", "secret", &data));
        assert_false(htpasswd_verify(NULL, "ci", "secret", &data));

        htpasswd_cache_key("build-01", "Basic x", 7, k1);
        htpasswd_cache_key("build-02", "Basic x", 7, k2);
        htpasswd_cache_key("build-01", "Basic y", 7, k3);
        assert_false(htpasswd_cache_has(&cache, k1));
        htpasswd_cache_add(&cache, k1);
        assert_true(htpasswd_cache_has(&cache, k1));
        assert_false(htpasswd_cache_has(&cache, k2)); /* bound to the CN */
        assert_false(htpasswd_cache_has(&cache, k3));
        for (unsigned i = 0; i < HTPASSWD_CACHE_SLOTS; i++)
                htpasswd_cache_add(&cache, k3);
        assert_false(htpasswd_cache_has(&cache, k1)); /* bounded: the oldest goes */
        htpasswd_done(&h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_basic_decode),
                cmocka_unit_test(test_verify_and_cache),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
