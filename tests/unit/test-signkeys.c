/* SPDX-License-Identifier: MIT */
/*
 * signkeys_read() against real keys made by gpg (batch mode, in a temporary
 * GNUPGHOME): public exports pass, whatever their form; secret keys,
 * expired keys, garbage and missing files are refused with a message.
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "macro.h"
#include "signkeys.h"

static char dir[] = "/tmp/test-signkeys.XXXXXX";
static char fpr_one[64], fpr_two[64];

/* Runs the shell command fmt in dir with GNUPGHOME=dir/home; 0 on success. */
_printf_(1, 2) static int sh(const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL, *full = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        assert_true(r >= 0);
        assert_true(asprintf(&full, "cd %s && export GNUPGHOME=%s/home && %s >/dev/null 2>&1", dir, dir, cmd) >= 0);
        r = system(full);
        return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

static void read_fpr(const char *file, char *ret) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        assert_true(asprintf(&path, "%s/%s", dir, file) >= 0);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(ret, 64, f));
        ret[strcspn(ret, "\n")] = 0;
        fclose(f);
        assert_int_equal(strlen(ret), 40);
}

static int setup(void **state) {
        if (!mkdtemp(dir))
                return -1;
        /* Two signers, one expired (made "in 2020" with a one-day life). */
        /* home first: GNUPGHOME names it. */
        if (sh("mkdir -m 0700 home && "
               "gpg --batch --passphrase '' --quick-gen-key 'One <one@test>' ed25519 sign never && "
               "gpg --batch --faked-system-time 20200101T000000 --passphrase '' "
               "--quick-gen-key 'Old <old@test>' ed25519 sign 1d && "
               "gpg --with-colons --list-keys one@test | awk -F: '$1 == \"fpr\" { print $10; exit }' > one.fpr && "
               "gpg --with-colons --list-keys old@test | awk -F: '$1 == \"fpr\" { print $10; exit }' > old.fpr && "
               "gpg --armor --export one@test > one.asc && gpg --export one@test > one.gpg && "
               "gpg --armor --export old@test > old.asc && "
               "gpg --armor --export one@test old@test > both.asc && "
               "gpg --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys one@test "
               "> secret.asc && "
               "echo 'not a key' > garbage.asc && : > empty.asc && "
               "gpgconf --kill all") != 0)
                return -1;
        read_fpr("one.fpr", fpr_one);
        read_fpr("old.fpr", fpr_two);
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int teardown(void **state) {
        return nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int read_keys(const char *file, SignKeys *k, char **error) {
        _cleanup_free_ char *path = NULL;

        assert_true(asprintf(&path, "%s/%s", dir, file) >= 0);
        return signkeys_read(path, k, error);
}

static void test_public_armored_and_binary(void **state) {
        const char *files[] = {"one.asc", "one.gpg"};

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(signkeys_done) SignKeys k = {};
                _cleanup_free_ char *error = NULL;

                assert_int_equal(read_keys(files[i], &k, &error), 0);
                assert_null(error);
                assert_int_equal(k.n_keys, 1);
                assert_non_null(k.fingerprints);
                assert_string_equal(k.fingerprints[0], fpr_one);
                assert_null(k.fingerprints[1]);
                assert_true(k.size > 0);
        }
}

/* A keyring with a usable and an expired key: only the usable one counts. */
static void test_expired_key_skipped(void **state) {
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *error = NULL, *error2 = NULL;

        assert_int_equal(read_keys("both.asc", &k, &error), 0);
        assert_int_equal(k.n_keys, 2);
        assert_string_equal(k.fingerprints[0], fpr_one);
        assert_null(k.fingerprints[1]);

        signkeys_done(&k);
        assert_int_equal(read_keys("old.asc", &k, &error2), -EKEYREJECTED);
        assert_non_null(strstr(error2, fpr_two));
        assert_non_null(strstr(error2, "expired"));
}

static void test_secret_key_refused(void **state) {
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *error = NULL;

        assert_int_equal(read_keys("secret.asc", &k, &error), -EPERM);
        assert_non_null(strstr(error, "secret key"));
        assert_non_null(strstr(error, fpr_one));
        assert_null(k.data);
}

static void test_not_keys_refused(void **state) {
        const char *files[] = {"garbage.asc", "empty.asc"};

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(signkeys_done) SignKeys k = {};
                _cleanup_free_ char *error = NULL;

                assert_int_equal(read_keys(files[i], &k, &error), -EBADMSG);
                assert_non_null(strstr(error, "no OpenPGP public key"));
                assert_non_null(strstr(error, files[i]));
        }
}

static void test_missing_file(void **state) {
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *error = NULL;

        assert_int_equal(read_keys("missing.asc", &k, &error), -ENOENT);
        assert_non_null(strstr(error, "missing.asc"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_public_armored_and_binary),
                cmocka_unit_test(test_expired_key_skipped),
                cmocka_unit_test(test_secret_key_refused),
                cmocka_unit_test(test_not_keys_refused),
                cmocka_unit_test(test_missing_file),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
