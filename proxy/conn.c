/* SPDX-License-Identifier: MIT */
/*
 * A proxy worker's connection: its state machine, its lifetime and its
 * timeouts.
 *
 * The states are a table (conn_handlers[]): one function per state, each
 * doing one round of the work that state allows and saying whether to run
 * again. Sockets are registered edge-triggered for reading and writing
 * once; after any event conn_run() runs the current state's handler until
 * none makes progress, so no wake-up is lost when a buffer frees up
 * without an event. Reads are only tried while the endpoint is readable:
 * an EPOLLIN edge came since the last read that found the socket empty
 * (IoEndpoint). A busy connection yields after CONN_RUN_BUDGET rounds and
 * is resumed after the next epoll_wait(), so one bulk transfer cannot
 * starve the others.
 *
 *   PROXY_HEADER  a trusted balancer's PROXY v2 header (balancer.c)
 *   HANDSHAKE  TLS handshake; the push port's certificate verdict
 *   HEAD       reading a request head (exchange_parse_head()); an idle
 *              kept-alive connection, drained or closed when stopping
 *   FORWARD    the exchange: request body up, response down (pump.c)
 *   CLOSING    flushing our last response
 *   LINGER     reading and dropping what the client still sends, bounded
 *   DEAD       closed; freed after the current batch of events
 *
 * Timeouts are deadlines per connection (handshake and request head:
 * header_timeout from the first byte; between requests: idle_timeout;
 * waiting for the registry: read_timeout), checked by the worker's sweep
 * every second (conn_check_timeouts()). A client sending one byte at a
 * time cannot extend its deadline.
 */

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "list.h"
#include "ratelimit.h"
#include "worker.h"

/* What a state's handler tells conn_run(). */
typedef enum ConnStep {
        CONN_STEP_AGAIN, /* something moved or the state changed: another round */
        CONN_STEP_STOP,  /* nothing to do until the next event, or the connection died */
} ConnStep;

void conn_upstream_close(Conn *c) {
        /* close() takes the socket out of the epoll set: no other
         * descriptor refers to it (accepted or connected in this worker,
         * never dup'ed or inherited). One system call less per request. */
        if (c->upstream.fd >= 0)
                (void)close(c->upstream.fd);
        c->upstream.fd = -1;
        c->upstream_eof = false;
        c->upstream_poolable = false;
        buf_free(&c->uin);
        buf_free(&c->uout);
}

void conn_delay_cancel(Conn *c) {
        Worker *w = c->w;

        if (c->delay_until == 0)
                return;
        LIST_UNLINK(&w->delayed, &w->delayed_tail, c, delay_prev, delay_next);
        c->delay_until = 0;
}

/* Holds c back until the time at (CLOCK_MONOTONIC ms). New delays are
 * mostly the latest: the list is searched from its tail. */
void conn_delay(Conn *c, uint64_t at) {
        Worker *w = c->w;
        Conn *after = w->delayed_tail;

        conn_delay_cancel(c);
        while (after && after->delay_until > at)
                after = after->delay_prev;
        c->delay_until = at;
        c->delay_prev = after;
        c->delay_next = after ? after->delay_next : w->delayed;
        if (c->delay_next)
                c->delay_next->delay_prev = c;
        else
                w->delayed_tail = c;
        if (after)
                after->delay_next = c;
        else
                w->delayed = c;
        /* The wait must not count against the request's header timeout. */
        c->deadline = at + (uint64_t)w->c->tuning.header_timeout * 1000;
}

/* The client connection ends: a registry connection left idle at a
 * response's end goes to the worker's pool (upstream-pool.c), anything
 * else is closed. */
static void conn_upstream_release(Conn *c) {
        if (c->upstream_poolable && !c->to_sigstore && !c->upstream_eof && buf_len(&c->uin) == 0 &&
            buf_len(&c->uout) == 0 && upstream_pool_put(c->w, c->upstream.fd, c->upstream_idle_since))
                c->upstream.fd = -1;
        conn_upstream_close(c);
}

/* Closes everything at once; the memory goes when the current batch of
 * events is done (later events of the batch may still name it). */
