/* SPDX-License-Identifier: MIT */
/*
 * A proxy worker: one epoll loop, many connections.
 *
 * Why epoll directly and not sd-event: the loop needs three kinds of
 * sources (listening sockets, connection sockets, a signalfd) and a coarse
 * timer, nothing of sd-event's richer machinery; a plain loop keeps the
 * worker's system calls few and obvious, which is what the seccomp
 * allowlist of the sandbox has to list (epoll_wait, accept4, recvfrom,
 * sendto, read, write, connect, socket, close, clock_gettime, futex, ...),
 * and no library wakes up behind our back.
 *
 * A connection (Conn) couples the client's TLS endpoint and, while it
 * carries a request, one plain connection to the registry. Data moves
 * through four bounded buffers of CONN_BUF_SIZE bytes each:
 *
 *     client --TLS--> cin --(parse, re-frame)--> uout --> registry
 *     client <--TLS-- cout <--(parse, pass)--- uin  <-- registry
 *
 * Backpressure is the buffers themselves: the client is read only while cin
 * has room, cin is drained only while uout has room, and so on, so a slow
 * reader on one side stops the reading on the other; memory per connection
 * is bounded (4 x 64 KiB while busy, none while idle: buffers are freed
 * between requests, OpenSSL's too, see conn_idle_release()). A response body
 * that passes through unchanged skips cout: it is sent from uin directly
 * (pump_response_direct()).
 *
 * Sockets are registered edge-triggered for reading and writing once; after
 * any event conn_run() retries every transfer that has room and data until
 * none makes progress, so no wake-up is lost when a buffer frees up without
 * an event. Reads are only tried while the endpoint is readable: an EPOLLIN
 * edge came since the last read that found the socket empty (IoEndpoint).
 * A busy connection yields after CONN_RUN_BUDGET rounds and is resumed
 * after the next epoll_wait(), so one bulk transfer cannot starve the
 * others.
 *
 * Timeouts are deadlines per connection (handshake and request head:
 * header_timeout from the first byte; between requests: idle_timeout;
 * waiting for the registry: read_timeout), checked by a sweep every
 * second. A client sending one byte at a time cannot extend its deadline.
 *
 * A request the rate limit delays ([push] delay = yes, see ratelimit.h)
 * stays unprocessed in cin, and the client is not read, until its time:
 * the connection waits on the worker's list of delayed connections, sorted
 * by wake-up time, and epoll_wait()'s timeout is cut to the first of them
 * (millisecond precision, no timer fd). Its head is then parsed again
 * (parsing is stateless) and goes on without taking another token.
 */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "forward.h"
#include "headers.h"
#include "http1.h"
#include "io.h"
#include "ratelimit.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"
#include "context.h"
#include "sandbox.h"
#include "tls.h"

#define CONN_BUF_SIZE (64 * 1024) /* 64 KiB reads */
#define CONN_RUN_BUDGET 64        /* rounds of conn_run() before yielding */
#define ACCEPT_BATCH 32
#define CONN_CHUNKED_HOLD_ROOM 4096 /* see pump: hold a chunked body back */
#define LINGER_MS 2000            /* reading after our last response, see conn_linger() */
#define CLOSING_MS 10000          /* flushing our last response */
#define ACCEPT_PAUSE_MS 250       /* out of descriptors: accept again after this */
#define FD_LIMIT_LOG_MS 10000     /* at most one warning about it per this */
#define WORKER_FDS 16             /* descriptors a worker needs besides connections */
#define SUBJECT_MAX 256
#define LOG_PATH_MAX 256

/* Pointers handed to epoll (and back) are checked against these. */
#define WATCH_MAGIC 0x52565731u /* "RVW1" */
#define CONN_MAGIC 0x52564331u  /* "RVC1" */
#define CHECK_MAGIC(p, m)                                                                 \
        ({                                                                                \
                __typeof__(p) _q_ = (p);                                                  \
                if (!_q_ || _q_->magic != (m)) {                                          \
                        log_error("proxy worker: bad object at %p (magic), aborting", (void *)_q_); \
                        abort();                                                          \
                }                                                                         \
                _q_;                                                                      \
        })

typedef struct Conn Conn;
typedef struct Worker Worker;

typedef enum WatchKind {
        WATCH_LISTEN,
        WATCH_SIGNAL,
        WATCH_PARENT,
        WATCH_CLIENT,
        WATCH_UPSTREAM,
} WatchKind;

typedef struct Watch {
        uint32_t magic;
        WatchKind kind;
        ProxyPort port; /* WATCH_LISTEN */
        Conn *conn;     /* WATCH_CLIENT, WATCH_UPSTREAM */
} Watch;

typedef struct Buf {
        char *data; /* CONN_BUF_SIZE bytes, or NULL while unused */
        size_t start, end;
} Buf;

typedef enum ConnState {
        CONN_HANDSHAKE,
        CONN_HEAD,    /* reading a request head */
        CONN_FORWARD, /* an exchange with the registry in progress */
        CONN_CLOSING, /* flushing cout, then linger */
        CONN_LINGER,  /* sent everything; reading until EOF, bounded */
        CONN_DEAD,
} ConnState;

typedef enum RespStage {
        RESP_HEAD,
        RESP_BODY,
        RESP_DONE,
} RespStage;

struct Conn {
        uint32_t magic;
        Worker *w;
        Conn *prev, *next;  /* w->conns */
        Conn *pending_next; /* w->pending */
        bool pending;
        Conn *delay_prev, *delay_next; /* w->delayed, while delay_until > 0 */
        uint64_t delay_until;          /* > 0: held back by the rate limit until then */
        bool rate_taken;               /* the head in cin has its token already */
        ProxyPort port;
        ConnState state;
        Watch cw, uw;
        IoEndpoint client, upstream; /* upstream.fd < 0: not connected */
        Buf cin, uout, uin, cout;
        uint64_t deadline;
        bool head_timer; /* deadline counts the current head */
        /* [proxy] min_rate: the window in which the proxy has been waiting
         * on the client (for body bytes, or to take response bytes) since
         * rate_start, and client.moved at its start. 0: not waiting. */
        uint64_t rate_start, rate_base;
        bool client_eof, upstream_eof;
        bool close_after_flush;
        bool upstream_event; /* epoll said something about the upstream socket */
        char peer[INET6_ADDRSTRLEN];
        LimitsKey key;
        int limit_slot;
        bool limits_full; /* no room in the limits table at accept: refused */
        TlsClientVerdict verdict;
        const char *verdict_reason;
        char subject[SUBJECT_MAX];

        /* The exchange in progress (CONN_FORWARD). */
        bool in_exchange;
        char method[16];
        char path[LOG_PATH_MAX];
        int status;
        uint64_t bytes_in, bytes_out, t0, t0_us;
        bool head_request, client_keep_alive, client_http10;
        Http1BodyKind req_body;
        uint64_t req_remaining;
        Http1Chunked req_chunked;
        bool req_done;
        bool upstream_used; /* bytes of this request reached the upstream */
        RespStage resp_stage;
        Http1BodyKind resp_body;
        uint64_t resp_remaining;
        Http1Chunked resp_chunked;
        bool resp_dechunk, resp_close, upstream_keep_alive;
};

struct Worker {
        const ProxyContext *p;
        const ProxyConfig *c;
        unsigned index, column;
        int epfd, sigfd;
        Watch listen_watch[_PROXY_PORT_MAX];
        Watch signal_watch, parent_watch;
        Conn *conns;
        Conn *pending;
        Conn *delayed, *delayed_tail; /* by delay_until, earliest first */
        Conn *dead;
        unsigned n_conns;
        bool draining;
        uint64_t drain_deadline;
        uint64_t next_sweep;
        uint64_t table_full_warned; /* ms; the journal hears of it once a minute */
        /* Accepting: paused (listening sockets out of the epoll set) at
         * max_conns, or after running out of descriptors until resume_at. */
        unsigned max_conns;
        int reserve_fd; /* given up to accept-and-close when out of descriptors */
        bool accept_paused;
        uint64_t accept_resume_at;
        uint64_t fd_limit_logged_at;
        /* Scratch space, used synchronously by one connection at a time. */
        Http1Header headers[HTTP1_MAX_HEADERS];
        ForwardScratch forward;
        char head[HTTP1_MAX_HEAD + 4096];
};

