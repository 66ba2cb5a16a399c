/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http1.h"
#include "macro.h"
#include "config-sockaddr.h"
#include "sockopen.h"
#include "status.h"

/* A request is one small GET, sent at once: a client gets
 * STATUS_HEADER_TIMEOUT to send all of it and then STATUS_IO_TIMEOUT to
 * read the answer. */
#define STATUS_HEADER_TIMEOUT_USEC (2ULL * 1000000ULL)
#define STATUS_IO_TIMEOUT_USEC (5ULL * 1000000ULL)
#define STATUS_REQUEST_MAX 4096
/* Monitoring needs a handful of connections at once (a scraper, `regvisor
 * health`, a load balancer's check), from a handful of addresses. */
#define STATUS_MAX_CLIENTS 64
#define STATUS_MAX_PER_PEER 8
#define STATUS_LISTEN_BACKLOG 128
#define CLIENT_MAGIC 0x73746174u

struct StatusServer {
        sd_event *event;
        int fd;
        sd_event_source *accept_source;
        const CidrList *allow;
        StatusRender render;
        void *userdata;
        unsigned n_clients;
        struct Client *first, *last; /* oldest first */
};

/* A peer, as the slot accounting sees it. Every local user connects from
 * 127.0.0.1, so a loopback peer is the user that owns the other end (the
 * kernel knows it: NETLINK_SOCK_DIAG, what `ss -e` shows); a remote peer
 * (allow_remote), or a loopback one whose owner cannot be found, is its
 * address (IPv4-mapped IPv6 as IPv4), never its port. */
typedef struct {
        uint8_t family; /* AF_INET, AF_INET6, or AF_UNSPEC for a local uid */
        uint8_t addr[16];
        uid_t uid;
} Peer;

