/* SPDX-License-Identifier: MIT */
/*
 * Push scopes: the patterns, their canonical text, and the decision for a
 * request; see scope.h.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "reponame.h"
#include "scope.h"

#define BLANKS " \t"

bool scope_client_name_valid(const char *name, size_t n) {
        return n > 0 && n <= SCOPE_NAME_MAX && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") >= n &&
               strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0]);
}

/* One pattern, p[0..n): "*", NAME or NAME/"*". */
static bool pattern_parse(const char *p, size_t n, ScopePattern *ret) {
        if (n == 1 && p[0] == '*') {
                *ret = (ScopePattern){.prefix = NULL, .len = 0, .subtree = true};
                return true;
        }
        bool subtree = n >= 2 && p[n - 2] == '/' && p[n - 1] == '*';
        size_t len = subtree ? n - 2 : n;
        if (!reponame_valid(p, len))
                return false;
        *ret = (ScopePattern){.prefix = p, .len = len, .subtree = subtree};
        return true;
}

/* Splits value at commas and blanks; each token through pattern_parse()
 * into ret (up to max). Returns the count, or -EINVAL (*ret_why). */
static int patterns_parse(const char *value, ScopePattern *ret, unsigned max, const char **ret_why) {
        unsigned n = 0;

        for (const char *p = value;;) {
                p += strspn(p, BLANKS ",");
                if (!*p)
                        break;
                size_t len = strcspn(p, BLANKS ",");
                if (n == max) {
                        *ret_why = "expected at most " STRINGIFY(SCOPE_MAX_PATTERNS) " patterns per client";
                        return -EINVAL;
                }
                if (!pattern_parse(p, len, &ret[n])) {
                        *ret_why = "expected repository patterns: '*', NAME or NAME/* (NAME lower case in the "
                                   "distribution grammar, '*' only as the last component)";
                        return -EINVAL;
                }
                n++;
                p += len;
        }
        return (int)n;
}

/* The line of name in canonical text, or NULL. */
static const char *text_find(const char *text, const char *name, size_t n) {
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
                if (strncmp(l, name, n) == 0 && l[n] == '=')
                        return l;
        return NULL;
}

static unsigned text_lines(const char *text) {
        unsigned n = 0;

        for (const char *l = text; l && *l; l++)
                n += *l == '\n';
        return n;
}

int scope_entry_append(char **text, const char *name, const char *value, bool append, const char **ret_why) {
        ScopePattern parsed[SCOPE_MAX_PATTERNS];
        size_t nlen = strlen(name), old = *text ? strlen(*text) : 0;
        unsigned have = 0;
        int n;

        if (!scope_client_name_valid(name, nlen)) {
                *ret_why = "expected a client name (the certificate's CN): 1 to " STRINGIFY(
                        SCOPE_NAME_MAX) " of [a-z0-9._-], starting with a letter or digit";
                return -EINVAL;
        }
        const char *line = text_find(*text, name, nlen);
        if (!append && line) {
                *ret_why = "expected one line per client: this one has a line already";
                return -EINVAL;
        }
        if (append) {
                /* The continuation of the last line only (the parser's). */
                if (!line || strchr(line, '\n') != *text + old - 1)
                        return -EINVAL;
                for (const char *q = line; *q; q++)
                        have += *q == ',';
                have++;
        }
        n = patterns_parse(value, parsed, SCOPE_MAX_PATTERNS - have, ret_why);
        if (n < 0)
                return n;
        if (n == 0 && !append) {
                *ret_why = "expected at least one repository pattern ('*' for every repository)";
                return -EINVAL;
        }

        size_t need = old + nlen + 2 + 1;
        for (int i = 0; i < n; i++)
                need += parsed[i].len + 3;
        char *t = realloc(*text, need);
        if (!t)
                return -ENOMEM;
        size_t pos = old;
        if (append)
                pos--; /* over the '\n' */
        else
                pos += (size_t)sprintf(t + pos, "%s=", name);
        for (int i = 0; i < n; i++)
                pos += (size_t)sprintf(t + pos, "%s%.*s%s", i > 0 || append ? "," : "",
                                       parsed[i].prefix ? (int)parsed[i].len : 1,
                                       parsed[i].prefix ? parsed[i].prefix : "*", parsed[i].subtree && parsed[i].prefix ? "/*" : "");
        t[pos++] = '\n';
        t[pos] = 0;
        *text = t;
        return 0;
}

void scope_table_done(ScopeTable *t) {
        if (!t)
                return;
        free(t->text);
        free(t->clients);
        *t = (ScopeTable){};
}

