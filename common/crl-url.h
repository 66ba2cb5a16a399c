/* SPDX-License-Identifier: MIT */
#pragma once

/* Where the proxy publishes each CA's CRL, DER, on both ports (GET/HEAD,
 * answered by the proxy itself: proxy/crl-route.c, policy/proxy-routes.md).
 * Certificates name these in their CRL distribution point as
 * https://<first server_name>[:<pull port>]<path>. */
#define CRL_URL_PATH_SERVER_CA "/regvisor/crl/server-ca.crl"
#define CRL_URL_PATH_CLIENT_CA "/regvisor/crl/client-ca.crl"