static uint64_t now_ms(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The port's counters (the mapping exists before lockdown: no syscall). */
static ProxyPortMetrics *port_metrics(const Conn *c) {
        return &c->w->p->metrics->port[c->port];
}

/* The limits table has no room for this client: say so once a minute. The
 * client is refused (ratelimit.h: failing open would switch the limits off
 * for every new address, the attacker's included). */
static void worker_warn_table_full(Worker *w) {
        uint64_t now = now_ms();

        if (w->table_full_warned != 0 && now - w->table_full_warned < 60000)
                return;
        w->table_full_warned = now;
        log_warning("proxy: the per-client limits table is full; refusing new clients with 503 "
                    "(regvisor_proxy_limits_table_full_total; [proxy] limits_slots)");
}

static void count_upstream_error(Conn *c, MetricsUpstreamError e) {
        proxy_metrics_inc(&port_metrics(c)->upstream_errors[e]);
}

/* ------------------------------------------------------------------------
 * Buffers
 */

static size_t buf_len(const Buf *b) {
        return b->end - b->start;
}

static size_t buf_room(const Buf *b) {
        return CONN_BUF_SIZE - buf_len(b);
}

/* Makes the buffer usable. Data is never moved here: see buf_tail(). */
static int buf_prepare(Buf *b) {
        if (!b->data) {
                b->data = malloc(CONN_BUF_SIZE);
                if (!b->data)
                        return -ENOMEM;
                b->start = b->end = 0;
        }
        return 0;
}

/* Contiguous free space at the end of an allocated buffer. The data is moved
 * to the front only when that is cheap: the free tail is under a quarter of
 * the buffer and the data fits in one. Compacting on every append moved up
 * to 48 KiB per 16 KiB TLS record sent (SSL_write sends one record per call)
 * in bulk transfers; a buffer that drains completely is reset for free by
 * buf_consume(). Never starves a parser: a head without its end is shorter
 * than HTTP1_MAX_HEAD (16 KiB), so it is always moved when it must grow,
 * and more than a quarter of buffered data is always consumable by its
 * reader. */
static size_t buf_tail(Buf *b) {
        assert(b->data);
        if (b->start > 0 && CONN_BUF_SIZE - b->end < CONN_BUF_SIZE / 4 && buf_len(b) <= CONN_BUF_SIZE / 4) {
                memmove(b->data, b->data + b->start, buf_len(b));
                b->end -= b->start;
                b->start = 0;
        }
        return CONN_BUF_SIZE - b->end;
}

static void buf_consume(Buf *b, size_t n) {
        assert(n <= buf_len(b));
        b->start += n;
        if (b->start == b->end)
                b->start = b->end = 0;
}

/* Appends n bytes; the caller checked buf_room(). */
static int buf_append(Buf *b, const void *p, size_t n) {
        int r = buf_prepare(b);
        if (r < 0)
                return r;
        if (CONN_BUF_SIZE - b->end < n) {
                memmove(b->data, b->data + b->start, buf_len(b));
                b->end -= b->start;
                b->start = 0;
        }
        assert(CONN_BUF_SIZE - b->end >= n);
        memcpy(b->data + b->end, p, n);
        b->end += n;
        return 0;
}

static void buf_release(Buf *b) {
        if (b->data && buf_len(b) == 0) {
                free(b->data);
                *b = (Buf){};
        }
}

static void buf_free(Buf *b) {
        free(b->data);
        *b = (Buf){};
}

/* ------------------------------------------------------------------------
 * Connection lifetime
 */

static void conn_upstream_close(Conn *c) {
        if (c->upstream.fd >= 0) {
                (void)epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->upstream.fd, NULL);
                (void)close(c->upstream.fd);
        }
        c->upstream.fd = -1;
        c->upstream_eof = false;
        buf_free(&c->uin);
        buf_free(&c->uout);
}

/* ------------------------------------------------------------------------
 * Requests held back by the rate limit
 */

static void conn_delay_cancel(Conn *c) {
        Worker *w = c->w;

        if (c->delay_until == 0)
                return;
        if (c->delay_prev)
                c->delay_prev->delay_next = c->delay_next;
        else
                w->delayed = c->delay_next;
        if (c->delay_next)
                c->delay_next->delay_prev = c->delay_prev;
        else
                w->delayed_tail = c->delay_prev;
        c->delay_prev = c->delay_next = NULL;
        c->delay_until = 0;
}

/* Holds c back until the time at (CLOCK_MONOTONIC ms). New delays are
 * mostly the latest: the list is searched from its tail. */
static void conn_delay(Conn *c, uint64_t at) {
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
        c->deadline = at + (uint64_t)w->c->header_timeout * 1000;
}

/* Closes everything at once; the memory goes when the current batch of
 * events is done (later events of the batch may still name it). */
static void conn_kill(Conn *c) {
        Worker *w = c->w;

        if (c->state == CONN_DEAD)
                return;
        conn_delay_cancel(c);
        conn_upstream_close(c);
        if (c->client.fd >= 0) {
                (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->client.fd, NULL);
                (void)close(c->client.fd);
                c->client.fd = -1;
        }
        SSL_free(c->client.ssl);
        c->client.ssl = NULL;
        if (w->p->limits)
                limits_conn_release(w->p->limits, w->column, c->limit_slot);
        c->limit_slot = -1;
        buf_free(&c->cin);
        buf_free(&c->cout);
        c->state = CONN_DEAD;

        /* From the live list to the dead list. */
        if (c->prev)
                c->prev->next = c->next;
        else
                w->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = NULL;
        c->next = w->dead;
        w->dead = c;
        w->n_conns--;
        proxy_metrics_set_open(w->p->metrics, w->index, w->n_conns);
}

static void worker_reap(Worker *w) {
        while (w->dead) {
                Conn *c = w->dead;
                w->dead = c->next;
                c->magic = 0;
                c->cw.magic = c->uw.magic = 0;
                free(c);
        }
}

/* ------------------------------------------------------------------------
 * Access log and the proxy's own responses
 */

static void exchange_log(Conn *c) {
        char subject[SUBJECT_MAX * 4 + 8], method[sizeof(c->method) * 4 + 8], path[LOG_PATH_MAX * 4 + 8];

        if (!c->in_exchange)
                return;
        /* One line per request, key=value. The subject (any text on a
         * refused certificate), method and path are the client's bytes:
         * escaped, so that they can forge neither fields nor lines. */
        log_event(LOG_INFO, "access",
                  "port=%s client=%s subject=%s method=%s path=%s status=%d in=%" PRIu64 " out=%" PRIu64
                  " ms=%" PRIu64,
                  proxy_port_name(c->port), c->peer,
                  log_escape(c->port == PROXY_PUSH ? c->subject : NULL, subject, sizeof(subject)),
                  log_escape(c->method, method, sizeof(method)), log_escape(c->path, path, sizeof(path)), c->status,
                  c->bytes_in, c->bytes_out, now_ms() - c->t0);
        proxy_metrics_request(c->w->p->metrics, (MetricsPort)c->port, c->method[0] ? c->method : "-", c->status,
                              c->bytes_in, c->bytes_out, now_us() - c->t0_us);
        c->in_exchange = false;
}

static void exchange_begin(Conn *c) {
        c->in_exchange = true;
        c->method[0] = c->path[0] = 0;
        c->status = 0;
        c->bytes_in = c->bytes_out = 0;
        c->t0 = now_ms();
        c->t0_us = now_us();
        c->head_request = false;
        c->req_done = true;
        c->req_body = HTTP1_BODY_NONE;
        c->upstream_used = false;
        c->resp_stage = RESP_DONE;
        c->resp_dechunk = c->resp_close = false;
}

/* Answers with one of our own errors and closes the connection after it
 * (keep is true only for requests without a body the proxy fully read).
 * Nothing of the request has reached, or will reach, the registry. */
