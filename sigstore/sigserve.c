/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"
#include "log.h"
#include "macro.h"
#include "sigcheck.h"
#include "sighandle.h"
#include "sigjson.h"
#include "sigserve.h"

/* After an answer that closes the connection (an error), what the client still sends is read
 * and dropped for up to this long and this much before the close: closing with unread input
 * makes the kernel reset the connection, and the client may then lose the answer (a 413 for a
 * body it is still sending). nginx's lingering_close, in small. */
#define DRAIN_MS 2000
#define DRAIN_MAX (1024 * 1024)

/* A head, a body and chunked framing around it; a pipelined request behind. */
#define IN_MAX (HTTP1_MAX_HEAD + SIGSTORE_MAX_BODY + 16 * 1024)
#define OUT_HEAD_MAX 512

typedef struct Conn {
        int fd;
        char *in; /* IN_MAX bytes */
        size_t in_len;
        /* The request being read: head parsed when head_len > 0. */
        size_t head_len;
        Http1Request req;
        Http1Header headers[HTTP1_MAX_HEADERS];
        Http1Chunked chunked;
        size_t raw_body; /* body bytes consumed from in after the head */
        char *body;      /* decoded body, SIGSTORE_MAX_BODY bytes */
        size_t body_len;
        bool continue_sent;
        /* The answer being written. */
        char *out;
        size_t out_len, out_off;
        bool close_after;
        bool eof;      /* the peer closed its side: answer what is complete, then close */
        bool draining; /* answered and shut down for writing: reading the rest away, then close */
        size_t drained;
        uint64_t deadline_ms;
} Conn;

static uint64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void conn_free(Conn *c) {
        if (!c)
                return;
        if (c->fd >= 0)
                (void) close(c->fd);
        free(c->in);
        free(c->body);
        free(c->out);
        free(c);
}

static const char *reason(int status) {
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 413: return "Content Too Large";
        case 417: return "Expectation Failed";
        case 431: return "Request Header Fields Too Large";
        case 505: return "HTTP Version Not Supported";
        case 503: return "Service Unavailable";
        case 507: return "Insufficient Storage";
        default: return "Internal Server Error";
        }
}

/* Queues the answer: status line, headers, and body unless head_only. Takes nothing over;
 * body is copied. */
static int conn_queue(Conn *c, int status, const char *body, size_t body_len, bool head_only, bool close) {
        char head[OUT_HEAD_MAX];
        int n;

        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\n"
                     "%s"
                     "Content-Length: %zu\r\n"
                     "Docker-Distribution-Api-Version: registry/2.0\r\n"
                     "%s"
                     "%s"
                     "%s"
                     "\r\n",
                     status, reason(status), body_len ? "Content-Type: application/json\r\n" : "", body_len,
                     status == 405 ? "Allow: GET, HEAD, PUT\r\n" : "", status == 503 ? "Retry-After: 1\r\n" : "",
                     close ? "Connection: close\r\n" : "");
        if (n < 0 || (size_t) n >= sizeof(head))
                return -EINVAL;
        if (head_only)
                body_len = 0;

        free(c->out);
        c->out = malloc((size_t) n + body_len);
        if (!c->out)
                return -ENOMEM;
        memcpy(c->out, head, (size_t) n);
        if (body_len)
                memcpy(c->out + n, body, body_len);
        c->out_len = (size_t) n + body_len;
        c->out_off = 0;
        c->close_after = close;
        c->deadline_ms = now_ms() + SIGSERVE_TIMEOUT_SEC * 1000;
        return 0;
}

/* Answers a request refused before it reached the handler (framing, size), and closes. */
static int conn_refuse(Conn *c, int status, const char *code, const char *message) {
        _cleanup_free_ char *json = NULL;
        size_t len = 0;
        int r;

        r = sigjson_error(code, message, &json, &len);
        if (r < 0)
                return r;
        log_event(LOG_NOTICE, "sigstore-refused", "status=%d code=%s", status, code);
        return conn_queue(c, status, json, len, false, true);
}

