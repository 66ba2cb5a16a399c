/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <gpgme.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "gpghome.h"
#include "macro.h"
#include "signkeys.h"

_printf_(2, 3) static void set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
}

/* Why a key cannot verify signatures, or NULL when it can. */
static const char *key_unusable(gpgme_key_t k) {
        if (k->revoked)
                return "revoked";
        if (k->expired)
                return "expired";
        if (k->disabled || k->invalid)
                return "invalid";
        if (!k->can_sign)
                return "not a signing key";
        return NULL;
}

void signkeys_done(SignKeys *k) {
        if (!k)
                return;
        free(k->data);
        strv_free(k->fingerprints);
        *k = (SignKeys){};
}

/* Starts listing the keys of k's data with a GPGME context on the
 * temporary home (ret_ctx, ret_data: the caller's to release). */
static int keylist_start(const char *path, const char *home, const SignKeys *k, gpgme_ctx_t *ret_ctx,
                         gpgme_data_t *ret_data, char **ret_error) {
        gpgme_error_t e = GPG_ERR_NO_ERROR;

        if (gpghome_context(home, ret_ctx, &e) == 0)
                e = gpgme_data_new_from_mem(ret_data, k->data, k->size, 0);
        if (e == GPG_ERR_NO_ERROR)
                e = gpgme_op_keylist_from_data_start(*ret_ctx, *ret_data, 0);
        if (e != GPG_ERR_NO_ERROR) {
                set_error(ret_error, "%s: GPGME: %s", path, gpgme_strerror(e));
                return -EIO;
        }
        return 0;
}

/* One listed key (consumed): a secret key refuses the file (-EPERM); an
 * unusable one is added to *unusable ("FPR (why), ..."); a usable one's
 * fingerprint to k->fingerprints. */
static int key_take(const char *path, gpgme_key_t key, SignKeys *k, size_t *n_usable, char **unusable,
                    char **ret_error) {
        const char *why = key_unusable(key);
        bool secret = key->secret;
        _cleanup_free_ char *fpr = key->fpr ? strdup(key->fpr) : NULL;
        char *more = NULL, **l;

        gpgme_key_unref(key);
        if (!fpr)
                return -ENOMEM;
        k->n_keys++;
        if (secret) {
                set_error(ret_error,
                          "%s: holds the secret key %s: give only public keys (gpg --armor --export FINGERPRINT)",
                          path, fpr);
                return -EPERM;
        }
        if (why) {
                if (asprintf(&more, "%s%s%s (%s)", *unusable ?: "", *unusable ? ", " : "", fpr, why) < 0)
                        return -ENOMEM;
                free(*unusable);
                *unusable = more;
                return 0;
        }
        l = reallocarray(k->fingerprints, *n_usable + 2, sizeof(char *));
        if (!l)
                return -ENOMEM;
        k->fingerprints = l;
        l[(*n_usable)++] = TAKE_PTR(fpr);
        l[*n_usable] = NULL;
        return 0;
}

int signkeys_read(const char *path, SignKeys *ret, char **ret_error) {
        _cleanup_(gpghome_removep) char *home = NULL;
        _cleanup_(gpgme_ctx_releasep) gpgme_ctx_t ctx = NULL;
        _cleanup_(gpgme_data_releasep) gpgme_data_t data = NULL;
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *unusable = NULL;
        size_t n_usable = 0;
        gpgme_error_t e;
        gpgme_key_t key;
        int r;

        r = read_file(path, SIGNKEYS_MAX, &k.data, &k.size);
        if (r < 0) {
                set_error(ret_error, "%s: %s", path,
                          r == -EFBIG ? "larger than 1 MiB: not a file of public keys" : strerror(-r));
                return r;
        }

        if (gpghome_gpgme_init() < 0) {
                set_error(ret_error, "%s: cannot read OpenPGP keys: GnuPG (gpg) is not installed", path);
                return -ENOPKG;
        }
        r = gpghome_new(&home);
        if (r < 0) {
                set_error(ret_error, "%s: temporary GnuPG home: %s", path, strerror(-r));
                return r;
        }
        r = keylist_start(path, home, &k, &ctx, &data, ret_error);
        if (r < 0)
                return r;

        while ((e = gpgme_op_keylist_next(ctx, &key)) == GPG_ERR_NO_ERROR) {
                r = key_take(path, key, &k, &n_usable, &unusable, ret_error);
                if (r < 0)
                        return r;
        }
        if (gpgme_err_code(e) != GPG_ERR_EOF) {
                set_error(ret_error, "%s: GPGME: %s", path, gpgme_strerror(e));
                return -EIO;
        }
        if (k.n_keys == 0) {
                set_error(ret_error, "%s: no OpenPGP public key in it (expected the output of gpg --armor --export)",
                          path);
                return -EBADMSG;
        }
        if (n_usable == 0) {
                set_error(ret_error, "%s: no key that can verify signatures: %s", path, unusable);
                return -EKEYREJECTED;
        }
        *ret = k;
        k = (SignKeys){};
        return 0;
}
