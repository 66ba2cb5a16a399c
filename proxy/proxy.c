/* SPDX-License-Identifier: MIT */
/*
 * The proxy's parent: prepares everything the workers need while it is
 * root, forks them and supervises them (see proxy.h).
 *
 * Workers are a table of 2 x workers slots. Slot i owns column i of the
 * limits table. A generation of workers fills `workers` free slots; a
 * reload (SIGHUP) asks the command line for the configuration again (its
 * ProxyReload callback), starts a new generation with it on the other free
 * slots and tells the old one to drain
 * (SIGTERM), so both may run for up to PROXY_DRAIN_SECONDS without sharing
 * a column. Workers get their configuration by fork(), so the new
 * generation has every new value and the old one keeps its own until it is
 * gone: nothing is changed under a connection in flight.
 *
 * Supervision is one loop over a signalfd: SIGCHLD reaps and restarts
 * (throttled: a worker that lived less than RESTART_FAST_MS is restarted
 * after RESTART_DELAY_MS, so a worker killed at start does not spin),
 * SIGHUP reloads, SIGTERM/SIGINT stop.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "context.h"
#include "log.h"
#include "macro.h"
#include "listen-fds.h"
#include "proxy.h"
#include "sockaddr.h"
#include "tls.h"

#define RESTART_FAST_MS 1000
#define RESTART_DELAY_MS 1000
#define STOP_GRACE_MS (PROXY_STOP_SECONDS * 1000)

typedef struct WorkerSlot {
        pid_t pid;          /* 0: free */
        unsigned generation;
        uint64_t started;
        uint64_t restart_at; /* > 0: restart this slot then (current generation) */
} WorkerSlot;

typedef struct Parent {
        ProxyContext ctx;
        unsigned n_workers;
        unsigned generation;
        WorkerSlot *slots; /* 2 * n_workers */
        bool stopping;
        uint64_t stop_deadline;
        ProxyReload reload;       /* NULL: a reload loads certificates only */
        void *reload_userdata;
        ProxyConfig *reloaded;    /* owned: ctx.config after the first reload */
        int report_fd;           /* reload outcomes for the supervisor, -1 if none */
        bool report_quiet;       /* a reload of our own (htpasswd_watch()): the supervisor asked for none */
        HtpasswdStamp htpasswd_seen; /* the [push] htpasswd file's stamp last reacted to */
        uint64_t htpasswd_checked;   /* ms */
        TlsTicketKeys *ticket_keys[_PROXY_PORT_MAX]; /* shared with the workers, see tls.h */
} Parent;

static uint64_t now_ms(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------
 * Preparation, as root
 */

static void ssl_ctx_free_all(SSL_CTX *ctx[_PROXY_PORT_MAX]) {
        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                SSL_CTX_free(ctx[i]);
                ctx[i] = NULL;
        }
}

/* New contexts, new ticket key epoch: tickets of the old contexts (and
 * the verify results they carry) are void at once, also in workers that
 * are still draining. */
static int use_ticket_keys(const Parent *pa, SSL_CTX *ctx[_PROXY_PORT_MAX]) {
        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                uint64_t epoch;
                int r = tls_ticket_keys_new_epoch(pa->ticket_keys[i], &epoch);
                if (r >= 0)
                        r = tls_ctx_use_ticket_keys(ctx[i], pa->ticket_keys[i], epoch);
                if (r < 0)
                        return log_error_errno(r, "proxy: cannot set up the TLS ticket keys: %m");
        }
        return 0;
}

/* Loads both contexts into ret[]; all or nothing. */
static int load_tls(const Parent *pa, SSL_CTX *ret[_PROXY_PORT_MAX]) {
        const ProxyConfig *c = pa->ctx.config;
        SSL_CTX *ctx[_PROXY_PORT_MAX] = {};
        int r;

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                _cleanup_free_ char *error = NULL;
                /* Both ports publish both CRLs (crl-route.c); the push port
                 * also enforces the client CA's. */
                TlsFiles f = {.cert = c->tls_cert,
                              .key = c->tls_key,
                              .client_ca = c->tls_client_ca,
                              .crl = c->tls_crl,
                              .server_ca = c->tls_server_ca,
                              .server_crl = c->tls_server_crl,
                              .client_auth = i == PROXY_PUSH};
                r = tls_ctx_new(&f, proxy_port_name((ProxyPort)i), &ctx[i], &error);
                if (r < 0) {
                        ssl_ctx_free_all(ctx);
                        return log_error_errno(r, "proxy: %s port: %s", proxy_port_name((ProxyPort)i),
                                               error ? error : "cannot set up TLS");
                }
        }
        r = use_ticket_keys(pa, ctx);
        if (r < 0) {
                ssl_ctx_free_all(ctx);
                return r;
        }
        memcpy(ret, ctx, sizeof(ctx));
        return 0;
}

