/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Push scopes: which repositories a client certificate (by its CN) may
 * write on the push port. Pure: no I/O, no logging. The configuration
 * ([scopes] section, common/config/config.c) checks each line with
 * scope_entry_append() and keeps the canonical text; the command line
 * hands that text to the proxy (ProxyConfig), which parses it once with
 * scope_table_parse() and asks scope_check_request() for every request.
 *
 * Patterns (case-sensitive, names in the distribution grammar, reponame.h):
 *   "*"        every repository;
 *   "app"      exactly the repository "app";
 *   "app/ *"   (written without the blank) every repository below "app/" (at a component boundary:
 *              "app/x" and "app/x/y", not "app" itself, not "apple/x").
 * A '*' anywhere else, "..", upper case, an empty or a doubled "/" is
 * refused when the configuration is read.
 *
 * Which requests are writes: every method but GET and HEAD. Reads stay
 * unscoped, as they are anonymous on the pull port anyway. A write is
 * allowed only when every repository the registry could read its path as
 * (scope_request_repositories()) is in scope; a write that names no
 * repository (PATCH /v2/, a path of no write endpoint) is refused: fail
 * closed. A CN that has no line while scopes exist may not push at all.
 *
 * The cross-repository blob mount (POST /v2/NAME/blobs/uploads/?mount=D&
 * from=OTHER) is checked on NAME only: from= is a read of OTHER, and every
 * repository's blobs are readable by digest anonymously on the pull port
 * (and by any client on the push port), so a mount gives a scoped client
 * nothing it could not pull and push itself. INSTALL.md says so.
 */

#include <stdbool.h>
#include <stddef.h>

#define SCOPE_MAX_CLIENTS 256
#define SCOPE_MAX_PATTERNS 32
#define SCOPE_NAME_MAX 64

typedef struct ScopePattern {
        const char *prefix; /* into ScopeTable.text; NULL for "*" */
        size_t len;
        bool subtree; /* PREFIX followed by "/" and "*" */
} ScopePattern;

typedef struct ScopeClient {
        const char *name; /* into ScopeTable.text */
        size_t name_len;
        ScopePattern patterns[SCOPE_MAX_PATTERNS];
        unsigned n_patterns;
} ScopeClient;

/* n_clients == 0: no scopes, every valid certificate pushes anywhere. */
typedef struct ScopeTable {
        char *text; /* owned: the canonical text the entries point into */
        ScopeClient *clients;
        unsigned n_clients;
} ScopeTable;

typedef enum ScopeVerdict {
        SCOPE_ALLOW,
        SCOPE_DENY_UNLISTED, /* scopes exist and this CN has none */
        SCOPE_DENY_OUTSIDE,  /* a repository outside the CN's patterns */
        SCOPE_DENY_NO_NAME,  /* a write whose path names no repository */
} ScopeVerdict;

/* Whether name is a client name as `pki` issues them (the CN): 1 to
 * SCOPE_NAME_MAX of [a-z0-9._-], starting with a letter or a digit. */
bool scope_client_name_valid(const char *name, size_t n);

/* Checks one configuration line, "NAME = PATTERN, PATTERN ..." (patterns
 * separated by commas and/or blanks), and appends its canonical form
 * "NAME=P,P\n" to *text (allocated or grown; NULL to start). A second line
 * for NAME (append false) is refused; append true adds patterns to NAME's
 * line (a continuation line), which must then be the last one. Returns 0,
 * -ENOMEM, or -EINVAL with *ret_why (static) saying what was expected;
 * *text is untouched on failure. */
int scope_entry_append(char **text, const char *name, const char *value, bool append, const char **ret_why);

/* Parses canonical text (scope_entry_append()'s; NULL or "" for none) into
 * *ret, which owns a copy. 0, -ENOMEM or -EINVAL (text not canonical). */
int scope_table_parse(const char *text, ScopeTable *ret);

/* Frees what *t owns and zeroes it; NULL-safe. */
void scope_table_done(ScopeTable *t);

/* Whether the CN's patterns cover repository repo[0..n). Not for a CN
 * without a line: scope_check_request() says SCOPE_DENY_UNLISTED. */
bool scope_client_allows(const ScopeClient *c, const char *repo, size_t n);

/* The ScopeClient of cn, or NULL. */
const ScopeClient *scope_table_find(const ScopeTable *t, const char *cn);

/* The repositories a write to a normalized path (route.h) may touch, as
 * the registry's router could read it: for "/v2/NAME/manifests/REF",
 * "/v2/NAME/blobs/X", "/v2/NAME/blobs/uploads/" and
 * "/v2/NAME/blobs/uploads/ID" (REF, X and ID without "/"), and
 * "/extensions/v2/NAME/signatures/X", the NAME of each shape the path has,
 * whether or not it is a valid name. Writes up to max (pointer, length)
 * pairs into ret and returns how many (0: no repository). */
unsigned scope_request_repositories(const char *path, size_t plen, const char **ret, size_t *ret_len, unsigned max);

/* The decision for one request: method (GET and HEAD are reads, always
 * SCOPE_ALLOW), the normalized path, the client's CN (NULL or "" when the
 * certificate has none). With no scopes, SCOPE_ALLOW. When it denies
 * SCOPE_DENY_OUTSIDE, *ret_repo and *ret_repo_len (may be NULL) name the
 * repository refused. */
ScopeVerdict scope_check_request(const ScopeTable *t, const char *cn, const char *method, size_t mlen,
                                 const char *path, size_t plen, const char **ret_repo, size_t *ret_repo_len);

/* "allow", "client has no push scope", ...; never NULL. */
const char *scope_verdict_string(ScopeVerdict v);
