/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "sigcheck.h"
#include "sigfs.h"
#include "sighandle.h"
#include "sigjson.h"
#include "sigreg.h"

_Static_assert(sizeof(((SigReply *) 0)->repository) > SIGSTORE_REPOSITORY_MAX, "repository buffer");
_Static_assert(sizeof(((SigReply *) 0)->digest) > SIGSTORE_DIGEST_LEN, "digest buffer");

void sig_reply_done(SigReply *r) {
        free(r->body);
        r->body = NULL;
}

static int reply_error(SigReply *ret, int status, const char *code, const char *message) {
        ret->status = status;
        ret->code = code;
        return sigjson_error(code, message, &ret->body, &ret->body_len);
}

static bool method_is(const char *m, size_t n, const char *want) {
        return n == strlen(want) && memcmp(m, want, n) == 0;
}

/* The registry backend's failures, which are the registry's state and not the request's: 503
 * (try again) or 500. Returns 1, nothing answered, for the local store or another error. */
static int reply_backend_error(const SigBackend *b, SigReply *ret, int r) {
        char message[512];
        const char *what;
        int status = 503;

        if (!b->registry)
                return 1;
        switch (r) {
        case -EHOSTUNREACH:
                what = "the registry that holds the signatures did not answer as expected";
                break;
        case -EROFS:
                what = "the registry is read-only for maintenance";
                break;
        case -EBUSY:
                what = "other writers kept replacing this digest's signatures";
                break;
        case -EBADMSG:
                what = "the registry holds signatures this store did not write";
                status = 500;
                break;
        case -EIO:
                what = "the registry refused a write of the signature store";
                status = 500;
                break;
        default:
                return 1;
        }
        (void) snprintf(message, sizeof(message), "%s (%s)", what, b->registry->why);
        return reply_error(ret, status, status == 503 ? "UNAVAILABLE" : "UNKNOWN", message);
}

static int handle_get(const SigBackend *b, const SigPath *p, SigReply *ret) {
        SigEntry *entries = NULL;
        size_t n = 0;
        int r;

        r = b->registry ? sigreg_list(b->registry, p->repository, p->repository_len, p->digest, &entries, &n)
                        : sigfs_list(b->root_fd, p->repository, p->repository_len, p->digest, &entries, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                int e = reply_backend_error(b, ret, r);
                return e <= 0 ? e : reply_error(ret, 500, "UNKNOWN", "the signature store could not read its storage");
        }
        r = sigjson_list(entries, n, p->digest, p->digest_len, &ret->body, &ret->body_len);
        sig_entries_free(entries, n);
        if (r < 0)
                return r;
        ret->status = 200;
        return 0;
}

static int handle_put(const SigBackend *b, const SigPath *p, const char *body, size_t body_len, SigReply *ret) {
        SigEntry sig = {};
        const char *why = NULL;
        char message[256];
        int r;

        r = sigjson_parse_put(body, body_len, p->digest, p->digest_len, &sig, &why);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG)
                return reply_error(ret, 413, "SIZE_INVALID", why);
        if (r < 0) {
                (void) snprintf(message, sizeof(message), "invalid signature object: %s", why);
                return reply_error(ret, 400, "SIGNATURE_INVALID", message);
        }

        r = b->registry ? sigreg_put(b->registry, p->repository, p->repository_len, p->digest, &sig)
                        : sigfs_put(b->root_fd, p->repository, p->repository_len, p->digest, &sig);
        free(sig.content);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                int e = reply_backend_error(b, ret, r);
                if (e <= 0)
                        return e;
        }
        /* The registry backend stores signatures only for an image the registry holds (sigreg_put()). */
        if (r == -ENOENT && b->registry)
                return reply_error(ret, 404, "MANIFEST_UNKNOWN",
                                   "the registry has no manifest with this digest in this repository: push the image first");
        switch (r) {
        case 0:
        case 1: /* already stored: the same bytes are there, which is what the client asked for */
                ret->status = 201;
                return 0;
        case -EEXIST:
                return reply_error(ret, 409, "DENIED", "a signature with this name exists; signatures are never replaced");
        case -EDQUOT:
                (void) snprintf(message, sizeof(message), "this digest already has %d signatures, the most the store keeps",
                                SIGSTORE_MAX_PER_DIGEST);
                return reply_error(ret, 409, "DENIED", message);
        case -ENOSPC:
                return reply_error(ret, 507, "UNKNOWN", "the signature store is out of space");
        case -ENAMETOOLONG: /* the registry backend: NAME/sha256-HEX.simplesig must be a name */
                (void) snprintf(message, sizeof(message),
                                "the repository name is too long to keep signatures in the registry "
                                "(at most %zu bytes)",
                                (size_t) SIGMANIFEST_REPOSITORY_BASE_MAX);
                return reply_error(ret, 400, "NAME_INVALID", message);
        default:
                return reply_error(ret, 500, "UNKNOWN", "the signature store could not write its storage");
        }
}

int sighandle_request(const SigBackend *b, const char *method, size_t method_len, const char *target,
                      size_t target_len, const char *body, size_t body_len, SigReply *ret) {
        bool get = method_is(method, method_len, "GET") || method_is(method, method_len, "HEAD");
        bool put = method_is(method, method_len, "PUT");
        SigPath p;
        int r;

        *ret = (SigReply){};
        r = sigcheck_parse_path(target, target_len, &p);
        if (r == -ENOENT)
                return reply_error(ret, 404, "NOT_FOUND", "the signature store serves only /extensions/v2/<name>/signatures/<digest>");
        if (r == -EINVAL)
                return reply_error(ret, 400, "NAME_INVALID", "invalid repository name");
        if (r < 0)
                return reply_error(ret, 400, "DIGEST_INVALID", "the digest must be sha256: and 64 lower-case hex digits");

        memcpy(ret->repository, p.repository, p.repository_len);
        ret->repository[p.repository_len] = '\0';
        memcpy(ret->digest, p.digest, p.digest_len);
        ret->digest[p.digest_len] = '\0';
        /* From here on a C string: the target's copy is followed by the rest of the request
         * line, and the registry backend prints it into a manifest. */
        p.digest = ret->digest;

        if (get)
                return handle_get(b, &p, ret);
        if (put)
                return handle_put(b, &p, body, body_len, ret);
        return reply_error(ret, 405, "UNSUPPORTED", "only GET, HEAD and PUT");
}