/* The passed socket (sd_listen_fds()) that listens on la, or -ENOENT.
 * Each must be claimed by exactly one port: *used marks them. */
static int listen_fd_from_systemd(int n, const ProxyPortConfig *la, bool used[]) {
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                SocketAddress bound = {.len = sizeof(bound.storage)};
                if (used[i] || sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0 ||
                    getsockname(fd, &bound.sa, &bound.len) < 0)
                        continue;
                if (listen_fd_matches(&bound, la->listen_host, la->listen_port)) {
                        used[i] = true;
                        return fd;
                }
        }
        return -ENOENT;
}

/* Socket activation that does not match the configuration: one error
 * naming what was passed and what is configured. */
static int listen_fds_mismatch(int n, const char *what) {
        char list[512] = "", one[64];
        size_t k = 0;

        for (int i = 0; i < n && k < sizeof(list) - 70; i++) {
                SocketAddress bound = {.len = sizeof(bound.storage)};
                if (getsockname(SD_LISTEN_FDS_START + i, &bound.sa, &bound.len) < 0)
                        (void)snprintf(one, sizeof(one), "(fd %d)", SD_LISTEN_FDS_START + i);
                else
                        listen_fd_text(&bound, one);
                k += (size_t)snprintf(list + k, sizeof(list) - k, "%s%s", i ? " " : "", one);
        }
        return log_error_errno(-EADDRNOTAVAIL,
                               "proxy: socket activation passed %s, but %s: regvisor.socket does not match the "
                               "configuration (run `regvisor provision`, then `systemctl restart regvisor.socket "
                               "regvisor.service`)",
                               list, what);
}

