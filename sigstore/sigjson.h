/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The extension's JSON, in the exact shape containers/image v5.23 reads and
 * writes (docs/signature-extension.md): the PUT object, the GET list, and
 * registry-style errors. Pure: no I/O, no logging; json-c for parsing and
 * for escaping.
 */

#include <stddef.h>
#include <stdint.h>

#include "sigcheck.h"

/* One stored signature, as the list is built from. */
typedef struct SigEntry {
        char suffix[SIGSTORE_SUFFIX_MAX + 1]; /* the name after "<digest>@" */
        uint8_t *content;                     /* the raw signature, owned */
        size_t content_len;
} SigEntry;

/* Frees every entry's content and the array; NULL is fine. */
void sig_entries_free(SigEntry *e, size_t n);

/*
 * Parses a PUT body: exactly the object
 *   {"schemaVersion":2,"name":"<digest>@<suffix>","type":"atomic","content":"<base64>"}
 * in any key order, no other key, where <digest> equals digest[0..digest_len)
 * (the URL's), <suffix> passes sigcheck_suffix() and content is strict
 * padded base64 (RFC 4648 §4) of 1 to SIGSTORE_MAX_SIGNATURE bytes.
 *
 * On success returns 0, fills ret->suffix and hands ret->content (malloc'd)
 * to the caller. Returns -EBADMSG for anything malformed, -EFBIG for content
 * over the cap, -ENOMEM; *ret_why (when given) then names the problem in a
 * static English phrase. *ret is untouched on failure.
 */
int sigjson_parse_put(const char *body, size_t len, const char *digest, size_t digest_len,
                      SigEntry *ret, const char **ret_why);

/* Builds the GET answer {"signatures":[...]} for entries[0..n) (n may be
 * 0), each {"schemaVersion":2,"name":"<digest>@<suffix>","type":"atomic",
 * "content":"<base64>"}. *ret_json is malloc'd and NUL-terminated, owned by
 * the caller. Returns 0 or -ENOMEM. */
int sigjson_list(const SigEntry *entries, size_t n, const char *digest, size_t digest_len,
                 char **ret_json, size_t *ret_len);

/* {"errors":[{"code":"<code>","message":"<message>"}]}, JSON-escaped;
 * malloc'd, owned by the caller. Returns 0 or -ENOMEM. */
int sigjson_error(const char *code, const char *message, char **ret_json, size_t *ret_len);

/* Strict base64 (standard alphabet, "=" padding required, no whitespace):
 * decodes in[0..len) into out (room for max bytes). Returns the number of
 * bytes decoded, -EBADMSG for anything that is not canonical base64
 * (including non-zero bits in the last character's padding), -EFBIG when it
 * would exceed max. */
long sigjson_base64_decode(const char *in, size_t len, uint8_t *out, size_t max);

/* Encodes in[0..len) as padded standard base64 into out, which needs
 * 4 * ((len + 2) / 3) + 1 bytes; NUL-terminated. Returns the length. */
size_t sigjson_base64_encode(const uint8_t *in, size_t len, char *out);
