/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signature store's second backend ([signing] store = registry): the
 * signatures of NAME@DIGEST live in the registry itself, one OCI manifest
 * per signature tagged sha256-HEX.simplesig.<32 hex of the signature's
 * sha256> in the digest's own repository NAME/sha256-HEX.simplesig
 * (sigmanifest.h), so that every host serving the same
 * registry storage serves them. The store talks to the registry through its
 * own API, on the address the proxy forwards to ([registry] listen), one
 * HTTP/1.1 connection per call ("Connection: close"), blocking, each call
 * bounded by the request's deadline (SIGREG_TIMEOUT_SEC). The store is
 * single-threaded, so the requests of this process never interleave.
 *
 * A write is: read what is stored (for the name check and the count cap),
 * upload the blobs, PUT the signature's own tag. A tag write is atomic in
 * Distribution and no writer ever rewrites another signature's tag, so any
 * number of hosts storing signatures for one digest at once lose none (the
 * first version kept them all in one manifest at sha256-HEX.simplesig,
 * read-modify-written, and lost 0 to 5 of 16 when 8 were stored at once from
 * two hosts; that tag is still read, never written). The same bytes map to
 * the same tag, so storing a signature twice stores it once. What two
 * writers at the same moment can still do: both pass the name check (two
 * signatures under one name, both served) or the count cap (at most
 * SIGREG_SERVE_MAX are served). A read GETs the legacy tag in NAME and the
 * tag list of the digest's repository, which holds that digest's
 * signatures only, then at most SIGREG_SERVE_MAX manifests and their blobs:
 * 2 requests for a digest without signatures, whatever NAME holds. It never
 * lists NAME's tags: Distribution 2.8 ignores n and last on tags/list
 * (registry/handlers/tags.go at v2.8.2; measured: unsorted, all at once),
 * so that list grows with NAME (~30000 long tags passed the bound, and any
 * anonymous GET made the registry list them all). A signature manifest or
 * blob that is not the store's is left out (SigRegistry.n_skipped) and the
 * others served. Distribution's filesystem driver
 * answers 500 now and then to a GET of a tag being written, and leaves a
 * blob uploaded twice at once unlinked: both are retried.
 *
 * Library-like: no logging.
 */

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "sigjson.h"
#include "sigmanifest.h"
#include "sockaddr.h"

/* Every call of one extension request shares this budget; below the
 * store's own 30 s per request (sigserve.h). */
#define SIGREG_TIMEOUT_SEC 20

/* Uploads of one PUT's blobs (an unlinked blob, above) before it gives up. */
#define SIGREG_ATTEMPTS 4

/* The most signatures a GET serves: the per-digest cap, with room for what
 * concurrent writers may store past it (each checked the cap before the
 * other wrote). Beyond it, the first by tag. */
#define SIGREG_SERVE_MAX (2 * SIGSTORE_MAX_PER_DIGEST)

/* The census's walk of a tag list (sigreg_each_tag()): pages of
 * SIGREG_TAG_PAGE tags, at most SIGREG_TAG_PAGES pages of at most
 * SIGREG_TAGS_BODY_MAX bytes each (a registry that ignores n, as
 * Distribution 2.8 does, answers every tag in one: ~30000 tags of 128
 * bytes). More: the census fails. A signature read never walks a list. */
#define SIGREG_TAG_PAGE 1000
#define SIGREG_TAG_PAGES 64
#define SIGREG_TAGS_BODY_MAX (4 * 1024 * 1024)

/* A signature read lists the tags of the digest's own repository
 * (sigmanifest_repository()), which holds its signatures only: it asks for
 * SIGREG_SIG_LIST_MAX names after the digest's tag, and takes an answer of
 * at most SIGREG_SIG_LIST_BODY_MAX bytes (~550 tags; more: 503, someone
 * wrote there who is not this store). */
#define SIGREG_SIG_LIST_MAX (2 * SIGREG_SERVE_MAX)
#define SIGREG_SIG_LIST_BODY_MAX (64 * 1024)

