/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the proxy's parent prepares, as root, for its workers, and what
 * every worker inherits across fork(): the one thing parent (proxy.c) and
 * workers (worker-loop.c, conn.c, pump.c) share. Read-only in a worker.
 */

#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "metrics.h"
#include "proxy-config.h"
#include "ratelimit.h"

typedef struct ProxyContext {
        const ProxyConfig *config;
        SSL_CTX *ctx[_PROXY_PORT_MAX];
        int listen_fd[_PROXY_PORT_MAX];
        struct sockaddr_storage upstream;
        socklen_t upstream_len;
        struct sockaddr_storage sigstore; /* the signature store's socket ... */
        socklen_t sigstore_len;           /* ... 0: not served */
        LimitsTable *limits; /* NULL when every limit is off */
        ProxyMetrics *metrics; /* shared counters, see metrics.h; never NULL in a worker */
        uid_t uid;
        gid_t gid;
        /* Read end: EOF tells a worker that the parent died. */
        int parent_pipe[2];
} ProxyContext;

/* The signals the parent and its workers take through a signalfd, blocked
 * before the first fork so that a worker starts with them blocked too:
 * SIGTERM, SIGINT (stop, drain), SIGHUP (reload; a worker drains), SIGCHLD
 * (the parent reaps; a worker has no children). */
static inline void proxy_signal_set(sigset_t *ret) {
        (void)sigemptyset(ret);
        (void)sigaddset(ret, SIGTERM);
        (void)sigaddset(ret, SIGINT);
        (void)sigaddset(ret, SIGHUP);
        (void)sigaddset(ret, SIGCHLD);
}

/* The worker's life: lockdown, event loop, drain on SIGTERM. column is the
 * worker's column in the limits table. Returns the process exit status;
 * never returns to serve anything else. (worker-loop.c) */
int proxy_worker_run(const ProxyContext *p, unsigned index, unsigned column);
