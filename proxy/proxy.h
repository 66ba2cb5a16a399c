/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The TLS proxy in front of the registry: a privileged parent and worker
 * processes (see docs/ARCHITECTURE.md, "The proxy").
 *
 *   parent (proxy.c, root): reads the configuration, loads certificates,
 *     keys, client CA and CRL into one SSL_CTX per port, binds the two
 *     listening sockets (or takes them from systemd socket activation),
 *     creates the shared per-IP limits table, forks `workers` workers and
 *     supervises them: a worker that dies is logged (exit status or signal,
 *     e.g. SIGSYS from seccomp) and restarted; SIGHUP reads the
 *     configuration file and the certificate files again and replaces the
 *     workers with ones that have all of it (the old ones drain), or
 *     refuses and keeps everything (reload.h); SIGTERM
 *     stops accepting, lets the workers drain (bounded) and exits.
 *   worker (worker.c, proxy_user after proxy_sandbox_lockdown()): one
 *     epoll event loop, non-blocking, no thread per connection; accepts on
 *     the shared sockets, terminates TLS, enforces the port's policy and
 *     forwards to the registry with bounded buffers and backpressure.
 *
 * A worker never reads the configuration file: it inherits what the parent
 * prepared (this ProxyContext) across fork().
 */

#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"
#include "metrics.h"
#include "ratelimit.h"

typedef enum ProxyPort {
        PROXY_PULL,
        PROXY_PUSH,
        _PROXY_PORT_MAX,
} ProxyPort;

/* How long a stopping worker may finish its requests in flight. */
#define PROXY_DRAIN_SECONDS 30

typedef struct ProxyContext {
        const Config *config;
        SSL_CTX *ctx[_PROXY_PORT_MAX];
        int listen_fd[_PROXY_PORT_MAX];
        unsigned port_number[_PROXY_PORT_MAX]; /* 443, 4443: for Host and logs */
        const PortConfig *port_config[_PROXY_PORT_MAX];
        struct sockaddr_storage upstream;
        socklen_t upstream_len;
        LimitsTable *limits; /* NULL when every limit is off */
        ProxyMetrics *metrics; /* shared counters, see metrics.h; never NULL in a worker */
        uid_t uid;
        gid_t gid;
        /* Read end: EOF tells a worker that the parent died. */
        int parent_pipe[2];
} ProxyContext;

/* "pull" or "push". */
const char *proxy_port_name(ProxyPort p);

/* The supervisor's pipe for reload outcomes ("ok ..."/"failed ..." lines),
 * as a file descriptor number in the proxy's environment. */
#define PROXY_REPORT_FD_ENV "REGVISOR_PROXY_REPORT_FD"

/* Runs the proxy in the foreground until SIGTERM or SIGINT (the parent);
 * config was loaded from config_path, which a SIGHUP reads again (NULL:
 * SIGHUP reloads only certificates and the CRL); root (may be NULL)
 * prefixes the certificate tree, as for provision. config stays the
 * caller's; it must outlive the call. Returns 0 after a clean stop, a
 * negative errno (logged) on failure to start. */
int proxy_run(const Config *config, const char *config_path, const char *root);

/* The worker's life: lockdown, event loop, drain on SIGTERM. column is the
 * worker's column in the limits table. Returns the process exit status;
 * never returns to serve anything else. */
int proxy_worker_run(const ProxyContext *p, unsigned index, unsigned column);

/* Whether addr (AF_INET/AF_INET6; an IPv4-mapped IPv6 address is compared
 * as IPv4) is in one of the CIDRs; n == 0 means everyone is allowed. */
bool proxy_cidr_allowed(const Cidr *cidrs, unsigned n, const struct sockaddr *addr);