void conn_kill(Conn *c) {
        Worker *w = c->w;

        if (c->state == CONN_DEAD)
                return;
        conn_delay_cancel(c);
        conn_upstream_release(c);
        hold_reset(c);
        if (c->client.fd >= 0) {
                (void)close(c->client.fd); /* leaves the epoll set: conn_upstream_close() */
                c->client.fd = -1;
        }
        SSL_free(c->client.ssl);
        c->client.ssl = NULL;
        free(c->proxy_header);
        c->proxy_header = NULL;
        if (w->p->limits)
                limits_conn_release(w->p->limits, w->column, c->limit_slot);
        c->limit_slot = -1;
        buf_free(&c->cin);
        buf_free(&c->cout);
        c->state = CONN_DEAD;

        /* From the live list to the dead list. */
        LIST_UNLINK(&w->conns, NULL, c, prev, next);
        c->next = w->dead;
        w->dead = c;
        w->n_conns--;
        proxy_metrics_set_open(w->p->metrics, w->index, w->n_conns);
}

/* The reason a push client's certificate was refused, for the metrics. */
static MetricsTlsFailure tls_failure_of(const Conn *c) {
        if (c->verdict == TLS_CLIENT_NONE)
                return METRICS_TLS_NO_CERTIFICATE;
        switch (SSL_get_verify_result(c->client.ssl)) {
        case X509_V_ERR_CERT_REVOKED:
                return METRICS_TLS_REVOKED;
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CERT_NOT_YET_VALID:
                return METRICS_TLS_EXPIRED;
        default:
                return METRICS_TLS_BAD_CERTIFICATE;
        }
}

/* Sends what is left and lingers: reading (and dropping) what the client
 * still sends for a moment, so that closing a socket with unread data does
 * not turn into a reset that destroys the response before the client read
 * it (the "lingering close" of every HTTP server). */
static void conn_linger_start(Conn *c) {
        conn_upstream_release(c);
        c->client.ops->shutdown(&c->client);
        c->state = CONN_LINGER;
        c->deadline = now_ms() + LINGER_MS;
}

static void conn_linger(Conn *c) {
        char sink[4096];
        ssize_t n;

        /* Raw bytes: after close_notify TLS has nothing more to say. */
        for (;;) {
                n = recv(c->client.fd, sink, sizeof(sink), 0);
                if (n > 0)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                conn_kill(c); /* EOF or error */
                return;
        }
}

/* A connection waiting for its next request holds no memory of its own:
 * cin and cout go back to malloc, and OpenSSL's record buffers too (its
 * read buffer is allocated again by the read that says WANT_READ, which
 * SSL_MODE_RELEASE_BUFFERS does not undo). Only once the last read found
 * the socket empty (not readable) and nothing is buffered on either side:
 * SSL_free_buffers() refuses (returns 0) while a record is partly read or
 * written, and SSL_has_pending() covers decrypted data not yet taken. The
 * next request's first read allocates them again. */
static void conn_idle_release(Conn *c) {
        if (c->state != CONN_HEAD || c->client.readable || buf_len(&c->cin) > 0 || buf_len(&c->cout) > 0)
                return;
        buf_release(&c->cin);
        buf_release(&c->cout);
        if (!SSL_has_pending(c->client.ssl))
                (void)SSL_free_buffers(c->client.ssl);
}

static void conn_set_pending(Conn *c) {
        if (c->pending)
                return;
        c->pending = true;
        c->pending_next = c->w->pending;
        c->w->pending = c;
}

void conn_closing(Conn *c) {
        c->close_after_flush = true;
        c->state = CONN_CLOSING;
        c->deadline = now_ms() + CLOSING_MS;
}

void conn_await_request(Conn *c) {
        c->state = CONN_HEAD;
        c->head_timer = false;
        c->deadline = now_ms() + (uint64_t)c->w->c->tuning.idle_timeout * 1000;
}

/* Kills c, logging its exchange (if any) with 499 unless it has a status:
 * the client went away in the middle of it. */
static ConnStep conn_kill_client_gone(Conn *c) {
        c->status = c->status ? c->status : 499;
        exchange_log(c);
        conn_kill(c);
        return CONN_STEP_STOP;
}

/* The client: read while cin has room (and no request of it is held
 * back). 1 progress, 0 nothing, <0 the connection was killed. */
static int conn_read_client(Conn *c) {
        int r;

        if (c->client_eof || c->delay_until != 0)
                return 0;
        r = pump_fill(&c->client, &c->cin);
        if (r < 0) {
                if (c->in_exchange && c->state == CONN_FORWARD)
                        (void)conn_kill_client_gone(c);
                else
                        conn_kill(c);
                return r;
        }
        if (r == 2)
                c->client_eof = true;
        return r > 0;
}