static int bind_listen(const ProxyPortConfig *la, int *ret_fd) {
        SocketAddress sa;
        int fd, one = 1, zero = 0, r;

        r = sockaddr_from_ip(la->listen_host, la->listen_port, &sa);
        if (r < 0)
                return r;

        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && sa.sa.sa_family == AF_INET6 && !la->listen_host) {
                /* No IPv6 here: all of IPv4 then. */
                sa.in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(la->listen_port)};
                sa.len = sizeof(sa.in);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return negative_errno();
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (sa.sa.sa_family == AF_INET6 && !la->listen_host)
                (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
        if (bind(fd, &sa.sa, sa.len) < 0 || listen(fd, 4096) < 0) {
                r = negative_errno();
                (void)close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

static int setup_listeners(Parent *pa) {
        int n = sd_listen_fds(0), r;
        bool used[64] = {};

        if (n > (int)ELEMENTSOF(used))
                return listen_fds_mismatch(n, "at most two sockets are expected");
        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                const ProxyPortConfig *la = &pa->ctx.config->port[i];
                int fd = n > 0 ? listen_fd_from_systemd(n, la, used) : -ENOENT;
                if (n > 0 && fd < 0) {
                        char what[128];
                        (void)snprintf(what, sizeof(what), "none of them is [%s] listen = %s%s%u",
                                       proxy_port_name((ProxyPort)i), la->listen_host ? la->listen_host : "",
                                       la->listen_host ? " port " : "", la->listen_port);
                        return listen_fds_mismatch(n, what);
                }
                if (fd >= 0) {
                        /* Ours now, and non-blocking for accept4() loops. */
                        int fl = fcntl(fd, F_GETFL);
                        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                        log_info("proxy: %s port %u from socket activation", proxy_port_name((ProxyPort)i),
                                 la->listen_port);
                } else {
                        r = bind_listen(la, &fd);
                        if (r < 0)
                                return log_error_errno(r, "proxy: cannot listen on %s%s%u for the %s port: %m",
                                                       la->listen_host ? la->listen_host : "", la->listen_host ? ":" : "",
                                                       la->listen_port, proxy_port_name((ProxyPort)i));
                }
                /* Accepted sockets inherit it (Linux): one setsockopt() here
                 * instead of one per connection (accept.c). */
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
                pa->ctx.listen_fd[i] = fd;
        }
        for (int i = 0; i < n; i++)
                if (!used[i])
                        return listen_fds_mismatch(n, "one of them is neither [pull] nor [push] listen");
        return 0;
}

static int setup_upstream(Parent *pa) {
        const ProxyConfig *u = pa->ctx.config;
        SocketAddress sa;
        int r;

        if (u->upstream_path)
                r = sockaddr_from_unix(u->upstream_path, &sa);
        else
                r = u->upstream_host ? sockaddr_from_ip(u->upstream_host, u->upstream_port, &sa) : -EINVAL;
        if (r == -ENAMETOOLONG)
                return log_error_errno(r, "proxy: upstream socket path too long: %s", u->upstream_path);
        if (r < 0)
                return log_error_errno(r, "proxy: bad upstream address %s",
                                       u->upstream_host ? u->upstream_host : "(none)");
        memcpy(&pa->ctx.upstream, &sa.storage, sizeof(pa->ctx.upstream));
        pa->ctx.upstream_len = sa.len;
        if (!u->sigstore_path)
                return 0;
        r = sockaddr_from_unix(u->sigstore_path, &sa);
        if (r < 0)
                return log_error_errno(r, "proxy: bad signature store socket %s: %m", u->sigstore_path);
        memcpy(&pa->ctx.sigstore, &sa.storage, sizeof(pa->ctx.sigstore));
        pa->ctx.sigstore_len = sa.len;
        return 0;
}

/* ------------------------------------------------------------------------
 * Workers
 */

static int spawn(Parent *pa, unsigned slot) {
        pid_t pid;

        if (pa->ctx.limits)
                limits_column_reset(pa->ctx.limits, slot);
        pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "proxy: fork failed: %m");
        if (pid == 0) {
                /* The child: it keeps the signal mask (blocked) and makes
                 * its own signalfd. The supervisor's report pipe is not a
                 * worker's to write. */
                if (pa->report_fd >= 0)
                        (void)close(pa->report_fd);
                _exit(proxy_worker_run(&pa->ctx, slot, slot));
        }
        pa->slots[slot] = (WorkerSlot){.pid = pid, .generation = pa->generation, .started = now_ms()};
        return 0;
}

/* Starts a generation on free slots. */
static int spawn_generation(Parent *pa) {
        unsigned started = 0;
        int r;

        for (unsigned i = 0; i < 2 * pa->n_workers && started < pa->n_workers; i++) {
                if (pa->slots[i].pid != 0)
                        continue;
                r = spawn(pa, i);
                if (r < 0)
                        return r;
                started++;
        }
        if (started < pa->n_workers)
                log_warning("proxy: only %u of %u workers started (old ones still draining)", started,
                            pa->n_workers);
        return 0;
}

static void describe_exit(int status, char *buf, size_t size) {
        if (WIFEXITED(status))
                (void)snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                (void)snprintf(buf, size, "killed by signal %s (%s)%s", sigabbrev_np(WTERMSIG(status)) ?: "?",
                               strsignal(WTERMSIG(status)),
                               WTERMSIG(status) == SIGSYS ? ": a system call outside the seccomp allowlist" : "");
        else
                (void)snprintf(buf, size, "ended with status 0x%x", status);
}

static void reap(Parent *pa) {
        int status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (unsigned i = 0; i < 2 * pa->n_workers; i++) {
                        WorkerSlot *s = &pa->slots[i];
                        char why[160];
                        if (s->pid != pid)
                                continue;
                        describe_exit(status, why, sizeof(why));
                        bool current = s->generation == pa->generation && !pa->stopping;
                        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                        if (current || !clean)
                                log_event(current ? LOG_WARNING : LOG_INFO, "worker-exit",
                                          "proxy: worker %u (pid %d) %s%s", i, (int)pid, why,
                                          current ? "; restarting it" : "");
                        uint64_t lived = now_ms() - s->started;
                        *s = (WorkerSlot){};
                        if (pa->ctx.limits)
                                limits_column_reset(pa->ctx.limits, i);
                        proxy_metrics_set_open(pa->ctx.metrics, i, 0);
                        if (current)
                                s->restart_at = now_ms() + (lived < RESTART_FAST_MS ? RESTART_DELAY_MS : 0) + 1;
                }
        }
}

