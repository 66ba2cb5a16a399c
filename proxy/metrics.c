/* SPDX-License-Identifier: MIT */
/*
 * The proxy's shared counters and their Prometheus text; see metrics.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "metrics.h"
#include "prom.h"

static const double duration_bounds[] = METRICS_DURATION_BOUNDS;
_Static_assert(sizeof(duration_bounds) / sizeof(duration_bounds[0]) + 1 == METRICS_DURATION_BUCKETS,
               "one bucket per bound, plus +Inf");

static const char *const port_names[_METRICS_PORT_MAX] = {"pull", "push"};
static const char *const method_names[_METRICS_METHOD_MAX] = {
        [METRICS_GET] = "GET",       [METRICS_HEAD] = "HEAD",     [METRICS_POST] = "POST",
        [METRICS_PUT] = "PUT",       [METRICS_PATCH] = "PATCH",   [METRICS_DELETE] = "DELETE",
        [METRICS_OTHER] = "other",
};
static const char *const tls_names[_METRICS_TLS_MAX] = {
        [METRICS_TLS_NO_CERTIFICATE] = "no_certificate", [METRICS_TLS_BAD_CERTIFICATE] = "bad_certificate",
        [METRICS_TLS_REVOKED] = "revoked",               [METRICS_TLS_EXPIRED] = "expired",
        [METRICS_TLS_PROTOCOL] = "protocol",
};
static const char *const upstream_names[_METRICS_UPSTREAM_MAX] = {
        [METRICS_UPSTREAM_CONNECT] = "connect",
        [METRICS_UPSTREAM_TIMEOUT] = "timeout",
        [METRICS_UPSTREAM_RESET] = "reset",
        [METRICS_UPSTREAM_PROTOCOL] = "protocol",
};

static const char *const pause_names[_METRICS_PAUSE_MAX] = {
        [METRICS_PAUSE_FD_LIMIT] = "fd_limit",
        [METRICS_PAUSE_MAX_CONNECTIONS] = "max_connections",
};
static const char *const slow_names[_METRICS_SLOW_MAX] = {
        [METRICS_SLOW_BODY] = "body",
        [METRICS_SLOW_RESPONSE] = "response",
};

static uint64_t load(const uint64_t *p) {
        return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void add(uint64_t *p, uint64_t n) {
        (void)__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

void proxy_metrics_header(ProxyMetrics *m) {
        m->magic = PROXY_METRICS_MAGIC;
        m->version = PROXY_METRICS_VERSION;
        m->size = sizeof(ProxyMetrics);
}

bool proxy_metrics_valid(const ProxyMetrics *m) {
        return m && m->magic == PROXY_METRICS_MAGIC && m->version == PROXY_METRICS_VERSION &&
               m->size == sizeof(ProxyMetrics);
}

int proxy_metrics_memfd_new(int *ret_fd) {
        ProxyMetrics header = {};
        int fd, r;

        fd = memfd_create("regvisor-metrics", MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        proxy_metrics_header(&header);
        if (ftruncate(fd, sizeof(ProxyMetrics)) < 0) {
                r = negative_errno();
                (void)close(fd);
                return r;
        }
        /* Only the header: the rest of a new memfd reads as zeros. */
        if (pwrite(fd, &header, offsetof(ProxyMetrics, workers_alive), 0) !=
            (ssize_t)offsetof(ProxyMetrics, workers_alive)) {
                r = errno > 0 ? -errno : -EIO;
                (void)close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int proxy_metrics_map_fd(int fd, bool writable, ProxyMetrics **ret) {
        struct stat st;
        void *p;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size != (off_t)sizeof(ProxyMetrics))
                return -EBADMSG;
        p = mmap(NULL, sizeof(ProxyMetrics), PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        if (!proxy_metrics_valid(p)) {
                (void)munmap(p, sizeof(ProxyMetrics));
                return -EBADMSG;
        }
        *ret = p;
        return 0;
}

static int parse_fd(const char *s) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end || v < 3 || v > 65535)
                return -EINVAL;
        return (int)v;
}