static void log_access(const Conn *c, const SigReply *rep) {
        char method[32], repo[300];

        char error[800];

        /* A failure of the store itself (500, 503): its message says why, and is ours, not the
         * client's (escaped all the same: it quotes the registry's answer). */
        log_event(rep->status >= 500 ? LOG_WARNING : LOG_INFO, "sigstore-access",
                  "method=%s status=%d repository=%s digest=%s code=%s%s%s",
                  log_escape_value(c->req.method, c->req.method_len, method, sizeof(method)), rep->status,
                  log_escape(rep->repository, repo, sizeof(repo)), rep->digest[0] ? rep->digest : "-",
                  rep->code ? rep->code : "-", rep->status >= 500 && rep->body ? " error=" : "",
                  rep->status >= 500 && rep->body ? log_escape_value(rep->body, rep->body_len, error, sizeof(error))
                                                  : "");
}

static int conn_dispatch(Conn *c, const SigBackend *b) {
        SigReply rep;
        bool head = c->req.method_len == 4 && memcmp(c->req.method, "HEAD", 4) == 0;
        int r;

        if (b->registry)
                b->registry->n_skipped = 0;
        r = sighandle_request(b, c->req.method, c->req.method_len, c->req.target, c->req.target_len, c->body,
                              c->body_len, &rep);
        if (r < 0) {
                sig_reply_done(&rep);
                return r;
        }
        log_access(c, &rep);
        /* One line per request however many were left out (the others were served): a registry
         * full of junk at signature tags does not flood the journal. */
        if (b->registry && b->registry->n_skipped > 0) {
                char repo[300], why[400];

                log_event(LOG_WARNING, "sigstore-skipped", "repository=%s digest=%s skipped=%u first=%s",
                          log_escape(rep.repository, repo, sizeof(repo)), rep.digest[0] ? rep.digest : "-",
                          b->registry->n_skipped, log_escape(b->registry->skipped, why, sizeof(why)));
        }
        r = conn_queue(c, rep.status, rep.body, rep.body_len, head, !c->req.keep_alive);
        sig_reply_done(&rep);
        return r;
}

/* Consumes body bytes from in after the head. Returns 1 when the body is complete, 0 for more,
 * or queues a refusal and returns 2. */
static int conn_read_body(Conn *c) {
        const char *p = c->in + c->head_len;
        size_t avail = c->in_len - c->head_len;

        switch (c->req.body) {
        case HTTP1_BODY_NONE:
                return 1;
        case HTTP1_BODY_LENGTH:
                if (avail < c->req.content_length)
                        return 0;
                memcpy(c->body, p, (size_t) c->req.content_length);
                c->body_len = c->raw_body = (size_t) c->req.content_length;
                return 1;
        case HTTP1_BODY_CHUNKED:
                while (c->raw_body < avail && !http1_chunked_done(&c->chunked)) {
                        size_t off, dlen;
                        ssize_t n = http1_chunked_feed(&c->chunked, p + c->raw_body, avail - c->raw_body, &off,
                                                       &dlen);

                        if (n < 0)
                                return conn_refuse(c, 400, "SIGNATURE_INVALID", "malformed chunked body") < 0 ? -1 : 2;
                        if (c->body_len + dlen > SIGSTORE_MAX_BODY)
                                return conn_refuse(c, 413, "SIZE_INVALID", "the body is too large") < 0 ? -1 : 2;
                        memcpy(c->body + c->body_len, p + c->raw_body + off, dlen);
                        c->body_len += dlen;
                        c->raw_body += (size_t) n;
                }
                return http1_chunked_done(&c->chunked) ? 1 : 0;
        default:
                return conn_refuse(c, 400, "UNSUPPORTED", "unsupported body framing") < 0 ? -1 : 2;
        }
}

