/* SPDX-License-Identifier: MIT */
/* After the collection: every blob every tagged manifest references still
 * answers, asked of the registry itself (gc.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "log.h"
#include "macro.h"

#define MANIFEST_MAX (4u << 20)
#define LIST_MAX (16u << 20)
#define MANIFEST_ACCEPT                                                                                       \
        "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "             \
        "application/vnd.docker.distribution.manifest.list.v2+json, "                                       \
        "application/vnd.docker.distribution.manifest.v2+json"

typedef struct Walk {
        const HealthEndpoint *ep;
        uint64_t deadline;
        GcVerify *v;
} Walk;

/* GET path: 0 with the body of a 200, or a negative errno (logged). */
static int get(const Walk *w, const char *path, const char *accept, size_t max, char **ret, size_t *ret_len) {
        int status = 0, r;

        r = health_http_fetch(w->ep, "GET", path, accept, w->deadline, max, &status, ret, ret_len);
        if (r < 0)
                return log_error_errno(r, "gc verify: GET %s: %s", path, strerror(-r));
        if (status != 200) {
                free(TAKE_PTR(*ret));
                return log_error_errno(-EIO, "gc verify: GET %s: %d", path, status);
        }
        return 0;
}

/* HEAD path: 1 for 200, 0 for anything else (logged), <0 when it could not ask. */
static int head_ok(const Walk *w, const char *path) {
        HealthEndpoint ep = *w->ep;
        int status = 0, r;

        r = health_http_status(&ep, "HEAD", path, "localhost", w->deadline, &status);
        if (r < 0)
                return log_error_errno(r, "gc verify: HEAD %s: %s", path, strerror(-r));
        if (status != 200)
                log_error("gc verify: HEAD %s: %d: a referenced blob is gone", path, status);
        return status == 200;
}

static int walk_manifest(const Walk *w, const char *repo, const char *ref, unsigned depth) {
        _cleanup_free_ char *path = NULL, *body = NULL;
        _cleanup_strv_free_ char **blobs = NULL, **children = NULL;
        size_t len = 0;
        int r;

        if (asprintf(&path, "/v2/%s/manifests/%s", repo, ref) < 0)
                return -ENOMEM;
        r = get(w, path, MANIFEST_ACCEPT, MANIFEST_MAX, &body, &len);
        if (r < 0) {
                w->v->missing++;
                return 0;
        }
        w->v->manifests++;
        r = gc_parse_manifest(body, len, &blobs, &children);
        if (r < 0) {
                /* Schema 1 or something else: not ours to judge, but said. */
                log_warning("gc verify: %s: not an image manifest or index this check reads (%s); skipped", path,
                            strerror(-r));
                return 0;
        }
        for (char **b = blobs; *b; b++) {
                _cleanup_free_ char *bp = NULL;
                if (asprintf(&bp, "/v2/%s/blobs/%s", repo, *b) < 0)
                        return -ENOMEM;
                r = head_ok(w, bp);
                if (r < 0)
                        return r;
                w->v->blobs++;
                w->v->missing += r == 0;
        }
        /* An index's children are image manifests; deeper nesting is not
         * something Distribution 2.8 keeps apart, but stay bounded. */
        for (char **m = children; *m && depth < 2; m++) {
                r = walk_manifest(w, repo, *m, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The JSON list under key in the answer to path (a tag list, a catalog page), each entry
 * checked by valid(); what names the list in the error. Returns the count or a negative errno
 * (logged when the answer is no such list). */
static int get_list(const Walk *w, const char *path, const char *key, const char *what,
                    int (*valid)(const char *s, size_t n), char ***ret) {
        _cleanup_free_ char *body = NULL;
        size_t len = 0;
        int r;

        r = get(w, path, "application/json", LIST_MAX, &body, &len);
        if (r < 0)
                return r;
        r = gc_parse_strings(body, len, key, valid, ret);
        if (r < 0)
                return log_error_errno(r, "gc verify: %s: not a %s list: %s", path, what, strerror(-r));
        return r;
}

static int walk_repository(const Walk *w, const char *repo) {
        _cleanup_free_ char *path = NULL;
        _cleanup_strv_free_ char **tags = NULL;
        int r;

        if (asprintf(&path, "/v2/%s/tags/list", repo) < 0)
                return -ENOMEM;
        r = get_list(w, path, "tags", "tag", gc_valid_tag, &tags);
        if (r < 0)
                return r;
        for (char **t = tags; *t; t++) {
                r = walk_manifest(w, repo, *t, 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Pages of the catalog: below Distribution's catalog.maxentries (1000). */
#define CATALOG_PAGE 100

int gc_verify(const HealthEndpoint *ep, uint64_t deadline, GcVerify *ret) {
        GcVerify v = {};
        Walk w = {.ep = ep, .deadline = deadline, .v = &v};
        _cleanup_free_ char *last = NULL;
        int n, r;

        do {
                _cleanup_free_ char *path = NULL;
                _cleanup_strv_free_ char **repos = NULL;

                /* last is a name that passed the grammar: nothing to escape. */
                if (asprintf(&path, "/v2/_catalog?n=%d%s%s", CATALOG_PAGE, last ? "&last=" : "", last ?: "") < 0)
                        return -ENOMEM;
                n = get_list(&w, path, "repositories", "repository", gc_valid_repository, &repos);
                if (n < 0)
                        return n;
                for (char **p = repos; *p; p++) {
                        r = walk_repository(&w, *p);
                        if (r < 0)
                                return r;
                        v.repositories++;
                }
                if (n > 0) {
                        free(last);
                        if (!(last = strdup(repos[n - 1])))
                                return -ENOMEM;
                }
        } while (n == CATALOG_PAGE);
        *ret = v;
        return 0;
}
