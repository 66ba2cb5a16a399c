/* SPDX-License-Identifier: MIT */
/*
 * The proxy's parent: prepares everything the workers need while it is
 * root, forks them and supervises them (see proxy.h).
 *
 * Workers are a table of 2 x workers slots. Slot i owns column i of the
 * limits table. A generation of workers fills `workers` free slots; a
 * reload (SIGHUP) reads the configuration file again, starts a new
 * generation with it on the other free slots and tells the old one to drain
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

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "proxy.h"
#include "reload.h"
#include "sockaddr.h"
#include "tls.h"

#define RESTART_FAST_MS 1000
#define RESTART_DELAY_MS 1000
#define STOP_GRACE_MS ((PROXY_DRAIN_SECONDS + 5) * 1000)

typedef struct WorkerSlot {
        pid_t pid;          /* 0: free */
        unsigned generation;
        uint64_t started;
        uint64_t restart_at; /* > 0: restart this slot then (current generation) */
} WorkerSlot;

typedef struct Parent {
        ProxyContext ctx;
        const char *root;
        unsigned n_workers;
        unsigned generation;
        WorkerSlot *slots; /* 2 * n_workers */
        bool stopping;
        uint64_t stop_deadline;
        const char *config_path; /* NULL: a reload loads certificates only */
        Config *reloaded;        /* owned: ctx.config after the first reload */
        int report_fd;           /* reload outcomes for the supervisor, -1 if none */
        TlsTicketKeys *ticket_keys[_PROXY_PORT_MAX]; /* shared with the workers, see tls.h */
} Parent;

const char *proxy_port_name(ProxyPort p) {
        return p == PROXY_PULL ? "pull" : "push";
}

static uint64_t now_ms(void) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool proxy_cidr_allowed(const Cidr *cidrs, unsigned n, const struct sockaddr *addr) {
        uint8_t a[16];
        int family;

        if (n == 0)
                return true;
        if (addr->sa_family == AF_INET) {
                family = AF_INET;
                memcpy(a, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        } else if (addr->sa_family == AF_INET6) {
                const struct in6_addr *in6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
                if (IN6_IS_ADDR_V4MAPPED(in6)) {
                        family = AF_INET;
                        memcpy(a, &in6->s6_addr[12], 4);
                } else {
                        family = AF_INET6;
                        memcpy(a, in6, 16);
                }
        } else
                return false;

        for (unsigned i = 0; i < n; i++) {
                const Cidr *c = &cidrs[i];
                unsigned bits = c->prefix, full = bits / 8, rest = bits % 8;
                if (c->family != family)
                        continue;
                if (memcmp(a, c->addr, full) != 0)
                        continue;
                if (rest && ((a[full] ^ c->addr[full]) & (uint8_t)(0xff00u >> rest)) != 0)
                        continue;
                return true;
        }
        return false;
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

static char *tls_path(const Parent *pa, const char *rel) {
        _cleanup_free_ char *dir = path_join_root(pa->root, pa->ctx.config->tls_dir);
        char *p;

        if (!dir || asprintf(&p, "%s/%s", dir, rel) < 0)
                return NULL;
        return p;
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
        _cleanup_free_ char *cert = tls_path(pa, TLS_SERVER_CERT), *key = tls_path(pa, TLS_SERVER_KEY),
                            *ca = tls_path(pa, TLS_CLIENT_CA_CERT), *crl = tls_path(pa, TLS_CLIENT_CRL);
        SSL_CTX *ctx[_PROXY_PORT_MAX] = {};
        int r;

        if (!cert || !key || !ca || !crl)
                return log_error_errno(-ENOMEM, "out of memory");
        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                _cleanup_free_ char *error = NULL;
                TlsFiles f = {.cert = cert, .key = key};
                if (i == PROXY_PUSH) {
                        f.client_ca = ca;
                        f.crl = crl;
                }
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

/* A socket from systemd for this port, if any (sd_listen_fds()). */
static int listen_fd_from_systemd(unsigned port) {
        int n = sd_listen_fds(0);

        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, (uint16_t)port) > 0)
                        return fd;
        }
        return -ENOENT;
}

