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
        e = GPG_ERR_NO_ERROR;
        if (gpghome_context(home, &ctx, &e) == 0)
                e = gpgme_data_new_from_mem(&data, k.data, k.size, 0);
        if (e == GPG_ERR_NO_ERROR)
                e = gpgme_op_keylist_from_data_start(ctx, data, 0);
        if (e != GPG_ERR_NO_ERROR) {
                set_error(ret_error, "%s: GPGME: %s", path, gpgme_strerror(e));
                return -EIO;
        }

        while ((e = gpgme_op_keylist_next(ctx, &key)) == GPG_ERR_NO_ERROR) {
                const char *why = key_unusable(key);
                bool secret = key->secret;
                char *fpr = key->fpr ? strdup(key->fpr) : NULL;

                gpgme_key_unref(key);
                if (!fpr)
                        return -ENOMEM;
                k.n_keys++;
                if (secret) {
                        set_error(ret_error,
                                  "%s: holds the secret key %s: give only public keys "
                                  "(gpg --armor --export FINGERPRINT)",
                                  path, fpr);
                        free(fpr);
                        return -EPERM;
                }
                if (why) {
                        char *more = NULL;
                        if (asprintf(&more, "%s%s%s (%s)", unusable ? unusable : "", unusable ? ", " : "", fpr,
                                     why) < 0) {
                                free(fpr);
                                return -ENOMEM;
                        }
                        free(unusable);
                        unusable = more;
                        free(fpr);
                        continue;
                }
                char **l = reallocarray(k.fingerprints, n_usable + 2, sizeof(char *));
                if (!l) {
                        free(fpr);
                        return -ENOMEM;
                }
                k.fingerprints = l;
                l[n_usable++] = fpr;
                l[n_usable] = NULL;
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
