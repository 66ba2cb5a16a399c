/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "config-sockaddr.h"

int sockaddr_from_upstream(const UpstreamAddress *a, SocketAddress *ret) {
        if (a->kind == LISTEN_UNIX)
                return sockaddr_from_unix(a->path, ret);
        if (!a->host) /* the registry is reached, never bound: a wildcard is no address */
                return -EINVAL;
        return sockaddr_from_ip(a->host, a->port, ret);
}

int sockaddr_from_listen(const ListenAddress *a, SocketAddress *ret) {
        return sockaddr_from_ip(a->host, a->port, ret);
}