/* Works on what is buffered: parses a head, reads its body, answers. Returns 0 (wait for more
 * input or for the answer to leave), or a negative errno to close the connection. */
static int conn_process(Conn *c, const SigBackend *b) {
        int r;

        if (c->out)
                return 0; /* one answer at a time */

        if (c->head_len == 0) {
                r = http1_parse_request(c->in, c->in_len, &c->req, c->headers, ELEMENTSOF(c->headers));
                if (r == -2)
                        return 0;
                if (r < 0)
                        return conn_refuse(c, http1_error_status(c->req.error), "UNSUPPORTED",
                                           http1_error_string(c->req.error));
                c->head_len = (size_t) r;
                http1_chunked_init(&c->chunked);
                c->raw_body = c->body_len = 0;
                c->continue_sent = false;
                if (c->req.body == HTTP1_BODY_LENGTH && c->req.content_length > SIGSTORE_MAX_BODY)
                        return conn_refuse(c, 413, "SIZE_INVALID", "the body is too large");
        }

        r = conn_read_body(c);
        if (r < 0)
                return -ENOMEM;
        if (r == 2)
                return 0;
        if (r == 0) {
                if (c->req.expect_continue && !c->continue_sent) {
                        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                        /* Best effort: a full socket buffer here means the client sent its body
                         * anyway, which is what 100 would have asked for. */
                        (void) send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                        c->continue_sent = true;
                }
                if (c->in_len >= IN_MAX)
                        return conn_refuse(c, 413, "SIZE_INVALID", "the body is too large");
                return 0;
        }

        r = conn_dispatch(c, b);
        if (r < 0)
                return r;
        /* Keep what follows (a pipelined request) for after the answer. */
        memmove(c->in, c->in + c->head_len + c->raw_body, c->in_len - c->head_len - c->raw_body);
        c->in_len -= c->head_len + c->raw_body;
        c->head_len = 0;
        return 0;
}

/* Writes what it can of the answer. Returns 1 when it is all out, 0 when the socket is full,
 * negative to close. */
static int conn_flush(Conn *c) {
        while (c->out_off < c->out_len) {
                /* Non-blocking, and the store handles no signal: no EINTR. */
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n < 0)
                        return negative_errno();
                c->out_off += (size_t) n;
        }
        free(c->out);
        c->out = NULL;
        if (c->close_after) {
                if (c->eof || shutdown(c->fd, SHUT_WR) < 0)
                        return -ECONNRESET;
                c->draining = true;
                c->deadline_ms = now_ms() + DRAIN_MS;
                return 0;
        }
        c->deadline_ms = now_ms() + SIGSERVE_TIMEOUT_SEC * 1000;
        return 1;
}

/* Reads and drops input after a closing answer; negative when it is time to close. */
static int conn_drain(Conn *c) {
        char scratch[16 * 1024];

        for (;;) {
                ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);

                if (n < 0 && errno == EAGAIN)
                        return 0;
                if (n <= 0)
                        return -ECONNRESET;
                c->drained += (size_t) n;
                if (c->drained > DRAIN_MAX)
                        return -ECONNRESET;
        }
}

/* Reads what is there. Returns 0, or negative to close (EOF, error, or a full buffer that the
 * parser still calls incomplete, which conn_process() has answered already). */
static int conn_fill(Conn *c) {
        for (;;) {
                ssize_t n;

                if (c->in_len >= IN_MAX)
                        return 0; /* conn_process() decides; nothing read beyond */
                n = recv(c->fd, c->in + c->in_len, IN_MAX - c->in_len, 0);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0)
                        return errno == EAGAIN ? 0 : negative_errno();
                c->in_len += (size_t) n;
        }
}

