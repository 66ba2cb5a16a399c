/* SPDX-License-Identifier: MIT */
/* supervisor/provision/store.c: the shared store's secret files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "macro.h"
#include "store.h"
#include "tmpdir.h"

static Config swift = {.storage_kind = STORAGE_SWIFT};
static Config s3 = {.storage_kind = STORAGE_S3};

static void test_parse(void **state) {
        _cleanup_free_ char *error = NULL;
        StoreCredentials c = {};

        (void) state;
        assert_int_equal(store_credentials_parse(&swift, "f", "# swift\n\nusername = a:b\n  password=p w\"\\ \n", &c,
                                                 &error),
                         0);
        assert_string_equal(c.username, "a:b");
        assert_string_equal(c.password, "p w\"\\");
        store_credentials_done(&c);
        assert_null(c.password);

        assert_int_equal(store_credentials_parse(&s3, "f", "username = a\npassword = b\n", &c, &error), -EINVAL);
        assert_non_null(strstr(error, "access_key and secret_key"));
        free(error);
        error = NULL;
        assert_int_equal(store_credentials_parse(&swift, "f", "username = a\npassword = b\npassword = c\n", &c, &error),
                         -EINVAL);
        assert_non_null(strstr(error, "f:3: password: duplicate key"));
        free(error);
        error = NULL;
        /* An unknown key is named, its value never. */
        assert_int_equal(store_credentials_parse(&swift, "f", "pasword = hunter2\n", &c, &error), -EINVAL);
        assert_non_null(strstr(error, "f:1: expected username"));
        assert_null(strstr(error, "hunter2"));
        assert_non_null(strstr(error, "got 'pasword'"));
        free(error);
        error = NULL;
        /* A YAML-style line: the text before '=' is most of the secret, so
         * only the line number is given (errors reach health's output). */
        static const char yaml[] = "access_key = AKIAEXAMPLE\nsecret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCY=\n";
        assert_int_equal(store_credentials_parse(&s3, "f", yaml, &c, &error), -EINVAL);
        assert_non_null(strstr(error, "f:2: expected username"));
        assert_null(strstr(error, "wJal"));
        assert_null(strstr(error, "K7MD"));
        assert_null(strstr(error, "secret_key:"));
        free(error);
        error = NULL;
        assert_int_equal(store_credentials_parse(&swift, "f", "Password = x\n", &c, &error), -EINVAL);
        assert_null(strstr(error, "Password"));
        free(error);
        error = NULL;
        assert_int_equal(store_credentials_parse(&swift, "f", "username = a\npassword = b\x01\n", &c, &error), -EINVAL);
        assert_non_null(strstr(error, "printable"));
        free(error);
        error = NULL;
        assert_int_equal(store_credentials_parse(&swift, "f", "username =\npassword = x\n", &c, &error), -EINVAL);
}

static void write_secret(const char *path, const char *text, mode_t mode) {
        int fd;

        (void) unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

/* Mode and owner checked: a file others may read is refused (root runs the
 * unit tests in CI; as another user every file is refused for its owner). */
static void test_secret_file(void **state) {
        char dir[TMPDIR_PATH_MAX], path[TMPDIR_PATH_MAX + 16], link[TMPDIR_PATH_MAX + 16];
        _cleanup_free_ char *secret = NULL, *error = NULL;
        const char *good = "0123456789abcdef0123456789abcdef\n";

        (void) state;
        assert_int_equal(tmpdir_make(dir, sizeof dir, "test-store"), 0);
        snprintf(path, sizeof path, "%s/secret", dir);
        snprintf(link, sizeof link, "%s/link", dir);

        write_secret(path, good, 0644);
        assert_int_equal(store_http_secret_load(path, &secret, &error), -EPERM);
        assert_non_null(strstr(error, "nobody else may read"));
        free(error);
        error = NULL;
        write_secret(path, good, 0640);
        assert_int_equal(store_http_secret_load(path, &secret, &error), -EPERM);
        free(error);
        error = NULL;
        assert_int_equal(symlink(path, link), 0);
        assert_true(store_http_secret_load(link, &secret, &error) < 0);
        free(error);
        error = NULL;
        if (geteuid() == 0) {
                write_secret(path, good, 0600);
                assert_int_equal(store_http_secret_load(path, &secret, &error), 0);
                assert_string_equal(secret, "0123456789abcdef0123456789abcdef");
                free(secret);
                secret = NULL;
                write_secret(path, "short\n", 0400);
                assert_int_equal(store_http_secret_load(path, &secret, &error), -EINVAL);
                free(error);
                error = NULL;
                write_secret(path, "0123456789abcdef0123456789abcdef\nsecond\n", 0400);
                assert_int_equal(store_http_secret_load(path, &secret, &error), -EINVAL);
                assert_non_null(strstr(error, "one line"));
                free(error);
                error = NULL;
                write_secret(path, "0123456789abcdef0123456789abcdef: x\n", 0400);
                assert_int_equal(store_http_secret_load(path, &secret, &error), -EINVAL);
        }
        (void) unlink(link);
        (void) unlink(path);
        (void) rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_secret_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
