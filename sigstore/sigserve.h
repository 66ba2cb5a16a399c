/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The signature store's HTTP/1.1 server on its unix socket: one epoll loop,
 * non-blocking sockets, requests parsed by the proxy's strict parser
 * (http1.h) and answered by sighandle.c, one at a time per connection
 * (pipelined requests wait their turn).
 *
 * Bounds: SIGSERVE_MAX_CONNECTIONS open at once (one more is accepted and
 * closed at once: the proxy answers 502); a request head and body must
 * arrive, and an answer leave, within SIGSERVE_TIMEOUT_SEC of the previous
 * answer or the accept; a body larger than SIGSTORE_MAX_BODY gets 413
 * before it is read. After an answer that closes the connection the rest
 * of the input is read and dropped (at most 2 s and 1 MiB), so that the
 * close does not reset the connection under the answer. Only the proxy's workers can connect (the socket's
 * mode and group), but what they forward is a client's, so every bound
 * holds against it.
 */

#define SIGSERVE_MAX_CONNECTIONS 64
#define SIGSERVE_TIMEOUT_SEC 30

#include "sighandle.h"

/* Serves listen_fd (a listening AF_UNIX stream socket) with the store b, through the epoll instance epoll_fd (created before the
 * sandbox, empty). Returns only on a fatal error of the loop itself
 * (negative errno); per-connection errors close that connection. */
int sigserve_run(int epoll_fd, int listen_fd, const SigBackend *b);
