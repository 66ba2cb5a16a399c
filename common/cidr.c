/* SPDX-License-Identifier: MIT */
/*
 * Address prefixes: see cidr.h.
 */

#include <netinet/in.h>
#include <string.h>

#include "cidr.h"

bool cidr_allowed(const Cidr *cidrs, unsigned n, const struct sockaddr *addr) {
        uint8_t a[16];
        int family;

        if (n == 0)
                return true;
        if (addr->sa_family == AF_INET) {
                family = AF_INET;
                memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        } else if (addr->sa_family == AF_INET6) {
                const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(in6)) {
                        family = AF_INET;
                        memcpy(a, &in6->s6_addr[12], 4);
                } else {
                        family = AF_INET6;
                        memcpy(a, in6, 16);
                }
        } else
                return false;

        for (unsigned i = 0; i < n; i++) {
                const Cidr *c = &cidrs[i];
                unsigned bits = c->prefix, full = bits / 8, rest = bits % 8;
                if (c->family != family)
                        continue;
                if (memcmp(a, c->addr, full) != 0)
                        continue;
                if (rest && ((a[full] ^ c->addr[full]) & (uint8_t)(0xff00u >> rest)) != 0)
                        continue;
                return true;
        }
        return false;
}

bool cidr_list_contains(const CidrList *l, const struct sockaddr *addr) {
        return l->n > 0 && cidr_allowed(l->cidr, l->n, addr);
}
