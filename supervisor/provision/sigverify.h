/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Verifying an image signature ("simple signing": an OpenPGP signed message
 * whose payload is JSON naming an image) with the trusted signers' keys,
 * the way podman's signedBy rule does: GPGME, one signature in the message,
 * made by a key of the keyring, good, not by a key gpg calls never valid or
 * used for what it may not do; then the payload must name the digest and
 * the repository it is stored for. What podman reads from the signature
 * store is exactly what is checked here.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signkeys.h"

typedef struct SigVerifier SigVerifier;

/* A verifier that trusts the keys of k (imported into a throwaway GnuPG
 * home). 0, -ENOPKG without gpg, -EIO (*ret_error says why) or -ENOMEM. */
int sigverify_new(const SignKeys *k, SigVerifier **ret, char **ret_error);

/* Frees the verifier and removes its GnuPG home. NULL is fine. */
SigVerifier *sigverify_free(SigVerifier *v);

static inline void sigverify_freep(SigVerifier **v) {
        *v = sigverify_free(*v);
}

/* Checks one stored signature of repository@digest, seen through tag
 * (NULL: any tag). Returns 0 when podman would accept it, 1 with *ret_why
 * (a static text) when it would not, or a negative errno when it could not
 * tell (-ENOMEM, -EIO: gpg failed to run). */
int sigverify_check(SigVerifier *v, const uint8_t *sig, size_t len, const char *repository, const char *tag,
                    const char *digest, const char *const *names, const char **ret_why);

/* The payload half, pure: payload is the signed JSON; names are this
 * registry's server names (host part of the signed docker-reference, port
 * stripped). 0 when it names repository (and tag, if it carries one) at
 * digest with the simple-signing type; 1 and *ret_why otherwise. */
int sigverify_payload(const char *payload, size_t len, const char *repository, const char *tag,
                      const char *digest, const char *const *names, const char **ret_why);
