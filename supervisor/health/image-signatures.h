/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The census behind the image-signatures health check: every tag in the
 * registry's storage, the manifest it points at, and whether the signature
 * store holds a signature for it that podman's signedBy rule would accept
 * (sigverify.c: a trusted key, this digest, this repository and tag).
 *
 * A local storage is read as files, the layout of Distribution 2.x:
 *   STORAGE/docker/registry/v2/repositories/<name>/_manifests/tags/<tag>/current/link
 * holding "sha256:<hex>". Names are validated like the proxy validates them
 * (common/http/sigcheck.c), so a strange directory is skipped, never
 * printed or opened below. A shared store ([registry] storage = swift or
 * s3) keeps nothing on this host: its tags and signatures are read through
 * the registry's API instead (stored_tags_list_api(), sigreg.h), and the
 * check's message says which way it counted.
 */

#include <stddef.h>

#include "health.h"
#include "sigreg.h"

typedef enum {
        TAG_SIGNED,
        TAG_UNSIGNED,       /* no signature stored for its digest */
        TAG_BAD_SIGNATURE,  /* signatures stored, none that verifies */
        TAG_NOT_CHECKED,    /* the deadline came first */
        _TAG_VERDICT_MAX,
} TagVerdict;

typedef struct {
        char *repository;
        char *tag;
        char digest[72]; /* "sha256:" and 64 hex */
        TagVerdict verdict;
        const char *why; /* static: why it is not TAG_SIGNED */
} StoredTag;

/* At most this many tags are listed: a health check is no inventory. */
#define STORED_TAGS_MAX 100000

/* Lists the tags below storage, sorted by repository then tag, verdict
 * TAG_NOT_CHECKED. A storage without repositories yet is no error. */
int stored_tags_list(const char *storage, StoredTag **ret, size_t *ret_n);

/* The same through the registry's API (a shared store keeps nothing on
 * this host): the catalog, each repository's tags, each tag's digest (HEAD),
 * paged and bounded as sigreg.h says, each call by reg->deadline_ms.
 * Signature tags skipped (sigmanifest_is_tag()). Returns 0 or sigreg's
 * errors. */
int stored_tags_list_api(SigRegistry *reg, StoredTag **ret, size_t *ret_n);

void stored_tags_free(StoredTag *t, size_t n);

/* The health check: OK when every tag is signed; WARNING naming the first
 * unsigned or badly signed tags; perf data tags, signed, unsigned. */
int health_check_image_signatures(const HealthContext *ctx, HealthResult *r);
