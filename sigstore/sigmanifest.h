/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signatures of one image kept in the registry itself ([signing] store =
 * registry), so that they follow the registry's storage to every host that
 * serves it. The signatures of NAME@sha256:HEX: one OCI image manifest per
 * signature, of one layer, in the digest's own repository
 * NAME/sha256-HEX.simplesig (sigmanifest_repository()), tagged
 * sha256-HEX.simplesig.<hex> (sigmanifest_sig_tag()). The first version
 * kept all of them as the layers of one manifest in NAME, tagged
 *
 *   sha256-HEX.simplesig     (sigmanifest_tag(); cosign's sigstore mode uses ".sig")
 *
 * (read, never written again); either manifest is:
 *
 *   {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 *    "config":{"mediaType":SIGMANIFEST_CONFIG_TYPE,"digest":...,"size":...},
 *    "layers":[{"mediaType":SIGMANIFEST_LAYER_TYPE,"digest":"sha256:...","size":N,
 *               "annotations":{SIGMANIFEST_NAME_ANNOTATION:"<suffix>"}}, ...],
 *    "annotations":{SIGMANIFEST_DIGEST_ANNOTATION:"sha256:HEX"}}
 *
 * one layer per signature (its raw bytes, as the extension's "content"), in
 * the order they were stored; the config blob is the constant
 * sigmanifest_config. Distribution 2.8 accepts it as it is (it checks that
 * the blobs exist, not their media types) and its garbage-collect marks
 * the config and layers of a tagged manifest, so they survive a collection.
 *
 * Pure: no I/O, no logging; json-c for parsing. The manifest is built with
 * printf: every value in it passed sigcheck first (hex digests, suffixes
 * of [A-Za-z0-9_.-]), so nothing needs escaping.
 */

#include <stdbool.h>
#include <stddef.h>

#include "sigcheck.h"

#define SIGMANIFEST_TYPE "application/vnd.oci.image.manifest.v1+json"
#define SIGMANIFEST_CONFIG_TYPE "application/vnd.regvisor.simple-signing.config.v1+json"
#define SIGMANIFEST_LAYER_TYPE "application/vnd.regvisor.simple-signing.signature.v1"
#define SIGMANIFEST_NAME_ANNOTATION "org.regvisor.signature.name"
#define SIGMANIFEST_DIGEST_ANNOTATION "org.regvisor.signed-digest"

/* "sha256-" + 64 hex + ".simplesig" */
#define SIGMANIFEST_TAG_SUFFIX ".simplesig"
#define SIGMANIFEST_TAG_LEN (SIGSTORE_DIGEST_LEN + sizeof(SIGMANIFEST_TAG_SUFFIX) - 1)

/* One signature's tag: the digest's tag, ".", the first SIGMANIFEST_SIG_HEX
 * hex digits of the sha256 of the signature's bytes (114 bytes, within the
 * 128 a tag may have). 128 bits: two different signatures of one digest do
 * not share a tag; the same bytes always map to the same tag. */
#define SIGMANIFEST_SIG_HEX 32
#define SIGMANIFEST_SIG_TAG_LEN (SIGMANIFEST_TAG_LEN + 1 + SIGMANIFEST_SIG_HEX)

/* A signature manifest is small: 16 layers of ~300 bytes. Anything larger
 * at the tag is not one this store wrote. */
#define SIGMANIFEST_MAX (16 * 1024)

/* The config blob: the same bytes in every repository. */
extern const char sigmanifest_config[];

/* One signature as a layer of the manifest. */
typedef struct SigLayer {
        char suffix[SIGSTORE_SUFFIX_MAX + 1]; /* the signature's name after "<digest>@" */
        char digest[SIGSTORE_DIGEST_LEN + 1]; /* sha256 of its bytes */
        size_t size;                          /* 1..SIGSTORE_MAX_SIGNATURE */
} SigLayer;

/* The tag holding digest's signatures: digest must pass sigcheck_digest().
 * Writes SIGMANIFEST_TAG_LEN bytes and a NUL. */
void sigmanifest_tag(const char *digest, char ret[static SIGMANIFEST_TAG_LEN + 1]);

/* The tag of one signature of digest (both must pass sigcheck_digest();
 * content_digest is the sha256 of the signature's bytes). Writes
 * SIGMANIFEST_SIG_TAG_LEN bytes and a NUL. */
void sigmanifest_sig_tag(const char *digest, const char *content_digest, char ret[static SIGMANIFEST_SIG_TAG_LEN + 1]);

/* True when tag[0..n) is the tag of one signature of digest: digest's tag,
 * ".", SIGMANIFEST_SIG_HEX lower-case hex digits. */
bool sigmanifest_is_sig_tag_of(const char *tag, size_t n, const char *digest);

/* The repository that holds the per-signature tags of NAME@digest: NAME +
 * "/" + digest's tag ("app/web/sha256-HEX.simplesig"), a repository of
 * its own, so that a read lists the tags of this one digest and never the
 * tags of NAME (Distribution 2.8 answers every tag at once, however many:
 * see sigreg.h). A name may have 255 bytes (the reference grammar), so NAME
 * at most SIGMANIFEST_REPOSITORY_BASE_MAX. */
#define SIGMANIFEST_REPOSITORY_BASE_MAX (255 - 1 - SIGMANIFEST_TAG_LEN)

/* Writes NAME/sha256-HEX.simplesig and a NUL to ret (room for 256); NAME
 * is repository[0..len), digest passed sigcheck_digest(). Returns 0, or
 * -ENAMETOOLONG when len is over SIGMANIFEST_REPOSITORY_BASE_MAX. */
int sigmanifest_repository(const char *repository, size_t len, const char *digest, char ret[static 256]);

/* True when repository[0..len)'s last component is a digest's tag
 * (sigmanifest_repository()): it holds signatures, not images. */
bool sigmanifest_is_repository(const char *repository, size_t len);

/* True when tag is a signature tag, not an image (the census and the health
 * check skip it): exactly "sha256-" + 64 lower-case hex + ".simplesig" (the
 * first version's one manifest per digest), or that followed by "." and
 * SIGMANIFEST_SIG_HEX lower-case hex digits (one manifest per signature). */
bool sigmanifest_is_tag(const char *tag, size_t n);

/* Builds the manifest of layers[0..n) (n <= SIGSTORE_MAX_PER_DIGEST, each
 * valid) for signed_digest, with config_digest the sha256 of
 * sigmanifest_config. *ret_json is malloc'd, NUL-terminated, the caller's.
 * Returns 0, -EINVAL for n over the cap, -ENOMEM. */
int sigmanifest_build(const SigLayer *layers, size_t n, const char *signed_digest, const char *config_digest,
                      char **ret_json, size_t *ret_len);

/* Parses a manifest found at signed_digest's tag, strictly as this store
 * writes it: the OCI manifest type, schemaVersion 2, the config of our type,
 * at most SIGSTORE_MAX_PER_DIGEST layers of our type, each with a sha256
 * digest, a size of 1..SIGSTORE_MAX_SIGNATURE and a name that passes
 * sigcheck_suffix(), no name twice, and the signed-digest annotation equal to
 * signed_digest. Returns 0 with ret[0..*ret_n) filled (room for
 * SIGSTORE_MAX_PER_DIGEST), or -EBADMSG with *ret_why a static phrase; ret
 * and *ret_n are undefined then. */
int sigmanifest_parse(const char *json, size_t len, const char *signed_digest,
                      SigLayer ret[static SIGSTORE_MAX_PER_DIGEST], size_t *ret_n, const char **ret_why);

/* Appends add to layers[0..*n) (room for SIGSTORE_MAX_PER_DIGEST) by the
 * local store's rules (sigfs_put()): 0 when appended; 1, nothing changed,
 * when a layer holds the same bytes already (the same digest, under any
 * name); -EEXIST when its name is taken by other bytes (never replaced);
 * -EDQUOT when the digest holds SIGSTORE_MAX_PER_DIGEST already. */
int sigmanifest_add(SigLayer layers[static SIGSTORE_MAX_PER_DIGEST], size_t *n, const SigLayer *add);