/* ---- FORWARD: one round of an exchange, in four parts ------------------- */

/* What a part of a FORWARD round tells the round. */
typedef enum ForwardPart {
        PART_IDLE,  /* nothing moved */
        PART_MOVED, /* bytes moved */
        PART_AGAIN, /* the state changed (answered, failed): a new round */
        PART_STOP,  /* the connection was killed */
} ForwardPart;

/* The request body, cin to uout. */
static ForwardPart forward_request_body(Conn *c) {
        int r = pump_request_body(c);

        if (r < 0) {
                conn_kill(c);
                return PART_STOP;
        }
        if (c->state != CONN_FORWARD)
                return PART_AGAIN;
        if (!c->req_done && c->client_eof && buf_len(&c->cin) == 0) {
                (void)conn_kill_client_gone(c);
                return PART_STOP;
        }
        return r > 0 ? PART_MOVED : PART_IDLE;
}

/* uout to the upstream, connecting first when needed. A chunked body is
 * held back until it is complete or has nearly filled uout: a malformed
 * small body (bad first chunk size, missing CRLF ...) is then answered
 * with 400 and the registry never even sees the head. A body for the
 * signature store (a ~1 KiB signature object) is held back the same way,
 * so that the store, which serves few connections, never waits on a slow
 * client. */
static ForwardPart forward_to_upstream(Conn *c) {
        bool hold = (c->req_body == HTTP1_BODY_CHUNKED || c->to_sigstore) && !c->req_done &&
                    buf_room(&c->uout) > CONN_CHUNKED_HOLD_ROOM;
        int r;

        if (!hold && c->upstream.fd < 0 && buf_len(&c->uout) > 0 && !c->upstream_used) {
                /* A held request connects again when its retry is due. */
                if (c->delay_until != 0)
                        return PART_IDLE;
                r = exchange_upstream_connect(c);
                if (r < 0) {
                        if (hold_upstream_failed(c, r))
                                return PART_IDLE;
                        exchange_count_upstream_error(c, METRICS_UPSTREAM_CONNECT);
                        log_warning_errno(r, "proxy: cannot connect to %s: %m", exchange_upstream_name(c));
                        exchange_respond_error(c, 503, "UNAVAILABLE",
                                               c->to_sigstore ? "the signature store is unavailable"
                                                              : "the registry is unavailable",
                                               strerror(-r), PROXY_UPSTREAM_RETRY_AFTER, false);
                        return PART_AGAIN;
                }
        }
        r = hold || c->upstream.fd < 0 ? 0 : pump_flush(&c->upstream, &c->uout);
        if (r < 0) {
                exchange_upstream_failed(c, r);
                return PART_AGAIN;
        }
        if (r > 0)
                c->upstream_used = true;
        return r > 0 ? PART_MOVED : PART_IDLE;
}

/* The upstream into uin, the response head into cout, a chunked body
 * into cout; the upstream's EOF. */
static ForwardPart forward_from_upstream(Conn *c) {
        bool moved = false;
        int r;

        if (c->resp_stage != RESP_DONE && !c->upstream_eof && c->upstream.fd >= 0) {
                r = pump_fill(&c->upstream, &c->uin);
                if (r < 0) {
                        exchange_upstream_failed(c, r);
                        return PART_AGAIN;
                }
                if (r == 2)
                        c->upstream_eof = true;
                moved |= r > 0;
        }
        r = exchange_response_head(c);
        if (r < 0) {
                conn_kill(c);
                return PART_STOP;
        }
        if (r > 0 && c->resp_stage != RESP_HEAD && !c->to_sigstore)
                hold_upstream_answered(c);
        moved |= r > 0;
        if (c->state != CONN_FORWARD)
                return PART_AGAIN;
        r = pump_response_body(c);
        if (r < 0) {
                if (r == -EPROTO)
                        exchange_count_upstream_error(c, METRICS_UPSTREAM_PROTOCOL);
                conn_kill(c);
                return PART_STOP;
        }
        moved |= r > 0;
        if (c->upstream_eof && buf_len(&c->uin) == 0 && c->resp_stage != RESP_DONE) {
                if (c->resp_stage == RESP_BODY && c->resp_body == HTTP1_BODY_UNTIL_CLOSE)
                        c->resp_stage = RESP_DONE;
                else {
                        exchange_upstream_failed(c, -ECONNRESET);
                        return PART_AGAIN;
                }
        }
        return moved ? PART_MOVED : PART_IDLE;
}

