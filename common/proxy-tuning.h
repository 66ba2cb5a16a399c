/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The [proxy] keys: the proxy's limits and sizes. Declared once, here, for
 * both sides of the hand-over: the configuration (Config.proxy, parsed by
 * common/config/config.c's key table) and the proxy (ProxyConfig.tuning,
 * proxy/proxy-config.h), which may include common/ but not common/config/.
 * The command line copies the struct whole, so a new [proxy] key cannot be
 * forgotten on the way.
 */

#include <stdint.h>

#include "cidr.h"

typedef struct ProxyTuning {
        uint64_t max_body;            /* bytes */
        unsigned read_timeout;        /* seconds */
        unsigned header_timeout;      /* seconds */
        unsigned idle_timeout;        /* seconds */
        unsigned workers;             /* 0 = one per core */
        unsigned ipv6_prefix;         /* per-client limits key IPv6 by this prefix */
        unsigned limits_slots;        /* per-client limits table size, a power of two */
        unsigned max_connections;     /* per worker; 0 = from RLIMIT_NOFILE */
        uint64_t min_rate;            /* bytes/s a body or a reader must move; 0 = off */
        unsigned min_rate_window;     /* seconds, the window min_rate is measured over */
        unsigned ticket_key_lifetime; /* seconds a TLS ticket key is current (accepted for two) */
        unsigned upstream_hold;       /* seconds a GET/HEAD waits for a restarting registry; 0 = off */
        /* Load balancers whose connections must start with a PROXY v2
         * header naming the client (proxy/balancer.c); empty: none. */
        CidrList trusted_proxies;
} ProxyTuning;
