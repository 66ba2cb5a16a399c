/* SPDX-License-Identifier: MIT */
/* Socket activation: does a passed socket listen where the configuration
 * says (listen-fds.h)? */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "listen-fds.h"

static uint16_t port_of(const SocketAddress *a) {
        return ntohs(a->sa.sa_family == AF_INET ? a->in.sin_port : a->in6.sin6_port);
}

bool listen_fd_matches(const SocketAddress *bound, const char *host, uint16_t port) {
        SocketAddress want;

        if (bound->sa.sa_family != AF_INET && bound->sa.sa_family != AF_INET6)
                return false;
        if (port_of(bound) != port)
                return false;
        if (!host) {
                if (bound->sa.sa_family == AF_INET)
                        return bound->in.sin_addr.s_addr == htonl(INADDR_ANY);
                return memcmp(&bound->in6.sin6_addr, &in6addr_any, sizeof(struct in6_addr)) == 0;
        }
        if (sockaddr_from_ip(host, port, &want) < 0 || want.sa.sa_family != bound->sa.sa_family)
                return false;
        if (want.sa.sa_family == AF_INET)
                return want.in.sin_addr.s_addr == bound->in.sin_addr.s_addr;
        return memcmp(&want.in6.sin6_addr, &bound->in6.sin6_addr, sizeof(struct in6_addr)) == 0;
}

void listen_fd_text(const SocketAddress *a, char buf[static 64]) {
        char ip[INET6_ADDRSTRLEN];

        if (sockaddr_ip_text(a, ip) < 0) {
                (void)snprintf(buf, 64, "(not an IP socket)");
                return;
        }
        (void)snprintf(buf, 64, a->sa.sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port_of(a));
}
