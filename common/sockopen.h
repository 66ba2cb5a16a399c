/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The stream sockets every client and listener of ours opens the same way:
 * non-blocking and close-on-exec from the start (the supervisor's probes and
 * status listener, the proxy's upstream connections). Addresses come from
 * sockaddr.h. Nothing here logs.
 */

#include <sys/socket.h>

/* A stream socket of sa's family, connecting to sa: the connect may still be
 * in progress (EINPROGRESS; wait for writability and read SO_ERROR). Returns
 * the descriptor or a negative errno (nothing left open). */
int sockopen_connect(const struct sockaddr *sa, socklen_t len);

/* A stream socket of sa's family with SO_REUSEADDR, bound to sa and
 * listening with backlog. Returns the descriptor or a negative errno
 * (nothing left open). */
int sockopen_listen(const struct sockaddr *sa, socklen_t len, int backlog);