/* One round of work on a connection after an event. Returns negative to close it. */
static int conn_step(Conn *c, int epoll_fd, const SigBackend *b, uint32_t events) {
        int r;

        if (c->draining)
                return conn_drain(c);

        if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                r = conn_fill(c);
                /* A peer that half-closed after its request still gets the answer. */
                if (r == -ECONNRESET)
                        c->eof = true;
                else if (r < 0)
                        return r;
        }
        for (;;) {
                r = conn_process(c, b);
                if (r < 0)
                        return r;
                if (!c->out)
                        break;
                r = conn_flush(c);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }
        if (c->eof && !c->out)
                return -ECONNRESET; /* nothing left to answer */
        if (c->draining) {
                r = conn_drain(c);
                if (r < 0)
                        return r;
        }
        return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd,
                         &(struct epoll_event){.events = c->out ? EPOLLOUT : EPOLLIN, .data.ptr = c}) < 0
                       ? negative_errno()
                       : 0;
}

static Conn *conn_new(int fd) {
        Conn *c = calloc(1, sizeof(Conn));

        if (!c)
                return NULL;
        c->fd = fd;
        c->in = malloc(IN_MAX);
        c->body = malloc(SIGSTORE_MAX_BODY);
        if (!c->in || !c->body) {
                c->fd = -EBADF;
                conn_free(c);
                return NULL;
        }
        c->deadline_ms = now_ms() + SIGSERVE_TIMEOUT_SEC * 1000;
        return c;
}

typedef struct Server {
        int epoll_fd, listen_fd;
        Conn *conns[SIGSERVE_MAX_CONNECTIONS];
        size_t n_conns;
} Server;

static void server_drop(Server *s, Conn *c) {
        for (size_t i = 0; i < s->n_conns; i++)
                if (s->conns[i] == c) {
                        s->conns[i] = s->conns[--s->n_conns];
                        break;
                }
        (void) epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        conn_free(c);
}

static void server_accept(Server *s) {
        for (;;) {
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                Conn *c;

                if (fd < 0)
                        return; /* EAGAIN, or a transient error: the next wake-up retries */
                if (s->n_conns >= SIGSERVE_MAX_CONNECTIONS) {
                        log_event(LOG_WARNING, "sigstore-busy", "%d connections open; closing a new one",
                                  SIGSERVE_MAX_CONNECTIONS);
                        (void) close(fd);
                        continue;
                }
                c = conn_new(fd);
                if (!c) {
                        (void) close(fd);
                        continue;
                }
                if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &(struct epoll_event){.events = EPOLLIN, .data.ptr = c}) < 0) {
                        conn_free(c);
                        continue;
                }
                s->conns[s->n_conns++] = c;
        }
}

/* Closes connections past their deadline; returns the epoll timeout until the next one. */
static int server_expire(Server *s) {
        uint64_t now = now_ms(), next = UINT64_MAX;

        for (size_t i = 0; i < s->n_conns;) {
                Conn *c = s->conns[i];

                if (c->deadline_ms <= now) {
                        server_drop(s, c);
                        continue;
                }
                if (c->deadline_ms < next)
                        next = c->deadline_ms;
                i++;
        }
        return next == UINT64_MAX ? -1 : (int) (next - now);
}

int sigserve_run(int epoll_fd, int listen_fd, const SigBackend *b) {
        static Server s; /* 64 pointers; static keeps the stack small */
        struct epoll_event events[16];

        s = (Server){.epoll_fd = epoll_fd, .listen_fd = listen_fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &(struct epoll_event){.events = EPOLLIN, .data.ptr = NULL}) < 0)
                return negative_errno();

        for (;;) {
                int n = epoll_wait(epoll_fd, events, ELEMENTSOF(events), server_expire(&s));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                for (int i = 0; i < n; i++) {
                        Conn *c = events[i].data.ptr;

                        if (!c) {
                                server_accept(&s);
                                continue;
                        }
                        if (conn_step(c, epoll_fd, b, events[i].events) < 0)
                                server_drop(&s, c);
                }
        }
}
