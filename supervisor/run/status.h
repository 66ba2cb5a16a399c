/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The status listener of `regvisor run` ([status] listen, loopback unless
 * allow_remote): plain HTTP for monitoring systems, served from the
 * supervisor's own event loop, so /livez answering means the loop is alive.
 *
 *   GET /livez    200 "ok"
 *   GET /readyz   200, or 503 with the failing checks, one per line
 *   GET /metrics  Prometheus text format 0.0.4
 *
 * Each connection gets one response and is closed; requests are parsed by
 * the proxy's strict HTTP/1.1 parser; a client gets 2 s to send its whole
 * request and 5 s more to read the answer. Slots are bounded per peer (8:
 * a loopback peer is the uid owning the other end, found with
 * NETLINK_SOCK_DIAG; a remote one its address) and in all (64); a new
 * connection over either bound takes the place of the oldest connection
 * still waiting for its request (its own peer's first), so idle
 * connections held by one user cannot keep another from /readyz
 * (status.c, make_room()).
 */

#include <stdio.h>
#include <systemd/sd-event.h>

#include "config.h"

typedef enum {
        STATUS_LIVEZ,
        STATUS_READYZ,
        STATUS_METRICS,
} StatusEndpoint;

/* Writes the body of an endpoint to out and returns the HTTP status code
 * (200, 503). Runs on the event loop: must not block. */
typedef int (*StatusRender)(StatusEndpoint which, FILE *out, void *userdata);

typedef struct StatusServer StatusServer;

/* Binds a and starts serving on e. -EADDRINUSE etc. when it cannot bind.
 * allow ([status] allow_cidrs) is read at each accept and must outlive the
 * server (the supervisor's Config, replaced in place by a reload): when
 * not empty, a peer neither on loopback nor in it is closed at once. */
int status_server_new(sd_event *e, const ListenAddress *a, const CidrList *allow, StatusRender render,
                      void *userdata, StatusServer **ret);
void status_server_free(StatusServer *s);
