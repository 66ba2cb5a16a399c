/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * [signing] keys: the public keys of the trusted image signers, an OpenPGP
 * export (ASCII-armored or binary) that policy.json's signedBy rules name.
 * Read with GPGME, the library podman itself verifies with, never by
 * parsing gpg's human-readable output.
 */

#include <stddef.h>

/* Files larger than this are no public keyring of signers. */
#define SIGNKEYS_MAX (1024 * 1024)

typedef struct {
        char *data;          /* the file's bytes, exactly as installed */
        size_t size;
        char **fingerprints; /* the usable signing keys, NULL-terminated */
        unsigned n_keys;     /* every key in the file, usable or not */
} SignKeys;

/* Reads path and lists its keys with GPGME (gpgme_op_keylist_from_data,
 * i.e. gpg --import-options show-only, in a temporary GNUPGHOME whose
 * gpg.conf forbids starting an agent; nothing is imported anywhere and the
 * directory is removed). Refuses, with a message in *ret_error: a missing
 * or unreadable file (its errno), one larger than SIGNKEYS_MAX (-EFBIG), no
 * OpenPGP key in it (-EBADMSG), secret key material (-EPERM: only public
 * keys belong on pullers), no key that is valid, unexpired, unrevoked and
 * able to sign (-EKEYREJECTED), gpg missing (-ENOPKG). On success fills *ret
 * (free it with signkeys_done()). Does not log. */
int signkeys_read(const char *path, SignKeys *ret, char **ret_error);

void signkeys_done(SignKeys *k);
