/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Pure: what `regvisor gc` reads from the registry and from Distribution's
 * `registry garbage-collect`. No I/O, no logging. Everything here comes
 * from pushed content (manifests) or the registry, so every name and digest
 * is checked before it can become part of a URL path.
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct GcSummary {
        unsigned long long marked;            /* blobs (and manifests) kept */
        unsigned long long blobs_eligible;    /* blobs deleted (or that would be) */
        unsigned long long manifests_eligible; /* manifests deleted: always 0 without --delete-untagged */
} GcSummary;

/* Finds Distribution 2.8's summary line "N blobs marked, M blobs and K
 * manifests eligible for deletion" in out. 0, or -ENOMSG when absent. */
int gc_parse_summary(const char *out, GcSummary *ret);

/* The share of blobs a run with s deletes, in percent, rounded up (0 when
 * there are none). */
unsigned gc_delete_share(const GcSummary *s);

/* The strings of the array member key of a JSON object ("repositories" of
 * /v2/_catalog, "tags" of a tags list), each passing valid(s, len).
 * Returns the count with a NULL-terminated array in *ret (caller frees with
 * strv_free), -EBADMSG for JSON not of that shape, -EINVAL for a string
 * that fails valid(). A missing or null member is an empty list. */
int gc_parse_strings(const char *json, size_t len, const char *key, int (*valid)(const char *s, size_t n),
                     char ***ret);

/* What a manifest references: blobs (config and layers of an image
 * manifest, v2 schema 2 or OCI) into *ret_blobs, child manifests (of an
 * index or manifest list) into *ret_manifests; both NULL-terminated, digests
 * checked (sha256 only). 0, -EBADMSG (not JSON, no known shape), -EINVAL (a
 * digest that is not sha256:HEX64). */
int gc_parse_manifest(const char *json, size_t len, char ***ret_blobs, char ***ret_manifests);

/* Whether dir, a name find printed, is exactly an upload session of the
 * registry below root: ROOT/REPOSITORY/_uploads/UUID, the repository by the
 * distribution grammar and the session a UUID as Distribution makes them
 * (8-4-4-4-12 hex digits). Anything else, a name cut short by the capture's
 * cap above all (".../_uploads/" would be every session of a repository),
 * is not one. */
bool gc_upload_session_dir(const char *root, const char *dir);

/* valid() functions for gc_parse_strings(): a repository name by the
 * distribution grammar; a tag, [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
int gc_valid_repository(const char *s, size_t n);
int gc_valid_tag(const char *s, size_t n);
