/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * An address prefix ("10.0.0.0/8", "2001:db8::/32"), as [pull]/[push]
 * allow_cidrs name them. The configuration parses them (config.c); the
 * proxy admits clients by them and the supervisor's probe picks its source
 * address by them: one type and one match, so both decide alike.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
        int family;      /* AF_INET or AF_INET6 */
        uint8_t addr[16];
        unsigned prefix; /* prefix length in bits */
} Cidr;

/* Whether addr (AF_INET/AF_INET6; an IPv4-mapped IPv6 address is compared
 * as IPv4) is in one of the n CIDRs; n == 0 means everyone is allowed.
 * Other families are never allowed. Pure. */
bool cidr_allowed(const Cidr *cidrs, unsigned n, const struct sockaddr *addr);