static int bind_listen(const ListenAddress *la, int *ret_fd) {
        SocketAddress sa;
        int fd, one = 1, zero = 0, r;

        r = sockaddr_from_listen(la, &sa);
        if (r < 0)
                return r;

        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0 && sa.sa.sa_family == AF_INET6 && !la->host) {
                /* No IPv6 here: all of IPv4 then. */
                sa.in = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(la->port)};
                sa.len = sizeof(sa.in);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return negative_errno();
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (sa.sa.sa_family == AF_INET6 && !la->host)
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
        const Config *c = pa->ctx.config;
        const ListenAddress *la[_PROXY_PORT_MAX] = {&c->pull.listen, &c->push.listen};
        int r;

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                int fd = listen_fd_from_systemd(la[i]->port);
                pa->ctx.port_number[i] = la[i]->port;
                if (fd >= 0) {
                        /* Ours now, and non-blocking for accept4() loops. */
                        int fl = fcntl(fd, F_GETFL);
                        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
                        log_info("proxy: %s port %u from socket activation", proxy_port_name((ProxyPort)i),
                                 la[i]->port);
                } else {
                        r = bind_listen(la[i], &fd);
                        if (r < 0)
                                return log_error_errno(r, "proxy: cannot listen on %s%s%u for the %s port: %m",
                                                       la[i]->host ? la[i]->host : "", la[i]->host ? ":" : "",
                                                       la[i]->port, proxy_port_name((ProxyPort)i));
                }
                pa->ctx.listen_fd[i] = fd;
        }
        return 0;
}

static int setup_upstream(Parent *pa) {
        const UpstreamAddress *u = &pa->ctx.config->listen;
        SocketAddress sa;
        int r;

        r = sockaddr_from_upstream(u, &sa);
        if (r == -ENAMETOOLONG)
                return log_error_errno(r, "proxy: upstream socket path too long: %s", u->path);
        if (r < 0)
                return log_error_errno(r, "proxy: bad upstream address %s", u->host);
        memcpy(&pa->ctx.upstream, &sa.storage, sizeof(pa->ctx.upstream));
        pa->ctx.upstream_len = sa.len;
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

/* One line per reload to the supervisor (see reload.h): "ok MESSAGE" or
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
        if (pa->report_fd < 0)
                return;
        for (int i = 0; i < n; i++)
                if (line[i] == '\n')
                        line[i] = ' ';
        char out[1100];
        int k = snprintf(out, sizeof(out), "%s %s\n", ok ? "ok" : "failed", line);
        if (k > 0 && write(pa->report_fd, out, (size_t)k) < 0)
                log_warning("proxy: cannot report the reload to the supervisor: %m");
}

static bool limits_wanted(const Config *c) {
        return c->pull.conn_per_ip || c->push.conn_per_ip || c->pull.rate > 0 || c->push.rate > 0;
}

/* The configuration file again, or NULL with *ret_refusal saying why the
 * running one stays (a parse error, restart-only keys). */
static Config *reload_config(const Parent *pa, char **ret_refusal) {
        _cleanup_free_ char *error = NULL, *restart = NULL;
        Config *fresh = calloc(1, sizeof(Config));
        int r;

        *ret_refusal = NULL;
        if (!fresh) {
                *ret_refusal = strdup("out of memory");
                return NULL;
        }
        r = reload_load_config(pa->config_path, fresh, &error);
        if (r < 0) {
                free(fresh);
                *ret_refusal = error ? TAKE_PTR(error) : strdup(strerror(-r));
                return NULL;
        }
        r = reload_restart_only_changes(pa->ctx.config, fresh, RELOAD_PROXY, &restart);
        if (r != 0) {
                config_done(fresh);
                free(fresh);
                if (asprintf(ret_refusal, "%s: %s %s only with a restart", pa->config_path,
                             r > 0 ? restart : "(out of memory)", r == 1 ? "changes" : "change") < 0)
                        *ret_refusal = NULL;
                return NULL;
        }
        return fresh;
}

/* SIGHUP: the configuration file again (when the proxy knows it), the
 * certificates and the CRL, then a new generation of workers with all of
 * it; the old generation drains. The configuration is all or nothing: a
 * file that does not load or changes restart-only keys (reload.h) leaves
 * the running one, and the reload is reported failed. The certificates and
 * the CRL are loaded again in any case: a revocation never waits for an
 * unrelated mistake in the configuration to be fixed. Certificates that do
 * not load leave everything as it was. */
static void reload(Parent *pa) {
        SSL_CTX *ctx[_PROXY_PORT_MAX] = {};
        const Config *running = pa->ctx.config;
        _cleanup_free_ char *refusal = NULL;
        Config *fresh = NULL;
        int r;

        if (pa->config_path) {
                fresh = reload_config(pa, &refusal);
                /* load_tls() reads [tls] dir from ctx.config. */
                if (fresh)
                        pa->ctx.config = fresh;
                else if (!refusal)
                        refusal = strdup("out of memory");
        }
        if (load_tls(pa, ctx) < 0) {
                pa->ctx.config = running;
                if (fresh) {
                        config_done(fresh);
                        free(fresh);
                }
                report(pa, false, "cannot load the certificates (see above); the workers keep the previous "
                                  "configuration and certificates");
                return;
        }
        if (!pa->ctx.limits && limits_wanted(pa->ctx.config)) {
                /* Limits switched on: a table for the new generation (the
                 * old one drains without). */
                r = limits_new(pa->ctx.config->limits_slots, 2 * pa->n_workers, &pa->ctx.limits);
                if (r < 0) {
                        pa->ctx.config = running;
                        if (fresh) {
                                config_done(fresh);
                                free(fresh);
                        }
                        ssl_ctx_free_all(ctx);
                        report(pa, false, "cannot create the limits table: %s; keeping the running configuration",
                               strerror(-r));
                        return;
                }
        }
        pa->ctx.port_config[PROXY_PULL] = &pa->ctx.config->pull;
        pa->ctx.port_config[PROXY_PUSH] = &pa->ctx.config->push;

        /* Slots of the older-than-previous generation, if any, must go
         * now to make room. */
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

        ssl_ctx_free_all(pa->ctx.ctx);
        memcpy(pa->ctx.ctx, ctx, sizeof(ctx));
        pa->generation++;
        r = spawn_generation(pa);
        signal_generation(pa, pa->generation, SIGTERM);
        /* The workers have their copies: the previous configuration (if we
         * own it) is nobody's any more. */
        if (fresh && pa->reloaded) {
                config_done(pa->reloaded);
                free(pa->reloaded);
        }
        if (fresh)
                pa->reloaded = fresh;
        if (refusal)
                report(pa, false, "%s; keeping the running configuration (certificates and CRL reloaded: "
                                  "generation %u of workers)", refusal, pa->generation);
        else if (r < 0)
                report(pa, false, "%s; generation %u is short of workers (restarted as slots free up)",
                       strerror(-r), pa->generation);
        else
                report(pa, true, "generation %u of workers started with %s%s; the previous one drains",
                       pa->generation, fresh ? "the configuration of " : "the certificates and CRL",
                       fresh ? pa->config_path : "");
}

/* From the loop (every 250 ms at least): the ticket keys' schedule. A
 * failure keeps the current key (tickets stay valid longer) and is
 * retried on the next turn. */
static void rotate_ticket_keys(Parent *pa) {
        uint64_t lifetime = (uint64_t)pa->ctx.config->ticket_key_lifetime * 1000;

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                int r = tls_ticket_keys_tick(pa->ticket_keys[i], now_ms(), lifetime);
                if (r < 0)
                        log_warning_errno(r, "proxy: cannot rotate the %s port's TLS ticket key: %m",
                                          proxy_port_name((ProxyPort)i));
                else if (r > 0)
                        log_info("proxy: %s port: new TLS ticket key", proxy_port_name((ProxyPort)i));
        }
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
        struct passwd *pw = getpwnam(pa->ctx.config->proxy_user);

        if (!pw)
                return log_error_errno(-ESRCH, "proxy: no user '%s' ([host] proxy_user); run regvisor provision",
                                       pa->ctx.config->proxy_user);
        if (pw->pw_uid == 0 || pw->pw_gid == 0)
                return log_error_errno(-EPERM, "proxy: proxy_user '%s' must not be root", pa->ctx.config->proxy_user);
        pa->ctx.uid = pw->pw_uid;
        pa->ctx.gid = pw->pw_gid;
        return 0;
}

