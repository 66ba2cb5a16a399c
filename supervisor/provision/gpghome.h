/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A throwaway GnuPG home for GPGME: reading the signers' keys (signkeys.c)
 * and verifying signatures with them (sigverify.c) must neither touch
 * root's keyring nor leave an agent behind, so each use makes a private
 * directory (0700, below $TMPDIR or /tmp: tmp_template()) whose gpg.conf forbids starting an
 * agent and building a trust database, and removes it with whatever gpg
 * wrote there.
 */

#include <gpgme.h>

/* Makes the directory; *ret is its path (free with gpghome_removep()). */
int gpghome_new(char **ret);

/* Removes the directory and everything in it, then frees the path. */
void gpghome_removep(char **home);

/* Initialises GPGME once (gpgme_check_version) and checks gpg is there:
 * 0, or -ENOPKG when the OpenPGP engine is missing. */
int gpghome_gpgme_init(void);

/* A GPGME OpenPGP context on home. 0 or -EIO (*ret_err: GPGME's code). */
int gpghome_context(const char *home, gpgme_ctx_t *ret, gpgme_error_t *ret_err);

static inline void gpgme_ctx_releasep(gpgme_ctx_t *c) {
        if (*c)
                gpgme_release(*c);
}

static inline void gpgme_data_releasep(gpgme_data_t *d) {
        if (*d)
                gpgme_data_release(*d);
}
