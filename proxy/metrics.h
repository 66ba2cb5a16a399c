/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The proxy's counters for /metrics: one fixed-layout struct of uint64_t
 * counters in memory shared by the supervisor, the proxy parent and every
 * worker.
 *
 * Design. `regvisor run` creates a memfd of sizeof(ProxyMetrics), writes
 * the header (magic, version, size) with pwrite() and maps it read-only; it
 * hands a duplicate of the fd to its `regvisor proxy` child, naming it in
 * REGVISOR_METRICS_FD. The proxy parent maps it read-write before it forks
 * the workers, which inherit the mapping: after the sandbox is locked down
 * a worker counts with atomic additions to memory it already has, no system
 * call. `regvisor proxy` alone (no REGVISOR_METRICS_FD) uses a private
 * MAP_SHARED|MAP_ANONYMOUS mapping, so the code path is the same and nobody
 * reads it. A header that does not match this build's layout is refused by
 * both sides (the proxy then counts into a private mapping, the supervisor
 * shows no proxy metrics): a layout change can never be misread.
 *
 * Counters only grow (relaxed atomic adds; a reader may see one counter a
 * moment ahead of another, which Prometheus tolerates). They live as long as
 * the supervisor's memfd, so a restarted proxy continues the same series.
 * workers_alive is a gauge the proxy parent sets.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define PROXY_METRICS_MAGIC UINT64_C(0x31534d5452565352) /* "RSVRTMS1" */
/* Bump on any change of the structs below. */
#define PROXY_METRICS_VERSION 5
#define PROXY_METRICS_FD_ENV "REGVISOR_METRICS_FD"

typedef enum MetricsPort {
        METRICS_PULL,
        METRICS_PUSH,
        _METRICS_PORT_MAX,
} MetricsPort;

typedef enum MetricsMethod {
        METRICS_GET,
        METRICS_HEAD,
        METRICS_POST,
        METRICS_PUT,
        METRICS_PATCH,
        METRICS_DELETE,
        METRICS_OTHER,
        _METRICS_METHOD_MAX,
} MetricsMethod;

/* 1xx .. 5xx */
#define METRICS_STATUS_CLASSES 5

typedef enum MetricsTlsFailure {
        METRICS_TLS_NO_CERTIFICATE,  /* push: no client certificate sent */
        METRICS_TLS_BAD_CERTIFICATE, /* push: unknown CA, bad signature, ... */
        METRICS_TLS_REVOKED,         /* push: on the CRL */
        METRICS_TLS_EXPIRED,         /* push: expired or not yet valid */
        METRICS_TLS_PROTOCOL,        /* the handshake failed (not a bare EOF) */
        _METRICS_TLS_MAX,
} MetricsTlsFailure;

typedef enum MetricsUpstreamError {
        METRICS_UPSTREAM_CONNECT,  /* cannot connect to the registry (502) */
        METRICS_UPSTREAM_TIMEOUT,  /* no response within read_timeout (504) */
        METRICS_UPSTREAM_RESET,    /* the registry closed or reset mid-exchange */
        METRICS_UPSTREAM_PROTOCOL, /* an invalid response from the registry */
        _METRICS_UPSTREAM_MAX,
} MetricsUpstreamError;

/* Why a worker stopped accepting for a while. */
typedef enum MetricsAcceptPause {
        METRICS_PAUSE_FD_LIMIT,        /* accept failed: EMFILE/ENFILE (out of descriptors) */
        METRICS_PAUSE_MAX_CONNECTIONS, /* the worker holds [proxy] max_connections */
        _METRICS_PAUSE_MAX,
} MetricsAcceptPause;

/* Which transfer a client was too slow for ([proxy] min_rate). */
typedef enum MetricsSlow {
        METRICS_SLOW_BODY,     /* sending a request body */
        METRICS_SLOW_RESPONSE, /* reading a response */
        _METRICS_SLOW_MAX,
} MetricsSlow;

/* Worker slots (2 x [proxy] workers at most). */
#define METRICS_WORKER_SLOTS 2048

/* Upper bounds of the duration histogram, seconds; +Inf is the last bucket. */
#define METRICS_DURATION_BOUNDS {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
#define METRICS_DURATION_BUCKETS 14 /* 13 bounds + +Inf */