/* cout, then a pass-through body from uin, to the client. */
static ForwardPart forward_to_client(Conn *c) {
        bool moved = false;
        int r;

        r = pump_response_coalesce(c);
        if (r >= 0)
                r = pump_flush(&c->client, &c->cout);
        if (r >= 0) {
                moved = r > 0;
                r = pump_response_direct(c);
        }
        if (r < 0) {
                (void)conn_kill_client_gone(c);
                return PART_STOP;
        }
        return moved || r > 0 ? PART_MOVED : PART_IDLE;
}

/* One round of FORWARD; progress: the client read of this round moved. */
static ConnStep conn_forward(Conn *c, bool progress) {
        static ForwardPart (*const parts[])(Conn *) = {
                forward_request_body,
                forward_to_upstream,
                forward_from_upstream,
                forward_to_client,
        };

        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                ForwardPart p = parts[i](c);
                if (p == PART_STOP)
                        return CONN_STEP_STOP;
                if (p == PART_AGAIN)
                        return CONN_STEP_AGAIN;
                progress |= p == PART_MOVED;
        }
        if (c->resp_stage == RESP_DONE && (c->req_done || c->resp_close)) {
                exchange_finish(c);
                progress = true;
        } else if (progress)
                c->deadline = now_ms() + (uint64_t)(c->req_done && buf_len(&c->uout) == 0 ? c->w->c->tuning.read_timeout
                                                                                          : c->w->c->tuning.idle_timeout) *
                                                 1000;
        return progress ? CONN_STEP_AGAIN : CONN_STEP_STOP;
}

/* ---- the states ---------------------------------------------------------- */

static ConnStep conn_on_proxy_header(Conn *c) {
        return balancer_read_header(c) > 0 ? CONN_STEP_AGAIN : CONN_STEP_STOP;
}

/* The client's last handshake flight is ACKed now, not by a delayed ACK.
 * In TLS 1.3 (no tickets, tls.c) and a resumed TLS 1.2 handshake the
 * server writes nothing after reading it, so nothing carries the ACK; a
 * client without TCP_NODELAY (python's ssl, openssl s_client) holds its
 * request back by Nagle until the ACK of its Finished comes, up to 40 ms
 * later. Not when the request came with the Finished (read-ahead has it:
 * TCP_NODELAY clients, most often): our answer will carry the ACK. */
static void conn_ack_handshake(Conn *c) {
        SSL *ssl = c->client.ssl;

        if ((SSL_version(ssl) == TLS1_3_VERSION || SSL_session_reused(ssl)) && !SSL_has_pending(ssl))
                (void)setsockopt(c->client.fd, IPPROTO_TCP, TCP_QUICKACK, &(int){1}, sizeof(int));
}

static ConnStep conn_on_handshake(Conn *c) {
        int r = balancer_refuse_header(c);

        if (r < 0)
                return CONN_STEP_STOP;
        r = c->client.ops->handshake(&c->client);

        if (r == -EAGAIN)
                return CONN_STEP_STOP;
        if (r < 0) {
                log_debug_errno(r, "proxy: TLS handshake with %s failed: %m", c->peer);
                /* A bare EOF or reset (port probes, clients giving up) is
                 * not a TLS failure. */
                if (r == -EPROTO)
                        proxy_metrics_inc(&conn_metrics(c)->tls_failures[METRICS_TLS_PROTOCOL]);
                conn_kill(c);
                return CONN_STEP_STOP;
        }
        if (c->port == PROXY_PUSH) {
                c->verdict = tls_client_verdict(c->client.ssl, &c->verdict_reason, c->subject, sizeof(c->subject));
                /* No usable CN: "", which no scope names. */
                (void)tls_client_cn(c->client.ssl, c->cn, sizeof(c->cn));
                if (c->verdict != TLS_CLIENT_OK)
                        proxy_metrics_inc(&conn_metrics(c)->tls_failures[tls_failure_of(c)]);
        }
        conn_ack_handshake(c);
        c->state = CONN_HEAD;
        return CONN_STEP_AGAIN;
}