typedef struct SigRegistry {
        SocketAddress address;
        EVP_MD *sha256;                                     /* fetched before the lockdown */
        char config_digest[SIGSTORE_DIGEST_LEN + 1];        /* of sigmanifest_config */
        uint64_t deadline_ms; /* CLOCK_MONOTONIC ms; when set, no call goes past it (the health check) */
        /* After a failed call: which request and what the registry answered ("PUT
         * /v2/app/manifests/...: 400"), for the error's message and the log. */
        char why[384];
        /* After sigreg_list() or sigreg_put(): how many signature manifests or blobs were left out
         * as not this store's (the others were served), and why the first was, for one log line. */
        unsigned n_skipped;
        char skipped[256];
} SigRegistry;

/* Prepares a client of the registry at address ("unix:PATH", "IP:PORT",
 * "[V6]:PORT"; sockaddr_parse()). Call before the lockdown: it fetches
 * OpenSSL's SHA-256, which may read OpenSSL's configuration. Returns 0 or a
 * negative errno (-EINVAL: not an address). */
int sigreg_init(SigRegistry *reg, const char *address);

void sigreg_done(SigRegistry *reg);

/* The registry's signatures of repository@digest (digest a NUL-terminated
 * "sha256:" + 64 hex; repository as long as its length says), sorted by
 * name as sigfs_list() (then by the sha256 of their bytes, for two under one
 * name), the same bytes once, at most SIGREG_SERVE_MAX. No tag, no
 * repository: no signature.
 * A tag that holds a manifest this store did not write, or whose blob is
 * missing or does not match, is left out: counted in reg->n_skipped, the
 * first's reason in reg->skipped (for one log line), the others served.
 * Returns 0; -EHOSTUNREACH when the registry did not answer in time or
 * answered an error, or the digest's repository lists more than
 * SIGREG_SIG_LIST_BODY_MAX bytes of tags; -ENOMEM. */
int sigreg_list(SigRegistry *reg, const char *repository, size_t repository_len, const char *digest,
                SigEntry **ret, size_t *ret_n);

/* Stores one signature, as sigfs_put(): 0 written; 1 the same bytes are
 * there already; -EEXIST its name holds other bytes; -EDQUOT the digest
 * holds SIGSTORE_MAX_PER_DIGEST; -ENAMETOOLONG repository is over
 * SIGMANIFEST_REPOSITORY_BASE_MAX (no room for the digest's repository);
 * -ENOENT the registry has no manifest repository@digest (nothing written:
 * signatures only for images it holds);
 * and sigreg_list()'s errors, -EROFS when the registry refuses writes
 * (gc's read-only window). Returns 0 only once the
 * signature's tag is written: from then on every host serves it. */
int sigreg_put(SigRegistry *reg, const char *repository, size_t repository_len, const char *digest,
               const SigEntry *sig);

/* What a HEAD of a tag accepts: every manifest type, so that the digest is the stored one. */
#define SIGREG_MANIFEST_TYPES                                                                         \
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "      \
        "application/vnd.docker.distribution.manifest.v2+json, "                                     \
        "application/vnd.docker.distribution.manifest.list.v2+json"

/* One name of a list (a repository, a tag), not NUL-terminated beyond len; a negative errno stops
 * the walk with it. */
typedef int (*SigRegNameFn)(const char *name, size_t len, void *userdata);

/* The census of a shared store (`regvisor health`, image-signatures), through the registry's API:
 * every repository of the catalog, every tag of repository (a NUL-terminated name), paged and
 * bounded as the signature tags are (SIGREG_TAG_PAGES). Return 0 or what fn returned, and
 * sigreg_list()'s errors. A repository that does not exist has no tags. */
int sigreg_each_repository(SigRegistry *reg, SigRegNameFn fn, void *userdata);
int sigreg_each_tag(SigRegistry *reg, const char *repository, SigRegNameFn fn, void *userdata);

/* The digest repository:tag points at (HEAD, Docker-Content-Digest). Returns 0, -ENOENT when the
 * tag is gone, -EHOSTUNREACH, -ENOMEM. */
int sigreg_resolve(SigRegistry *reg, const char *repository, const char *tag, char ret[static SIGSTORE_DIGEST_LEN + 1]);
