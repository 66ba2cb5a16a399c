/* SPDX-License-Identifier: MIT */
/*
 * Accepting, in a proxy worker: admission at accept (allow_cidrs, the
 * per-client connection count), a new connection, and the listening
 * sockets leaving the epoll set while the worker is at max_connections or
 * out of descriptors.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "ratelimit.h"
#include "worker.h"

/* One accept per wake-up (nginx's multi_accept off): a worker that took a
 * burst of connections at once would then handshake them one after the
 * other while another worker idles. Level-triggered, the listening socket
 * comes back at the next epoll_wait() if more are pending. */
#define ACCEPT_BATCH 1
/* Requeue a listening socket on this worker's side every this many accepts
 * (worker_accept_requeue()). */
#define ACCEPT_REQUEUE 16
#define ACCEPT_PAUSE_MS 250   /* out of descriptors: accept again after this */
#define FD_LIMIT_LOG_MS 10000 /* at most one warning about it per this */

/* The limits table has no room for this client: say so once a minute. The
 * client is refused (ratelimit.h: failing open would switch the limits off
 * for every new address, the attacker's included). */
void worker_warn_table_full(Worker *w) {
        uint64_t now = now_ms();

        if (w->table_full_warned != 0 && now - w->table_full_warned < 60000)
                return;
        w->table_full_warned = now;
        log_warning("proxy: the per-client limits table is full; refusing new clients with 503 "
                    "(regvisor_proxy_limits_table_full_total; [proxy] limits_slots)");
}