int proxy_metrics_open(ProxyMetrics **ret, const char **ret_error) {
        const char *env = getenv(PROXY_METRICS_FD_ENV);
        ProxyMetrics *m = NULL;
        void *p;

        *ret_error = NULL;
        if (env) {
                int fd = parse_fd(env), r;
                if (fd < 0)
                        *ret_error = "REGVISOR_METRICS_FD is not a file descriptor number";
                else {
                        r = proxy_metrics_map_fd(fd, true, &m);
                        if (r == -EBADMSG)
                                *ret_error = "the metrics region does not match this build's layout";
                        else if (r < 0)
                                *ret_error = "cannot map the metrics region";
                        /* Mapped or not, the workers must not inherit it. */
                        (void)close(fd);
                }
                (void)unsetenv(PROXY_METRICS_FD_ENV);
                if (m) {
                        *ret = m;
                        return 0;
                }
        }
        p = mmap(NULL, sizeof(ProxyMetrics), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        proxy_metrics_header(p);
        *ret = p;
        return 0;
}

void proxy_metrics_unmap(const ProxyMetrics *m) {
        if (m)
                (void)munmap((void *)m, sizeof(ProxyMetrics));
}

MetricsMethod proxy_metrics_method(const char *method) {
        for (int i = 0; i < METRICS_OTHER; i++)
                if (strcmp(method, method_names[i]) == 0)
                        return (MetricsMethod)i;
        return METRICS_OTHER;
}

void proxy_metrics_request(ProxyMetrics *m, MetricsPort port, const char *method, int status, uint64_t bytes_in,
                           uint64_t bytes_out, uint64_t duration_us) {
        ProxyPortMetrics *pm;
        unsigned b = 0;

        if (!m || port >= _METRICS_PORT_MAX)
                return;
        pm = &m->port[port];
        add(&pm->bytes_in, bytes_in);
        add(&pm->bytes_out, bytes_out);
        if (status < 100 || status > 599)
                return;
        add(&pm->requests[proxy_metrics_method(method)][status / 100 - 1], 1);
        /* The first bound the duration does not exceed (le: <=). */
        while (b < METRICS_DURATION_BUCKETS - 1 && (double)duration_us > duration_bounds[b] * 1e6)
                b++;
        add(&pm->duration_bucket[b], 1);
        add(&pm->duration_sum_us, duration_us);
}

void proxy_metrics_inc(uint64_t *c) {
        if (c)
                add(c, 1);
}

void proxy_metrics_set_workers(ProxyMetrics *m, uint64_t n) {
        if (m)
                __atomic_store_n(&m->workers_alive, n, __ATOMIC_RELAXED);
}

void proxy_metrics_set_open(ProxyMetrics *m, unsigned slot, uint64_t n) {
        if (m && slot < METRICS_WORKER_SLOTS)
                __atomic_store_n(&m->conns_open[slot], n, __ATOMIC_RELAXED);
}

void proxy_metrics_accepted(ProxyMetrics *m, unsigned slot) {
        if (m && slot < METRICS_WORKER_SLOTS)
                add(&m->accepted[slot], 1);
}

/* name{port="...",key="value"} n; key NULL: port only. */
static void sample(FILE *out, const char *name, unsigned port, const char *key, const char *value, uint64_t n) {
        PromLabel labels[] = {{"port", port_names[port]}, {key, value}};

        prom_sample_u64(out, name, labels, key ? 2 : 1, n);
}

/* A family of counters per port: one field of ProxyPortMetrics at off, or
 * (key set) an array of n of them, labelled key=names[i]. */
typedef struct {
        const char *name, *help;
        const char *key;
        const char *const *names;
        unsigned n;
        size_t off;
} PortCounter;

#define COUNTER(name, help, field) {name, help, NULL, NULL, 1, offsetof(ProxyPortMetrics, field)}
#define LABELED(name, help, key, names, n, field) {name, help, key, names, n, offsetof(ProxyPortMetrics, field)}

static const PortCounter traffic_counters[] = {
        COUNTER("regvisor_proxy_received_bytes_total", "Bytes of requests (heads and bodies) from clients.",
                bytes_in),
        COUNTER("regvisor_proxy_sent_bytes_total", "Bytes of responses (heads and bodies) to clients.", bytes_out),
};

static const PortCounter refusal_counters[] = {
        COUNTER("regvisor_proxy_rate_limited_total", "Requests refused with 429 by the per-IP rate limit.",
                rate_limited),
        COUNTER("regvisor_proxy_rate_delayed_total",
                "Requests held back within the burst by the per-IP rate limit (delay = yes).", rate_delayed),
        COUNTER("regvisor_proxy_connection_limited_total",
                "Connections over conn_per_ip, answered 429 after the handshake.", conn_limited),
        COUNTER("regvisor_proxy_connection_ceiling_total",
                "Connections closed before TLS at the hard ceiling (twice conn_per_ip).", conn_ceiling),
        COUNTER("regvisor_proxy_cidr_refused_total", "Connections refused by allow_cidrs.", cidr_refused),
        COUNTER("regvisor_proxy_proxy_header_refused_total",
                "Connections refused: a PROXY protocol header from an address not in [proxy] trusted_proxies.",
                proxy_header_refused),
        COUNTER("regvisor_proxy_proxy_header_invalid_total",
                "Connections from a trusted proxy refused: no valid PROXY protocol v2 header before TLS.",
                proxy_header_invalid),
        COUNTER("regvisor_proxy_limits_table_full_total",
                "Connections and requests refused with 503: the per-client limits table had no room for them.",
                limits_table_full),
        COUNTER("regvisor_proxy_scope_denied_total",
                "Writes refused with 403: outside the client certificate's push scope.", scope_denied),
        COUNTER("regvisor_proxy_auth_failed_total",
                "Requests answered 401: [push] htpasswd credentials missing or wrong.", auth_failed),
        LABELED("regvisor_proxy_tls_handshake_failures_total",
                "TLS handshakes that failed, or client certificates refused on the push port, by reason.", "reason",
                tls_names, _METRICS_TLS_MAX, tls_failures),
        LABELED("regvisor_proxy_upstream_errors_total",
                "Requests the registry failed: connect (502), timeout (504), reset, protocol.", "kind",
                upstream_names, _METRICS_UPSTREAM_MAX, upstream_errors),
        LABELED("regvisor_proxy_slow_clients_total",
                "Connections closed for moving fewer than [proxy] min_rate bytes per second, by transfer.",
                "transfer", slow_names, _METRICS_SLOW_MAX, slow_clients),
};

static void per_port(FILE *out, const ProxyMetrics *m, const PortCounter *rows, size_t n_rows) {
        for (const PortCounter *c = rows; c < rows + n_rows; c++) {
                prom_family(out, c->name, "counter", c->help);
                for (unsigned p = 0; p < _METRICS_PORT_MAX; p++)
                        for (unsigned i = 0; i < c->n; i++)
                                sample(out, c->name, p, c->key, c->key ? c->names[i] : NULL,
                                       load((const uint64_t *)((const char *)&m->port[p] + c->off) + i));
        }
}

static void render_requests(FILE *out, const ProxyMetrics *m) {
        prom_family(out, "regvisor_proxy_requests_total", "counter",
                    "Requests answered by the proxy, by port, method and status class.");
        for (unsigned p = 0; p < _METRICS_PORT_MAX; p++)
                for (unsigned i = 0; i < _METRICS_METHOD_MAX; i++)
                        for (unsigned s = 0; s < METRICS_STATUS_CLASSES; s++) {
                                char class[8];
                                (void)snprintf(class, sizeof(class), "%uxx", s + 1);
                                prom_sample_u64(out, "regvisor_proxy_requests_total",
                                                (PromLabel[]){{"port", port_names[p]},
                                                              {"method", method_names[i]},
                                                              {"status", class}},
                                                3, load(&m->port[p].requests[i][s]));
                        }
}

static void render_duration(FILE *out, const ProxyMetrics *m) {
        prom_family(out, "regvisor_proxy_request_duration_seconds", "histogram",
                    "Time from a request's head to the end of its response.");
        for (unsigned p = 0; p < _METRICS_PORT_MAX; p++) {
                const PromLabel port = {"port", port_names[p]};
                uint64_t cumulative = 0, sum_us;
                char v[48];

                for (unsigned b = 0; b < METRICS_DURATION_BUCKETS; b++) {
                        cumulative += load(&m->port[p].duration_bucket[b]);
                        if (b < METRICS_DURATION_BUCKETS - 1)
                                (void)snprintf(v, sizeof(v), "%g", duration_bounds[b]);
                        else
                                (void)snprintf(v, sizeof(v), "+Inf");
                        prom_sample_u64(out, "regvisor_proxy_request_duration_seconds_bucket",
                                        (PromLabel[]){port, {"le", v}}, 2, cumulative);
                }
                sum_us = load(&m->port[p].duration_sum_us);
                (void)snprintf(v, sizeof(v), "%" PRIu64 ".%06" PRIu64, sum_us / 1000000, sum_us % 1000000);
                prom_sample(out, "regvisor_proxy_request_duration_seconds_sum", &port, 1, v);
                prom_sample_u64(out, "regvisor_proxy_request_duration_seconds_count", &port, 1, cumulative);
        }
}

/* The workers' own state: accept pauses and drops, open connections,
 * workers alive. */
static void render_workers(FILE *out, const ProxyMetrics *m) {
        uint64_t open_conns = 0;

        prom_family(out, "regvisor_proxy_accept_paused_total", "counter",
                    "Times a worker stopped accepting for a while: out of descriptors, or at max_connections.");
        for (unsigned i = 0; i < _METRICS_PAUSE_MAX; i++)
                prom_sample_u64(out, "regvisor_proxy_accept_paused_total", &(PromLabel){"reason", pause_names[i]},
                                1, load(&m->accept_paused[i]));
        prom_family(out, "regvisor_proxy_accept_dropped_total", "counter",
                    "Connections closed right after accept because the worker was out of descriptors.");
        prom_sample_u64(out, "regvisor_proxy_accept_dropped_total", NULL, 0, load(&m->accept_dropped));

        for (unsigned i = 0; i < METRICS_WORKER_SLOTS; i++)
                open_conns += load(&m->conns_open[i]);
        prom_family(out, "regvisor_proxy_connections_open", "gauge", "Client connections the proxy workers hold open.");
        prom_sample_u64(out, "regvisor_proxy_connections_open", NULL, 0, open_conns);

        /* Only the slots that ever accepted: 2048 zero lines say nothing. */
        prom_family(out, "regvisor_proxy_connections_accepted_total", "counter",
                    "Client connections accepted, by worker slot: their spread over the workers.");
        for (unsigned i = 0; i < METRICS_WORKER_SLOTS; i++) {
                uint64_t n = load(&m->accepted[i]);
                char slot[16];
                if (n == 0)
                        continue;
                (void)snprintf(slot, sizeof(slot), "%u", i);
                prom_sample_u64(out, "regvisor_proxy_connections_accepted_total", &(PromLabel){"worker", slot}, 1,
                                n);
        }

        prom_family(out, "regvisor_proxy_workers_alive", "gauge", "Proxy worker processes running.");
        prom_sample_u64(out, "regvisor_proxy_workers_alive", NULL, 0, load(&m->workers_alive));
}

int proxy_metrics_render(const ProxyMetrics *m, FILE *out) {
        if (!proxy_metrics_valid(m))
                return -EBADMSG;
        render_requests(out, m);
        per_port(out, m, traffic_counters, ELEMENTSOF(traffic_counters));
        render_duration(out, m);
        per_port(out, m, refusal_counters, ELEMENTSOF(refusal_counters));
        render_workers(out, m);
        return ferror(out) ? -EIO : 0;
}