/* An idle registry connection that says anything is closing or broken. */
static void conn_check_idle_upstream(Conn *c) {
        char b;

        if (c->upstream.fd < 0 || !c->upstream_event)
                return;
        c->upstream_event = false;
        ssize_t k = recv(c->upstream.fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
        if (k >= 0 || (errno != EAGAIN && errno != EINTR))
                conn_upstream_close(c);
}

/* Before the next request: a client that has gone, or a worker that is
 * draining, ends the connection. CONN_STEP_AGAIN or _STOP when it did,
 * -1 to go on. */
static int conn_head_ends(Conn *c) {
        Worker *w = c->w;

        if (c->client_eof && buf_len(&c->cin) == 0) {
                /* A half-close after the request: the end of our answer
                 * still goes out. */
                if (buf_len(&c->cout) > 0) {
                        conn_closing(c);
                        return CONN_STEP_AGAIN;
                }
                conn_kill(c);
                return CONN_STEP_STOP;
        }
        /* Draining: no new request on the push port, even one already
         * pipelined (worker_drain_start()). */
        if (w->draining && c->port == PROXY_PUSH && buf_len(&c->cout) > 0) {
                conn_closing(c);
                return CONN_STEP_AGAIN;
        }
        /* An idle pull connection waits out its grace (worker_drain_start()),
         * also one whose keep-alive response began before the drain. */
        if (w->draining && c->port == PROXY_PULL && buf_len(&c->cin) == 0 && buf_len(&c->cout) == 0) {
                uint64_t grace = now_ms() + PROXY_DRAIN_IDLE_GRACE_MS;
                if (c->deadline > grace)
                        c->deadline = grace;
        }
        if (w->draining && buf_len(&c->cout) == 0 && c->port == PROXY_PUSH) {
                conn_kill(c);
                return CONN_STEP_STOP;
        }
        return -1;
}

static ConnStep conn_on_head(Conn *c) {
        int r = conn_read_client(c);
        bool progress;

        if (r < 0)
                return CONN_STEP_STOP;
        progress = r > 0;
        conn_check_idle_upstream(c);
        r = conn_head_ends(c);
        if (r >= 0)
                return (ConnStep)r;
        r = exchange_parse_head(c);
        if (r < 0) {
                conn_kill(c);
                return CONN_STEP_STOP;
        }
        progress |= r > 0;
        /* Our own response of a kept connection. */
        r = pump_flush(&c->client, &c->cout);
        if (r < 0) {
                conn_kill(c);
                return CONN_STEP_STOP;
        }
        progress |= r > 0;
        if (c->state == CONN_FORWARD)
                return conn_forward(c, progress);
        if (!progress) {
                conn_idle_release(c);
                return CONN_STEP_STOP;
        }
        return CONN_STEP_AGAIN;
}

static ConnStep conn_on_forward(Conn *c) {
        int r = conn_read_client(c);

        if (r < 0)
                return CONN_STEP_STOP;
        return conn_forward(c, r > 0);
}

static ConnStep conn_on_closing(Conn *c) {
        int r = pump_flush(&c->client, &c->cout);

        if (r < 0) {
                conn_kill(c);
                return CONN_STEP_STOP;
        }
        if (buf_len(&c->cout) == 0) {
                conn_linger_start(c);
                return CONN_STEP_AGAIN;
        }
        return r == 0 ? CONN_STEP_STOP : CONN_STEP_AGAIN;
}

static ConnStep conn_on_linger(Conn *c) {
        conn_linger(c);
        return CONN_STEP_STOP;
}

static ConnStep conn_on_dead(Conn *c) {
        return CONN_STEP_STOP;
}

static ConnStep (*const conn_handlers[_CONN_STATE_MAX])(Conn *) = {
        [CONN_PROXY_HEADER] = conn_on_proxy_header,
        [CONN_HANDSHAKE] = conn_on_handshake,
        [CONN_HEAD] = conn_on_head,
        [CONN_FORWARD] = conn_on_forward,
        [CONN_CLOSING] = conn_on_closing,
        [CONN_LINGER] = conn_on_linger,
        [CONN_DEAD] = conn_on_dead,
};

void conn_run(Conn *c) {
        for (unsigned round = 0;; round++) {
                if (c->state == CONN_DEAD)
                        return;
                if (round >= CONN_RUN_BUDGET) {
                        conn_set_pending(c);
                        return;
                }
                if (conn_handlers[c->state](c) != CONN_STEP_AGAIN)
                        return;
        }
}

/* Ends an exchange that ran out of time: with our error response when
 * answer (none of the registry's was started), else by closing, logged
 * with 408 unless a status was set. */
static void conn_expire(Conn *c, bool answer, int status, const char *code, const char *message,
                        const char *detail) {
        if (answer) {
                exchange_respond_error(c, status, code, message, detail, 0, false);
                conn_run(c);
        } else {
                c->status = c->status ? c->status : 408;
                exchange_log(c);
                conn_kill(c);
        }
}

/* Closes a client that reads too slowly with a reset: a plain close would
 * leave the kernel sending what its socket buffer holds (megabytes) at
 * the client's pace, long after we let go. */
static void conn_reset(Conn *c) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};

        if (c->client.fd >= 0)
                (void)setsockopt(c->client.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        c->status = c->status ? c->status : 408;
        exchange_log(c);
        conn_kill(c);
}

