/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The registry's readiness probe: GET /v2/ over its unix socket (or loopback
 * TCP), on the supervisor's event loop, never blocking it. The registry is
 * ready only when this answers 200, not when its unit says active.
 */

#include <netinet/in.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"

typedef struct Probe Probe;

/* Called once per probe: result 0 and the HTTP status when a response head
 * arrived (status 200 is "ready"), or a negative errno (-ETIMEDOUT,
 * -ECONNREFUSED, -ENOENT when the socket is missing, -EBADMSG for garbage).
 * The probe is freed right after the callback returns. */
typedef void (*ProbeDone)(int result, unsigned status, void *userdata);

/* Starts one probe. *ret_probe (optional) may be passed to probe_cancel()
 * until the callback has run. */
int probe_start(sd_event *e, const UpstreamAddress *a, uint64_t timeout_usec, ProbeDone done, void *userdata,
                Probe **ret_probe);

/* Like probe_start(), but done as soon as a TCP connection to host:port is
 * established (result 0, status 0): "does something listen there". */
int probe_connect_start(sd_event *e, const char *host, uint16_t port, uint64_t timeout_usec, ProbeDone done,
                        void *userdata, Probe **ret_probe);

/* Like probe_start(), but asks "OPTIONS *", which the registry's HTTP server
 * answers (200) without its handler and so without a log line: whether the
 * registry still serves, for a registry that was ready, every probe_interval,
 * without writing to the journal each time. */
int probe_alive_start(sd_event *e, const UpstreamAddress *a, uint64_t timeout_usec, ProbeDone done, void *userdata,
                      Probe **ret_probe);

/* Cancels a probe in flight: its callback is not called. */
void probe_cancel(Probe *p);

/* Where a checker on this host reaches a proxy port as a client the port
 * admits, so that the supervisor's port probe (/readyz) and `regvisor
 * health` check the same address: the listen address itself; for a
 * wildcard listen, loopback, or, when the port's allow_cidrs leave loopback
 * out, the first address of this host they admit (a connection from this
 * host to one of its own addresses comes from that very address). Writes
 * the address to ret_host. Returns 0 when the port admits it, 1 when no
 * address of this host is admitted (ret_host is then the listen address or
 * loopback, whose connections the proxy closes before TLS), -EINVAL when
 * the listen host is not an address. */
int probe_proxy_host(const PortConfig *port, char ret_host[static INET6_ADDRSTRLEN]);

/* The first address in if_inet6, the text of /proc/net/if_inet6 (a line per
 * address: 32 hex digits, then interface index, prefix length, scope, flags
 * and name), that port's allow_cidrs admit, link-local ones skipped: 0 with
 * it in ret_host, 1 when there is none. probe_proxy_host()'s IPv6 source
 * where getifaddrs() cannot use netlink. */
int probe_ipv6_admitted(const PortConfig *port, const char *if_inet6, char ret_host[static INET6_ADDRSTRLEN]);