static void restart_due(Parent *pa) {
        uint64_t now = now_ms();

        for (unsigned i = 0; i < 2 * pa->n_workers; i++) {
                WorkerSlot *s = &pa->slots[i];
                if (s->pid == 0 && s->restart_at > 0 && now >= s->restart_at) {
                        s->restart_at = 0;
                        (void)spawn(pa, i);
                }
        }
}

static void signal_generation(Parent *pa, unsigned below_generation, int sig) {
        for (unsigned i = 0; i < 2 * pa->n_workers; i++)
                if (pa->slots[i].pid > 0 && pa->slots[i].generation < below_generation)
                        (void)kill(pa->slots[i].pid, sig);
}

/* One line per reload to the supervisor (common/config/reload.h): "ok MESSAGE" or
 * "failed MESSAGE", written at once (below PIPE_BUF: atomic). Also logged. */
static void report(Parent *pa, bool ok, const char *fmt, ...) _printf_(3, 4);
static void report(Parent *pa, bool ok, const char *fmt, ...) {
        char line[1024];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        if ((size_t)n > sizeof(line) - 2)
                n = (int)sizeof(line) - 2;
        log_event(ok ? LOG_INFO : LOG_ERR, ok ? "proxy-reloaded" : "proxy-reload-failed", "proxy: %s", line);
        if (pa->report_fd < 0 || pa->report_quiet)
                return;
        for (int i = 0; i < n; i++)
                if (line[i] == '\n')
                        line[i] = ' ';
        char out[1100];
        int k = snprintf(out, sizeof(out), "%s %s\n", ok ? "ok" : "failed", line);
        if (k > 0 && write(pa->report_fd, out, (size_t)k) < 0)
                log_warning("proxy: cannot report the reload to the supervisor: %m");
}

static bool limits_wanted(const ProxyConfig *c) {
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                if (c->port[i].conn_per_ip || c->port[i].rate > 0)
                        return true;
        return false;
}

static void config_free(ProxyConfig *c) {
        proxy_config_done(c);
        free(c);
}

/* The configuration to run next, from the command line's callback; or NULL
 * with *ret_refusal saying why the running one stays (a file that does not
 * load, restart-only keys changed). */
static ProxyConfig *reload_config(const Parent *pa, char **ret_refusal) {
        ProxyConfig *fresh = calloc(1, sizeof(ProxyConfig));
        int r;

        *ret_refusal = NULL;
        if (!fresh) {
                *ret_refusal = strdup("out of memory");
                return NULL;
        }
        r = pa->reload(pa->reload_userdata, fresh, ret_refusal);
        if (r < 0) {
                free(fresh);
                if (!*ret_refusal)
                        *ret_refusal = strdup(strerror(-r));
                return NULL;
        }
        return fresh;
}

/* What a new generation needs besides its configuration (already
 * pa->ctx.config): the TLS contexts into ret[] and, when limits were just
 * switched on, a limits table (the old generation drains without). On
 * failure the reload is reported refused and nothing changed. */
