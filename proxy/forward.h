/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What reaches the registry: the one function that turns a client's parsed
 * request into the bytes written upstream, or into the proxy's refusal.
 *
 * The trust boundary of the proxy is this invariant (docs/ARCHITECTURE.md,
 * "The trust boundary"):
 *
 *   Every byte the proxy writes to the registry as a request head comes
 *   from forward_request(), built only out of validated fields and the
 *   proxy's own configuration; and what it writes parses, with the proxy's
 *   own strict parser, as exactly one complete request equal to the one the
 *   route policy approved (forward_check()).
 *
 * forward_request() runs forward_check() on its own output before it
 * returns it, so a serializer bug becomes a 500 from the proxy, never a
 * second request on the registry connection. The unit tests and
 * tests/fuzz/fuzz-forward.c drive it with everything a client controls
 * (the TLS SNI, the certificate subject, the request line, Host and every
 * header field) and check the same oracle plus the provenance rules below.
 *
 * Provenance of what is sent (policy/proxy-forwarding.md is the human-
 * readable copy):
 *   - request line: the client's method (a token), the normalized path the
 *     route policy decided on, on the push port the client's query (bytes
 *     0x21-0x7e, checked by the parser; the pull port and the signature
 *     store get none),
 *     "HTTP/1.1";
 *   - no body on the pull port: a GET or HEAD with one is refused;
 *   - Host: always one of the configured server names (the one the client's
 *     Host names, else the first), with the port the client connected to
 *     unless it is 443. Neither the client's Host bytes nor the TLS SNI are
 *     ever copied: the SNI is not an HTTP field and OpenSSL accepts any byte
 *     in it but NUL, CR and LF included;
 *   - X-Forwarded-For and X-Real-IP: the peer address the proxy saw (or the
 *     client a trusted balancer's PROXY v2 header named, balancer.c), alone;
 *     X-Forwarded-Proto: https. Every forwarding field a client sends
 *     (X-Forwarded-*, X-Real-IP, Forwarded, ...) is dropped, so the
 *     registry's log and audit trail hold the truth;
 *   - the client's other end-to-end fields, in order, except hop-by-hop
 *     ones (headers.c), Expect (the proxy answers 100-continue itself) and
 *     Authorization (a [push] htpasswd password never leaves the proxy;
 *     the registry has no auth of its own);
 *   - the framing the parser decided (Content-Length as sent, or
 *     Transfer-Encoding: chunked, re-framed by the worker).
 * The certificate subject is never sent upstream.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"
#include "route.h"

/* The proxy's side of a decision: which port, and the configuration. */
typedef struct ForwardPolicy {
        bool push;            /* the authenticated push port (any method) */
        unsigned port_number; /* the port the client connected to: 443, 4443 */
        char *const *server_names; /* configured names; n_server_names may be 0 */
        size_t n_server_names;
        uint64_t max_body; /* largest request body, bytes */
        bool sigstore;     /* the signature store is there: its routes are forwarded, else 404 */
} ForwardPolicy;

/* What the client controls beyond the request, for the record: none of it
 * may reach the registry except the peer address, which the kernel gave
 * (or a balancer in [proxy] trusted_proxies, in its PROXY v2 header). */
typedef struct ForwardClient {
        const char *peer;    /* the peer address as text ("192.0.2.1", "2001:db8::1") */
        const char *sni;     /* the TLS server name, or NULL; never used for output */
        const char *subject; /* the client certificate's subject, or NULL; never sent */
} ForwardClient;

/* A request the proxy answers itself (nothing reaches the registry): a
 * refusal, or a local route (route.h) when route is a ROUTE_LOCAL_*. */
typedef struct ForwardRefusal {
        RouteDecision route; /* ROUTE_LOCAL_*: answer it (crl-route.h); else ROUTE_ALLOW */
        int status;          /* 200 (local route), 400, 403, 404, 413, 500 */
        const char *code;    /* registry error code: "DENIED", ... */
        const char *message; /* one sentence */
        const char *detail;  /* may be NULL */
        bool may_keep;       /* the connection may carry another request */
} ForwardRefusal;

/* Scratch space forward_request() needs: the normalized path and the
 * authority, kept after the call for logs. */
typedef struct ForwardScratch {
        char path[HTTP1_MAX_HEAD + 1];
        size_t path_len;
        char authority[300];
        RouteDecision route; /* what was forwarded: ROUTE_ALLOW (registry) or ROUTE_SIGSTORE */
} ForwardScratch;

/* Decides the request and writes the upstream head into out[0..out_size).
 * req and h come from http1_parse_request() on the client's bytes.
 * Returns the head's length (> 0) when the request is to be forwarded;
 * 0 when the proxy answers it itself (*ret_refusal filled); -ENOBUFS when
 * the head does not fit out (answer 431). Pure: no I/O, no logging. */
int forward_request(const ForwardPolicy *policy, const ForwardClient *client, const Http1Request *req,
                    const Http1Header *h, ForwardScratch *scratch, char *out, size_t out_size,
                    ForwardRefusal *ret_refusal);

/* The oracle: 0 when head[0..len) parses with http1_parse_request() as
 * exactly one complete request of len bytes whose method is approved's,
 * whose target is path + the approved query, whose Host is authority (once),
 * whose X-Forwarded-For and X-Real-IP are the peer (once each), whose
 * framing equals approved's, which carries no field the proxy drops, and
 * which the route policy of the same port still decides as it did
 * (scratch->route: to the registry or to the signature store). -EBADMSG
 * otherwise. */
int forward_check(const ForwardPolicy *policy, const ForwardClient *client, const Http1Request *approved,
                  const ForwardScratch *scratch, const char *head, size_t len);

/* Writes the authority sent upstream as Host for a request (one of the
 * configured server names, see above) into out; returns its length or
 * -ENOBUFS. Exposed for tests. */
int forward_authority(const ForwardPolicy *policy, const Http1Request *req, char *out, size_t out_size);
