/* SPDX-License-Identifier: MIT */
/*
 * Holding pulls while the registry restarts ([proxy] upstream_hold).
 *
 * An upgrade (`systemctl reload regvisor` with a new [registry] image) or a
 * crash stops the registry for a few seconds. A GET or HEAD that finds it
 * gone before a byte of the response came back is safe to send again: its
 * head was kept (hold_keep_head()), goes back into uout, and the connection
 * waits on the worker's delayed list (conn_delay(): it reads nothing from
 * the client meanwhile) and connects again, 50 ms doubling to 500 ms, until
 * the registry answers or the hold is over; then the client gets the 503
 * it would have had at once. Anything else (a push, a request with a body,
 * the signature store) is never held: the caller answers 503 with
 * Retry-After right away.
 *
 * Bounds, so that a dead registry cannot pin connections: a request is held
 * at most upstream_hold (per exchange), and a worker holds nothing beyond
 * upstream_hold after it first found the registry gone (outage_since, reset
 * by the first response head that comes back): past that, requests are
 * tried once and answered. Held connections are open connections: they
 * count against conn_per_ip and max_connections like every other.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "worker.h"

#define HOLD_FIRST_RETRY_MS 50
#define HOLD_MAX_RETRY_MS 500

void hold_reset(Conn *c) {
        free(c->hold_head);
        c->hold_head = NULL;
        c->hold_len = 0;
        c->hold_since = 0;
        c->hold_tries = 0;
}

static bool method_is(const Http1Request *req, const char *m) {
        return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

void hold_keep_head(Conn *c, const Http1Request *req, const char *head, size_t n) {
        hold_reset(c);
        if (c->w->c->tuning.upstream_hold == 0 || c->to_sigstore || req->body != HTTP1_BODY_NONE ||
            !(method_is(req, "GET") || method_is(req, "HEAD")))
                return;
        /* No copy, no hold: the request is then answered as before. */
        c->hold_head = malloc(n);
        if (!c->hold_head)
                return;
        memcpy(c->hold_head, head, n);
        c->hold_len = n;
}

bool hold_upstream_failed(Conn *c, int error) {
        Worker *w = c->w;
        uint64_t now = now_ms(), hold = (uint64_t)w->c->tuning.upstream_hold * 1000, end, at, step;

        if (!c->hold_head || c->resp_stage != RESP_HEAD || c->status != 0 || buf_len(&c->uin) > 0)
                return false;
        if (w->outage_since == 0) {
                w->outage_since = now;
                log_event(LOG_NOTICE, "upstream-hold",
                          "proxy: the registry is unavailable (%s): holding GET/HEAD up to %u s",
                          error ? strerror(-error) : "connection closed", w->c->tuning.upstream_hold);
        }
        if (c->hold_since == 0)
                c->hold_since = now;
        end = (c->hold_since < w->outage_since ? c->hold_since : w->outage_since) + hold;
        if (now >= end)
                return false;

        conn_upstream_close(c);
        if (buf_append(&c->uout, c->hold_head, c->hold_len) < 0)
                return false;
        c->upstream_used = false;
        step = HOLD_FIRST_RETRY_MS << (c->hold_tries < 4 ? c->hold_tries : 4);
        c->hold_tries++;
        at = now + (step < HOLD_MAX_RETRY_MS ? step : HOLD_MAX_RETRY_MS);
        conn_delay(c, at < end ? at : end);
        return true;
}

void hold_upstream_answered(Conn *c) {
        Worker *w = c->w;

        if (w->outage_since != 0) {
                log_event(LOG_NOTICE, "upstream-back", "proxy: the registry answers again after %llu ms",
                          (unsigned long long)(now_ms() - w->outage_since));
                w->outage_since = 0;
        }
}
