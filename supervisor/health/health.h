/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Health checks: the guide's "verify installation" page as one table of
 * checks, each {name, function, timeout}, producing {state, reason,
 * performance data, certificate expiry}. `regvisor health` prints them for
 * monitoring systems (Nagios plugin format or JSON); the status listener of
 * `regvisor run` serves them as /readyz and /metrics.
 *
 * Every check is bounded: the runner gives each a deadline (its own timeout,
 * clamped to the overall deadline); socket checks use non-blocking I/O with
 * poll(), D-Bus calls sd_bus_set_method_call_timeout(), podman a process
 * timeout. A check whose turn comes after the overall deadline is not run
 * and reads UNKNOWN, except local ones (files, statvfs).
 *
 * The formatting functions (Nagios text, JSON, Prometheus text) and the
 * state helpers are pure and unit-tested; they do no I/O and do not log.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config.h"

/* The Nagios plugin states, which are also `regvisor health`'s exit codes. */
typedef enum {
        HEALTH_OK = 0,
        HEALTH_WARNING = 1,
        HEALTH_CRITICAL = 2,
        HEALTH_UNKNOWN = 3,
        _HEALTH_STATE_MAX,
} HealthState;

/* A check that runs podman (podman info, podman inspect) gets this long:
 * rootless podman answers in a second or two on an idle host, but on a
 * loaded 2-core host (load ~15) podman info took more than 5 s, and a
 * check that fails then is a false alarm. */
#define HEALTH_PODMAN_TIMEOUT_USEC (20 * UINT64_C(1000000))

/* The whole run answers within this unless told otherwise (--timeout):
 * room for the podman checks' 20 s plus the fast ones, and still within
 * the 60 s a Nagios service check gets by default. */
#define HEALTH_DEFAULT_TIMEOUT_USEC (30 * UINT64_C(1000000))

#define HEALTH_MAX_PERF 4
#define HEALTH_REASON_MAX 512

/* One Nagios performance datum: 'label=value[unit];warn;crit'. warn and crit
 * are Nagios ranges ("20:" means alert below 20), empty when none. */
typedef struct {
        char label[48];
        double value;
        char unit[4]; /* "", "s", "%", "B" */
        char warn[24];
        char crit[24];
} HealthPerf;

/* A certificate a check looked at: for expiry timestamps in /metrics. */
typedef struct {
        char *name; /* "server-ca", "server", "client-ca", "client/NAME" */
        time_t not_after;
} HealthCert;

typedef struct {
        const char *name; /* static: the check's row */
        HealthState state;
        char *reason;     /* one line, never NULL after health_run() */
        HealthPerf perf[HEALTH_MAX_PERF];
        size_t n_perf;
        HealthCert *certs;
        size_t n_certs;
        uint64_t duration_usec;
} HealthResult;

typedef struct {
        uint64_t timeout_usec; /* the whole run; 0: HEALTH_DEFAULT_TIMEOUT_USEC */
        /* Defaults: CONFIG_HEALTH_* (config.h), as for [health] */
        unsigned storage_warn_pct, storage_crit_pct;
        unsigned cert_warn_days, cert_crit_days;
        /* Run only these checks (names from the table), in table order;
         * n_only == 0: every check. */
        char *const *only;
        size_t n_only;
} HealthOptions;

/* Everything a check needs: the configuration, thresholds, its deadline
 * (CLOCK_MONOTONIC, microseconds) and the wall clock for expiry. */
typedef struct {
        const Config *config;
        const HealthOptions *options;
        uint64_t deadline_usec;
        time_t now;
} HealthContext;

typedef struct {
        const char *name;
        /* Fills r->state, r->reason (allocated), r->perf, r->certs. Returns 0,
         * or a negative errno only when it could not judge at all (OOM): the
         * runner reports that as UNKNOWN. */
        int (*run)(const HealthContext *ctx, HealthResult *r);
        uint64_t timeout_usec;
        const char *description;
        /* Reads local files only (no socket, bus or process): runs even when
         * the overall deadline has passed. */
        bool local;
} HealthCheck;

/* The table, in the order checks run and are printed. */
extern const HealthCheck health_checks[];
extern const size_t health_n_checks;

/* The row of the check called name, or NULL. */
const HealthCheck *health_check_find(const char *name);

/* HealthOptions with every default. */
void health_options_default(HealthOptions *ret);

/* Runs every check of the table (or options->only) against the host
 * described by c (options may be NULL for the defaults). Returns 0 and an
 * array of *ret_n results in table order in *ret (free with
 * health_results_free()); -EINVAL for an unknown name in options->only,
 * -ENOMEM otherwise.
 * Must run as root (podman as the service user, the user manager's bus).
 * The caller must ignore SIGPIPE: OpenSSL writes to sockets with write(2).
 * Blocks the caller up to options->timeout_usec (plus at most one check's
 * overrun): a daemon should run it off its event loop or cache the result. */
int health_run(const Config *c, const HealthOptions *options, HealthResult **ret, size_t *ret_n);

void health_results_free(HealthResult *results, size_t n);

/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
const char *health_state_to_string(HealthState s);

