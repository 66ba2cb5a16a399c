/* SPDX-License-Identifier: MIT */
/*
 * signkeys_read() against real keys made by gpg (batch mode, in a temporary
 * GNUPGHOME): public exports pass, whatever their form; secret keys,
 * expired keys, garbage and missing files are refused with a message.
 * sigverify against real simple signatures made by gpg --sign: one by the
 * trusted key passes, one by another key, for another digest, tag,
 * repository or registry does not; and the payload rules alone.
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

#include "fileio.h"
#include "macro.h"
#include "signkeys.h"
#include "sigverify.h"
#include "tmpdir.h"

static char dir[TMPDIR_PATH_MAX];

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define OTHER_DIGEST "sha256:1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
/* What podman push --sign-by registry.test:4443/test/app:v1 signs. */
#define PAYLOAD                                                                                            \
        "{\"critical\":{\"identity\":{\"docker-reference\":\"registry.test:4443/test/app:v1\"},"            \
        "\"image\":{\"docker-manifest-digest\":\"" DIGEST "\"},\"type\":\"atomic container signature\"},"    \
        "\"optional\":{\"creator\":\"test\"}}"

static const char *const names[] = {"registry.test", "2001:db8::1", NULL};
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
        if (tmpdir_make(dir, sizeof dir, "test-signkeys") < 0)
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
               "gpg --batch --passphrase '' --quick-gen-key 'Two <two@test>' ed25519 sign never && "
               "printf '%%s' '" PAYLOAD "' > payload.json && "
               "gpg --batch -u one@test --output good.sig --sign payload.json && "
               "gpg --batch -u two@test --output other-key.sig --sign payload.json && "
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

static void read_sig(const char *file, char **data, size_t *size) {
        _cleanup_free_ char *path = NULL;

        assert_true(asprintf(&path, "%s/%s", dir, file) >= 0);
        assert_int_equal(read_file(path, 65536, data, size), 0);
}

static const char *verify(const char *file, const char *repository, const char *tag, const char *digest) {
        _cleanup_(sigverify_freep) SigVerifier *v = NULL;
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *error = NULL, *sig = NULL;
        const char *why = NULL;
        size_t size;
        int r;

        assert_int_equal(read_keys("one.asc", &k, &error), 0);
        assert_int_equal(sigverify_new(&k, &v, &error), 0);
        read_sig(file, &sig, &size);
        r = sigverify_check(v, (const uint8_t *) sig, size, repository, tag, digest, names, &why);
        assert_int_equal(r, why ? 1 : 0);
        return why;
}

static void test_verify_signature(void **state) {
        assert_null(verify("good.sig", "test/app", "v1", DIGEST));
        assert_null(verify("good.sig", "test/app", NULL, DIGEST));
        assert_string_equal(verify("other-key.sig", "test/app", "v1", DIGEST), "signed by an untrusted key");
        assert_string_equal(verify("good.sig", "test/app", "v1", OTHER_DIGEST), "signed for another digest");
        assert_string_equal(verify("good.sig", "test/app", "v2", DIGEST), "signed for another tag");
        assert_string_equal(verify("good.sig", "test/other", "v1", DIGEST), "signed for another repository");
        assert_string_equal(verify("payload.json", "test/app", "v1", DIGEST), "not an OpenPGP signed message");
}

static const char *payload(const char *ref, const char *type, const char *digest) {
        static char buf[1024];
        const char *why = NULL;
        int r;

        (void) snprintf(buf, sizeof buf,
                        "{\"critical\":{\"identity\":{\"docker-reference\":\"%s\"},"
                        "\"image\":{\"docker-manifest-digest\":\"%s\"},\"type\":\"%s\"}}",
                        ref, digest, type);
        r = sigverify_payload(buf, strlen(buf), "test/app", "v1", DIGEST, names, &why);
        assert_int_equal(r, why ? 1 : 0);
        return why;
}

static void test_payload_rules(void **state) {
        const char *t = "atomic container signature";

        assert_null(payload("registry.test/test/app:v1", t, DIGEST));
        assert_null(payload("REGISTRY.test:4443/test/app", t, DIGEST));
        assert_null(payload("[2001:db8::1]:4443/test/app:v1", t, DIGEST));
        assert_null(payload("registry.test/test/app@" DIGEST, t, DIGEST));
        assert_string_equal(payload("registry.test/test/app@" OTHER_DIGEST, t, DIGEST), "signed for another digest");
        assert_string_equal(payload("evil.test/test/app:v1", t, DIGEST), "signed for another registry");
        assert_string_equal(payload("registry.test.evil/test/app:v1", t, DIGEST), "signed for another registry");
        assert_string_equal(payload("test/app:v1", t, DIGEST), "signed for another registry");
        assert_string_equal(payload("registry.test/test/app/x:v1", t, DIGEST), "signed for another repository");
        assert_string_equal(payload("registry.test/test/ap:v1", t, DIGEST), "signed for another repository");
        assert_string_equal(payload("registry.test/test/app:v1", "other", DIGEST), "not a container signature");
        assert_string_equal(payload("registry.test/test/app:v1", t, OTHER_DIGEST), "signed for another digest");
        assert_int_equal(sigverify_payload("{}", 2, "test/app", "v1", DIGEST, names, &(const char *){NULL}), 1);
        assert_int_equal(sigverify_payload("{\"critical\":1} x", 17, "test/app", "v1", DIGEST, names,
                                           &(const char *){NULL}),
                         1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_public_armored_and_binary),
                cmocka_unit_test(test_expired_key_skipped),
                cmocka_unit_test(test_secret_key_refused),
                cmocka_unit_test(test_not_keys_refused),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_verify_signature),
                cmocka_unit_test(test_payload_rules),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