static int reload_prepare(Parent *pa, SSL_CTX *ret[_PROXY_PORT_MAX]) {
        int r;

        r = load_tls(pa, ret);
        if (r < 0) {
                report(pa, false, "cannot load the certificates (see above); the workers keep the previous "
                                  "configuration and certificates");
                return r;
        }
        if (!pa->ctx.limits && limits_wanted(pa->ctx.config)) {
                r = limits_new(pa->ctx.config->tuning.limits_slots, 2 * pa->n_workers, &pa->ctx.limits);
                if (r < 0) {
                        ssl_ctx_free_all(ret);
                        report(pa, false, "cannot create the limits table: %s; keeping the running configuration",
                               strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* Slots of the older-than-previous generation, if any, must go now to
 * make room for a new one. */
static void retire_old_generations(Parent *pa) {
        signal_generation(pa, pa->generation, SIGKILL);
        for (unsigned i = 0; i < 2 * pa->n_workers; i++)
                if (pa->slots[i].pid > 0 && pa->slots[i].generation < pa->generation) {
                        (void)waitpid(pa->slots[i].pid, NULL, 0);
                        if (pa->ctx.limits)
                                limits_column_reset(pa->ctx.limits, i);
                        proxy_metrics_set_open(pa->ctx.metrics, i, 0);
                        pa->slots[i] = (WorkerSlot){};
                }
        for (unsigned i = 0; i < 2 * pa->n_workers; i++)
                pa->slots[i].restart_at = 0;
}

static void reload_report(Parent *pa, const char *refusal, int spawned, bool fresh) {
        if (refusal)
                report(pa, false, "%s; keeping the running configuration (certificates and CRL reloaded: "
                                  "generation %u of workers)", refusal, pa->generation);
        else if (spawned < 0)
                report(pa, false, "%s; generation %u is short of workers (restarted as slots free up)",
                       strerror(-spawned), pa->generation);
        else
                report(pa, true, "generation %u of workers started with %s%s; the previous one drains",
                       pa->generation, fresh ? "the configuration of " : "the certificates and CRL",
                       fresh && pa->ctx.config->source ? pa->ctx.config->source : "");
}

/* SIGHUP: the configuration again (when the command line gave a way to
 * get it), the certificates and the CRL, then a new generation of workers
 * with all of it; the old generation drains. The configuration is all or
 * nothing: one that does not load or changes restart-only keys leaves the
 * running one, and the reload is reported failed. The certificates and
 * the CRL are loaded again in any case: a revocation never waits for an
 * unrelated mistake in the configuration to be fixed. Certificates that do
 * not load leave everything as it was. */
static void reload(Parent *pa) {
        SSL_CTX *ctx[_PROXY_PORT_MAX] = {};
        const ProxyConfig *running = pa->ctx.config;
        _cleanup_free_ char *refusal = NULL;
        ProxyConfig *fresh = NULL;
        int r;

        if (pa->reload) {
                fresh = reload_config(pa, &refusal);
                /* load_tls() reads the certificate files of ctx.config. */
                if (fresh)
                        pa->ctx.config = fresh;
                else if (!refusal)
                        refusal = strdup("out of memory");
        }
        if (reload_prepare(pa, ctx) < 0) {
                pa->ctx.config = running;
                config_free(fresh);
                return;
        }
        retire_old_generations(pa);
        ssl_ctx_free_all(pa->ctx.ctx);
        memcpy(pa->ctx.ctx, ctx, sizeof(ctx));
        pa->generation++;
        r = spawn_generation(pa);
        signal_generation(pa, pa->generation, SIGTERM);
        /* The workers have their copies: the previous configuration (if we
         * own it) is nobody's any more. */
        if (fresh) {
                config_free(pa->reloaded);
                pa->reloaded = fresh;
        }
        reload_report(pa, refusal, r, fresh);
}

/* From the loop (every 250 ms at least): the ticket keys' schedule. A
 * failure keeps the current key (tickets stay valid longer) and is
 * retried on the next turn. */
static void rotate_ticket_keys(Parent *pa) {
        uint64_t lifetime = (uint64_t)pa->ctx.config->tuning.ticket_key_lifetime * 1000;

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                int r = tls_ticket_keys_tick(pa->ticket_keys[i], now_ms(), lifetime);
                if (r < 0)
                        log_warning_errno(r, "proxy: cannot rotate the %s port's TLS ticket key: %m",
                                          proxy_port_name((ProxyPort)i));
                else if (r > 0)
                        log_info("proxy: %s port: new TLS ticket key", proxy_port_name((ProxyPort)i));
        }
}

/* From the loop, once a second: [push] htpasswd changed on disk (its
 * stamp differs from the running entries' and from the last one reacted
 * to) reloads as a SIGHUP does, so the workers get the new entries; the
 * command line reads the file (and the configuration) again. A file that
 * does not load leaves the running entries, reported once per change. */
static void htpasswd_watch(Parent *pa) {
        const ProxyConfig *c = pa->ctx.config;
        HtpasswdStamp now;

        if (!c->htpasswd_path || now_ms() < pa->htpasswd_checked + 1000)
                return;
        pa->htpasswd_checked = now_ms();
        if (htpasswd_stamp(c->htpasswd_path, &now) < 0)
                now = (HtpasswdStamp){};
        if (htpasswd_stamp_equal(&now, &c->htpasswd.stamp) || htpasswd_stamp_equal(&now, &pa->htpasswd_seen))
                return;
        pa->htpasswd_seen = now;
        log_info("proxy: %s changed; reloading", c->htpasswd_path);
        pa->report_quiet = true;
        reload(pa);
        pa->report_quiet = false;
}

static unsigned workers_alive(const Parent *pa) {
        unsigned n = 0;
        for (unsigned i = 0; i < 2 * pa->n_workers; i++)
                n += pa->slots[i].pid > 0;
        return n;
}

static bool any_worker(const Parent *pa) {
        for (unsigned i = 0; i < 2 * pa->n_workers; i++)
                if (pa->slots[i].pid > 0)
                        return true;
        return false;
}

static int lookup_user(Parent *pa) {
        const char *user = pa->ctx.config->proxy_user;
        struct passwd *pw = user ? getpwnam(user) : NULL;

        if (!pw)
                return log_error_errno(-ESRCH, "proxy: no user '%s' ([host] proxy_user); run regvisor provision",
                                       user ? user : "");
        if (pw->pw_uid == 0 || pw->pw_gid == 0)
                return log_error_errno(-EPERM, "proxy: proxy_user '%s' must not be root", user);
        pa->ctx.uid = pw->pw_uid;
        pa->ctx.gid = pw->pw_gid;
        return 0;
}

/* The supervisor's end of the report pipe (regvisor run), if any. */
static int report_fd_from_env(void) {
        const char *e = getenv(PROXY_REPORT_FD_ENV);
        int fd = e ? atoi(e) : -1;

        (void)unsetenv(PROXY_REPORT_FD_ENV);
        if (fd > STDERR_FILENO && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
                return fd;
        return -1;
}

/* Signals are handled through a signalfd (proxy_signal_set()). */
static int signals_open(void) {
        sigset_t mask;
        int fd;

        proxy_signal_set(&mask);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "proxy: sigprocmask: %m");
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (fd < 0)
                return log_error_errno(errno, "proxy: signalfd: %m");
        (void)signal(SIGPIPE, SIG_IGN);
        return fd;
}

static int metrics_open(Parent *pa) {
        const char *why;
        int r;

        r = proxy_metrics_open(&pa->ctx.metrics, &why);
        if (r < 0)
                return log_error_errno(r, "proxy: cannot map the metrics counters: %m");
        if (why)
                log_warning("proxy: %s; counting into a private region (no proxy metrics in /metrics)", why);
        return 0;
}

/* Everything the workers inherit, made while root: ticket keys, TLS
 * contexts, the upstream address, the listening sockets, the limits table,
 * the counters, the parent-death pipe, the worker table. */
static int parent_prepare(Parent *pa) {
        const ProxyConfig *config = pa->ctx.config;
        int r;

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                r = tls_ticket_keys_new(&pa->ticket_keys[i]);
                if (r < 0)
                        return log_error_errno(r, "proxy: cannot map the TLS ticket keys: %m");
        }
        r = load_tls(pa, pa->ctx.ctx);
        if (r < 0)
                return r;
        r = setup_upstream(pa);
        if (r < 0)
                return r;
        r = setup_listeners(pa);
        if (r < 0)
                return r;
        if (limits_wanted(config)) {
                r = limits_new(config->tuning.limits_slots, 2 * pa->n_workers, &pa->ctx.limits);
                if (r < 0)
                        return log_error_errno(r, "proxy: cannot create the limits table: %m");
        }
        r = metrics_open(pa);
        if (r < 0)
                return r;
        if (pipe2(pa->ctx.parent_pipe, O_CLOEXEC) < 0)
                return log_error_errno(errno, "proxy: pipe: %m");
        pa->slots = calloc(2 * pa->n_workers, sizeof(WorkerSlot));
        if (!pa->slots)
                return log_error_errno(-ENOMEM, "out of memory");
        return 0;
}

/* SIGTERM, SIGINT: no new connections from here on; the workers drain. */
static void stop_start(Parent *pa) {
        if (pa->stopping)
                return;
        log_info("proxy: stopping; workers drain for up to %d s", PROXY_DRAIN_SECONDS);
        (void)sd_notify(0, "STOPPING=1");
        pa->stopping = true;
        pa->stop_deadline = now_ms() + STOP_GRACE_MS;
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                if (pa->ctx.listen_fd[i] >= 0) {
                        (void)close(pa->ctx.listen_fd[i]);
                        pa->ctx.listen_fd[i] = -1;
                }
        signal_generation(pa, UINT32_MAX, SIGTERM);
}

static void on_signal(Parent *pa, int signo) {
        switch (signo) {
        case SIGCHLD:
                break; /* reaped by the loop */
        case SIGHUP:
                if (!pa->stopping) {
                        (void)sd_notify(0, "RELOADING=1");
                        reload(pa);
                        (void)sd_notify(0, "READY=1");
                }
                break;
        default: /* SIGTERM, SIGINT */
                stop_start(pa);
                break;
        }
}

/* Supervision until stopped and drained (or out of time): one loop over
 * the signalfd, woken at least every 250 ms for restarts and the ticket
 * key schedule. */
static void parent_loop(Parent *pa, int sigfd) {
        for (;;) {
                struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
                struct signalfd_siginfo si;

                if (pa->stopping && (!any_worker(pa) || now_ms() >= pa->stop_deadline))
                        break;
                (void)poll(&pfd, 1, 250);
                while (read(sigfd, &si, sizeof(si)) == sizeof(si))
                        on_signal(pa, (int)si.ssi_signo);
                reap(pa);
                if (!pa->stopping)
                        restart_due(pa);
                rotate_ticket_keys(pa);
                if (!pa->stopping)
                        htpasswd_watch(pa);
                proxy_metrics_set_workers(pa->ctx.metrics, workers_alive(pa));
        }
        if (any_worker(pa)) {
                log_warning("proxy: workers still busy after %d s; killing them", STOP_GRACE_MS / 1000);
                signal_generation(pa, UINT32_MAX, SIGKILL);
                while (waitpid(-1, NULL, 0) > 0)
                        ;
        }
}

static void parent_done(Parent *pa) {
        proxy_metrics_set_workers(pa->ctx.metrics, 0);
        proxy_metrics_unmap(pa->ctx.metrics);
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                if (pa->ctx.listen_fd[i] >= 0)
                        (void)close(pa->ctx.listen_fd[i]);
        for (int i = 0; i < 2; i++)
                if (pa->ctx.parent_pipe[i] >= 0)
                        (void)close(pa->ctx.parent_pipe[i]);
        ssl_ctx_free_all(pa->ctx.ctx);
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                tls_ticket_keys_free(pa->ticket_keys[i]);
        limits_free(pa->ctx.limits);
        free(pa->slots);
        if (pa->report_fd >= 0)
                (void)close(pa->report_fd);
        config_free(pa->reloaded);
}

int proxy_run(const ProxyConfig *config, ProxyReload reload_cb, void *userdata) {
        Parent pa = {
                .ctx = {.config = config, .listen_fd = {-1, -1}, .parent_pipe = {-1, -1}},
                .reload = reload_cb,
                .reload_userdata = userdata,
                .report_fd = report_fd_from_env(),
        };
        _cleanup_close_ int sigfd = -1;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int r;

        pa.n_workers = config->tuning.workers > 0 ? config->tuning.workers : (unsigned)(ncpu > 0 ? ncpu : 1);
        if (geteuid() != 0) {
                r = log_error_errno(-EPERM, "proxy: must start as root (it binds ports, reads the "
                                            "server key, and drops to the proxy user)");
                goto out;
        }
        r = lookup_user(&pa);
        if (r < 0)
                goto out;
        sigfd = signals_open();
        if (sigfd < 0) {
                r = sigfd;
                goto out;
        }
        r = parent_prepare(&pa);
        if (r < 0)
                goto out;
        r = spawn_generation(&pa);
        if (r < 0)
                goto out;
        log_info("proxy: %u workers, pull port %u, push port %u, upstream %s", pa.n_workers,
                 config->port[PROXY_PULL].listen_port, config->port[PROXY_PUSH].listen_port,
                 config->upstream_path ? config->upstream_path : config->upstream_host);
        (void)sd_notify(0, "READY=1\nSTATUS=proxy serving");
        parent_loop(&pa, sigfd);
        log_info("proxy: stopped");
        r = 0;
out:
        parent_done(&pa);
        return r;
}
