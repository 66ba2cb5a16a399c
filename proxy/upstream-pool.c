/* SPDX-License-Identifier: MIT */
/*
 * A worker's idle registry connections, kept when the client connection
 * that used them ends, for the next client's request. Registry clients
 * open a TCP connection and a TLS session per request (DisableKeepAlives):
 * without the pool every request also cost a connect(), the loopback TCP
 * handshake and its teardown, here and in the registry, about a third of
 * the proxy's CPU per request (docs/performance.md).
 *
 * Only connections the last exchange left exactly at a response's end
 * (exchange_finish()) come here, only to the registry (never the
 * signature store), out of the epoll set; a connection is taken only while
 * it is younger than UPSTREAM_POOL_IDLE_MS and the registry has sent
 * nothing on it (anything would be a close or a desync), newest first.
 */

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker.h"

/* Whether an idle connection can be used: nothing to read, not closed. */
static bool idle_and_open(int fd) {
        char b;
        ssize_t k = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);

        return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

bool upstream_pool_put(Worker *w, int fd, uint64_t idle_since) {
        if (fd < 0 || w->draining || w->n_pool >= UPSTREAM_POOL_MAX)
                return false;
        /* Out of the epoll set: its watch belongs to the connection that
         * is going away. */
        if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, fd, NULL) < 0)
                return false;
        w->pool[w->n_pool++] = (PooledUpstream){.fd = fd, .idle_since = idle_since};
        return true;
}

int upstream_pool_take(Worker *w, uint64_t now) {
        while (w->n_pool > 0) {
                PooledUpstream u = w->pool[--w->n_pool];

                if (now - u.idle_since < UPSTREAM_POOL_IDLE_MS && idle_and_open(u.fd))
                        return u.fd;
                (void)close(u.fd);
        }
        return -1;
}

/* Closes the connections too old to be taken (the oldest are first). */
void upstream_pool_sweep(Worker *w, uint64_t now) {
        unsigned keep = 0;

        for (unsigned i = 0; i < w->n_pool; i++) {
                if (now - w->pool[i].idle_since < UPSTREAM_POOL_IDLE_MS && !w->draining)
                        w->pool[keep++] = w->pool[i];
                else
                        (void)close(w->pool[i].fd);
        }
        w->n_pool = keep;
}