int proxy_run(const Config *config, const char *config_path, const char *root) {
        Parent pa = {
                .ctx = {.config = config, .listen_fd = {-1, -1}, .parent_pipe = {-1, -1}},
                .root = root,
                .config_path = config_path,
                .report_fd = -1,
        };
        _cleanup_close_ int sigfd = -1;
        sigset_t mask;
        long ncpu;
        int r;

        pa.ctx.port_config[PROXY_PULL] = &config->pull;
        pa.ctx.port_config[PROXY_PUSH] = &config->push;
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        pa.n_workers = config->workers > 0 ? config->workers : (unsigned)(ncpu > 0 ? ncpu : 1);

        {
                /* The supervisor's end of the report pipe (regvisor run). */
                const char *e = getenv(PROXY_REPORT_FD_ENV);
                int fd = e ? atoi(e) : -1;
                if (fd > STDERR_FILENO && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0)
                        pa.report_fd = fd;
                (void)unsetenv(PROXY_REPORT_FD_ENV);
        }
        if (geteuid() != 0)
                return log_error_errno(-EPERM, "proxy: must start as root (it binds ports, reads the "
                                               "server key, and drops to the proxy user)");
        r = lookup_user(&pa);
        if (r < 0)
                return r;

        /* Signals are handled through a signalfd; blocked before the first
         * fork so that the workers start with them blocked too. */
        (void)sigemptyset(&mask);
        (void)sigaddset(&mask, SIGTERM);
        (void)sigaddset(&mask, SIGINT);
        (void)sigaddset(&mask, SIGHUP);
        (void)sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "proxy: sigprocmask: %m");
        sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sigfd < 0)
                return log_error_errno(errno, "proxy: signalfd: %m");
        (void)signal(SIGPIPE, SIG_IGN);

        for (int i = 0; i < _PROXY_PORT_MAX; i++) {
                r = tls_ticket_keys_new(&pa.ticket_keys[i]);
                if (r < 0) {
                        log_error_errno(r, "proxy: cannot map the TLS ticket keys: %m");
                        goto out;
                }
        }
        r = load_tls(&pa, pa.ctx.ctx);
        if (r < 0)
                goto out;
        r = setup_upstream(&pa);
        if (r < 0)
                goto out;
        r = setup_listeners(&pa);
        if (r < 0)
                goto out;
        if (limits_wanted(config)) {
                r = limits_new(config->limits_slots, 2 * pa.n_workers, &pa.ctx.limits);
                if (r < 0) {
                        log_error_errno(r, "proxy: cannot create the limits table: %m");
                        goto out;
                }
        }
        {
                const char *why;
                r = proxy_metrics_open(&pa.ctx.metrics, &why);
                if (r < 0) {
                        log_error_errno(r, "proxy: cannot map the metrics counters: %m");
                        goto out;
                }
                if (why)
                        log_warning("proxy: %s; counting into a private region (no proxy metrics in /metrics)",
                                    why);
        }
        if (pipe2(pa.ctx.parent_pipe, O_CLOEXEC) < 0) {
                r = log_error_errno(errno, "proxy: pipe: %m");
                goto out;
        }
        pa.slots = calloc(2 * pa.n_workers, sizeof(WorkerSlot));
        if (!pa.slots) {
                r = log_error_errno(-ENOMEM, "out of memory");
                goto out;
        }

        r = spawn_generation(&pa);
        if (r < 0)
                goto out;
        log_info("proxy: %u workers, pull port %u, push port %u, upstream %s", pa.n_workers,
                 pa.ctx.port_number[PROXY_PULL], pa.ctx.port_number[PROXY_PUSH],
                 config->listen.kind == LISTEN_UNIX ? config->listen.path : config->listen.host);
        (void)sd_notify(0, "READY=1\nSTATUS=proxy serving");

        for (;;) {
                struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
                struct signalfd_siginfo si;

                if (pa.stopping && (!any_worker(&pa) || now_ms() >= pa.stop_deadline))
                        break;
                (void)poll(&pfd, 1, 250);
                while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
                        switch (si.ssi_signo) {
                        case SIGCHLD:
                                break; /* reaped below */
                        case SIGHUP:
                                if (!pa.stopping) {
                                        (void)sd_notify(0, "RELOADING=1");
                                        reload(&pa);
                                        (void)sd_notify(0, "READY=1");
                                }
                                break;
                        default: /* SIGTERM, SIGINT */
                                if (!pa.stopping) {
                                        log_info("proxy: stopping; workers drain for up to %d s",
                                                 PROXY_DRAIN_SECONDS);
                                        (void)sd_notify(0, "STOPPING=1");
                                        pa.stopping = true;
                                        pa.stop_deadline = now_ms() + STOP_GRACE_MS;
                                        /* No new connections from here on. */
                                        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                                                if (pa.ctx.listen_fd[i] >= 0) {
                                                        (void)close(pa.ctx.listen_fd[i]);
                                                        pa.ctx.listen_fd[i] = -1;
                                                }
                                        signal_generation(&pa, UINT32_MAX, SIGTERM);
                                }
                                break;
                        }
                }
                reap(&pa);
                if (!pa.stopping)
                        restart_due(&pa);
                rotate_ticket_keys(&pa);
                proxy_metrics_set_workers(pa.ctx.metrics, workers_alive(&pa));
        }
        if (any_worker(&pa)) {
                log_warning("proxy: workers still busy after %d s; killing them", STOP_GRACE_MS / 1000);
                signal_generation(&pa, UINT32_MAX, SIGKILL);
                while (waitpid(-1, NULL, 0) > 0)
                        ;
        }
        log_info("proxy: stopped");
        r = 0;
out:
        proxy_metrics_set_workers(pa.ctx.metrics, 0);
        proxy_metrics_unmap(pa.ctx.metrics);
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                if (pa.ctx.listen_fd[i] >= 0)
                        (void)close(pa.ctx.listen_fd[i]);
        for (int i = 0; i < 2; i++)
                if (pa.ctx.parent_pipe[i] >= 0)
                        (void)close(pa.ctx.parent_pipe[i]);
        ssl_ctx_free_all(pa.ctx.ctx);
        for (int i = 0; i < _PROXY_PORT_MAX; i++)
                tls_ticket_keys_free(pa.ticket_keys[i]);
        limits_free(pa.ctx.limits);
        free(pa.slots);
        if (pa.report_fd >= 0)
                (void)close(pa.report_fd);
        if (pa.reloaded) {
                config_done(pa.reloaded);
                free(pa.reloaded);
        }
        return r;
}