static void conn_respond_error(Conn *c, int status, const char *code, const char *message, const char *detail,
                               unsigned retry_after, bool keep) {
        HeadersError e = {
                .status = status,
                .code = code,
                .message = message,
                .detail = detail,
                .retry_after = retry_after,
                .close = !keep || c->w->draining || !c->client_keep_alive,
                .head = c->head_request,
        };
        int n;

        n = headers_error(&e, c->w->head, sizeof(c->w->head));
        if (n < 0 || (size_t)n > buf_room(&c->cout) || buf_append(&c->cout, c->w->head, (size_t)n) < 0) {
                conn_kill(c);
                return;
        }
        c->status = status;
        c->bytes_out += (uint64_t)n;
        exchange_log(c);
        conn_upstream_close(c);
        if (e.close) {
                c->close_after_flush = true;
                c->state = CONN_CLOSING;
                c->deadline = now_ms() + CLOSING_MS;
        } else {
                c->state = CONN_HEAD;
                c->head_timer = false;
                c->deadline = now_ms() + (uint64_t)c->w->c->idle_timeout * 1000;
        }
}

/* ------------------------------------------------------------------------
 * Starting an exchange: the request head is in cin
 */

/* Whether a kept registry connection is idle: connected, not closed by
 * the registry, and nothing unread in it. Anything the registry sends
 * between responses is a desync or a close: the connection is not reused. */
static bool upstream_idle(Conn *c) {
        char b;

        if (c->upstream.fd < 0 || c->upstream_eof)
                return false;
        ssize_t k = recv(c->upstream.fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
        return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int upstream_connect(Conn *c) {
        const ProxyContext *p = c->w->p;
        int fd, r;

        fd = socket(p->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (const struct sockaddr *)&p->upstream, p->upstream_len) < 0 && errno != EINPROGRESS) {
                r = negative_errno();
                (void)close(fd);
                return r;
        }
        if (p->upstream.ss_family != AF_UNIX) {
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        c->upstream = (IoEndpoint){.fd = fd, .ops = &io_plain_ops, .readable = true};
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->uw};
        if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                r = negative_errno();
                conn_upstream_close(c);
                return r;
        }
        return 0;
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

/* A client the limits table has no room for (ratelimit.h) is refused, never
 * served unlimited: 503 and close, once the handshake lets it hear why. */
static int conn_refuse_table_full(Conn *c, size_t head_len) {
        buf_consume(&c->cin, head_len);
        conn_respond_error(c, 503, "UNAVAILABLE", "too many clients", "the proxy's per-client limits table is full",
                           1, false);
        return 1;
}

/* Returns 1 when the exchange started (or was answered), 0 when the rate
 * limit delays it (c->delay_until), <0 to kill. */
static int conn_start(Conn *c, const Http1Request *req, size_t head_len) {
        Worker *w = c->w;
        const ProxyPortConfig *pc = &w->c->port[c->port];
        int r, n;

        (void)snprintf(c->method, sizeof(c->method), "%.*s", (int)req->method_len, req->method);
        (void)snprintf(c->path, sizeof(c->path), "%.*s", (int)req->target_len, req->target);
        c->head_request = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
        c->client_keep_alive = req->keep_alive;
        c->client_http10 = req->minor_version == 0;
        c->bytes_in = head_len;
        /* Whether a refusal may keep the connection: only when no body
         * follows that we would have to skip. */
        bool no_body = req->body == HTTP1_BODY_NONE || (req->body == HTTP1_BODY_LENGTH && req->content_length == 0);

        if (c->port == PROXY_PUSH && c->verdict != TLS_CLIENT_OK) {
                buf_consume(&c->cin, head_len);
                if (c->verdict == TLS_CLIENT_NONE)
                        conn_respond_error(c, 400, "UNAUTHORIZED", "No required SSL certificate was sent",
                                           "this port requires a client certificate issued by the registry's client CA",
                                           0, false);
                else
                        conn_respond_error(c, 400, "UNAUTHORIZED", "The SSL certificate error",
                                           c->verdict_reason, 0, false);
                return 1;
        }

        if (c->rate_taken)
                c->rate_taken = false; /* taken before the delay */
        else if (c->limits_full)
                return conn_refuse_table_full(c, head_len); /* counted at accept */
        else if (w->p->limits && pc->rate > 0) {
                unsigned retry = 1;
                uint64_t delay_ms = 0;
                r = limits_rate_take(w->p->limits, &c->key, pc->rate, pc->burst, now_ms(), &retry,
                                     pc->delay ? &delay_ms : NULL);
                if (r == -ENOSPC) {
                        proxy_metrics_inc(&port_metrics(c)->limits_table_full);
                        worker_warn_table_full(w);
                        return conn_refuse_table_full(c, head_len);
                }
                if (r == 0) {
                        proxy_metrics_inc(&port_metrics(c)->rate_limited);
                        buf_consume(&c->cin, head_len);
                        conn_respond_error(c, 429, "TOOMANYREQUESTS", "too many requests", NULL, retry, no_body);
                        return 1;
                }
                if (delay_ms > 0) {
                        /* Within the burst but ahead of the rate: the head
                         * stays in cin, nothing more is read or sent. */
                        proxy_metrics_inc(&port_metrics(c)->rate_delayed);
                        c->rate_taken = true;
                        conn_delay(c, now_ms() + delay_ms);
                        return 0;
                }
        }

        ForwardPolicy fp = {
                .push = c->port == PROXY_PUSH,
                .port_number = pc->listen_port,
                .server_names = w->c->server_names,
                .n_server_names = w->c->n_server_names,
                .max_body = w->c->max_body,
        };
        ForwardClient fc = {
                .peer = c->peer,
                .sni = SSL_get_servername(c->client.ssl, TLSEXT_NAMETYPE_host_name),
                .subject = c->subject,
        };
        ForwardRefusal refusal;
        n = forward_request(&fp, &fc, req, w->headers, &w->forward, w->head, sizeof(w->head), &refusal);
        if (n == 0 || (n > 0 && (size_t)n > buf_room(&c->uout))) {
                buf_consume(&c->cin, head_len);
                if (n == 0)
                        conn_respond_error(c, refusal.status, refusal.code, refusal.message, refusal.detail, 0,
                                           refusal.may_keep);
                else
                        conn_respond_error(c, 431, "BAD_REQUEST", "request head too large", NULL, 0, false);
                return 1;
        }
        /* A kept registry connection that is not idle is not reused (this
         * frees uout, which holds nothing of this request yet). */
        if (c->upstream.fd >= 0 && !upstream_idle(c))
                conn_upstream_close(c);
        if (n < 0 || buf_append(&c->uout, w->head, (size_t)n) < 0) {
                buf_consume(&c->cin, head_len);
                conn_respond_error(c, 431, "BAD_REQUEST", "request head too large", NULL, 0, false);
                return 1;
        }
        buf_consume(&c->cin, head_len);

        c->req_body = req->body;
        c->req_remaining = req->body == HTTP1_BODY_LENGTH ? req->content_length : 0;
        c->req_done = req->body == HTTP1_BODY_NONE || (req->body == HTTP1_BODY_LENGTH && req->content_length == 0);
        if (req->body == HTTP1_BODY_CHUNKED)
                http1_chunked_init(&c->req_chunked);
        c->resp_stage = RESP_HEAD;
        c->upstream_used = false;

        if (req->expect_continue && !c->req_done) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (buf_append(&c->cout, cont, sizeof(cont) - 1) < 0)
                        return -ENOMEM;
        }
        c->state = CONN_FORWARD;
        c->deadline = now_ms() + (uint64_t)w->c->idle_timeout * 1000;
        return 1;
}

