/* SPDX-License-Identifier: MIT */
/*
 * One exchange of a proxy worker's connection: a request head from cin,
 * judged by the port's policy (client certificate, rate limit, the route
 * policy in forward.c) and either answered by the proxy itself or sent
 * upstream as forward_request() rebuilt it; the response head, re-framed
 * for the client; the end of the exchange (access log, keep-alive). Which
 * upstream an exchange goes to is exchange_upstream(), and nothing else.
 *
 * A request the rate limit delays ([push] delay = yes, see ratelimit.h)
 * stays unprocessed in cin, and the client is not read, until its time
 * (conn_delay()). Its head is then parsed again (parsing is stateless)
 * and goes on without taking another token.
 */

#include <errno.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crl-route.h"
#include "headers.h"
#include "macro.h"
#include "ratelimit.h"
#include "sockopen.h"
#include "worker.h"

/* Counts a failure of the registry, by kind, on the port's counters. */
void exchange_count_upstream_error(Conn *c, MetricsUpstreamError e) {
        proxy_metrics_inc(&conn_metrics(c)->upstream_errors[e]);
}

void exchange_log(Conn *c) {
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
        c->upstream_poolable = false; /* this exchange may use it */
        c->resp_stage = RESP_DONE;
        c->resp_dechunk = c->resp_close = false;
        c->version_check = false;
        hold_reset(c);
}

/* The proxy's own answer of n bytes is in cout: log the exchange and go on
 * to the next request, or close after flushing. */
static void exchange_responded(Conn *c, int status, size_t n, bool close) {
        c->status = status;
        c->bytes_out += (uint64_t)n;
        exchange_log(c);
        conn_upstream_close(c);
        if (close)
                conn_closing(c);
        else
                conn_await_request(c);
}

static void exchange_respond_headers_error(Conn *c, HeadersError *e, bool keep);

/* Answers with one of our own errors and closes the connection after it
 * (keep is true only for requests without a body the proxy fully read).
 * Nothing of the request has reached, or will reach, the registry. */
void exchange_respond_error(Conn *c, int status, const char *code, const char *message, const char *detail,
                            unsigned retry_after, bool keep) {
        HeadersError e = {
                .status = status,
                .code = code,
                .message = message,
                .detail = detail,
                .retry_after = retry_after,
        };
        exchange_respond_headers_error(c, &e, keep);
}

/* exchange_respond_error() with every field of HeadersError the caller's;
 * close and head are this exchange's. */
static void exchange_respond_headers_error(Conn *c, HeadersError *e, bool keep) {
        int n;

        e->close = !keep || c->w->draining || !c->client_keep_alive;
        e->head = c->head_request;
        n = headers_error(e, c->w->head, sizeof(c->w->head));
        if (n < 0 || (size_t)n > buf_room(&c->cout) || buf_append(&c->cout, c->w->head, (size_t)n) < 0) {
                conn_kill(c);
                return;
        }
        exchange_responded(c, e->status, (size_t)n, e->close);
}

/* A route the proxy answers itself (route.h, route_decision_local()): the
 * CAs' CRLs (crl-route.c), from the context this connection was accepted
 * with. The whole answer goes to cout at once, as our errors do; a CRL
 * that does not fit (some 1,700 revocations) is a 503, not a partial one. */
static void exchange_respond_local(Conn *c, RouteDecision d, bool keep) {
        bool close = !keep || c->w->draining || !c->client_keep_alive;
        const unsigned char *body = NULL;
        size_t body_len = 0;
        int n;

        n = crl_route_respond(c->w->p->ctx[c->port], d, close, c->w->head, sizeof(c->w->head), &body, &body_len);
        if (n < 0 || (size_t)n + body_len > buf_room(&c->cout)) {
                exchange_respond_error(c, 503, "UNAVAILABLE", "the CRL cannot be served",
                                       n == -ENOENT ? "the proxy has not loaded it" : "it is too large to serve", 0,
                                       keep);
                return;
        }
        if (c->head_request)
                body_len = 0;
        if (buf_append(&c->cout, c->w->head, (size_t)n) < 0 || buf_append(&c->cout, body, body_len) < 0) {
                conn_kill(c);
                return;
        }
        exchange_responded(c, 200, (size_t)n + body_len, close);
}

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

