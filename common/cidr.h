/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An address prefix ("10.0.0.0/8", "2001:db8::/32"), as [pull]/[push]
 * allow_cidrs name them. The configuration parses them (config.c); the
 * proxy admits clients by them and the supervisor's probe picks its source
 * address by them: one type and one match, so both decide alike.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
        int family;      /* AF_INET or AF_INET6 */
        uint8_t addr[16];
        unsigned prefix; /* prefix length in bits */
} Cidr;

/* A list of them, for the keys that are one (not PortConfig's
 * allow_cidrs, which predate it): [proxy] trusted_proxies (no entry wider
 * than TRUSTED_PROXIES_MIN_PREFIX4/6, config.h), [status] allow_cidrs.
 * Zeroed past n, so that two lists compare with memcmp(). */
#define CIDR_LIST_MAX 32
typedef struct {
        Cidr cidr[CIDR_LIST_MAX];
        unsigned n;
} CidrList;

/* Whether addr (AF_INET/AF_INET6; an IPv4-mapped IPv6 address is compared
 * as IPv4) is in one of the n CIDRs; n == 0 means everyone is allowed.
 * Other families are never allowed. Pure. */
bool cidr_allowed(const Cidr *cidrs, unsigned n, const struct sockaddr *addr);

/* Whether addr is in the list; an empty list contains nobody (unlike
 * allow_cidrs, where empty is everyone). Pure. */
bool cidr_list_contains(const CidrList *l, const struct sockaddr *addr);

/* An IPv4-mapped IPv6 network (::ffff:10.0.0.1/128, a prefix of 96 or
 * more) made the IPv4 network it is (10.0.0.1/32): a client arriving as
 * ::ffff:a.b.c.d on a dual-stack listener is compared as IPv4 above, so the
 * IPv6 form would never match. Other networks are left as they are (an
 * IPv6 network shorter than /96 never matches an IPv4 client, mapped or
 * not). The host bits must be zero already. */
void cidr_unmap(Cidr *c);

/* "10.0.0.0/8", "2001:db8::/32". */
#define CIDR_STRLEN (INET6_ADDRSTRLEN + 4)
void cidr_format(const Cidr *c, char buf[static CIDR_STRLEN]);
