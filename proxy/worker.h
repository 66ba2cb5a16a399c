/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Inside a proxy worker: what its parts share. Not for the parent, which
 * sees only proxy_worker_run() (context.h).
 *
 *   worker-loop.c  the epoll loop: setup, dispatch, signals, the sweep,
 *                  drain, the delayed and yielded connections
 *   accept.c       accepting: admission (allow_cidrs, conn_per_ip), a new
 *                  Conn, pausing at max_connections or out of descriptors
 *   balancer.c     a trusted load balancer's PROXY v2 header: the real
 *                  client; a PROXY header from anyone else refused
 *   conn.c         a connection's state machine (one handler per state, a
 *                  table), its lifetime and its timeouts
 *   exchange.c     one request and its response: the route policy, the
 *                  head sent upstream, the response head, the access log,
 *                  which upstream, our own error responses
 *   pump.c         the bytes: endpoint reads and writes, request and
 *                  response bodies between the four buffers
 *
 * A connection (Conn) couples the client's TLS endpoint and, while it
 * carries a request, one plain connection to the registry. Data moves
 * through four bounded buffers of BUF_SIZE bytes each (buf.h):
 *
 *     client --TLS--> cin --(parse, re-frame)--> uout --> registry
 *     client <--TLS-- cout <--(parse, pass)--- uin  <-- registry
 *
 * Backpressure is the buffers themselves: the client is read only while cin
 * has room, cin is drained only while uout has room, and so on, so a slow
 * reader on one side stops the reading on the other; memory per connection
 * is bounded (4 x 64 KiB while busy, none while idle: buffers are freed
 * between requests, OpenSSL's too, see conn.c). A response body that
 * passes through unchanged skips cout: it is sent from uin directly
 * (pump_response_direct()).
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "buf.h"
#include "context.h"
#include "forward.h"
#include "http1.h"
#include "io.h"
#include "log.h"
#include "tls.h"

#define CONN_RUN_BUDGET 64          /* rounds of conn_run() before yielding */
#define CONN_CHUNKED_HOLD_ROOM 4096 /* see conn.c: hold a chunked body back */
#define LINGER_MS 2000              /* reading after our last response, see conn.c */
#define CLOSING_MS 10000            /* flushing our last response */
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

typedef enum ConnState {
        CONN_PROXY_HEADER, /* from a trusted balancer: its PROXY v2 header (balancer.c) */
        CONN_HANDSHAKE,
        CONN_HEAD,    /* reading a request head */
        CONN_FORWARD, /* an exchange with the registry in progress */
        CONN_CLOSING, /* flushing cout, then linger */
        CONN_LINGER,  /* sent everything; reading until EOF, bounded */
        CONN_DEAD,
        _CONN_STATE_MAX,
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
        /* The client: its address, its text and its limits key, set once it
         * is known (at accept, or after a balancer's PROXY header:
         * worker_client_set()); everything that names the client reads
         * these. */
        struct sockaddr_storage addr;
        char peer[INET6_ADDRSTRLEN];
        LimitsKey key;
        /* balancer.c: the PROXY header being read (CONN_PROXY_HEADER), and
         * whether the first bytes were looked at for one from elsewhere. */
        uint8_t *proxy_header;
        size_t proxy_header_len;
        bool sniffed;
        bool balanced; /* the client came in a trusted balancer's header */
        int limit_slot;
        bool limits_full; /* no room in the limits table at accept: refused */
        bool conn_over;   /* over conn_per_ip at accept: 429 unless a known client (exchange.c) */
        TlsClientVerdict verdict;
        const char *verdict_reason;
        char subject[SUBJECT_MAX];
        char cn[SCOPE_NAME_MAX + 1]; /* a valid certificate's CN, or "": push scopes */

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
        /* Which upstream the exchange (and upstream.fd, when open) talks
         * to: the signature store rather than the registry (exchange_upstream()). */
        bool to_sigstore;
        bool version_check; /* GET/HEAD /v2/: announce the extension */
        RespStage resp_stage;
        Http1BodyKind resp_body;
        uint64_t resp_remaining;
        Http1Chunked resp_chunked;
        bool resp_dechunk, resp_close, upstream_keep_alive;
        /* The registry connection is idle at a response's end, since
         * upstream_idle_since (exchange_finish()): the pool may take it. */
        bool upstream_poolable;
        uint64_t upstream_idle_since;
        /* hold.c: a GET/HEAD's head, kept to send again while the registry
         * restarts; since when it is held, and how often it was retried. */
        char *hold_head;
        size_t hold_len;
        uint64_t hold_since;
        unsigned hold_tries;
};

/* upstream-pool.c: idle registry connections between client connections,
 * taken for at most UPSTREAM_POOL_IDLE_MS (the registry keeps idle
 * connections longer; a shorter age makes a close racing with reuse rare,
 * and hold.c retries a GET or HEAD it hits). */
#define UPSTREAM_POOL_MAX 32
#define UPSTREAM_POOL_IDLE_MS 2000

typedef struct PooledUpstream {
        int fd;
        uint64_t idle_since; /* ms, CLOCK_MONOTONIC */
} PooledUpstream;

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
        /* hold.c: when this worker found the registry gone (0: it answers);
         * no request is held beyond upstream_hold after it. */
        uint64_t outage_since;
        unsigned accepted[_PROXY_PORT_MAX]; /* since the last requeue (accept.c) */
        PooledUpstream pool[UPSTREAM_POOL_MAX]; /* upstream-pool.c, oldest first */
        unsigned n_pool;
        /* Scratch space, used synchronously by one connection at a time. */
        Http1Header headers[HTTP1_MAX_HEADERS];
        ForwardScratch forward;
        char head[HTTP1_MAX_HEAD + 4096];
        /* [push] htpasswd: crypt_r()'s scratch and the credentials that
         * passed (htpasswd.h). */
        struct crypt_data crypt;
        HtpasswdCache auth_cache;
};