int scope_table_parse(const char *text, ScopeTable *ret) {
        _cleanup_(scope_table_done) ScopeTable t = {};
        unsigned lines = text_lines(text);
        const char *why;

        if (!text || !*text) {
                *ret = (ScopeTable){};
                return 0;
        }
        if (lines > SCOPE_MAX_CLIENTS || text[strlen(text) - 1] != '\n')
                return -EINVAL;
        t.text = strdup(text);
        t.clients = calloc(lines, sizeof(ScopeClient));
        if (!t.text || !t.clients)
                return -ENOMEM;
        for (char *l = t.text; *l;) {
                char *nl = strchr(l, '\n'), *eq = memchr(l, '=', (size_t)(nl - l));
                ScopeClient *c = &t.clients[t.n_clients];

                if (!eq)
                        return -EINVAL;
                *eq = 0;
                *nl = 0; /* names and patterns stay pointers into text */
                if (!scope_client_name_valid(l, (size_t)(eq - l)) || scope_table_find(&t, l))
                        return -EINVAL;
                int n = patterns_parse(eq + 1, c->patterns, SCOPE_MAX_PATTERNS, &why);
                if (n <= 0)
                        return -EINVAL;
                c->name = l;
                c->name_len = (size_t)(eq - l);
                c->n_patterns = (unsigned)n;
                t.n_clients++;
                l = nl + 1;
        }
        *ret = t;
        t = (ScopeTable){};
        return 0;
}

const ScopeClient *scope_table_find(const ScopeTable *t, const char *cn) {
        if (!t || !cn)
                return NULL;
        for (unsigned i = 0; i < t->n_clients; i++)
                if (streq(t->clients[i].name, cn))
                        return &t->clients[i];
        return NULL;
}

bool scope_client_allows(const ScopeClient *c, const char *repo, size_t n) {
        if (!c || !reponame_valid(repo, n))
                return false;
        for (unsigned i = 0; i < c->n_patterns; i++) {
                const ScopePattern *p = &c->patterns[i];

                if (!p->prefix)
                        return true;
                if (p->subtree ? n > p->len + 1 && repo[p->len] == '/' && memcmp(repo, p->prefix, p->len) == 0
                               : n == p->len && memcmp(repo, p->prefix, n) == 0)
                        return true;
        }
        return false;
}

static bool has_prefix(const char *s, size_t n, const char *prefix) {
        size_t k = strlen(prefix);
        return n >= k && memcmp(s, prefix, k) == 0;
}

/* When s[0..n) ends in "/" suffix "/" LAST (LAST without "/", maybe empty),
 * the part before: the NAME of that shape. */
static bool name_before(const char *s, size_t n, const char *suffix, size_t *ret_len) {
        size_t k = strlen(suffix);
        const char *slash = memrchr(s, '/', n);

        if (!slash)
                return false;
        size_t head = (size_t)(slash - s);
        if (head < k + 1 || s[head - k - 1] != '/' || memcmp(s + head - k, suffix, k) != 0)
                return false;
        *ret_len = head - k - 1;
        return true;
}

unsigned scope_request_repositories(const char *path, size_t plen, const char **ret, size_t *ret_len, unsigned max) {
        /* Every shape of a write endpoint, as the registry's router
         * (distribution's v2 routes) and the signature extension read it. */
        static const struct {
                const char *root;
                const char *suffix;
        } shapes[] = {
                {"/v2/", "manifests"},
                {"/v2/", "blobs"},
                {"/v2/", "blobs/uploads"},
                {"/extensions/v2/", "signatures"},
        };
        unsigned n = 0;

        for (size_t i = 0; i < ELEMENTSOF(shapes) && n < max; i++) {
                size_t root = strlen(shapes[i].root), len;

                if (!has_prefix(path, plen, shapes[i].root) ||
                    !name_before(path + root, plen - root, shapes[i].suffix, &len))
                        continue;
                ret[n] = path + root;
                ret_len[n] = len;
                n++;
        }
        return n;
}

static bool method_is(const char *m, size_t n, const char *s) {
        return n == strlen(s) && memcmp(m, s, n) == 0;
}

ScopeVerdict scope_check_request(const ScopeTable *t, const char *cn, const char *method, size_t mlen,
                                 const char *path, size_t plen, const char **ret_repo, size_t *ret_repo_len) {
        const char *repo[4];
        size_t len[4];

        if (!t || t->n_clients == 0 || method_is(method, mlen, "GET") || method_is(method, mlen, "HEAD"))
                return SCOPE_ALLOW;
        const ScopeClient *c = scope_table_find(t, cn);
        if (!c)
                return SCOPE_DENY_UNLISTED;
        unsigned n = scope_request_repositories(path, plen, repo, len, ELEMENTSOF(repo));
        if (n == 0)
                return SCOPE_DENY_NO_NAME;
        for (unsigned i = 0; i < n; i++)
                if (!scope_client_allows(c, repo[i], len[i])) {
                        if (ret_repo)
                                *ret_repo = repo[i];
                        if (ret_repo_len)
                                *ret_repo_len = len[i];
                        return SCOPE_DENY_OUTSIDE;
                }
        return SCOPE_ALLOW;
}

const char *scope_verdict_string(ScopeVerdict v) {
        static const char *const s[] = {
                [SCOPE_ALLOW] = "allow",
                [SCOPE_DENY_UNLISTED] = "this client certificate has no push scope",
                [SCOPE_DENY_OUTSIDE] = "the repository is outside this client's push scope",
                [SCOPE_DENY_NO_NAME] = "a write that names no repository is refused when push scopes are set",
        };
        return (unsigned)v < ELEMENTSOF(s) && s[v] ? s[v] : "?";
}