/* The overall state: the worst, ordered OK < UNKNOWN < WARNING < CRITICAL
 * (the monitoring-plugins' max_state_alt: a check that could not tell must
 * not hide a warning, nor read as OK). OK for n == 0. */
HealthState health_state_worst(const HealthResult *results, size_t n);

/* State of a certificate expiring at not_after: CRITICAL when expired or
 * fewer than crit_days left, WARNING when fewer than warn_days, else OK.
 * *ret_days gets the days left (negative when expired). */
HealthState health_cert_expiry_state(time_t not_after, time_t now, unsigned warn_days, unsigned crit_days,
                                     double *ret_days);

/* State for free_pct percent of free storage. */
HealthState health_storage_state(double free_pct, unsigned warn_pct, unsigned crit_pct);

/* Judges `podman inspect --format '{{.State.Running}} {{.ImageDigest}}'`
 * output against the pinned digest: OK, or CRITICAL with *ret_reason. */
HealthState health_container_state(const char *inspect_output, const char *digest, char **ret_reason);

/* Adds a performance datum to r (silently dropped beyond HEALTH_MAX_PERF). */
void health_add_perf(HealthResult *r, const char *label, double value, const char *unit, const char *warn,
                     const char *crit);

/* Sets r->state and a formatted r->reason (replacing an older one). Returns
 * 0 or -ENOMEM. */
int health_set(HealthResult *r, HealthState state, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The Nagios plugin output: first line "REGVISOR STATE - summary|perfdata",
 * then one line per check "STATE    name: reason". Returns 0 and an allocated
 * string, or -ENOMEM. */
int health_format_nagios(const HealthResult *results, size_t n, char **ret);

/* The same as one JSON document: {"state", "exit_status", "summary",
 * "checks": [{"name", "state", "reason", "duration_seconds", "perfdata":
 * [{"label", "value", "unit", "warn", "crit"}], "certificates": [{"name",
 * "not_after"}]}]}. Returns 0 and an allocated string, or -ENOMEM. */
int health_format_json(const HealthResult *results, size_t n, char **ret);

/* The Prometheus text exposition (format 0.0.4) of check states, check
 * durations and certificate expiry timestamps, for /metrics:
 *   regvisor_health_state, regvisor_health_check_state{check},
 *   regvisor_health_check_ok{check}, regvisor_health_check_duration_seconds{check},
 *   regvisor_certificate_expiry_timestamp_seconds{certificate}.
 * Every family has HELP and TYPE lines. Returns 0 and an allocated string, or
 * -ENOMEM. */
int health_render_metrics(const HealthResult *results, size_t n, char **ret);

/* Only the regvisor_health_state family (HELP, TYPE, the sample) to f: what
 * `regvisor health --metrics` prints when it cannot run the checks at all. */
void health_write_state_metric(FILE *f, HealthState state);

/*
 * The tiny HTTP/1.1 client the checks use, exported for tests.
 */

/* Where to connect: a unix socket path, or (path NULL) a numeric IPv4/IPv6
 * host and port (sockaddr_from_ip()). */
typedef struct {
        const char *path;
        const char *host;
        uint16_t port;
} HealthEndpoint;

/* Sends "METHOD path HTTP/1.1" with Host: host_header and Connection: close
 * over a plain connection to ep and reads the status code of the answer,
 * within deadline_usec (CLOCK_MONOTONIC). Returns 0 and *ret_status, or a
 * negative errno (-ETIMEDOUT, -ECONNREFUSED, -ENOENT, -EBADMSG for a reply
 * that is not HTTP, -ECONNRESET for a close before the status line). */
int health_http_status(const HealthEndpoint *ep, const char *method, const char *path, const char *host_header,
                       uint64_t deadline_usec, int *ret_status);

/* Sends "METHOD path HTTP/1.0" (Accept: accept, or any) over a plain
 * connection to ep and reads the whole answer, at most max bytes of body,
 * within deadline_usec. Returns 0 with *ret_status, the body in *ret_body
 * (NUL-terminated, caller frees) and its length; or a negative errno as
 * health_http_status(), -EFBIG for a body over max. */
int health_http_fetch(const HealthEndpoint *ep, const char *method, const char *path, const char *accept,
                      uint64_t deadline_usec, size_t max, int *ret_status, char **ret_body, size_t *ret_len);

/* Sends len bytes of req over a plain connection to ep and reads the answer
 * until the peer closes, less than max bytes, within deadline_usec. Returns
 * 0 with the bytes (NUL-terminated, caller frees) and their length, or a
 * negative errno as health_http_status(), -EFBIG at max bytes. */
int health_exchange(const HealthEndpoint *ep, const char *req, size_t len, uint64_t deadline_usec, size_t max,
                    char **ret_buf, size_t *ret_len);

/* store-checks.c: a shared store's checks (OK with a remark for the
 * filesystem store): the store (Swift: tempauth v1 and a HEAD of the
 * container; otherwise an HTTP answer), redis (PING), the secret files. */
int health_check_store(const HealthContext *ctx, HealthResult *r);
int health_check_store_cache(const HealthContext *ctx, HealthResult *r);
int health_check_store_secrets(const HealthContext *ctx, HealthResult *r);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t health_now_usec(void);
