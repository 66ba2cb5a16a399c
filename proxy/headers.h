/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the proxy writes on the wire, as pure functions over caller buffers:
 * the request head it sends to the registry, the response head it sends to
 * the client, and its own error responses. Nothing is allocated or logged;
 * each function returns the number of bytes written, or -ENOBUFS when out is
 * too small (nothing useful is left in out then).
 *
 * Hop-by-hop fields (RFC 9110 §7.6.1) are never passed on in either
 * direction: Connection and every field it nominates, Keep-Alive, TE,
 * Trailer, Upgrade and every Proxy-* field. The proxy speaks for itself on
 * each hop.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"

/* Sent on every response, the proxy's own included (the guide's nginx sets
 * it with "always" but hides it under location /v2/; we do not). */
#define HEADERS_HSTS "max-age=31536000; includeSubDomains"
#define HEADERS_API_VERSION "registry/2.0"

typedef struct HeadersRequestOptions {
        /* The path the route policy decided on (route_normalize_path()) and
         * the raw query ("?..." or empty) of the client's target. */
        const char *path;
        size_t path_len;
        const char *query;
        size_t query_len;
        /* The Host to send: chosen by the caller from its configuration
         * (forward_authority()), never the client's or the SNI's bytes. */
        const char *authority;
        /* The peer address as text: X-Forwarded-For and X-Real-IP. */
        const char *peer;
        /* The body is re-framed as chunked: send Transfer-Encoding: chunked
         * (the client's own framing field is dropped). */
        bool chunked;
} HeadersRequestOptions;

/* Writes the request head for the upstream: "METHOD path?query HTTP/1.1",
 * the client's end-to-end fields in order except those
 * headers_request_dropped() names and, when re-framing, Transfer-Encoding;
 * then Host: authority, X-Forwarded-Proto: https, X-Forwarded-For: peer,
 * X-Real-IP: peer, and the framing. Always HTTP/1.1 keep-alive towards the
 * upstream. */
int headers_request(const Http1Request *req, const Http1Header *h, size_t n_headers,
                    const HeadersRequestOptions *o, char *out, size_t out_size);

/* Whether a client's request field is never forwarded: hop-by-hop fields
 * (RFC 9110 §7.6.1, the Proxy-* family and what Connection nominates, which
 * is why all[0..n) is needed), the fields the proxy writes itself (Host,
 * Expect, X-Forwarded-Proto) and every forwarding field a client could forge
 * (X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Port, X-Forwarded-Server,
 * X-Forwarded-Prefix, X-Real-IP, Forwarded, X-Client-IP, True-Client-IP,
 * X-Original-URL, X-Rewrite-URL), and Authorization: the proxy checks
 * credentials itself ([push] htpasswd) and the registry has none to check. */
bool headers_request_dropped(const Http1Header *all, size_t n, const Http1Header *h);

typedef struct HeadersResponseOptions {
        /* Close the client connection after this response: "Connection:
         * close". */
        bool close;
        /* The client spoke HTTP/1.0 and keeps the connection open: say
         * "Connection: keep-alive". */
        bool keep_alive_http10;
        /* The upstream body is chunked but the client is HTTP/1.0: the
         * proxy decodes it and delimits it by closing; Transfer-Encoding is
         * dropped (close must be true). */
        bool dechunk;
        /* The answer to the version check while the signature store is
         * served: "X-Registry-Supports-Signatures: 1" (exactly "1", which
         * is all containers/image accepts; docs/signature-extension.md). */
        bool supports_signatures;
} HeadersResponseOptions;

/* Writes the response head for the client: "HTTP/1.1 status reason", the
 * upstream's end-to-end fields except Strict-Transport-Security (ours
 * replaces it) and X-Registry-Supports-Signatures (the proxy alone says
 * whether the extension is served), then Strict-Transport-Security,
 * Docker-Distribution-Api-Version when the upstream did not send one,
 * X-Registry-Supports-Signatures as told, and Connection as told. */
int headers_response(const Http1Response *resp, const Http1Header *h, size_t n_headers,
                     const HeadersResponseOptions *o, char *out, size_t out_size);

typedef struct HeadersError {
        int status;          /* 400, 403, 404, 413, 429, 502, 504, ... */
        const char *code;    /* registry error code: "DENIED", "UNAVAILABLE" */
        const char *message; /* one English sentence */
        const char *detail;  /* NULL for none; else sent as a JSON string */
        unsigned retry_after; /* > 0: Retry-After: N (429) */
        bool close;           /* Connection: close */
        bool head;            /* the request was HEAD: no body, same length */
        bool basic_challenge; /* 401: WWW-Authenticate: Basic realm="regvisor" ([push] htpasswd) */
} HeadersError;

/* Writes a complete response of the proxy's own, in the registry's error
 * format: {"errors":[{"code":"...","message":"...","detail":"..."}]}, with
 * Content-Type: application/json, HSTS and Docker-Distribution-Api-Version.
 * Strings are JSON-escaped. */
int headers_error(const HeadersError *e, char *out, size_t out_size);

/* The standard reason phrase of a status ("Bad Request"), "Unknown" for
 * others. */
const char *headers_reason(int status);
