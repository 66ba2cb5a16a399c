/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the signature store accepts from a request, checked before anything
 * touches the disk: the extension path, repository names, digests and the
 * per-image part of a signature's name. docs/signature-extension.md says
 * where each rule comes from. Pure: no I/O, no logging.
 */

#include <stdbool.h>
#include <stddef.h>

#include "reponame.h"

/* Largest signature, decoded. A GPG "simple signing" signature is ~600
 * bytes; 64 KiB leaves room for large keys and keeps the GET list of
 * SIGSTORE_MAX_PER_DIGEST entries (~1.4 MiB as base64) far below the
 * client's 4 MiB limit. */
#define SIGSTORE_MAX_SIGNATURE (64 * 1024)

/* Most signatures stored for one manifest digest. */
#define SIGSTORE_MAX_PER_DIGEST 16

/* Largest PUT body: the base64 of SIGSTORE_MAX_SIGNATURE (87384 bytes) and
 * the JSON around it, rounded up. Refused before it is read. */
#define SIGSTORE_MAX_BODY (128 * 1024)

/* A repository name is at most this long: the distribution reference's
 * NameTotalLengthMax, and so, with "/" written as "+", one file name. */
#define SIGSTORE_REPOSITORY_MAX REPONAME_MAX

/* "sha256:" and 64 hex digits. */
#define SIGSTORE_DIGEST_LEN 71

/* The per-image part of a signature name (after "<digest>@"); podman and
 * skopeo send 32 hex digits. */
#define SIGSTORE_SUFFIX_MAX 128

/* The route prefix, docker_client.go's extensionsSignaturePath. */
#define SIGSTORE_PATH_PREFIX "/extensions/v2/"

typedef struct SigPath {
        const char *repository; /* points into the target */
        size_t repository_len;
        const char *digest;
        size_t digest_len;
} SigPath;

/* Splits a request target "/extensions/v2/<name>/signatures/<digest>".
 * Returns 0 with *ret filled (pointers into target), -ENOENT when the target
 * is not of that shape at all (another route: 404), -EINVAL when the
 * repository name is invalid (NAME_INVALID), -EBADMSG when the digest is
 * (DIGEST_INVALID). *ret is untouched on failure. */
int sigcheck_parse_path(const char *target, size_t len, SigPath *ret);

/* The distribution spec's repository name:
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
 * and at most SIGSTORE_REPOSITORY_MAX bytes. */
bool sigcheck_repository(const char *s, size_t n);

/* "sha256:" followed by exactly 64 lower-case hex digits, as the registry
 * itself writes a manifest digest. Other algorithms are refused. */
bool sigcheck_digest(const char *s, size_t n);

/* The part of a signature name after "@": 1 to SIGSTORE_SUFFIX_MAX bytes of
 * [A-Za-z0-9_.-], not starting with "." (so never ".", "..", or one of the
 * store's own ".tmp-" files). Safe as a file name as it is. */
bool sigcheck_suffix(const char *s, size_t n);