/* Parses what cin holds. 1 progress, 0 need more, <0 kill. */
static int conn_parse_head(Conn *c) {
        Worker *w = c->w;
        Http1Request req = {};
        int n;

        if (buf_len(&c->cin) == 0 || buf_len(&c->cout) > 0 || c->delay_until > 0)
                return 0;
        if (!c->head_timer) {
                c->head_timer = true;
                c->deadline = now_ms() + (uint64_t)w->c->header_timeout * 1000;
        }
        uint64_t t0 = c->t0, t0_us = c->t0_us;
        exchange_begin(c);
        if (c->rate_taken) { /* the same request after its delay: its time counts */
                c->t0 = t0;
                c->t0_us = t0_us;
        }
        c->client_keep_alive = false;
        n = http1_parse_request(c->cin.data + c->cin.start, buf_len(&c->cin), &req, w->headers,
                                ELEMENTSOF(w->headers));
        if (n == -2) {
                c->in_exchange = false;
                if (buf_len(&c->cin) >= HTTP1_MAX_HEAD) {
                        req.error = HTTP1_ERR_HEAD_TOO_LARGE;
                        n = -1;
                } else if (c->client_eof) {
                        return -ECONNRESET;
                } else
                        return 0;
        }
        if (n < 0) {
                exchange_begin(c);
                c->bytes_in = buf_len(&c->cin);
                buf_consume(&c->cin, buf_len(&c->cin));
                conn_respond_error(c, http1_error_status(req.error), "BAD_REQUEST", "malformed HTTP request",
                                   http1_error_string(req.error), 0, false);
                return 1;
        }
        return conn_start(c, &req, (size_t)n);
}

/* ------------------------------------------------------------------------
 * Moving bytes
 */

/* Reads from an endpoint into a buffer's free tail (buf_tail()), if the
 * endpoint is readable (IoEndpoint.readable). 1 progress,
 * 0 nothing, 2 EOF (now), <0 error. */
static int endpoint_fill(IoEndpoint *e, Buf *b) {
        size_t tail;
        ssize_t n;
        int r;

        /* Not readable: the last read found nothing, and no epoll edge
         * since (a needless read per TLS record sent cost a read() each). */
        if (!e->readable || buf_room(b) == 0)
                return 0;
        r = buf_prepare(b);
        if (r < 0)
                return r;
        tail = buf_tail(b);
        if (tail == 0)
                return 0; /* the reader drains it first; see buf_tail() */
        n = e->ops->read(e, b->data + b->end, tail);
        if (n == -EAGAIN)
                return 0;
        if (n < 0)
                return (int)n;
        if (n == 0)
                return 2;
        b->end += (size_t)n;
        e->moved += (uint64_t)n;
        return 1;
}

/* Writes a buffer's bytes to an endpoint, until it is empty or the endpoint
 * would block (TLS: one record per write). 1 progress, 0 nothing, <0. */
static int endpoint_flush(IoEndpoint *e, Buf *b) {
        bool progress = false;
        ssize_t n;

        while (buf_len(b) > 0) {
                n = e->ops->write(e, b->data + b->start, buf_len(b));
                if (n == -EAGAIN)
                        break;
                if (n < 0)
                        return (int)n;
                buf_consume(b, (size_t)n);
                e->moved += (uint64_t)n;
                progress = true;
        }
        return progress;
}

/* The request body, from cin to uout. 1 progress, 0 nothing, <0 kill. */
static int pump_request_body(Conn *c) {
        bool progress = false;
        int r;

        if (c->req_done || buf_len(&c->cin) == 0)
                return 0;

        if (c->req_body == HTTP1_BODY_LENGTH) {
                size_t n = buf_len(&c->cin);
                if (n > c->req_remaining)
                        n = (size_t)c->req_remaining;
                r = buf_prepare(&c->uout);
                if (r < 0)
                        return r;
                if (n > buf_tail(&c->uout))
                        n = buf_tail(&c->uout);
                if (n == 0)
                        return 0;
                memcpy(c->uout.data + c->uout.end, c->cin.data + c->cin.start, n);
                c->uout.end += n;
                buf_consume(&c->cin, n);
                c->req_remaining -= n;
                c->bytes_in += n;
                c->req_done = c->req_remaining == 0;
                return 1;
        }

        /* Chunked: decode, and re-frame each run of data canonically. */
        while (!c->req_done && buf_len(&c->cin) > 0) {
                char hdr[HTTP1_CHUNK_HEADER_MAX];
                size_t off, dlen, in_len = buf_len(&c->cin), room = buf_room(&c->uout);
                ssize_t k;

                /* Room for a chunk header, the data run (at most in_len
                 * bytes), its CRLF and the last chunk "0\r\n\r\n". */
                const size_t framing = HTTP1_CHUNK_HEADER_MAX + 2 + 5;
                if (room < framing + 1)
                        break;
                if (in_len > room - framing)
                        in_len = room - framing;
                k = http1_chunked_feed(&c->req_chunked, c->cin.data + c->cin.start, in_len, &off, &dlen);
                if (k < 0) {
                        c->status = 400;
                        /* The registry already has the head: it gets no
                         * end of this body, only a closed connection. */
                        conn_upstream_close(c);
                        conn_respond_error(c, 400, "BAD_REQUEST", "malformed chunked body",
                                           http1_error_string(c->req_chunked.error), 0, false);
                        return 1;
                }
                if (c->req_chunked.body_len > c->w->c->max_body) {
                        conn_upstream_close(c);
                        conn_respond_error(c, 413, "SIZE_INVALID", "request body too large",
                                           "the body is larger than [proxy] max_body", 0, false);
                        return 1;
                }
                if (dlen > 0) {
                        size_t h = http1_chunk_header(hdr, dlen);
                        if ((r = buf_append(&c->uout, hdr, h)) < 0 ||
                            (r = buf_append(&c->uout, c->cin.data + c->cin.start + off, dlen)) < 0 ||
                            (r = buf_append(&c->uout, "\r\n", 2)) < 0)
                                return r;
                }
                buf_consume(&c->cin, (size_t)k);
                c->bytes_in += (uint64_t)k;
                if (k > 0)
                        progress = true;
                if (http1_chunked_done(&c->req_chunked)) {
                        if ((r = buf_append(&c->uout, "0\r\n\r\n", 5)) < 0)
                                return r;
                        c->req_done = true;
                        progress = true;
                }
                if (k == 0)
                        break;
        }
        return progress;
}

/* The response head, from uin to cout. 1 progress, 0 nothing, <0 kill. */
static int parse_response_head(Conn *c) {
        Worker *w = c->w;
        Http1Response resp = {};
        int n;

        if (c->resp_stage != RESP_HEAD || buf_len(&c->uin) == 0)
                return 0;
        /* 100 Continue of our own may still be in cout; the head needs
         * room, not emptiness. */
        if (buf_room(&c->cout) < sizeof(w->head))
                return 0;
        n = http1_parse_response(c->uin.data + c->uin.start, buf_len(&c->uin), c->head_request, &resp, w->headers,
                                 ELEMENTSOF(w->headers));
        if (n == -2 && buf_len(&c->uin) < HTTP1_MAX_HEAD)
                return 0;
        if (n < 0) {
                count_upstream_error(c, METRICS_UPSTREAM_PROTOCOL);
                log_warning("proxy: invalid response from the registry: %s",
                            http1_error_string(n == -2 ? HTTP1_ERR_HEAD_TOO_LARGE : resp.error));
                conn_respond_error(c, 502, "UNAVAILABLE", "invalid response from the registry",
                                   http1_error_string(n == -2 ? HTTP1_ERR_HEAD_TOO_LARGE : resp.error), 0, false);
                return 1;
        }
        if (resp.status < 200) { /* 1xx: we asked for no 100-continue; skip */
                buf_consume(&c->uin, (size_t)n);
                return 1;
        }

        c->status = resp.status;
        c->resp_body = resp.body;
        c->resp_remaining = resp.body == HTTP1_BODY_LENGTH ? resp.content_length : 0;
        c->upstream_keep_alive = resp.keep_alive;
        c->resp_dechunk = resp.body == HTTP1_BODY_CHUNKED && c->client_http10;
        if (resp.body == HTTP1_BODY_CHUNKED)
                http1_chunked_init(&c->resp_chunked);
        /* Close the client after this response when it asked to, when the
         * body is delimited by closing, when the request body was not read
         * to its end, or when we are stopping. */
        c->resp_close = !c->client_keep_alive || resp.body == HTTP1_BODY_UNTIL_CLOSE || c->resp_dechunk ||
                        w->draining || !c->req_done;

        HeadersResponseOptions o = {
                .close = c->resp_close,
                .keep_alive_http10 = c->client_http10,
                .dechunk = c->resp_dechunk,
        };
        int h = headers_response(&resp, w->headers, resp.n_headers, &o, w->head, sizeof(w->head));
        if (h < 0) {
                count_upstream_error(c, METRICS_UPSTREAM_PROTOCOL);
                conn_respond_error(c, 502, "UNAVAILABLE", "response head too large", NULL, 0, false);
                return 1;
        }
        buf_consume(&c->uin, (size_t)n);
        if (buf_append(&c->cout, w->head, (size_t)h) < 0)
                return -ENOMEM;
        c->bytes_out += (uint64_t)h;
        c->resp_stage = (resp.body == HTTP1_BODY_NONE ||
                         (resp.body == HTTP1_BODY_LENGTH && resp.content_length == 0))
                                ? RESP_DONE
                                : RESP_BODY;
        return 1;
}

