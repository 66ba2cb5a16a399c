/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "gpghome.h"
#include "macro.h"

/* gpg reads this from the temporary home: it must never start a gpg-agent
 * (gpg does for secret keys otherwise, and it would outlive us in a
 * directory we delete) nor build a trust database. */
static const char gpg_conf[] = "no-autostart\nno-auto-check-trustdb\n";

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        (void) (type == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

void gpghome_removep(char **home) {
        if (!*home)
                return;
        (void) nftw(*home, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(*home);
        *home = NULL;
}

int gpghome_new(char **ret) {
        _cleanup_free_ char *home = tmp_template("regvisor-gpg"), *conf = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (!home)
                return -ENOMEM;
        if (!mkdtemp(home))
                return negative_errno();
        if (asprintf(&conf, "%s/gpg.conf", home) < 0) {
                conf = NULL;
                (void) rmdir(home);
                return -ENOMEM;
        }
        fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, gpg_conf, sizeof gpg_conf - 1) != (ssize_t) (sizeof gpg_conf - 1)) {
                int r = fd < 0 ? negative_errno() : -EIO;
                (void) unlink(conf);
                (void) rmdir(home);
                return r;
        }
        *ret = TAKE_PTR(home);
        return 0;
}

int gpghome_gpgme_init(void) {
        /* Once per process, before anything else of GPGME; later calls only
         * return the version. */
        (void) gpgme_check_version(NULL);
        if (gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP) != GPG_ERR_NO_ERROR)
                return -ENOPKG;
        return 0;
}

int gpghome_context(const char *home, gpgme_ctx_t *ret, gpgme_error_t *ret_err) {
        gpgme_ctx_t ctx = NULL;
        gpgme_error_t e;

        e = gpgme_new(&ctx);
        if (e == GPG_ERR_NO_ERROR)
                e = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP);
        if (e == GPG_ERR_NO_ERROR)
                e = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, home);
        if (e != GPG_ERR_NO_ERROR) {
                if (ctx)
                        gpgme_release(ctx);
                *ret_err = e;
                return -EIO;
        }
        *ret = ctx;
        return 0;
}