static inline uint64_t now_ms(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t now_us(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The port's counters (the mapping exists before lockdown: no syscall). */
static inline ProxyPortMetrics *conn_metrics(const Conn *c) {
        return &c->w->p->metrics->port[c->port];
}

/* ---- accept.c ---- */

/* Accepts up to a batch of connections on the port's listening socket. */
void worker_accept(Worker *w, ProxyPort port);

/* Accepting again when it may: returns the ms until then, for
 * epoll_wait()'s timeout (-1: nothing to wait for). */
int worker_accept_resume(Worker *w, uint64_t now);

/* The limits table has no room for a client: warn, once a minute. */
void worker_warn_table_full(Worker *w);

/* The client address as text (IPv4-mapped IPv6 as IPv4; "-" for others). */
void worker_peer_string(const struct sockaddr_storage *ss, char out[static INET6_ADDRSTRLEN]);

/* Admission of the client at ss (text peer) on port: allow_cidrs, then
 * conn_per_ip. false: refused (counted and logged). See accept.c. */
bool worker_admit(Worker *w, ProxyPort port, const struct sockaddr_storage *ss, const char *peer,
                  LimitsKey *ret_key, int *ret_slot, bool *ret_table_full, bool *ret_over);

/* ---- balancer.c ---- */

/* CONN_PROXY_HEADER: reads the trusted balancer's PROXY v2 header (bounded
 * by its length) and admits the client it names. 1 done (now
 * CONN_HANDSHAKE), 0 waiting for bytes, <0 the connection was killed. */
int balancer_read_header(Conn *c);

/* Before the TLS handshake: a PROXY header from an address not trusted
 * is refused (counted, logged, killed: -EPERM). 0 go on, -EAGAIN wait for
 * more bytes. */
int balancer_refuse_header(Conn *c);

/* ---- conn.c ---- */

/* Runs the connection's state machine until nothing moves (or its budget
 * of rounds is spent: then it is resumed after the next epoll_wait()). */
void conn_run(Conn *c);

/* Closes everything at once; the memory goes with worker_reap(). */
void conn_kill(Conn *c);

/* Closes the registry connection and frees its buffers. */
void conn_upstream_close(Conn *c);

/* Flushes cout, then lingers and closes. */
void conn_closing(Conn *c);

/* Waits for the next request, idle_timeout from now. */
void conn_await_request(Conn *c);

/* Holds c back (the rate limit) until at; conn_delay_cancel() ends it. */
void conn_delay(Conn *c, uint64_t at);
void conn_delay_cancel(Conn *c);

/* The sweep's check of one connection: min_rate and its deadline. */
void conn_check_timeouts(Conn *c, uint64_t now);

/* ---- exchange.c ---- */

/* Parses the request head in cin and starts its exchange (or answers it).
 * 1 progress, 0 need more (or delayed), <0 kill. */
int exchange_parse_head(Conn *c);

/* The response head, from uin to cout. 1 progress, 0 nothing, <0 kill. */
int exchange_response_head(Conn *c);

/* Both bodies are through: log, keep or close the registry connection,
 * then the next request or close. */
void exchange_finish(Conn *c);

/* One access-log line and the counters for the exchange, once. */
void exchange_log(Conn *c);

/* Answers with one of our own errors (see exchange.c). */
void exchange_respond_error(Conn *c, int status, const char *code, const char *message, const char *detail,
                            unsigned retry_after, bool keep);

/* "the registry" or "the signature store": this exchange's upstream, for
 * messages. */
const char *exchange_upstream_name(const Conn *c);
/* Connects this exchange to its upstream (exchange_upstream()). */
int exchange_upstream_connect(Conn *c);

/* Upstream trouble: held (hold.c) or 503 before the response head, else a
 * close. */
void exchange_upstream_failed(Conn *c, int error);

void exchange_count_upstream_error(Conn *c, MetricsUpstreamError e);

/* A draining worker keeps an idle pull connection this long for a request
 * already on its way (worker-loop.c). */
#define PROXY_DRAIN_IDLE_GRACE_MS 1000

/* ---- hold.c ---- */

/* Retry-After (seconds) of the 503 for an upstream that is not there. */
#define PROXY_UPSTREAM_RETRY_AFTER 5

/* Keeps a copy of the head just forwarded (n bytes) when the request may
 * wait for a restarting registry: GET or HEAD, no body, to the registry. */
void hold_keep_head(Conn *c, const Http1Request *req, const char *head, size_t n);

/* The upstream failed before a byte of the response (error, a negative
 * errno or 0 for a close): true when the request is held instead, its head
 * back in uout and a retry scheduled (conn_delay); false when it must be
 * answered now. */
bool hold_upstream_failed(Conn *c, int error);

/* The registry answered: the worker's outage is over. */
void hold_upstream_answered(Conn *c);

/* Forgets the kept head (the exchange ended). */
void hold_reset(Conn *c);

/* ---- pump.c ---- */

/* Reads from an endpoint into a buffer, if it is readable. 1 progress,
 * 0 nothing, 2 EOF (now), <0 error. */
int pump_fill(IoEndpoint *e, Buf *b);

/* Writes a buffer to an endpoint until empty or it would block. 1
 * progress, 0 nothing, <0 error. */
int pump_flush(IoEndpoint *e, Buf *b);

/* The request body, cin to uout (re-framed when chunked). */
int pump_request_body(Conn *c);

/* A chunked response body, uin to cout. */
int pump_response_body(Conn *c);

/* upstream-pool.c. put: true when the pool took fd (idle since
 * idle_since), false when the caller still owns it. take: a connected
 * registry socket out of the epoll set, or -1. sweep: closes the stale. */
bool upstream_pool_put(Worker *w, int fd, uint64_t idle_since);
int upstream_pool_take(Worker *w, uint64_t now);
void upstream_pool_sweep(Worker *w, uint64_t now);

/* A pass-through response body, uin straight to the client. */
int pump_response_direct(Conn *c);

/* The first bytes of a pass-through body joined to the head in cout, up to
 * one TLS record. */
int pump_response_coalesce(Conn *c);