/* A response body that passes through unchanged (Content-Length, or until
 * the registry closes) goes from uin to the client directly, once cout (our
 * head) is sent: no copy into cout. Every call after an -EAGAIN offers the
 * same bytes again, and at least as many (uin only grows at its end and
 * nothing is consumed meanwhile), as SSL_write() requires.
 * 1 progress, 0 nothing, <0 kill (the client is gone). */
static int pump_response_direct(Conn *c) {
        bool progress = false;
        ssize_t k;
        size_t n;

        if (c->resp_stage != RESP_BODY || buf_len(&c->cout) > 0 ||
            (c->resp_body != HTTP1_BODY_LENGTH && c->resp_body != HTTP1_BODY_UNTIL_CLOSE))
                return 0;
        while ((n = buf_len(&c->uin)) > 0 && c->resp_stage == RESP_BODY) {
                if (c->resp_body == HTTP1_BODY_LENGTH && n > c->resp_remaining)
                        n = (size_t)c->resp_remaining;
                k = c->client.ops->write(&c->client, c->uin.data + c->uin.start, n);
                if (k == -EAGAIN)
                        break;
                if (k < 0)
                        return (int)k;
                buf_consume(&c->uin, (size_t)k);
                c->client.moved += (uint64_t)k;
                c->bytes_out += (uint64_t)k;
                if (c->resp_body == HTTP1_BODY_LENGTH) {
                        c->resp_remaining -= (uint64_t)k;
                        if (c->resp_remaining == 0)
                                c->resp_stage = RESP_DONE;
                }
                progress = true;
        }
        return progress;
}

/* A chunked response body, validated from uin to cout (only the data, for
 * an HTTP/1.0 client). 1 progress, 0 nothing, <0 kill. */
static int pump_response_body(Conn *c) {
        size_t n, off, dlen;
        ssize_t k;
        int r;

        if (c->resp_stage != RESP_BODY || c->resp_body != HTTP1_BODY_CHUNKED || buf_len(&c->uin) == 0 ||
            buf_room(&c->cout) == 0)
                return 0;
        r = buf_prepare(&c->cout);
        if (r < 0)
                return r;
        /* Only into the free tail: see buf_tail(). */
        n = buf_len(&c->uin);
        if (n > buf_tail(&c->cout))
                n = buf_tail(&c->cout);
        if (n == 0)
                return 0;
        /* The decoder never consumes more than n, and n fits in cout's
         * tail. */
        k = http1_chunked_feed(&c->resp_chunked, c->uin.data + c->uin.start, n, &off, &dlen);
        if (k < 0) {
                log_warning("proxy: invalid chunked body from the registry: %s",
                            http1_error_string(c->resp_chunked.error));
                return -EPROTO;
        }
        if (c->resp_dechunk)
                r = dlen > 0 ? buf_append(&c->cout, c->uin.data + c->uin.start + off, dlen) : 0;
        else
                r = buf_append(&c->cout, c->uin.data + c->uin.start, (size_t)k);
        if (r < 0)
                return r;
        c->bytes_out += c->resp_dechunk ? dlen : (size_t)k;
        buf_consume(&c->uin, (size_t)k);
        if (http1_chunked_done(&c->resp_chunked))
                c->resp_stage = RESP_DONE;
        return k > 0;
}

/* The exchange is over when both bodies are through: log, then either
 * wait for the next request or close. */
static void exchange_finish(Conn *c) {
        Worker *w = c->w;

        exchange_log(c);
        /* Kept for the next request only when the response ended exactly
         * at its framing boundary and the registry has read the whole
         * request: bytes after the response (uin, or still in the socket)
         * would be handed to the next request as its answer. */
        if (!c->upstream_keep_alive || !c->req_done || c->resp_body == HTTP1_BODY_UNTIL_CLOSE ||
            buf_len(&c->uin) > 0 || buf_len(&c->uout) > 0 || !upstream_idle(c))
                conn_upstream_close(c);
        else {
                buf_release(&c->uin);
                buf_release(&c->uout);
        }
        if (c->resp_close) {
                c->close_after_flush = true;
                c->state = CONN_CLOSING;
                c->deadline = now_ms() + CLOSING_MS;
                return;
        }
        c->state = CONN_HEAD;
        c->head_timer = false;
        c->deadline = now_ms() + (uint64_t)w->c->idle_timeout * 1000;
}

/* Upstream trouble before the response head: 502 (or 504 from the
 * sweep); after it, nothing can be said to the client but a close. */
static void conn_upstream_failed(Conn *c, int error) {
        /* Refused before a byte went through: the registry is not there
         * (a loopback TCP connect() fails late, at the first write). */
        count_upstream_error(c, !c->upstream_used && (error == -ECONNREFUSED || error == -ENOENT ||
                                                      error == -ENETUNREACH || error == -EHOSTUNREACH)
                                        ? METRICS_UPSTREAM_CONNECT
                                        : METRICS_UPSTREAM_RESET);
        if (c->resp_stage == RESP_HEAD && c->status == 0) {
                log_warning_errno(error, "proxy: the registry failed a request: %m");
                conn_respond_error(c, 502, "UNAVAILABLE", "the registry is unavailable",
                                   error == -ECONNRESET || error == 0 ? "connection closed by the registry"
                                                                     : strerror(-error),
                                   0, false);
        } else {
                c->status = c->status ? c->status : 502;
                exchange_log(c);
                conn_kill(c);
        }
}

/* Sends what is left and lingers: reading (and dropping) what the client
 * still sends for a moment, so that closing a socket with unread data does
 * not turn into a reset that destroys the response before the client read
 * it (the "lingering close" of every HTTP server). */