typedef struct ProxyPortMetrics {
        uint64_t requests[_METRICS_METHOD_MAX][METRICS_STATUS_CLASSES];
        uint64_t bytes_in, bytes_out;
        uint64_t duration_bucket[METRICS_DURATION_BUCKETS]; /* not cumulative; rendered cumulative */
        uint64_t duration_sum_us;
        uint64_t rate_limited;  /* answered 429 */
        uint64_t rate_delayed;  /* held back within the burst ([push] delay) */
        uint64_t conn_limited;  /* answered 429: over conn_per_ip */
        uint64_t conn_ceiling;  /* closed before TLS: at twice conn_per_ip */
        uint64_t cidr_refused;  /* refused: allow_cidrs */
        uint64_t tls_failures[_METRICS_TLS_MAX];
        uint64_t upstream_errors[_METRICS_UPSTREAM_MAX];
        uint64_t limits_table_full; /* refused (503): no room in the per-client limits table */
        uint64_t slow_clients[_METRICS_SLOW_MAX]; /* closed: below [proxy] min_rate */
        uint64_t scope_denied; /* answered 403: a write outside the client's push scope */
        uint64_t auth_failed;  /* answered 401: the htpasswd second factor missing or wrong */
        uint64_t proxy_header_refused; /* a PROXY header from an address not in trusted_proxies */
        uint64_t proxy_header_invalid; /* a trusted balancer's connection without a valid PROXY v2 header */
} ProxyPortMetrics;

typedef struct ProxyMetrics {
        uint64_t magic;
        uint64_t version;
        uint64_t size; /* sizeof(ProxyMetrics) */
        uint64_t workers_alive;
        ProxyPortMetrics port[_METRICS_PORT_MAX];
        uint64_t accept_paused[_METRICS_PAUSE_MAX]; /* pauses of accepting, by reason */
        uint64_t accept_dropped;                    /* accepted and closed at once: EMFILE */
        uint64_t conns_open[METRICS_WORKER_SLOTS];  /* gauge per worker slot, summed */
        uint64_t accepted[METRICS_WORKER_SLOTS];    /* accept4() successes per worker slot */
} ProxyMetrics;

/* The header a fresh region must carry (the supervisor writes it). */
void proxy_metrics_header(ProxyMetrics *m);

/* Whether m's header matches this build's layout. */
bool proxy_metrics_valid(const ProxyMetrics *m);

/* Creates the shared region as a memfd (MFD_CLOEXEC) of sizeof(ProxyMetrics)
 * with its header written. Returns 0 and the fd in *ret_fd, or a negative
 * errno. */
int proxy_metrics_memfd_new(int *ret_fd);

/* Maps the memfd fd (MAP_SHARED; read-write when writable) and checks its
 * size and header: -EBADMSG when they do not match this build. The fd may
 * be closed afterwards. */
int proxy_metrics_map_fd(int fd, bool writable, ProxyMetrics **ret);

/* For the proxy parent: maps the region named by REGVISOR_METRICS_FD
 * (closing that fd and removing the variable, so the workers inherit
 * neither), or, without it, a private anonymous shared mapping. On a
 * mismatched or unusable fd, *ret_error (static) says why and the private
 * mapping is used anyway: metrics are not worth refusing to serve. Returns
 * 0, or a negative errno when not even that could be mapped. */
int proxy_metrics_open(ProxyMetrics **ret, const char **ret_error);

/* Unmaps; NULL is fine. */
void proxy_metrics_unmap(const ProxyMetrics *m);

/* Counting, from any process that mapped the region read-write. All are
 * relaxed atomic additions. */
MetricsMethod proxy_metrics_method(const char *method);
/* One completed request: status (100..599; others count as bytes only),
 * bytes, and its duration in microseconds. */
void proxy_metrics_request(ProxyMetrics *m, MetricsPort port, const char *method, int status, uint64_t bytes_in,
                           uint64_t bytes_out, uint64_t duration_us);
/* Adds 1 to the counter at c (a field of m). */
void proxy_metrics_inc(uint64_t *c);
void proxy_metrics_set_workers(ProxyMetrics *m, uint64_t n);
/* The open connections of the worker in slot (its own gauge; the parent
 * sets 0 when the worker is gone). Slots beyond METRICS_WORKER_SLOTS are
 * not counted. */
void proxy_metrics_set_open(ProxyMetrics *m, unsigned slot, uint64_t n);
/* One connection accepted by the worker in slot: how evenly the kernel
 * spreads connections over the workers is visible per slot. Slots beyond
 * METRICS_WORKER_SLOTS are not counted. */
void proxy_metrics_accepted(ProxyMetrics *m, unsigned slot);

/* Writes every proxy metric in the Prometheus text format 0.0.4: HELP and
 * TYPE lines, counters with port/method/status/reason/kind labels, the
 * duration histogram (cumulative _bucket{le=...}, _sum, _count). Returns 0,
 * -EBADMSG when m's header does not match (nothing written), or -EIO when
 * out failed. */
int proxy_metrics_render(const ProxyMetrics *m, FILE *out);
