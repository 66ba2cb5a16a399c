/* SPDX-License-Identifier: MIT */
/*
 * Address prefixes: see cidr.h.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
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

void cidr_unmap(Cidr *c) {
        struct in6_addr a;

        if (c->family != AF_INET6 || c->prefix < 96)
                return;
        memcpy(&a, c->addr, sizeof a);
        if (!IN6_IS_ADDR_V4MAPPED(&a))
                return;
        *c = (Cidr){.family = AF_INET, .prefix = c->prefix - 96};
        memcpy(c->addr, &a.s6_addr[12], 4);
}

void cidr_format(const Cidr *c, char buf[static CIDR_STRLEN]) {
        char ip[INET6_ADDRSTRLEN] = "?";

        (void)inet_ntop(c->family, c->addr, ip, sizeof ip);
        snprintf(buf, CIDR_STRLEN, "%s/%u", ip, c->prefix);
}