/* Which upstream this exchange goes to: the signature store for the
 * extension's routes (c->to_sigstore, from the route policy's decision in
 * exchange_forward_head()), the registry for everything else. Both
 * addresses are made by the parent before lockdown (the worker opens
 * nothing after it), and a kept connection to one is never reused for the
 * other (exchange_forward_head()). */
static const struct sockaddr *exchange_upstream(const Conn *c, socklen_t *ret_len) {
        const ProxyContext *p = c->w->p;

        if (c->to_sigstore) {
                *ret_len = p->sigstore_len;
                return (const struct sockaddr *)&p->sigstore;
        }
        *ret_len = p->upstream_len;
        return (const struct sockaddr *)&p->upstream;
}

const char *exchange_upstream_name(const Conn *c) {
        return c->to_sigstore ? "the signature store" : "the registry";
}

/* Connects, non-blocking, to exchange_upstream(). 0 or a negative errno. */
int exchange_upstream_connect(Conn *c) {
        socklen_t len;
        const struct sockaddr *addr = exchange_upstream(c, &len);
        int fd, r;

        /* A pooled registry connection first (upstream-pool.c): connected,
         * TCP_NODELAY set, idle, out of the epoll set. */
        fd = c->to_sigstore ? -1 : upstream_pool_take(c->w, now_ms());
        if (fd >= 0)
                goto watch;
        fd = sockopen_connect(addr, len);
        if (fd < 0)
                return fd;
        if (addr->sa_family != AF_UNIX) {
                int one = 1;
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
watch:
        c->upstream = (IoEndpoint){.fd = fd, .ops = &io_plain_ops, .readable = true};
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->uw};
        if (epoll_ctl(c->w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                r = negative_errno();
                conn_upstream_close(c);
                return r;
        }
        return 0;
}

/* A client the limits table has no room for (ratelimit.h) is refused, never
 * served unlimited: 503 and close, once the handshake lets it hear why. */
static int exchange_refuse_table_full(Conn *c, size_t head_len) {
        buf_consume(&c->cin, head_len);
        exchange_respond_error(c, 503, "UNAVAILABLE", "too many clients",
                               "the proxy's per-client limits table is full", 1, false);
        return 1;
}

/* `regvisor gc` holds its window (proxy-config.h, push_closed): a write on
 * the push port is answered 503 with Retry-After before anything reaches
 * the registry, which is about to run read-only or is collecting. Reads go
 * on. 1 when answered. */
static int exchange_refuse_maintenance(Conn *c, size_t head_len, bool no_body) {
        if (c->port != PROXY_PUSH || !c->w->c->push_closed || streq(c->method, "GET") || streq(c->method, "HEAD"))
                return 0;
        buf_consume(&c->cin, head_len);
        exchange_respond_error(c, 503, "UNAVAILABLE", "registry maintenance: pushes are paused",
                               "regvisor gc is reclaiming space; retry after the given time",
                               c->w->c->push_retry_after, no_body);
        return 1;
}

/* What the log and the response need of the request. */
static void exchange_note_request(Conn *c, const Http1Request *req, size_t head_len) {
        (void)snprintf(c->method, sizeof(c->method), "%.*s", (int)req->method_len, req->method);
        (void)snprintf(c->path, sizeof(c->path), "%.*s", (int)req->target_len, req->target);
        c->head_request = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
        c->client_keep_alive = req->keep_alive;
        c->client_http10 = req->minor_version == 0;
        c->bytes_in = head_len;
}

/* The push port serves only a valid client certificate: 1 when the
 * request was answered (refused), 0 to go on. */
static int exchange_check_certificate(Conn *c, size_t head_len) {
        if (c->port != PROXY_PUSH || c->verdict == TLS_CLIENT_OK)
                return 0;
        buf_consume(&c->cin, head_len);
        if (c->verdict == TLS_CLIENT_NONE)
                exchange_respond_error(c, 400, "UNAUTHORIZED", "No required SSL certificate was sent",
                                       "this port requires a client certificate issued by the registry's client CA",
                                       0, false);
        else
                exchange_respond_error(c, 400, "UNAUTHORIZED", "The SSL certificate error", c->verdict_reason, 0,
                                       false);
        return 1;
}

/* [push] htpasswd (htpasswd.h): a valid certificate must come with valid
 * Basic credentials, else 401 with the Basic challenge. Credentials that
 * passed are remembered by the worker (bound to the CN), so bcrypt runs
 * once per worker, not per request. 1 when answered, 0 to go on. */
static int exchange_check_auth(Conn *c, const Http1Request *req, size_t head_len) {
        Worker *w = c->w;
        const Http1Header *auth = NULL;
        char buf[HTPASSWD_USER_MAX + HTPASSWD_PASSWORD_MAX + 8];
        unsigned char key[32];
        const char *user, *password;
        unsigned seen = 0;
        bool ok = false;

        if (c->port != PROXY_PUSH || !w->c->htpasswd_path)
                return 0;
        for (size_t i = 0; i < req->n_headers; i++)
                if (http1_header_is(&w->headers[i], "Authorization")) {
                        auth = &w->headers[i];
                        seen++;
                }
        if (seen == 1) {
                htpasswd_cache_key(c->cn, auth->value, auth->value_len, key);
                ok = htpasswd_cache_has(&w->auth_cache, key);
                if (!ok && htpasswd_basic_decode(auth->value, auth->value_len, buf, sizeof(buf), &user,
                                                 &password) == 0) {
                        ok = htpasswd_verify(&w->c->htpasswd, user, password, &w->crypt);
                        if (ok)
                                htpasswd_cache_add(&w->auth_cache, key);
                }
                OPENSSL_cleanse(buf, sizeof(buf));
        }
        if (ok)
                return 0;
        proxy_metrics_inc(&conn_metrics(c)->auth_failed);
        if (seen > 0)
                log_event(LOG_NOTICE, "refused", "push %s refused: wrong [push] htpasswd credentials (client '%s')",
                          c->peer, c->cn);
        buf_consume(&c->cin, head_len);
        HeadersError e = {
                .status = 401,
                .code = "UNAUTHORIZED",
                .message = "authentication required",
                .detail = seen > 0 ? "the credentials are not valid for this registry"
                                   : "this port requires Basic credentials besides the client certificate",
                .basic_challenge = true,
        };
        /* The first try of every client comes without credentials: keep the
         * connection when no body follows. */
        exchange_respond_headers_error(c, &e, req->body == HTTP1_BODY_NONE ||
                                                      (req->body == HTTP1_BODY_LENGTH && req->content_length == 0));
        return 1;
}

/* A client known by its certificate (a valid one on the push port) is
 * limited as itself, not by the address it comes from: a CI runner behind
 * a NAT shares nothing with its neighbours, and an anonymous address there
 * gets no further than the certificate check anyway. */
static bool exchange_known_client(const Conn *c) {
        return c->port == PROXY_PUSH && c->verdict == TLS_CLIENT_OK && c->subject[0] != 0;
}

/* A connection accepted over conn_per_ip (accept.c): 429 with Retry-After
 * and close, the status nginx's limit_conn answers with, unless the client
 * is known by its certificate. 1 when answered, 0 to go on. */
static int exchange_check_conn_limit(Conn *c, size_t head_len) {
        if (!c->conn_over || exchange_known_client(c))
                return 0;
        proxy_metrics_inc(&conn_metrics(c)->conn_limited);
        log_event(LOG_NOTICE, "refused", "%s %s refused: more than conn_per_ip=%u connections",
                  proxy_port_name(c->port), c->peer, c->w->c->port[c->port].conn_per_ip);
        buf_consume(&c->cin, head_len);
        exchange_respond_error(c, 429, "TOOMANYREQUESTS", "too many connections",
                               "more connections from this address than the registry allows at once", 1, false);
        return 1;
}

/* The port's rate limit (ratelimit.h): 1 when the request was answered
 * (429, or 503 when the limits table is full), 0 when it waits for its
 * token (c->delay_until), -1 to go on. no_body: a refusal may keep the
 * connection. The bucket is the address's, or a known client's own. */
static int exchange_take_rate(Conn *c, size_t head_len, bool no_body) {
        Worker *w = c->w;
        const ProxyPortConfig *pc = &w->c->port[c->port];
        unsigned retry = 1;
        uint64_t delay_ms = 0;
        LimitsKey key = c->key;
        int r;

        if (c->rate_taken) {
                c->rate_taken = false; /* taken before the delay */
                return -1;
        }
        if (c->limits_full)
                return exchange_refuse_table_full(c, head_len); /* counted at accept */
        if (exchange_check_conn_limit(c, head_len))
                return 1;
        if (!w->p->limits || pc->rate <= 0)
                return -1;
        /* Should hashing fail, the address's bucket still limits it. */
        if (exchange_known_client(c))
                (void)limits_key_from_identity(c->subject, (uint8_t)c->port, &key);
        r = limits_rate_take(w->p->limits, &key, pc->rate, pc->burst, now_ms(), &retry,
                             pc->delay ? &delay_ms : NULL);
        if (r == -ENOSPC) {
                proxy_metrics_inc(&conn_metrics(c)->limits_table_full);
                worker_warn_table_full(w);
                return exchange_refuse_table_full(c, head_len);
        }
        if (r == 0) {
                proxy_metrics_inc(&conn_metrics(c)->rate_limited);
                buf_consume(&c->cin, head_len);
                exchange_respond_error(c, 429, "TOOMANYREQUESTS", "too many requests", NULL, retry, no_body);
                return 1;
        }
        if (delay_ms == 0)
                return -1;
        /* Within the burst but ahead of the rate: the head stays in cin,
         * nothing more is read or sent. */
        proxy_metrics_inc(&conn_metrics(c)->rate_delayed);
        c->rate_taken = true;
        conn_delay(c, now_ms() + delay_ms);
        return 0;
}

/* Push scopes (common/scope.h): a write outside the client's scope is
 * answered 403 here, after the route policy (on the path it normalized)
 * and before a byte of it reaches the registry or the signature store.
 * 1 when answered, 0 to go on. */
static int exchange_check_scope(Conn *c, const Http1Request *req, size_t head_len) {
        const ForwardScratch *f = &c->w->forward;
        bool no_body = req->body == HTTP1_BODY_NONE || (req->body == HTTP1_BODY_LENGTH && req->content_length == 0);
        char detail[160 + SCOPE_NAME_MAX + 256];
        const char *repo = NULL;
        size_t len = 0;
        ScopeVerdict v;

        if (c->port != PROXY_PUSH)
                return 0;
        v = scope_check_request(&c->w->c->scopes, c->cn, req->method, req->method_len, f->path, f->path_len, &repo,
                                &len);
        if (v == SCOPE_ALLOW)
                return 0;
        /* The CN is visible ASCII (tls_client_cn()), the name pchar of a
         * normalized path: nothing to escape. */
        (void)snprintf(detail, sizeof(detail), "%s (client '%s'%s%.*s)", scope_verdict_string(v), c->cn,
                       repo ? ", repository " : "", repo ? (int)len : 0, repo ? repo : "");
        log_event(LOG_NOTICE, "refused", "push %s refused: %s", c->peer, detail);
        proxy_metrics_inc(&conn_metrics(c)->scope_denied);
        buf_consume(&c->cin, head_len);
        exchange_respond_error(c, 403, "DENIED", "requested access to the resource is denied", detail, 0, no_body);
        return 1;
}

/* The route policy and the head sent upstream (forward.c), into uout: 0
 * when it is there, 1 when the request was answered instead. */
static int exchange_forward_head(Conn *c, const Http1Request *req, size_t head_len) {
        Worker *w = c->w;
        ForwardPolicy fp = {
                .push = c->port == PROXY_PUSH,
                .port_number = w->c->port[c->port].listen_port,
                .server_names = w->c->server_names,
                .n_server_names = w->c->n_server_names,
                .max_body = w->c->tuning.max_body,
                .sigstore = w->p->sigstore_len > 0,
        };
        ForwardClient fc = {
                .peer = c->peer,
                .sni = SSL_get_servername(c->client.ssl, TLSEXT_NAMETYPE_host_name),
                .subject = c->subject,
        };
        ForwardRefusal refusal;
        int n;

        n = forward_request(&fp, &fc, req, w->headers, &w->forward, w->head, sizeof(w->head), &refusal);
        if (n == 0 || (n > 0 && (size_t)n > buf_room(&c->uout))) {
                buf_consume(&c->cin, head_len);
                if (n == 0 && route_decision_local(refusal.route))
                        exchange_respond_local(c, refusal.route, refusal.may_keep);
                else if (n == 0)
                        exchange_respond_error(c, refusal.status, refusal.code, refusal.message, refusal.detail, 0,
                                               refusal.may_keep);
                else
                        exchange_respond_error(c, 431, "BAD_REQUEST", "request head too large", NULL, 0, false);
                return 1;
        }
        if (exchange_check_scope(c, req, head_len))
                return 1;
        /* A kept connection that is not idle, or to the other upstream, is
         * not reused (this frees uout, which holds nothing of this request
         * yet). */
        bool to_sigstore = w->forward.route == ROUTE_SIGSTORE;
        if (c->upstream.fd >= 0 && (c->to_sigstore != to_sigstore || !upstream_idle(c)))
                conn_upstream_close(c);
        c->to_sigstore = to_sigstore;
        c->version_check = fp.sigstore && route_is_version_check(w->forward.path, w->forward.path_len);
        if (n < 0 || buf_append(&c->uout, w->head, (size_t)n) < 0) {
                buf_consume(&c->cin, head_len);
                exchange_respond_error(c, 431, "BAD_REQUEST", "request head too large", NULL, 0, false);
                return 1;
        }
        hold_keep_head(c, req, w->head, (size_t)n);
        buf_consume(&c->cin, head_len);
        return 0;
}

/* The head went into uout: the request body's framing, 100 Continue, and
 * CONN_FORWARD. 1, or <0 to kill. */
static int exchange_forward(Conn *c, const Http1Request *req) {
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
        c->deadline = now_ms() + (uint64_t)c->w->c->tuning.idle_timeout * 1000;
        return 1;
}

/* A complete request head of head_len bytes is in cin. Returns 1 when the
 * exchange started (or was answered), 0 when the rate limit delays it
 * (c->delay_until), <0 to kill. */
static int exchange_start(Conn *c, const Http1Request *req, size_t head_len) {
        /* Whether a refusal may keep the connection: only when no body
         * follows that we would have to skip. */
        bool no_body = req->body == HTTP1_BODY_NONE || (req->body == HTTP1_BODY_LENGTH && req->content_length == 0);
        int r;

        exchange_note_request(c, req, head_len);
        if (exchange_check_certificate(c, head_len))
                return 1;
        /* After the rate limit: it bounds the bcrypt attempts of a
         * certificate too. */
        r = exchange_take_rate(c, head_len, no_body);
        if (r >= 0)
                return r;
        if (exchange_check_auth(c, req, head_len))
                return 1;
        if (exchange_refuse_maintenance(c, head_len, no_body))
                return 1;
        if (exchange_forward_head(c, req, head_len))
                return 1;
        return exchange_forward(c, req);
}

/* Parses what cin holds. 1 progress, 0 need more, <0 kill. */
int exchange_parse_head(Conn *c) {
        Worker *w = c->w;
        Http1Request req = {};
        int n;

        if (buf_len(&c->cin) == 0 || buf_len(&c->cout) > 0 || c->delay_until > 0)
                return 0;
        if (!c->head_timer) {
                c->head_timer = true;
                c->deadline = now_ms() + (uint64_t)w->c->tuning.header_timeout * 1000;
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
                exchange_respond_error(c, http1_error_status(req.error), "BAD_REQUEST", "malformed HTTP request",
                                   http1_error_string(req.error), 0, false);
                return 1;
        }
        return exchange_start(c, &req, (size_t)n);
}

/* The response head, from uin to cout. 1 progress, 0 nothing, <0 kill. */
int exchange_response_head(Conn *c) {
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
                exchange_count_upstream_error(c, METRICS_UPSTREAM_PROTOCOL);
                log_warning("proxy: invalid response from the registry: %s",
                            http1_error_string(n == -2 ? HTTP1_ERR_HEAD_TOO_LARGE : resp.error));
                exchange_respond_error(c, 502, "UNAVAILABLE", "invalid response from the registry",
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
        /* A registry that answers before it has the whole request body may
         * still hold unread body bytes, which it would take for the next
         * request on this connection, maybe another client's (the pool):
         * such a connection is never reused. */
        c->upstream_keep_alive = resp.keep_alive && c->req_done;
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
                .supports_signatures = c->version_check,
        };
        int h = headers_response(&resp, w->headers, resp.n_headers, &o, w->head, sizeof(w->head));
        if (h < 0) {
                exchange_count_upstream_error(c, METRICS_UPSTREAM_PROTOCOL);
                exchange_respond_error(c, 502, "UNAVAILABLE", "response head too large", NULL, 0, false);
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

/* The exchange is over when both bodies are through: log, then either
 * wait for the next request or close. */
void exchange_finish(Conn *c) {
        exchange_log(c);
        /* Kept for the next request only when the response ended exactly
         * at its framing boundary and the registry has read the whole
         * request: bytes after the response would be handed to the next
         * request as its answer. Bytes already read (uin) are checked
         * here; bytes still in the socket are checked once, right before
         * the connection is reused (upstream_idle() in
         * exchange_forward_head()): a check here as well would cost a
         * system call per exchange and prove nothing about the bytes that
         * arrive after it. */
        if (!c->upstream_keep_alive || !c->req_done || c->resp_body == HTTP1_BODY_UNTIL_CLOSE ||
            buf_len(&c->uin) > 0 || buf_len(&c->uout) > 0)
                conn_upstream_close(c);
        else {
                buf_release(&c->uin);
                buf_release(&c->uout);
                /* The exchange's own upstream events are no news about the
                 * idle connection: only one that comes later makes the
                 * idle check (conn.c) peek; what is already there waits
                 * for the check before reuse. */
                c->upstream_event = false;
                c->upstream_poolable = true;
                c->upstream_idle_since = now_ms();
        }
        if (c->resp_close)
                conn_closing(c);
        else
                conn_await_request(c);
}

/* Upstream trouble before the response head: held (hold.c), or 503 with
 * Retry-After (504 from the sweep); after it, nothing can be said to the
 * client but a close. */
void exchange_upstream_failed(Conn *c, int error) {
        if (hold_upstream_failed(c, error))
                return;
        /* Refused before a byte went through: the registry is not there
         * (a loopback TCP connect() fails late, at the first write). */
        exchange_count_upstream_error(c, !c->upstream_used && (error == -ECONNREFUSED || error == -ENOENT ||
                                                      error == -ENETUNREACH || error == -EHOSTUNREACH)
                                        ? METRICS_UPSTREAM_CONNECT
                                        : METRICS_UPSTREAM_RESET);
        if (c->resp_stage == RESP_HEAD && c->status == 0) {
                /* Gone (a restart, a crash): retryable, 503 and Retry-After. */
                log_warning_errno(error, "proxy: %s failed a request: %m", exchange_upstream_name(c));
                exchange_respond_error(c, 503, "UNAVAILABLE",
                                       c->to_sigstore ? "the signature store is unavailable"
                                                      : "the registry is unavailable",
                                       error == -ECONNRESET || error == 0 ? "connection closed by the upstream"
                                                                          : strerror(-error),
                                       PROXY_UPSTREAM_RETRY_AFTER, false);
        } else {
                c->status = c->status ? c->status : 502;
                exchange_log(c);
                conn_kill(c);
        }
}
