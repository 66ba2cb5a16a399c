/* SPDX-License-Identifier: MIT */
/*
 * The CRL routes' answer; see crl-route.h.
 */

#include <errno.h>
#include <stdio.h>

#include "crl-route.h"
#include "headers.h"
#include "tls.h"

int crl_route_respond(SSL_CTX *ctx, RouteDecision d, bool close, char *out, size_t out_size,
                      const unsigned char **ret_body, size_t *ret_body_len) {
        const unsigned char *der;
        size_t size;
        TlsCrl which;
        int n, r;

        switch (d) {
        case ROUTE_LOCAL_SERVER_CRL:
                which = TLS_CRL_SERVER_CA;
                break;
        case ROUTE_LOCAL_CLIENT_CRL:
                which = TLS_CRL_CLIENT_CA;
                break;
        default:
                return -EINVAL;
        }
        r = tls_ctx_crl(ctx, which, &der, &size);
        if (r < 0)
                return r;

        /* no-cache: a client may keep it but asks again before using it, so
         * a revocation is seen at once rather than at nextUpdate. The
         * security headers are those of every other answer of ours. */
        n = snprintf(out, out_size,
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: application/pkix-crl\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-cache\r\n"
                     "Strict-Transport-Security: " HEADERS_HSTS "\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "%s"
                     "\r\n",
                     size, close ? "Connection: close\r\n" : "");
        if (n < 0 || (size_t)n >= out_size)
                return -ENOBUFS;
        *ret_body = der;
        *ret_body_len = size;
        return n;
}
