/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The answer to a CRL route (route.h: ROUTE_LOCAL_SERVER_CRL,
 * ROUTE_LOCAL_CLIENT_CRL): the CA's CRL, DER, as application/pkix-crl
 * (RFC 5280 4.2.1.13, RFC 2585), taken from the TLS context the connection
 * was accepted with (tls.h: tls_ctx_crl()). That is the CRL the push port
 * enforces, loaded with the context at start and at every reload, so the
 * CRL served changes when a revocation reaches the proxy, never before or
 * after. Pure: no I/O and no logging.
 */

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "route.h"

/* Writes the response head for local route d into out[0..out_size) and
 * points *ret_body / *ret_body_len at the body (owned by ctx) that follows
 * it on the wire; a HEAD request sends the head only, with the same
 * Content-Length. close adds "Connection: close". Returns the head's length;
 * -ENOENT when ctx publishes no such CRL, -EINVAL when d is not a CRL route,
 * -ENOBUFS when out is too small. */
int crl_route_respond(SSL_CTX *ctx, RouteDecision d, bool close, char *out, size_t out_size,
                      const unsigned char **ret_body, size_t *ret_body_len);
