/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "macro.h"
#include "sockaddr.h"

int sockaddr_from_ip(const char *host, uint16_t port, SocketAddress *ret) {
        SocketAddress a = {};
        char buf[INET6_ADDRSTRLEN];
        size_t n;

        if (!host) {
                a.in6 = (struct sockaddr_in6){.sin6_family = AF_INET6, .sin6_port = htons(port),
                                              .sin6_addr = in6addr_any};
                a.len = sizeof a.in6;
                *ret = a;
                return 0;
        }

        n = strlen(host);
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* "[::1]" */
                if (n - 2 >= sizeof buf)
                        return -EINVAL;
                memcpy(buf, host + 1, n - 2);
                buf[n - 2] = 0;
                if (inet_pton(AF_INET6, buf, &a.in6.sin6_addr) != 1)
                        return -EINVAL;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.len = sizeof a.in6;
        } else if (inet_pton(AF_INET, host, &a.in.sin_addr) == 1) {
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(port);
                a.len = sizeof a.in;
        } else if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) == 1) {
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(port);
                a.len = sizeof a.in6;
        } else
                return -EINVAL;
        *ret = a;
        return 0;
}

int sockaddr_from_unix(const char *path, SocketAddress *ret) {
        SocketAddress a = {};
        size_t n = path ? strlen(path) : 0;

        if (n == 0)
                return -EINVAL;
        if (n >= sizeof a.un.sun_path)
                return -ENAMETOOLONG;
        a.un.sun_family = AF_UNIX;
        memcpy(a.un.sun_path, path, n + 1);
        a.len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        *ret = a;
        return 0;
}

/* 1 to 65535, decimal digits only: no sign, no spaces, no leading "0x". */
static int parse_port(const char *s, uint16_t *ret) {
        unsigned v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                v = v * 10 + (unsigned) (*s - '0');
                if (v > 65535)
                        return -EINVAL;
        }
        if (v == 0)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int sockaddr_parse(const char *s, SocketAddress *ret) {
        char host[INET6_ADDRSTRLEN + 2];
        const char *colon;
        uint16_t port;
        size_t hl;

        if (strneq(s, "unix:", 5))
                return sockaddr_from_unix(s + 5, ret);

        colon = strrchr(s, ':');
        if (!colon) { /* "PORT": every address */
                if (parse_port(s, &port) < 0)
                        return -EINVAL;
                return sockaddr_from_ip(NULL, port, ret);
        }
        if (parse_port(colon + 1, &port) < 0)
                return -EINVAL;
        hl = (size_t) (colon - s);
        if (hl == 0 || hl >= sizeof host)
                return -EINVAL;
        memcpy(host, s, hl);
        host[hl] = 0;
        if (host[0] == '[') {
                /* Brackets hold IPv6 and only IPv6: "[10.0.0.1]:80" is a typo. */
                if (host[hl - 1] != ']' || !memchr(host, ':', hl))
                        return -EINVAL;
        } else if (memchr(host, ':', hl) || memchr(host, ']', hl))
                return -EINVAL; /* IPv6 without brackets: where would the port start? */
        return sockaddr_from_ip(host, port, ret);
}

int sockaddr_ip_text(const SocketAddress *a, char buf[static INET6_ADDRSTRLEN]) {
        const void *addr;

        if (a->sa.sa_family == AF_INET)
                addr = &a->in.sin_addr;
        else if (a->sa.sa_family == AF_INET6)
                addr = &a->in6.sin6_addr;
        else
                return -EAFNOSUPPORT;
        if (!inet_ntop(a->sa.sa_family, addr, buf, INET6_ADDRSTRLEN))
                return -EAFNOSUPPORT;
        return 0;
}
