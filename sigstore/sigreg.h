/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signature store's second backend ([signing] store = registry): the
 * signatures of NAME@DIGEST live in the registry itself, as the layers of
 * one OCI manifest tagged sha256-HEX.simplesig in NAME (sigmanifest.h), so
 * that every host serving the same registry storage serves them. The store
 * talks to the registry through its own API, on the address the proxy
 * forwards to ([registry] listen), one HTTP/1.1 connection per call
 * ("Connection: close"), blocking, each call bounded by the request's
 * deadline (SIGREG_TIMEOUT_SEC). The store is single-threaded, so the
 * requests of this process never interleave.
 *
 * Writes are a read-modify-write of one tag: upload the blobs, read the
 * manifest, append a layer, PUT it, read it back. Distribution has no
 * conditional PUT, so two hosts storing a signature for the same digest at
 * the same moment may both read the same manifest; the read-back sees the
 * other host's manifest and the store merges again (at most SIGREG_ATTEMPTS
 * rounds, then 503). What remains: a host that read before the other's PUT
 * and writes after the other's read-back drops the other's signature, which
 * the client that pushed it was already told was stored. Measured against
 * docker-registry 2.8 with two processes storing at the same instant: one
 * signature each, 1 lost in about 6 rounds; 8 each back to back, 0 to 5 of
 * 16 lost. Pushing the signature again restores it; one tag per signature
 * would remove the race (INSTALL.md, "Signing"). Distribution's filesystem
 * driver also answers 500 now and then to a GET of a tag being written, and
 * leaves a blob uploaded twice at once unlinked: both are retried.
 *
 * Library-like: no logging.
 */

#include <openssl/evp.h>
#include <stddef.h>

#include "sigjson.h"
#include "sigmanifest.h"
#include "sockaddr.h"

/* Every call of one extension request shares this budget; below the
 * store's own 30 s per request (sigserve.h). */
#define SIGREG_TIMEOUT_SEC 20

/* Read-modify-write rounds of one PUT before it gives up with 503. */
#define SIGREG_ATTEMPTS 4

typedef struct SigRegistry {
        SocketAddress address;
        EVP_MD *sha256;                                     /* fetched before the lockdown */
        char config_digest[SIGSTORE_DIGEST_LEN + 1];        /* of sigmanifest_config */
        /* After a failed call: which request and what the registry answered ("PUT
         * /v2/app/manifests/...: 400"), for the error's message and the log. */
        char why[384];
} SigRegistry;

/* Prepares a client of the registry at address ("unix:PATH", "IP:PORT",
 * "[V6]:PORT"; sockaddr_parse()). Call before the lockdown: it fetches
 * OpenSSL's SHA-256, which may read OpenSSL's configuration. Returns 0 or a
 * negative errno (-EINVAL: not an address). */
int sigreg_init(SigRegistry *reg, const char *address);

void sigreg_done(SigRegistry *reg);

/* The registry's signatures of repository@digest (digest a NUL-terminated
 * "sha256:" + 64 hex; repository as long as its length says), in the order they were
 * stored, as sigfs_list(). A tag that does not exist is no signature.
 * Returns 0; -EHOSTUNREACH when the registry did not answer in time or
 * answered an error; -EBADMSG when what the tag holds is not a manifest
 * this store writes, or a blob does not match its descriptor; -ENOMEM. */
int sigreg_list(SigRegistry *reg, const char *repository, size_t repository_len, const char *digest,
                SigEntry **ret, size_t *ret_n);

/* Stores one signature, as sigfs_put(): 0 written; 1 the same bytes are
 * there already; -EEXIST its name holds other bytes; -EDQUOT the digest
 * holds SIGSTORE_MAX_PER_DIGEST; and sigreg_list()'s errors, -EROFS when the
 * registry refuses writes (gc's read-only window), -EBUSY when other writers
 * kept replacing the manifest for SIGREG_ATTEMPTS rounds. */
int sigreg_put(SigRegistry *reg, const char *repository, size_t repository_len, const char *digest,
               const SigEntry *sig);
