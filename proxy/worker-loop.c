/* SPDX-License-Identifier: MIT */
/*
 * A proxy worker: one epoll loop, many connections (see worker.h for its
 * parts).
 *
 * Why epoll directly and not sd-event: the loop needs three kinds of
 * sources (listening sockets, connection sockets, a signalfd) and a coarse
 * timer, nothing of sd-event's richer machinery; a plain loop keeps the
 * worker's system calls few and obvious, which is what the seccomp
 * allowlist of the sandbox has to list (epoll_wait, accept4, recvfrom,
 * sendto, read, write, connect, socket, close, clock_gettime, futex, ...),
 * and no library wakes up behind our back.
 *
 * The loop's timeout is one second (the sweep of deadlines), cut to the
 * first request the rate limit holds back (w->delayed, sorted by wake-up
 * time; millisecond precision, no timer fd), to the end of an accept
 * pause, and to zero while a connection that yielded its turn waits.
 */

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "proxy.h"
#include "sandbox.h"
#include "worker.h"

#define WORKER_FDS 16 /* descriptors a worker needs besides connections */

static void worker_reap(Worker *w) {
        while (w->dead) {
                Conn *c = w->dead;
                w->dead = c->next;
                c->magic = 0;
                c->cw.magic = c->uw.magic = 0;
                free(c);
        }
}

static void worker_sweep(Worker *w, uint64_t now) {
        Conn *next;

        for (Conn *c = w->conns; c; c = next) {
                next = c->next;
                conn_check_timeouts(c, now);
        }
        upstream_pool_sweep(w, now);
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
        /* Idle connections go; the others after their exchange. On the
         * push port also a request whose head is still arriving: a drain is
         * how a reload with a new CRL retires the verdicts of the old one,
         * so a kept-alive connection of a client revoked since must not
         * start another request here (it reconnects to a new worker). An
         * idle pull connection gets PROXY_DRAIN_IDLE_GRACE_MS first (the
         * sweep closes it then): a client in the middle of a pull may have
         * sent its next request already, and a close under it would fail
         * it (clients that do not retry, 77-restarts); that request is
         * answered with Connection: close. A pull handshake under way
         * finishes (within header_timeout) for the same reason. */
        for (Conn *c = w->conns; c; c = next) {
                next = c->next;
                if (c->state == CONN_HEAD && c->port == PROXY_PULL && buf_len(&c->cin) == 0) {
                        uint64_t grace = now_ms() + PROXY_DRAIN_IDLE_GRACE_MS;
                        if (c->deadline > grace)
                                c->deadline = grace;
                } else if (((c->state == CONN_PROXY_HEADER || c->state == CONN_HANDSHAKE) && c->port == PROXY_PUSH) ||
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

        proxy_signal_set(&mask);
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
        w->max_conns = w->c->tuning.max_connections;
        if (w->max_conns == 0) {
                struct rlimit rl;
                rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
                if (n == RLIM_INFINITY || n > 2000000 + WORKER_FDS)
                        n = 2000000 + WORKER_FDS;
                w->max_conns = n > WORKER_FDS + 2 ? (unsigned)((n - WORKER_FDS) / 2) : 1;
        }
        return 0;
}

/* The worker's setup, log line and lockdown, in that order (sandbox.h):
 * 0, or <0 logged. */
static int worker_start(Worker *w) {
        const ProxyContext *p = w->p;
        int r;

        (void)signal(SIGPIPE, SIG_IGN);
        r = worker_setup(w);
        if (r < 0)
                return log_error_errno(r, "proxy worker %u: setup failed: %m", w->index);
        /* Logging once before lockdown opens the journal socket (and
         * settles log.c's journal-or-stderr choice). */
        log_info("proxy worker %u (pid %d) serving as uid %u, up to %u connections", w->index, (int)getpid(),
                 (unsigned)p->uid, w->max_conns);
        proxy_metrics_set_open(p->metrics, w->index, 0);
        /* glibc reads /etc/localtime on the first conversion to local
         * time, which OpenSSL's certificate time checks cause: load it now,
         * while the worker may still open files. */
        tzset();
        r = proxy_sandbox_lockdown(p->uid, p->gid);
        if (r < 0)
                return log_error_errno(r, "proxy worker %u: lockdown failed, not serving: %m", w->index);
        proxy_sandbox_test_hook();
        return 0;
}

/* epoll_wait()'s timeout: see the top of this file. */
static int worker_timeout(Worker *w) {
        int timeout = w->pending ? 0 : 1000;

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
        return timeout;
}

/* Connections that yielded their turn (CONN_RUN_BUDGET). */
static void worker_run_pending(Worker *w) {
        Conn *pend = w->pending;

        w->pending = NULL;
        while (pend) {
                Conn *c = CHECK_MAGIC(pend, CONN_MAGIC);
                pend = c->pending_next;
                c->pending = false;
                if (c->state != CONN_DEAD)
                        conn_run(c);
        }
}

/* Delayed requests whose time has come. */
static void worker_run_delayed(Worker *w, uint64_t now) {
        while (w->delayed && w->delayed->delay_until <= now) {
                Conn *c = CHECK_MAGIC(w->delayed, CONN_MAGIC);
                conn_delay_cancel(c);
                if (c->state != CONN_DEAD)
                        conn_run(c);
        }
}

int proxy_worker_run(const ProxyContext *p, unsigned index, unsigned column) {
        static Worker worker; /* large scratch buffers: not on the stack */
        Worker *w = &worker;

        *w = (Worker){.p = p,
                      .c = p->config,
                      .index = index,
                      .column = column,
                      .epfd = -1,
                      .sigfd = -1,
                      .reserve_fd = -1};
        if (worker_start(w) < 0)
                return 1;

        w->next_sweep = now_ms() + 1000;
        for (;;) {
                struct epoll_event ev[128];
                int n, timeout = worker_timeout(w);

                if (w->draining && (w->n_conns == 0 || now_ms() >= w->drain_deadline))
                        break;
                n = epoll_wait(w->epfd, ev, (int)ELEMENTSOF(ev), timeout);
                if (n < 0 && errno != EINTR) {
                        log_error_errno(errno, "proxy worker %u: epoll_wait: %m", index);
                        return 1;
                }
                for (int i = 0; i < n; i++)
                        worker_dispatch(w, ev[i].data.ptr, ev[i].events);
                worker_run_pending(w);

                uint64_t now = now_ms();
                worker_run_delayed(w, now);
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
