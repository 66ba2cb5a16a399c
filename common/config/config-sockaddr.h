/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The configuration's address types as socket addresses, through
 * common/sockaddr.h. Apart from it because the proxy, which reads no
 * configuration (it gets a ProxyConfig), uses sockaddr.h alone.
 */

#include "config.h"
#include "sockaddr.h"

/* The configuration's address types ([registry] listen, [pull]/[push]/[status]
 * listen): the same rules as above. */
int sockaddr_from_upstream(const UpstreamAddress *a, SocketAddress *ret);
int sockaddr_from_listen(const ListenAddress *a, SocketAddress *ret);