typedef struct Client {
        unsigned magic;
        StatusServer *server;
        struct Client *prev, *next;
        Peer peer;
        bool requested; /* a whole request arrived: now answering */
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
        if (c->prev)
                c->prev->next = c->next;
        else
                c->server->first = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                c->server->last = c->prev;
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
        c->requested = true;
        if (sd_event_source_set_time_relative(c->timer, STATUS_IO_TIMEOUT_USEC) < 0)
                return -ENOMEM;
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

static bool peer_is_loopback(const Peer *p) {
        static const uint8_t v6_loopback[16] = {[15] = 1};
        return (p->family == AF_INET && p->addr[0] == 127) ||
               (p->family == AF_INET6 && memcmp(p->addr, v6_loopback, 16) == 0);
}

/* The uid owning the local socket at the other end of the connection from
 * peer (address p, port peer_port) to us (local), looked up by its exact
 * 4-tuple (inet_diag without NLM_F_DUMP: one socket, no table walk). */
static int loopback_peer_uid(const Peer *p, uint16_t peer_port, const struct sockaddr_storage *local, uid_t *ret) {
        struct {
                struct nlmsghdr nlh;
                struct inet_diag_req_v2 req;
        } msg = {
                .nlh = {.nlmsg_len = sizeof msg, .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST},
                .req = {.sdiag_family = p->family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0u,
                        .id = {.idiag_sport = peer_port,
                               .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
        };
        union {
                struct nlmsghdr nlh;
                char buf[1024];
        } reply;
        _cleanup_close_ int fd = -1;
        ssize_t n;

        if (p->family == AF_INET) {
                const struct sockaddr_in *l = (const struct sockaddr_in *) local;
                memcpy(msg.req.id.idiag_src, p->addr, 4);
                if (local->ss_family == AF_INET) {
                        memcpy(msg.req.id.idiag_dst, &l->sin_addr, 4);
                        msg.req.id.idiag_dport = l->sin_port;
                } else { /* a v4-mapped peer on an IPv6 socket */
                        const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *) local;
                        memcpy(msg.req.id.idiag_dst, &l6->sin6_addr.s6_addr[12], 4);
                        msg.req.id.idiag_dport = l6->sin6_port;
                }
        } else {
                const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *) local;
                memcpy(msg.req.id.idiag_src, p->addr, 16);
                memcpy(msg.req.id.idiag_dst, &l6->sin6_addr, 16);
                msg.req.id.idiag_dport = l6->sin6_port;
        }

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return negative_errno();
        if (send(fd, &msg, sizeof msg, 0) < 0)
                return negative_errno();
        /* The kernel answers within send(): nothing to wait for. */
        n = recv(fd, &reply, sizeof reply, MSG_DONTWAIT);
        if (n < 0)
                return negative_errno();
        if ((size_t) n < sizeof(struct nlmsghdr) || reply.nlh.nlmsg_len > (size_t) n)
                return -EBADMSG;
        if (reply.nlh.nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(&reply.nlh);
                return e->error < 0 ? e->error : -EBADMSG;
        }
        if (reply.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
            reply.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                return -EBADMSG;
        *ret = ((const struct inet_diag_msg *) NLMSG_DATA(&reply.nlh))->idiag_uid;
        return 0;
}

static Peer peer_of(const struct sockaddr_storage *ss) {
        Peer p = {.family = AF_INET};

        if (ss->ss_family == AF_INET)
                memcpy(p.addr, &((const struct sockaddr_in *) ss)->sin_addr, 4);
        else if (ss->ss_family == AF_INET6) {
                const struct in6_addr *a = &((const struct sockaddr_in6 *) ss)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(a))
                        memcpy(p.addr, &a->s6_addr[12], 4);
                else {
                        p.family = AF_INET6;
                        memcpy(p.addr, a, 16);
                }
        }
        return p;
}

/* A loopback peer becomes its socket's owner; see Peer. */
static Peer peer_identify(int fd, const struct sockaddr_storage *ss) {
        Peer p = peer_of(ss);
        struct sockaddr_storage local = {};
        socklen_t len = sizeof local;
        uint16_t port = ss->ss_family == AF_INET ? ((const struct sockaddr_in *) ss)->sin_port
                                                 : ((const struct sockaddr_in6 *) ss)->sin6_port;
        uid_t uid;

        if (peer_is_loopback(&p) && getsockname(fd, (struct sockaddr *) &local, &len) == 0 &&
            loopback_peer_uid(&p, port, &local, &uid) == 0)
                return (Peer) {.family = AF_UNSPEC, .uid = uid};
        return p;
}

static bool peer_eq(const Peer *a, const Peer *b) {
        return a->family == b->family && a->uid == b->uid && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

static unsigned peer_count(const StatusServer *s, const Peer *p) {
        unsigned n = 0;
        for (const Client *c = s->first; c; c = c->next)
                n += peer_eq(&c->peer, p);
        return n;
}

/* The oldest connection that is still waiting for its request, from peer
 * p (or from anyone when p is NULL); NULL when all are being answered. */
static Client *oldest_waiting(const StatusServer *s, const Peer *p) {
        for (Client *c = s->first; c; c = c->next)
                if (!c->requested && (!p || peer_eq(&c->peer, p)))
                        return c;
        return NULL;
}

/* Makes room for a new connection from p, or says there is none. A peer
 * over its share loses its own oldest idle connection (a client that
 * reconnects only competes with itself); a full table loses the oldest
 * idle connection of the peer that holds the most. So idle connections of
 * one user or address cannot keep another out. */
static bool make_room(StatusServer *s, const Peer *p) {
        Client *victim = NULL;

        if (peer_count(s, p) >= STATUS_MAX_PER_PEER) {
                victim = oldest_waiting(s, p);
                if (!victim)
                        return false;
        } else if (s->n_clients >= STATUS_MAX_CLIENTS) {
                unsigned most = 0;
                for (Client *c = s->first; c; c = c->next) {
                        unsigned n = c->requested ? 0 : peer_count(s, &c->peer);
                        if (n > most) {
                                most = n;
                                victim = c;
                        }
                }
                if (victim)
                        victim = oldest_waiting(s, &victim->peer);
                if (!victim)
                        return false;
        }
        client_free(victim);
        return true;
}

static void accept_one(StatusServer *server, int cfd, const struct sockaddr_storage *ss) {
        Client *c;
        Peer p = peer_of(ss);

        /* [status] allow_cidrs: a balancer's /readyz check, not the world
         * (local monitoring and `regvisor health` come over loopback). */
        if (server->allow->n > 0 && !peer_is_loopback(&p) &&
            !cidr_list_contains(server->allow, (const struct sockaddr *) ss)) {
                close(cfd);
                return;
        }
        p = peer_identify(cfd, ss);
        if (!make_room(server, &p)) {
                close(cfd);
                return;
        }
        c = calloc(1, sizeof *c);
        if (!c) {
                close(cfd);
                return;
        }
        c->magic = CLIENT_MAGIC;
        c->server = server;
        c->fd = cfd;
        c->peer = p;
        c->prev = server->last;
        if (server->last)
                server->last->next = c;
        else
                server->first = c;
        server->last = c;
        server->n_clients++;
        if (sd_event_add_io(server->event, &c->io, cfd, EPOLLIN, on_client_io, c) < 0 ||
            sd_event_add_time_relative(server->event, &c->timer, CLOCK_MONOTONIC, STATUS_HEADER_TIMEOUT_USEC, 0,
                                       on_client_timeout, c) < 0)
                client_free(c);
}

/* Drains the accept queue: a flood of connections that are refused must
 * not keep the queue full, or a monitor's SYN is dropped before we see it. */
static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        for (unsigned i = 0; i < STATUS_LISTEN_BACKLOG; i++) {
                struct sockaddr_storage ss = {};
                socklen_t sslen = sizeof ss;
                int cfd = accept4(fd, (struct sockaddr *) &ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                        break;
                accept_one(userdata, cfd, &ss);
        }
        return 0;
}

int status_server_new(sd_event *e, const ListenAddress *a, const CidrList *allow, StatusRender render,
                      void *userdata, StatusServer **ret) {
        SocketAddress sa;
        StatusServer *s;
        int r;

        r = sockaddr_from_listen(a, &sa);
        if (r < 0)
                return r;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->event = e;
        s->allow = allow;
        s->render = render;
        s->userdata = userdata;
        s->fd = sockopen_listen(&sa.sa, sa.len, STATUS_LISTEN_BACKLOG);
        if (s->fd < 0) {
                r = s->fd;
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
        while (s->first)
                client_free(s->first);
        sd_event_source_disable_unref(s->accept_source);
        closep(&s->fd);
        free(s);
}