static void conn_linger_start(Conn *c) {
        conn_upstream_close(c);
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

/* Runs the connection's state machine until nothing moves. */
static void conn_run(Conn *c) {
        Worker *w = c->w;
        int r;

        for (unsigned round = 0;; round++) {
                bool progress = false;

                if (c->state == CONN_DEAD)
                        return;
                if (round >= CONN_RUN_BUDGET) {
                        conn_set_pending(c);
                        return;
                }

                switch (c->state) {
                case CONN_HANDSHAKE:
                        r = c->client.ops->handshake(&c->client);
                        if (r == -EAGAIN)
                                return;
                        if (r < 0) {
                                log_debug_errno(r, "proxy: TLS handshake with %s failed: %m", c->peer);
                                /* A bare EOF or reset (port probes, clients
                                 * giving up) is not a TLS failure. */
                                if (r == -EPROTO)
                                        proxy_metrics_inc(&port_metrics(c)->tls_failures[METRICS_TLS_PROTOCOL]);
                                conn_kill(c);
                                return;
                        }
                        if (c->port == PROXY_PUSH) {
                                c->verdict = tls_client_verdict(c->client.ssl, &c->verdict_reason, c->subject,
                                                                sizeof(c->subject));
                                if (c->verdict != TLS_CLIENT_OK)
                                        proxy_metrics_inc(&port_metrics(c)->tls_failures[tls_failure_of(c)]);
                        }
                        c->state = CONN_HEAD;
                        continue;

                case CONN_LINGER:
                        conn_linger(c);
                        return;

                case CONN_CLOSING:
                        r = endpoint_flush(&c->client, &c->cout);
                        if (r < 0) {
                                conn_kill(c);
                                return;
                        }
                        if (buf_len(&c->cout) == 0) {
                                conn_linger_start(c);
                                continue;
                        }
                        if (r == 0)
                                return;
                        continue;

                case CONN_HEAD:
                case CONN_FORWARD:
                        break;
                case CONN_DEAD:
                        return;
                }

                /* The client: read while cin has room (and no request
                 * of it is held back). */
                if (!c->client_eof && c->delay_until == 0) {
                        r = endpoint_fill(&c->client, &c->cin);
                        if (r < 0) {
                                if (c->in_exchange && c->state == CONN_FORWARD) {
                                        c->status = c->status ? c->status : 499;
                                        exchange_log(c);
                                }
                                conn_kill(c);
                                return;
                        }
                        if (r == 2)
                                c->client_eof = true;
                        progress |= r > 0;
                }

                if (c->state == CONN_HEAD) {
                        if (c->upstream.fd >= 0 && c->upstream_event) {
                                /* An idle registry connection that says
                                 * anything is closing or broken. */
                                char b;
                                c->upstream_event = false;
                                ssize_t k = recv(c->upstream.fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
                                if (k >= 0 || (errno != EAGAIN && errno != EINTR))
                                        conn_upstream_close(c);
                        }
                        if (c->client_eof && buf_len(&c->cin) == 0) {
                                /* A half-close after the request: the end of
                                 * our answer still goes out. */
                                if (buf_len(&c->cout) > 0) {
                                        c->close_after_flush = true;
                                        c->state = CONN_CLOSING;
                                        c->deadline = now_ms() + CLOSING_MS;
                                        continue;
                                }
                                conn_kill(c);
                                return;
                        }
                        /* Draining: no new request on the push port, even
                         * one already pipelined (worker_drain_start()). */
                        if (w->draining && c->port == PROXY_PUSH && buf_len(&c->cout) > 0) {
                                c->close_after_flush = true;
                                c->state = CONN_CLOSING;
                                c->deadline = now_ms() + CLOSING_MS;
                                continue;
                        }
                        if (w->draining && buf_len(&c->cout) == 0 &&
                            (buf_len(&c->cin) == 0 || c->port == PROXY_PUSH)) {
                                conn_kill(c);
                                return;
                        }
                        r = conn_parse_head(c);
                        if (r < 0) {
                                conn_kill(c);
                                return;
                        }
                        progress |= r > 0;
                        /* Our own response of a kept connection. */
                        r = endpoint_flush(&c->client, &c->cout);
                        if (r < 0) {
                                conn_kill(c);
                                return;
                        }
                        progress |= r > 0;
                        if (c->state != CONN_FORWARD) {
                                if (!progress) {
                                        conn_idle_release(c);
                                        return;
                                }
                                continue;
                        }
                }

                /* CONN_FORWARD */
                r = pump_request_body(c);
                if (r < 0) {
                        conn_kill(c);
                        return;
                }
                progress |= r > 0;
                if (c->state != CONN_FORWARD)
                        continue;
                if (!c->req_done && c->client_eof && buf_len(&c->cin) == 0) {
                        c->status = c->status ? c->status : 499;
                        exchange_log(c);
                        conn_kill(c);
                        return;
                }

                /* A chunked body is held back until it is complete or has
                 * nearly filled uout: a malformed small body (bad first
                 * chunk size, missing CRLF ...) is then answered with 400
                 * and the registry never even sees the head. */
                bool hold = c->req_body == HTTP1_BODY_CHUNKED && !c->req_done &&
                            buf_room(&c->uout) > CONN_CHUNKED_HOLD_ROOM;
                if (!hold && c->upstream.fd < 0 && buf_len(&c->uout) > 0 && !c->upstream_used) {
                        r = upstream_connect(c);
                        if (r < 0) {
                                count_upstream_error(c, METRICS_UPSTREAM_CONNECT);
                                log_warning_errno(r, "proxy: cannot connect to the registry: %m");
                                conn_respond_error(c, 502, "UNAVAILABLE", "the registry is unavailable",
                                                   strerror(-r), 0, false);
                                continue;
                        }
                }
                r = hold || c->upstream.fd < 0 ? 0 : endpoint_flush(&c->upstream, &c->uout);
                if (r < 0) {
                        conn_upstream_failed(c, r);
                        continue;
                }
                if (r > 0)
                        c->upstream_used = true;
                progress |= r > 0;

                if (c->resp_stage != RESP_DONE && !c->upstream_eof && c->upstream.fd >= 0) {
                        r = endpoint_fill(&c->upstream, &c->uin);
                        if (r < 0) {
                                conn_upstream_failed(c, r);
                                continue;
                        }
                        if (r == 2)
                                c->upstream_eof = true;
                        progress |= r > 0;
                }

                r = parse_response_head(c);
                if (r < 0) {
                        conn_kill(c);
                        return;
                }
                progress |= r > 0;
                if (c->state != CONN_FORWARD)
                        continue;

                r = pump_response_body(c);
                if (r < 0) {
                        if (r == -EPROTO)
                                count_upstream_error(c, METRICS_UPSTREAM_PROTOCOL);
                        conn_kill(c);
                        return;
                }
                progress |= r > 0;

                if (c->upstream_eof && buf_len(&c->uin) == 0 && c->resp_stage != RESP_DONE) {
                        if (c->resp_stage == RESP_BODY && c->resp_body == HTTP1_BODY_UNTIL_CLOSE)
                                c->resp_stage = RESP_DONE;
                        else {
                                conn_upstream_failed(c, -ECONNRESET);
                                continue;
                        }
                }

                r = endpoint_flush(&c->client, &c->cout);
                if (r >= 0) {
                        progress |= r > 0;
                        r = pump_response_direct(c);
                }
                if (r < 0) {
                        c->status = c->status ? c->status : 499;
                        exchange_log(c);
                        conn_kill(c);
                        return;
                }
                progress |= r > 0;

                if (c->resp_stage == RESP_DONE && (c->req_done || c->resp_close)) {
                        exchange_finish(c);
                        progress = true;
                } else if (progress)
                        c->deadline = now_ms() + (uint64_t)(c->req_done && buf_len(&c->uout) == 0
                                                                     ? w->c->read_timeout
                                                                     : w->c->idle_timeout) *
                                                         1000;

                if (!progress)
                        return;
        }
}

/* ------------------------------------------------------------------------
 * Accepting
 */

static void peer_string(const struct sockaddr_storage *ss, char out[static INET6_ADDRSTRLEN]) {
        if (ss->ss_family == AF_INET)
                (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, INET6_ADDRSTRLEN);
        else if (ss->ss_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a))
                        (void)inet_ntop(AF_INET, &a->s6_addr[12], out, INET6_ADDRSTRLEN);
                else
                        (void)inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
        } else
                (void)snprintf(out, INET6_ADDRSTRLEN, "-");
}