void worker_peer_string(const struct sockaddr_storage *ss, char out[static INET6_ADDRSTRLEN]) {
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

/* Whether the port admits the client at ss: its allow_cidrs, then its
 * conn_per_ip (which takes a slot of the limits table: *ret_slot, -1 for
 * none). Refusals the client can be told of are admitted and answered
 * after the handshake (exchange.c), so that it learns why:
 * *ret_table_full when the table had no room for it (503), *ret_over when
 * it is over conn_per_ip (429 with Retry-After, as nginx's limit_conn).
 * Only at the hard ceiling, twice conn_per_ip, is the socket closed before
 * TLS: a flood is not worth a handshake per connection. ss is the client:
 * the TCP peer, or the one a trusted balancer's PROXY header names
 * (balancer.c), never the balancer's own address in its place. */
bool worker_admit(Worker *w, ProxyPort port, const struct sockaddr_storage *ss, const char *peer,
                  LimitsKey *ret_key, int *ret_slot, bool *ret_table_full, bool *ret_over) {
        const ProxyPortConfig *pc = &w->c->port[port];
        int r;

        if (!cidr_allowed(pc->allow_cidrs, pc->n_allow_cidrs, (const struct sockaddr *)ss)) {
                proxy_metrics_inc(&w->p->metrics->port[port].cidr_refused);
                log_event(LOG_NOTICE, "refused", "%s %s refused: not in allow_cidrs", proxy_port_name(port), peer);
                return false;
        }
        if (limits_key_from_sockaddr((const struct sockaddr *)ss, (uint8_t)port, w->c->tuning.ipv6_prefix, ret_key) < 0)
                return false;
        if (!w->p->limits)
                return true;
        r = limits_conn_acquire(w->p->limits, w->column, ret_key, pc->conn_per_ip,
                                limits_conn_ceiling(pc->conn_per_ip), now_ms(), ret_slot);
        if (r == -ENOSPC) {
                proxy_metrics_inc(&w->p->metrics->port[port].limits_table_full);
                worker_warn_table_full(w);
                *ret_table_full = true;
        }
        if (r == LIMITS_CONN_OVER)
                *ret_over = true; /* counted and logged when answered */
        if (r == LIMITS_CONN_CEILING) {
                proxy_metrics_inc(&w->p->metrics->port[port].conn_ceiling);
                log_event(LOG_NOTICE, "refused", "%s %s refused: %u connections, twice conn_per_ip=%u",
                          proxy_port_name(port), peer, limits_conn_ceiling(pc->conn_per_ip), pc->conn_per_ip);
                return false;
        }
        return true;
}

/* A connection for the accepted fd, in CONN_HANDSHAKE, with its SSL; NULL
 * on failure (nothing taken). */
static Conn *conn_new(Worker *w, ProxyPort port, int fd) {
        Conn *c = calloc(1, sizeof(Conn));
        SSL *ssl = SSL_new(w->p->ctx[port]);

        if (!c || !ssl || SSL_set_fd(ssl, fd) != 1) {
                free(c);
                SSL_free(ssl);
                ERR_clear_error();
                return NULL;
        }
        SSL_set_accept_state(ssl);
        *c = (Conn){
                .magic = CONN_MAGIC,
                .w = w,
                .port = port,
                .state = CONN_HANDSHAKE,
                .cw = {.magic = WATCH_MAGIC, .kind = WATCH_CLIENT, .conn = c},
                .uw = {.magic = WATCH_MAGIC, .kind = WATCH_UPSTREAM, .conn = c},
                .client = {.fd = fd, .ssl = ssl, .ops = &io_tls_ops, .readable = true},
                .upstream = {.fd = -1, .ops = &io_plain_ops},
                .deadline = now_ms() + (uint64_t)w->c->tuning.header_timeout * 1000,
                .head_timer = true,
                .limit_slot = -1,
                .verdict = TLS_CLIENT_NONE,
        };
        SSL_set_app_data(ssl, c);
        return c;
}

/* A connection from a trusted balancer ([proxy] trusted_proxies, never
 * empty for this) is admitted only once its PROXY header names the client
 * (balancer.c); any other is admitted here, as the TCP peer. */
static void worker_accept_one(Worker *w, ProxyPort port, int fd, const struct sockaddr_storage *ss) {
        _cleanup_close_ int cfd = fd;
        char peer[INET6_ADDRSTRLEN];
        LimitsKey key = {};
        int slot = -1;
        bool table_full = false, over = false;
        bool balancer = cidr_list_contains(&w->c->tuning.trusted_proxies, (const struct sockaddr *)ss);
        Conn *c;

        worker_peer_string(ss, peer);
        if (!balancer && !worker_admit(w, port, ss, peer, &key, &slot, &table_full, &over))
                return;
        c = conn_new(w, port, cfd);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c ? &c->cw : NULL};
        if (!c || epoll_ctl(w->epfd, EPOLL_CTL_ADD, cfd, &ev) < 0) {
                if (c)
                        SSL_free(c->client.ssl);
                free(c);
                if (w->p->limits)
                        limits_conn_release(w->p->limits, w->column, slot);
                return;
        }
        TAKE_FD(cfd);
        if (balancer)
                c->state = CONN_PROXY_HEADER;
        c->addr = *ss;
        c->key = key;
        c->limit_slot = slot;
        c->limits_full = table_full;
        c->conn_over = over;
        memcpy(c->peer, peer, sizeof(peer));
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

/* EPOLLEXCLUSIVE wakes the first epoll instance in the listening socket's
 * wait queue that is waiting, in the order the workers added it: whenever
 * worker 0 is idle it gets the connection, and under a handshake load the
 * first worker took ~60% of the connections (BENCHMARKS.md, the row of the
 * accept share). Taking the socket out and adding it again puts this
 * worker at the end of that queue, as nginx does (ngx_reorder_accept_events(),
 * every 16 accepts): two epoll_ctl() calls per 16 connections. */
static void worker_accept_requeue(Worker *w, ProxyPort port) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &w->listen_watch[port]};

        if (w->accepted[port] < ACCEPT_REQUEUE || w->accept_paused || w->draining)
                return;
        w->accepted[port] = 0;
        (void)epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->p->listen_fd[port], NULL);
        /* Failing to add it back would leave the port unserved here: pause
         * accepting instead, and worker_accept_resume() adds it back. */
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->p->listen_fd[port], &ev) < 0)
                w->accept_paused = true;
}

void worker_accept(Worker *w, ProxyPort port) {
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
                proxy_metrics_accepted(w->p->metrics, w->index);
                w->accepted[port]++;
                worker_accept_one(w, port, fd, &ss);
        }
        worker_accept_requeue(w, port);
}

/* Accepting again: below the cap, and the pause after running out of
 * descriptors is over. Returns the ms until that, for epoll_wait()'s
 * timeout (-1: nothing to wait for). */
int worker_accept_resume(Worker *w, uint64_t now) {
        if (!w->accept_paused || w->draining || w->n_conns >= w->max_conns)
                return -1;
        if (now < w->accept_resume_at)
                return (int)(w->accept_resume_at - now);
        if (w->reserve_fd < 0) /* still none: try again after another pause */
                w->reserve_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        worker_listen(w, true);
        return -1;
}
