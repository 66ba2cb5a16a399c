/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What an image archive holds, read before anything is loaded: the
 * manifests listed in the index.json of an OCI archive (a tar, as `podman
 * save --format oci-archive` writes it) or of an OCI layout directory. So
 * provision can say, before it creates users or keys, whether
 * [registry] image_archive provides the pinned [registry] image, and what it
 * holds when it does not.
 */

#include <stdbool.h>
#include <stddef.h>

typedef struct {
        char *digest;   /* "sha256:HEX", the manifest (or index) digest */
        char *ref_name; /* org.opencontainers.image.ref.name, or NULL */
} ArchiveManifest;

typedef struct {
        ArchiveManifest *manifests;
        size_t n_manifests;
} ImageArchive;

/* Reads path's index.json. Returns 0, or a negative errno with *ret_error
 * (allocated) saying what is wrong: not there, not an OCI archive or layout
 * (a docker-archive records no manifest digest), index.json malformed. */
int image_archive_read(const char *path, ImageArchive *ret, char **ret_error);

/* Whether the blob of digest ("sha256:HEX") is in the archive and hashes to
 * it: 1 yes, 0 missing or different (*ret_error says which), negative errno
 * when the archive cannot be read. */
int image_archive_blob_ok(const char *path, const char *digest, char **ret_error);

/* Every manifest as "REF (sha256:...)" or "sha256:...", comma separated;
 * "no manifests" for an empty index. NULL on out of memory. */
char *image_archive_describe(const ImageArchive *a);

/* The name (ref.name without its tag) podman gives the image of m when it
 * loads it, or NULL when m has no ref.name or it is a bare tag (an OCI
 * layout's "latest"). For telling the operator what to pin. */
char *image_archive_manifest_name(const ArchiveManifest *m);

void image_archive_done(ImageArchive *a);
