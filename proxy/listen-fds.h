/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The listening sockets systemd passes (regvisor.socket, sd_listen_fds())
 * must be exactly the configured [pull] and [push] listen addresses:
 * provision renders the socket unit from the same configuration, and a unit
 * edited by hand or left behind by an older configuration is refused at
 * start, naming both sides, rather than serving on addresses nobody chose.
 */

#include <stdbool.h>
#include <stdint.h>

#include "sockaddr.h"

/* Pure: whether bound (a socket's getsockname()) is the configured listen
 * address host:port. host NULL is the wildcard, which the proxy binds as
 * "[::]" dual-stack, or "0.0.0.0" where IPv6 is missing: either matches. */
bool listen_fd_matches(const SocketAddress *bound, const char *host, uint16_t port);

/* "ADDR:PORT" or "[ADDR]:PORT" of an AF_INET/AF_INET6 address into buf. */
void listen_fd_text(const SocketAddress *a, char buf[static 64]);
