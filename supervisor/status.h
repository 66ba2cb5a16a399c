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
 * the proxy's strict HTTP/1.1 parser; a client gets STATUS_IO_TIMEOUT to
 * send its request and read the answer.
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

/* Binds a and starts serving on e. -EADDRINUSE etc. when it cannot bind. */
int status_server_new(sd_event *e, const ListenAddress *a, StatusRender render, void *userdata,
                      StatusServer **ret);
void status_server_free(StatusServer *s);
