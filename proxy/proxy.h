/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The TLS proxy in front of the registry: a privileged parent and worker
 * processes (see docs/ARCHITECTURE.md, "The proxy"). This header is what
 * the command line sees of it.
 *
 *   parent (proxy.c, root): takes the ProxyConfig the command line built,
 *     loads certificates, keys, client CA and CRL into one SSL_CTX per
 *     port, binds the two listening sockets (or takes them from systemd
 *     socket activation), creates the shared per-IP limits table, forks
 *     `workers` workers and supervises them: a worker that dies is logged
 *     (exit status or signal, e.g. SIGSYS from seccomp) and restarted;
 *     SIGHUP asks the command line for the configuration again (the
 *     ProxyReload callback), loads the certificate files again and replaces
 *     the workers with ones that have all of it (the old ones drain), or
 *     refuses and keeps everything; SIGTERM stops accepting, lets the
 *     workers drain (bounded) and exits.
 *   worker (worker-loop.c, proxy_user after proxy_sandbox_lockdown()): one
 *     epoll event loop, non-blocking, no thread per connection; accepts on
 *     the shared sockets, terminates TLS, enforces the port's policy and
 *     forwards to the registry with bounded buffers and backpressure.
 *
 * A worker never reads the configuration file: it inherits what the parent
 * prepared (context.h) across fork().
 */

#include "proxy-config.h"

/* How long a stopping worker may finish its requests in flight, and when
 * the parent kills what is left and exits: the proxy's whole stop, which
 * the supervisor's stop budget (common/config/stop.h) must cover. */
#define PROXY_DRAIN_SECONDS 30
#define PROXY_STOP_SECONDS (PROXY_DRAIN_SECONDS + 5)

/* The supervisor's pipe for reload outcomes ("ok ..."/"failed ..." lines),
 * as a file descriptor number in the proxy's environment. */
#define PROXY_REPORT_FD_ENV "REGVISOR_PROXY_REPORT_FD"

/* Runs the proxy in the foreground until SIGTERM or SIGINT (the parent).
 * config stays the caller's and must outlive the call. On SIGHUP the proxy
 * calls reload(userdata, ...) for the configuration to run next (NULL:
 * SIGHUP reloads only the certificates and the CRL); what it returns the
 * proxy owns. Returns 0 after a clean stop, a negative errno (logged) on
 * failure to start. */
int proxy_run(const ProxyConfig *config, ProxyReload reload, void *userdata);