static void worker_accept_one(Worker *w, ProxyPort port, int fd, const struct sockaddr_storage *ss) {
        const ProxyPortConfig *pc = &w->c->port[port];
        _cleanup_close_ int cfd = fd;
        char peer[INET6_ADDRSTRLEN];
        LimitsKey key = {};
        int slot = -1, r = 0, one = 1;

        peer_string(ss, peer);
        if (!cidr_allowed(pc->allow_cidrs, pc->n_allow_cidrs, (const struct sockaddr *)ss)) {
                proxy_metrics_inc(&w->p->metrics->port[port].cidr_refused);
                log_event(LOG_NOTICE, "refused", "%s %s refused: not in allow_cidrs", proxy_port_name(port), peer);
                return;
        }
        if (limits_key_from_sockaddr((const struct sockaddr *)ss, (uint8_t)port, w->c->ipv6_prefix, &key) < 0)
                return;
        if (w->p->limits) {
                r = limits_conn_acquire(w->p->limits, w->column, &key, pc->conn_per_ip, now_ms(), &slot);
                if (r == -ENOSPC) {
                        /* Refused with a 503 after the handshake, so the
                         * client learns why (conn_start()). */
                        proxy_metrics_inc(&w->p->metrics->port[port].limits_table_full);
                        worker_warn_table_full(w);
                }
                if (r == 0) {
                        proxy_metrics_inc(&w->p->metrics->port[port].conn_limited);
                        log_event(LOG_NOTICE, "refused", "%s %s refused: more than conn_per_ip=%u connections",
                                  proxy_port_name(port), peer, pc->conn_per_ip);
                        return;
                }
        }
        (void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        Conn *c = calloc(1, sizeof(Conn));
        SSL *ssl = SSL_new(w->p->ctx[port]);
        if (!c || !ssl || SSL_set_fd(ssl, cfd) != 1) {
                free(c);
                SSL_free(ssl);
                ERR_clear_error();
                if (w->p->limits)
                        limits_conn_release(w->p->limits, w->column, slot);
                return;
        }
        SSL_set_accept_state(ssl);
        *c = (Conn){
                .magic = CONN_MAGIC,
                .w = w,
                .port = port,
                .state = CONN_HANDSHAKE,
                .cw = {.magic = WATCH_MAGIC, .kind = WATCH_CLIENT, .conn = c},
                .uw = {.magic = WATCH_MAGIC, .kind = WATCH_UPSTREAM, .conn = c},
                .client = {.fd = cfd, .ssl = ssl, .ops = &io_tls_ops, .readable = true},
                .upstream = {.fd = -1, .ops = &io_plain_ops},
                .deadline = now_ms() + (uint64_t)w->c->header_timeout * 1000,
                .head_timer = true,
                .key = key,
                .limit_slot = slot,
                .limits_full = r == -ENOSPC,
                .verdict = TLS_CLIENT_NONE,
        };
        memcpy(c->peer, peer, sizeof(peer));
        c->subject[0] = 0;
        SSL_set_app_data(ssl, c);

        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->cw};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, cfd, &ev) < 0) {
                SSL_free(ssl);
                free(c);
                if (w->p->limits)
                        limits_conn_release(w->p->limits, w->column, slot);
                return;
        }
        TAKE_FD(cfd);
        c->next = w->conns;
        if (w->conns)
                w->conns->prev = c;
        w->conns = c;
        w->n_conns++;
        proxy_metrics_set_open(w->p->metrics, w->index, w->n_conns);
        conn_run(c);
}

/* Takes the listening sockets out of the epoll set (on false) or puts them
 * back. Level-triggered with EPOLLEXCLUSIVE, which EPOLL_CTL_MOD refuses:
 * hence DEL and ADD. While out, connections wait in the kernel's backlog
 * (or go to another worker). */
static void worker_listen(Worker *w, bool on) {
        if (w->accept_paused == !on || w->draining)
                return;
        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->listen_watch[i]};
                if (w->p->listen_fd[i] >= 0)
                        (void)epoll_ctl(w->epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->p->listen_fd[i], &ev);
        }
        w->accept_paused = !on;
}

static void worker_accept_pause(Worker *w, MetricsAcceptPause why, uint64_t resume_at) {
        worker_listen(w, false);
        w->accept_resume_at = resume_at;
        proxy_metrics_inc(&w->p->metrics->accept_paused[why]);
}

/* accept() failed for want of a descriptor. Level-triggered, the pending
 * connection would wake us again at once, forever: give up the reserve
 * descriptor to accept it and close it (the client sees a closed connection
 * rather than waiting in the backlog), take the reserve again, and stop
 * accepting for ACCEPT_PAUSE_MS. Connections that close meanwhile free
 * descriptors. The reserve is an AF_UNIX stream socket because socket()
 * for exactly that is what the sandbox allows after lockdown. */
static void worker_out_of_fds(Worker *w, ProxyPort port, int error) {
        uint64_t now = now_ms();

        if (w->reserve_fd >= 0) {
                (void)close(w->reserve_fd);
                int fd = accept4(w->p->listen_fd[port], NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0) {
                        (void)close(fd);
                        proxy_metrics_inc(&w->p->metrics->accept_dropped);
                }
        }
        w->reserve_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        worker_accept_pause(w, METRICS_PAUSE_FD_LIMIT, now + ACCEPT_PAUSE_MS);
        if (w->fd_limit_logged_at == 0 || now - w->fd_limit_logged_at >= FD_LIMIT_LOG_MS) {
                w->fd_limit_logged_at = now;
                log_event(LOG_WARNING, "accept-paused",
                          "proxy worker %u: out of file descriptors on the %s port (%s) with %u connections; "
                          "pausing accepts for %d ms",
                          w->index, proxy_port_name(port), strerror(error), w->n_conns, ACCEPT_PAUSE_MS);
        }
}

static void worker_accept(Worker *w, ProxyPort port) {
        int lfd = w->p->listen_fd[port];

        /* Another event of this batch may have paused accepting already. */
        for (unsigned i = 0; i < ACCEPT_BATCH && !w->draining && !w->accept_paused; i++) {
                struct sockaddr_storage ss;
                socklen_t len = sizeof(ss);

                if (w->n_conns >= w->max_conns) {
                        worker_accept_pause(w, METRICS_PAUSE_MAX_CONNECTIONS, 0);
                        return;
                }
                int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                worker_out_of_fds(w, port, errno);
                                return;
                        }
                        /* Errors of one connection (EPROTO, EPERM from a
                         * firewall): the next one may do. */
                        log_warning_errno(errno, "proxy: accept on %s failed: %m", proxy_port_name(port));
                        return;
                }
                worker_accept_one(w, port, fd, &ss);
        }
}

/* Accepting again: below the cap, and the pause after running out of
 * descriptors is over. Returns the ms until that, for epoll_wait()'s
 * timeout (-1: nothing to wait for). */
static int worker_accept_resume(Worker *w, uint64_t now) {
        if (!w->accept_paused || w->draining || w->n_conns >= w->max_conns)
                return -1;
        if (now < w->accept_resume_at)
                return (int)(w->accept_resume_at - now);
        if (w->reserve_fd < 0) /* still none: try again after another pause */
                w->reserve_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        worker_listen(w, true);
        return -1;
}

/* ------------------------------------------------------------------------
 * The loop
 */

/* Ends an exchange that ran out of time: with our error response when
 * answer (none of the registry's was started), else by closing, logged
 * with 408 unless a status was set. */
