/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One request of the signature extension, from method, target and body to
 * the status and body of the answer: the route, the checks, the store. The
 * HTTP framing around it is sigserve.c's. No logging: the caller logs one
 * access line from the reply.
 */

#include <stdbool.h>
#include <stddef.h>

#include "sigreg.h"

/* Where the signatures are: below a directory (sigfs.h), or in the registry
 * (sigreg.h) when registry is set. */
typedef struct SigBackend {
        int root_fd;                 /* DIR/v1; unused with registry */
        SigRegistry *registry;       /* [signing] store = registry; NULL: the directory */
} SigBackend;

typedef struct SigReply {
        int status;       /* 200, 201, 400, 404, 405, 409, 413, 500, 503, 507 */
        const char *code; /* the registry error code, or NULL on success */
        char *body;       /* JSON, malloc'd (NULL for 201); free with sig_reply_done() */
        size_t body_len;
        /* What the request named, for the access log; empty when it named nothing valid. */
        char repository[256];
        char digest[72];
} SigReply;

/*
 * Answers method target (GET, HEAD, PUT on SIGSTORE_PATH_PREFIX...) with the
 * store b. body[0..body_len) is the request body, already
 * complete and at most SIGSTORE_MAX_BODY bytes. Always fills *ret; returns 0,
 * or -ENOMEM when not even an error body could be built (then close the
 * connection).
 */
int sighandle_request(const SigBackend *b, const char *method, size_t method_len, const char *target,
                      size_t target_len, const char *body, size_t body_len, SigReply *ret);

void sig_reply_done(SigReply *r);