/* Which transfer of c waits on the client right now, if any: a request
 * body it has room for, or response bytes it has not taken yet. Waiting
 * on the registry (a full uout, an empty uin) is never the client's. */
static int conn_waits_on_client(const Conn *c) {
        if (c->state != CONN_FORWARD)
                return -1;
        if (buf_len(&c->cout) > 0 ||
            (c->resp_stage == RESP_BODY && c->resp_body != HTTP1_BODY_CHUNKED && buf_len(&c->uin) > 0))
                return METRICS_SLOW_RESPONSE;
        if (!c->req_done && !c->client_eof && buf_room(&c->cin) > 0 && c->delay_until == 0)
                return METRICS_SLOW_BODY;
        return -1;
}

/* [proxy] min_rate: a client the proxy has waited on for a whole
 * min_rate_window, and that moved fewer than min_rate x window bytes in it,
 * is closed. A trickle of bytes extends idle_timeout forever; this it does
 * not. Returns true when c was closed. */
static bool conn_check_rate(Conn *c, uint64_t now) {
        const ProxyConfig *cf = c->w->c;
        uint64_t window = (uint64_t)cf->tuning.min_rate_window * 1000, moved;
        int transfer = conn_waits_on_client(c);

        if (cf->tuning.min_rate == 0 || transfer < 0) {
                c->rate_start = 0;
                return false;
        }
        if (c->rate_start == 0) {
                c->rate_start = now;
                c->rate_base = c->client.moved;
                return false;
        }
        if (now - c->rate_start < window)
                return false;
        moved = c->client.moved - c->rate_base;
        if (moved >= cf->tuning.min_rate * cf->tuning.min_rate_window) {
                c->rate_start = now;
                c->rate_base = c->client.moved;
                return false;
        }
        proxy_metrics_inc(&conn_metrics(c)->slow_clients[transfer]);
        log_event(LOG_NOTICE, "slow-client",
                  "proxy: %s %s too slow %s: %" PRIu64 " bytes in %u s, below min_rate=%" PRIu64 " bytes/s; closing",
                  proxy_port_name(c->port), c->peer,
                  transfer == METRICS_SLOW_BODY ? "sending the request body" : "reading the response", moved,
                  cf->tuning.min_rate_window, cf->tuning.min_rate);
        if (transfer == METRICS_SLOW_RESPONSE)
                conn_reset(c);
        else
                /* Nothing of a response yet: say why (the registry gets a
                 * closed connection and no end of the body). */
                conn_expire(c, c->resp_stage == RESP_HEAD && c->status == 0, 408, "BAD_REQUEST",
                            "request body too slow", "fewer than [proxy] min_rate bytes per second");
        return true;
}

void conn_check_timeouts(Conn *c, uint64_t now) {
        if (conn_check_rate(c, now) || now < c->deadline)
                return;
        switch (c->state) {
        case CONN_FORWARD:
                if (c->resp_stage == RESP_HEAD && c->req_done && c->status == 0)
                        exchange_count_upstream_error(c, METRICS_UPSTREAM_TIMEOUT);
                conn_expire(c, c->resp_stage == RESP_HEAD && c->req_done && c->status == 0, 504, "UNAVAILABLE",
                            "the registry did not answer in time", "read_timeout");
                break;
        case CONN_PROXY_HEADER:
        case CONN_HANDSHAKE:
        case CONN_HEAD:
                /* Slow or idle client: closed without a word (nginx's
                 * client_header_timeout does the same). */
                log_debug("proxy: %s %s timed out waiting for a request", proxy_port_name(c->port), c->peer);
                conn_kill(c);
                break;
        default:
                conn_kill(c);
                break;
        }
}