static void conn_expire(Conn *c, bool answer, int status, const char *code, const char *message,
                        const char *detail) {
        if (answer) {
                conn_respond_error(c, status, code, message, detail, 0, false);
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
        uint64_t window = (uint64_t)cf->min_rate_window * 1000, moved;
        int transfer = conn_waits_on_client(c);

        if (cf->min_rate == 0 || transfer < 0) {
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
        if (moved >= cf->min_rate * cf->min_rate_window) {
                c->rate_start = now;
                c->rate_base = c->client.moved;
                return false;
        }
        proxy_metrics_inc(&port_metrics(c)->slow_clients[transfer]);
        log_event(LOG_NOTICE, "slow-client",
                  "proxy: %s %s too slow %s: %" PRIu64 " bytes in %u s, below min_rate=%" PRIu64 " bytes/s; closing",
                  proxy_port_name(c->port), c->peer,
                  transfer == METRICS_SLOW_BODY ? "sending the request body" : "reading the response", moved,
                  cf->min_rate_window, cf->min_rate);
        if (transfer == METRICS_SLOW_RESPONSE)
                conn_reset(c);
        else
                /* Nothing of a response yet: say why (the registry gets a
                 * closed connection and no end of the body). */
                conn_expire(c, c->resp_stage == RESP_HEAD && c->status == 0, 408, "BAD_REQUEST",
                            "request body too slow", "fewer than [proxy] min_rate bytes per second");
        return true;
}

static void worker_sweep(Worker *w, uint64_t now) {
        Conn *next;

        for (Conn *c = w->conns; c; c = next) {
                next = c->next;
                if (conn_check_rate(c, now))
                        continue;
                if (now < c->deadline)
                        continue;
                switch (c->state) {
                case CONN_FORWARD:
                        if (c->resp_stage == RESP_HEAD && c->req_done && c->status == 0)
                                count_upstream_error(c, METRICS_UPSTREAM_TIMEOUT);
                        conn_expire(c, c->resp_stage == RESP_HEAD && c->req_done && c->status == 0, 504,
                                    "UNAVAILABLE", "the registry did not answer in time", "read_timeout");
                        break;
                case CONN_HANDSHAKE:
                case CONN_HEAD:
                        /* Slow or idle client: closed without a word
                         * (nginx's client_header_timeout does the same). */
                        log_debug("proxy: %s %s timed out waiting for a request", proxy_port_name(c->port), c->peer);
                        conn_kill(c);
                        break;
                default:
                        conn_kill(c);
                        break;
                }
        }
}

static void worker_drain_start(Worker *w) {
        Conn *next;

        if (w->draining)
                return;
        w->draining = true;
        w->drain_deadline = now_ms() + PROXY_DRAIN_SECONDS * 1000;
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                if (w->p->listen_fd[i] >= 0) {
                        (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->p->listen_fd[i], NULL);
                        (void)close(w->p->listen_fd[i]);
                }
        /* Idle connections go now; the others after their exchange. On the
         * push port also a request whose head is still arriving: a drain is
         * how a reload with a new CRL retires the verdicts of the old one,
         * so a kept-alive connection of a client revoked since must not
         * start another request here (it reconnects to a new worker). */
        for (Conn *c = w->conns; c; c = next) {
                next = c->next;
                if (c->state == CONN_HANDSHAKE ||
                    (c->state == CONN_HEAD && (buf_len(&c->cin) == 0 || c->port == PROXY_PUSH)))
                        conn_kill(c);
        }
}

static void worker_signal(Worker *w) {
        struct signalfd_siginfo si;

        while (read(w->sigfd, &si, sizeof(si)) == sizeof(si))
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP)
                        worker_drain_start(w);
}

static void worker_dispatch(Worker *w, Watch *watch, uint32_t events) {
        watch = CHECK_MAGIC(watch, WATCH_MAGIC);
        switch (watch->kind) {
        case WATCH_LISTEN:
                worker_accept(w, watch->port);
                break;
        case WATCH_SIGNAL:
                worker_signal(w);
                break;
        case WATCH_PARENT:
                /* The parent is gone (its end of the pipe closed): PDEATHSIG
                 * does not survive our credential change, this does. */
                (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->p->parent_pipe[0], NULL);
                worker_drain_start(w);
                break;
        case WATCH_CLIENT:
        case WATCH_UPSTREAM: {
                Conn *c = CHECK_MAGIC(watch->conn, CONN_MAGIC);
                bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
                if (watch->kind == WATCH_UPSTREAM) {
                        c->upstream_event = true;
                        if (readable && c->upstream.fd >= 0)
                                c->upstream.readable = true;
                } else if (readable)
                        c->client.readable = true;
                if (c->state != CONN_DEAD)
                        conn_run(c);
                break;
        }
        }
}

static int worker_setup(Worker *w) {
        sigset_t mask;

        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0)
                return negative_errno();

        (void)sigemptyset(&mask);
        (void)sigaddset(&mask, SIGTERM);
        (void)sigaddset(&mask, SIGINT);
        (void)sigaddset(&mask, SIGHUP);
        (void)sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        (void)sigdelset(&mask, SIGCHLD);
        w->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (w->sigfd < 0)
                return negative_errno();
        w->signal_watch = (Watch){.magic = WATCH_MAGIC, .kind = WATCH_SIGNAL};
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->signal_watch};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->sigfd, &ev) < 0)
                return negative_errno();

        /* Only the parent may hold the write end, or its death goes unseen. */
        if (w->p->parent_pipe[1] >= 0)
                (void)close(w->p->parent_pipe[1]);
        if (w->p->parent_pipe[0] >= 0) {
                w->parent_watch = (Watch){.magic = WATCH_MAGIC, .kind = WATCH_PARENT};
                struct epoll_event pev = {.events = EPOLLIN, .data.ptr = &w->parent_watch};
                if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->p->parent_pipe[0], &pev) < 0)
                        return negative_errno();
        }

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                w->listen_watch[i] = (Watch){.magic = WATCH_MAGIC, .kind = WATCH_LISTEN, .port = (ProxyPort)i};
                /* Level-triggered, and only one worker woken per connection. */
                struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->listen_watch[i]};
                if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->p->listen_fd[i], &lev) < 0)
                        return negative_errno();
        }

        /* The descriptor given up when accept() runs out of them. */
        w->reserve_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (w->reserve_fd < 0)
                return negative_errno();

        /* A connection holds up to two descriptors (client, registry). */
        w->max_conns = w->c->max_connections;
        if (w->max_conns == 0) {
                struct rlimit rl;
                rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
                if (n == RLIM_INFINITY || n > 2000000 + WORKER_FDS)
                        n = 2000000 + WORKER_FDS;
                w->max_conns = n > WORKER_FDS + 2 ? (unsigned)((n - WORKER_FDS) / 2) : 1;
        }
        return 0;
}

int proxy_worker_run(const ProxyContext *p, unsigned index, unsigned column) {
        static Worker worker; /* large scratch buffers: not on the stack */
        Worker *w = &worker;
        int r;

        *w = (Worker){.p = p,
                      .c = p->config,
                      .index = index,
                      .column = column,
                      .epfd = -1,
                      .sigfd = -1,
                      .reserve_fd = -1};
        (void)signal(SIGPIPE, SIG_IGN);

        r = worker_setup(w);
        if (r < 0) {
                log_error_errno(r, "proxy worker %u: setup failed: %m", index);
                return 1;
        }
        /* Logging once before lockdown opens the journal socket (and
         * settles log.c's journal-or-stderr choice). */
        log_info("proxy worker %u (pid %d) serving as uid %u, up to %u connections", index, (int)getpid(),
                 (unsigned)p->uid, w->max_conns);
        proxy_metrics_set_open(p->metrics, index, 0);
        /* glibc reads /etc/localtime on the first conversion to local
         * time, which OpenSSL's certificate time checks cause: load it now,
         * while the worker may still open files. */
        tzset();
        r = proxy_sandbox_lockdown(p->uid, p->gid);
        if (r < 0) {
                log_error_errno(r, "proxy worker %u: lockdown failed, not serving: %m", index);
                return 1;
        }
        proxy_sandbox_test_hook();

        w->next_sweep = now_ms() + 1000;
        for (;;) {
                struct epoll_event ev[128];
                int n, timeout = w->pending ? 0 : 1000;

                if (!w->pending && w->delayed) {
                        uint64_t now = now_ms(), at = w->delayed->delay_until;
                        if (at <= now)
                                timeout = 0;
                        else if (at - now < (uint64_t)timeout)
                                timeout = (int)(at - now);
                }
                int resume = worker_accept_resume(w, now_ms());
                if (resume >= 0 && resume < timeout)
                        timeout = resume;

                if (w->draining && (w->n_conns == 0 || now_ms() >= w->drain_deadline))
                        break;
                n = epoll_wait(w->epfd, ev, (int)ELEMENTSOF(ev), timeout);
                if (n < 0 && errno != EINTR) {
                        log_error_errno(errno, "proxy worker %u: epoll_wait: %m", index);
                        return 1;
                }
                for (int i = 0; i < n; i++)
                        worker_dispatch(w, ev[i].data.ptr, ev[i].events);

                /* Connections that yielded their turn. */
                Conn *pend = w->pending;
                w->pending = NULL;
                while (pend) {
                        Conn *c = CHECK_MAGIC(pend, CONN_MAGIC);
                        pend = c->pending_next;
                        c->pending = false;
                        if (c->state != CONN_DEAD)
                                conn_run(c);
                }

                uint64_t now = now_ms();
                /* Delayed requests whose time has come. */
                while (w->delayed && w->delayed->delay_until <= now) {
                        Conn *c = CHECK_MAGIC(w->delayed, CONN_MAGIC);
                        conn_delay_cancel(c);
                        if (c->state != CONN_DEAD)
                                conn_run(c);
                }
                if (now >= w->next_sweep) {
                        worker_sweep(w, now);
                        w->next_sweep = now + 1000;
                }
                /* A pending connection that died is still on the list of
                 * the next round: reap only when none is pending. */
                if (!w->pending)
                        worker_reap(w);
        }
        return 0;
}
