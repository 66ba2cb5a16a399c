/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http1.h"
#include "macro.h"
#include "status.h"

#define STATUS_IO_TIMEOUT_USEC (5ULL * 1000000ULL)
#define STATUS_REQUEST_MAX 4096
#define STATUS_MAX_CLIENTS 64
#define CLIENT_MAGIC 0x73746174u

struct StatusServer {
        sd_event *event;
        int fd;
        sd_event_source *accept_source;
        StatusRender render;
        void *userdata;
        unsigned n_clients;
};

typedef struct {
        unsigned magic;
        StatusServer *server;
        int fd;
        sd_event_source *io;
        sd_event_source *timer;
        char in[STATUS_REQUEST_MAX];
        size_t in_len;
        char *out;
        size_t out_len, out_sent;
} Client;

static void client_free(Client *c) {
        if (!c)
                return;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        closep(&c->fd);
        free(c->out);
        c->server->n_clients--;
        c->magic = 0;
        free(c);
}

static const char *reason_phrase(int code) {
        switch (code) {
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 503:
                return "Service Unavailable";
        default:
                return "Internal Server Error";
        }
}

/* Builds the whole response (they are small) into c->out. */
static int client_respond(Client *c, int code, const char *content_type, const char *body, size_t body_len,
                          bool head) {
        if (asprintf(&c->out,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\n\r\n%.*s",
                     code, reason_phrase(code), content_type, body_len, head ? 0 : (int) body_len, body) < 0) {
                c->out = NULL;
                return -ENOMEM;
        }
        c->out_len = strlen(c->out);
        return sd_event_source_set_io_events(c->io, EPOLLOUT);
}

static int client_handle_request(Client *c, const Http1Request *req) {
        static const struct {
                const char *path;
                StatusEndpoint which;
                const char *content_type;
        } routes[] = {
                {"/livez", STATUS_LIVEZ, "text/plain; charset=utf-8"},
                {"/readyz", STATUS_READYZ, "text/plain; charset=utf-8"},
                {"/metrics", STATUS_METRICS, "text/plain; version=0.0.4; charset=utf-8"},
        };
        size_t path_len = strcspn(req->target, "? ");
        bool head = req->method_len == 4 && strneq(req->method, "HEAD", 4);

        if (path_len > req->target_len)
                path_len = req->target_len;
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                _cleanup_free_ char *body = NULL;
                size_t body_len = 0;
                FILE *f;
                int code;

                if (strlen(routes[i].path) != path_len || !strneq(routes[i].path, req->target, path_len))
                        continue;
                if (!head && !(req->method_len == 3 && strneq(req->method, "GET", 3)))
                        return client_respond(c, 405, "text/plain", "GET or HEAD only\n", 17, false);
                f = open_memstream(&body, &body_len);
                if (!f)
                        return -ENOMEM;
                code = c->server->render(routes[i].which, f, c->server->userdata);
                if (fclose(f) != 0)
                        return -ENOMEM;
                return client_respond(c, code, routes[i].content_type, body ? body : "", body_len, head);
        }
        return client_respond(c, 404, "text/plain", "not found: /livez /readyz /metrics\n", 36, false);
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        Http1Header headers[HTTP1_MAX_HEADERS];
        Http1Request req;
        ssize_t n;
        int r;

        if (c->magic != CLIENT_MAGIC)
                abort();

        if (c->out) {
                n = send(fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n < 0 || (c->out_sent += (size_t) n) == c->out_len)
                        client_free(c);
                return 0;
        }

        n = recv(fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                client_free(c);
                return 0;
        }
        c->in_len += (size_t) n;
        r = http1_parse_request(c->in, c->in_len, &req, headers, ELEMENTSOF(headers));
        if (r == -2 && c->in_len < sizeof c->in)
                return 0;
        if (r < 0)
                r = client_respond(c, 400, "text/plain", "bad request\n", 12, false);
        else
                r = client_handle_request(c, &req);
        if (r < 0)
                client_free(c);
        return 0;
}

static int on_client_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Client *c = userdata;

        if (c->magic != CLIENT_MAGIC)
                abort();
        client_free(c);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        StatusServer *server = userdata;
        Client *c;
        int cfd;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        /* Monitoring needs a handful of connections; more is abuse. */
        if (server->n_clients >= STATUS_MAX_CLIENTS) {
                close(cfd);
                return 0;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
                close(cfd);
                return 0;
        }
        c->magic = CLIENT_MAGIC;
        c->server = server;
        c->fd = cfd;
        server->n_clients++;
        if (sd_event_add_io(server->event, &c->io, cfd, EPOLLIN, on_client_io, c) < 0 ||
            sd_event_add_time_relative(server->event, &c->timer, CLOCK_MONOTONIC, STATUS_IO_TIMEOUT_USEC, 0,
                                       on_client_timeout, c) < 0)
                client_free(c);
        return 0;
}

int status_server_new(sd_event *e, const ListenAddress *a, StatusRender render, void *userdata,
                      StatusServer **ret) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t salen;
        StatusServer *s;
        int one = 1, r;

        if (!a->host || strchr(a->host, ':')) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(a->port);
                if (a->host && inet_pton(AF_INET6, a->host, &sa.in6.sin6_addr) != 1)
                        return -EINVAL;
                salen = sizeof sa.in6;
        } else {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(a->port);
                if (inet_pton(AF_INET, a->host, &sa.in.sin_addr) != 1)
                        return -EINVAL;
                salen = sizeof sa.in;
        }

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = e;
        s->render = render;
        s->userdata = userdata;
        s->fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                r = negative_errno();
                goto fail;
        }
        (void) setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s->fd, &sa.sa, salen) < 0 || listen(s->fd, 16) < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &s->accept_source, s->fd, EPOLLIN, on_accept, s);
        if (r < 0)
                goto fail;
        *ret = s;
        return 0;
fail:
        status_server_free(s);
        return r;
}

void status_server_free(StatusServer *s) {
        if (!s)
                return;
        sd_event_source_disable_unref(s->accept_source);
        closep(&s->fd);
        free(s);
}
