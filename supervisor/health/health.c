/* SPDX-License-Identifier: MIT */
/*
 * Health checks: one table (health_checks[] at the end of the checks), a
 * runner that gives each row a deadline, a tiny HTTP/1.1 client (plain or
 * TLS, non-blocking, poll() with the deadline) and the three output formats.
 *
 * Checks talk to the host read-only: files and statvfs, the system bus and
 * the service user's manager (ActiveState), podman inspect / podman info as
 * the service user, the registry's socket and the proxy's ports. None of
 * them changes anything, so running health often is harmless.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "fileio.h"
#include "health.h"
#include "openssl-util.h"
#include "http1.h"
#include "probe.h"
#include "macro.h"
#include "image-signatures.h"
#include "paths.h"
#include "pki.h"
#include "podman.h"
#include "prom.h"
#include "sockaddr.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define PEM_MAX (1024 * 1024)
/* How long the push probe listens for a TLS-level refusal before it sends
 * its request: on loopback the server's verdict takes a millisecond. */
#define REFUSAL_WAIT_USEC (300 * USEC_PER_MSEC)
/* A status line longer than this is not an HTTP server talking. */
#define STATUS_LINE_MAX 1024

/* ------------------------------------------------------------------------
 * Small helpers
 */

uint64_t health_now_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t remaining_usec(const HealthContext *ctx) {
        uint64_t n = health_now_usec();
        return ctx->deadline_usec > n ? ctx->deadline_usec - n : 0;
}

/* Whole seconds for podman's process timeout: at least 1, rounded up. */
static unsigned remaining_sec(const HealthContext *ctx) {
        uint64_t r = remaining_usec(ctx);
        return r < USEC_PER_SEC ? 1 : (unsigned) ((r + USEC_PER_SEC - 1) / USEC_PER_SEC);
}

static inline void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

void health_options_default(HealthOptions *ret) {
        *ret = (HealthOptions){
                .timeout_usec = HEALTH_DEFAULT_TIMEOUT_USEC,
                .storage_warn_pct = CONFIG_HEALTH_STORAGE_WARN_PCT,
                .storage_crit_pct = CONFIG_HEALTH_STORAGE_CRIT_PCT,
                .cert_warn_days = CONFIG_HEALTH_CERT_WARN_DAYS,
                .cert_crit_days = CONFIG_HEALTH_CERT_CRIT_DAYS,
        };
}

const char *health_state_to_string(HealthState s) {
        static const char *const names[_HEALTH_STATE_MAX] = {
                [HEALTH_OK] = "OK",
                [HEALTH_WARNING] = "WARNING",
                [HEALTH_CRITICAL] = "CRITICAL",
                [HEALTH_UNKNOWN] = "UNKNOWN",
        };
        return (unsigned) s < _HEALTH_STATE_MAX ? names[s] : "UNKNOWN";
}

/* Severity for aggregation: OK < UNKNOWN < WARNING < CRITICAL. */
static int severity(HealthState s) {
        switch (s) {
        case HEALTH_OK:
                return 0;
        case HEALTH_UNKNOWN:
                return 1;
        case HEALTH_WARNING:
                return 2;
        case HEALTH_CRITICAL:
                return 3;
        default:
                return 1;
        }
}

HealthState health_state_worst(const HealthResult *results, size_t n) {
        HealthState worst = HEALTH_OK;

        for (size_t i = 0; i < n; i++)
                if (severity(results[i].state) > severity(worst))
                        worst = results[i].state;
        return worst;
}

int health_set(HealthResult *r, HealthState state, const char *fmt, ...) {
        char *s;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        /* One line, and no '|': Nagios reads what follows it as perfdata. */
        for (char *q = s; *q; q++)
                if (*q == '\n' || *q == '\r' || *q == '\t')
                        *q = ' ';
                else if (*q == '|')
                        *q = '/';
        free(r->reason);
        r->reason = s;
        r->state = state;
        return 0;
}

void health_add_perf(HealthResult *r, const char *label, double value, const char *unit, const char *warn,
                     const char *crit) {
        HealthPerf *p;

        if (r->n_perf >= HEALTH_MAX_PERF)
                return;
        p = &r->perf[r->n_perf++];
        *p = (HealthPerf){.value = value};
        (void) snprintf(p->label, sizeof p->label, "%s", label);
        (void) snprintf(p->unit, sizeof p->unit, "%s", unit ?: "");
        (void) snprintf(p->warn, sizeof p->warn, "%s", warn ?: "");
        (void) snprintf(p->crit, sizeof p->crit, "%s", crit ?: "");
}

static int add_cert(HealthResult *r, const char *name, time_t not_after) {
        HealthCert *c = reallocarray(r->certs, r->n_certs + 1, sizeof(HealthCert));

        if (!c)
                return -ENOMEM;
        r->certs = c;
        c[r->n_certs].name = strdup(name);
        if (!c[r->n_certs].name)
                return -ENOMEM;
        c[r->n_certs++].not_after = not_after;
        return 0;
}

void health_results_free(HealthResult *results, size_t n) {
        if (!results)
                return;
        for (size_t i = 0; i < n; i++) {
                free(results[i].reason);
                for (size_t k = 0; k < results[i].n_certs; k++)
                        free(results[i].certs[k].name);
                free(results[i].certs);
        }
        free(results);
}

/* A number as perfdata, JSON and Prometheus want it: at most `decimals`
 * decimals, no trailing zeros, never exponent notation. */
static void format_number_prec(double v, int decimals, char buf[static 48]) {
        char *dot;
        size_t n;

        (void) snprintf(buf, 48, "%.*f", decimals, v);
        dot = strchr(buf, '.');
        if (!dot)
                return;
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '0')
                buf[--n] = 0;
        if (n > 0 && buf[n - 1] == '.')
                buf[--n] = 0;
        if (streq(buf, "-0"))
                strcpy(buf, "0");
}

/* Perfdata values: three decimals are plenty (days, percent, seconds). */
static void format_number(double v, char buf[static 48]) {
        format_number_prec(v, 3, buf);
}

/* Durations: to the microsecond they are measured in. */
static void format_seconds(uint64_t usec, char buf[static 48]) {
        format_number_prec((double) usec / USEC_PER_SEC, 6, buf);
}

static void format_date(time_t t, char buf[static 32]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M UTC", &tm) == 0)
                (void) snprintf(buf, 32, "@%lld", (long long) t);
}

/* ------------------------------------------------------------------------
 * Pure judgements
 */

HealthState health_cert_expiry_state(time_t not_after, time_t now, unsigned warn_days, unsigned crit_days,
                                     double *ret_days) {
        double days = difftime(not_after, now) / 86400.0;

        if (ret_days)
                *ret_days = days;
        if (days <= 0 || days < crit_days)
                return HEALTH_CRITICAL;
        if (days < warn_days)
                return HEALTH_WARNING;
        return HEALTH_OK;
}

HealthState health_storage_state(double free_pct, unsigned warn_pct, unsigned crit_pct) {
        if (free_pct < crit_pct)
                return HEALTH_CRITICAL;
        if (free_pct < warn_pct)
                return HEALTH_WARNING;
        return HEALTH_OK;
}

HealthState health_container_state(const char *out, const char *digest, char **ret_reason) {
        char running[16] = "", got[160] = "";
        int k = sscanf(out ?: "", "%15s %159s", running, got);
        HealthState s;

        if (k < 1) {
                s = HEALTH_CRITICAL;
                if (asprintf(ret_reason, "podman inspect printed nothing") < 0)
                        *ret_reason = NULL;
        } else if (!streq(running, "true")) {
                s = HEALTH_CRITICAL;
                if (asprintf(ret_reason, "container %s exists but is not running", REGISTRY_CONTAINER_NAME) < 0)
                        *ret_reason = NULL;
        } else if (k < 2 || !streq(got, digest)) {
                s = HEALTH_CRITICAL;
                if (asprintf(ret_reason, "container %s runs %s, not the pinned %s", REGISTRY_CONTAINER_NAME,
                             k < 2 ? "an image without a digest" : got, digest) < 0)
                        *ret_reason = NULL;
        } else {
                s = HEALTH_OK;
                if (asprintf(ret_reason, "container %s running the pinned %s", REGISTRY_CONTAINER_NAME,
                             digest) < 0)
                        *ret_reason = NULL;
        }
        return s;
}

/* ------------------------------------------------------------------------
 * The tiny HTTP/1.1 client
 */

typedef struct {
        int fd;
        SSL *ssl;
        unsigned long ssl_error; /* the last OpenSSL error, for reasons */
} Conn;

static void conn_done(Conn *c) {
        if (c->ssl) {
                /* One non-blocking close_notify, so the proxy does not log an
                 * unexpected EOF for every health check; never waited for. */
                (void) SSL_shutdown(c->ssl);
                SSL_free(c->ssl);
                c->ssl = NULL;
        }
        if (c->fd >= 0)
                (void) close(c->fd);
        c->fd = -EBADF;
        ERR_clear_error();
}

/* Waits until fd has events, at most until deadline. */
static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                uint64_t n = health_now_usec();
                struct pollfd p = {.fd = fd, .events = events};
                int r;

                if (n >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) ((deadline - n + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r > 0)
                        return 0;
        }
}

static int endpoint_connect(const HealthEndpoint *ep, uint64_t deadline, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        SocketAddress sa;
        int r, err = 0;
        socklen_t errlen = sizeof err;

        if (ep->path)
                r = sockaddr_from_unix(ep->path, &sa);
        else
                r = ep->host ? sockaddr_from_ip(ep->host, ep->port, &sa) : -EINVAL;
        if (r < 0)
                return -EINVAL; /* a path too long too: health_http_status()'s contract */

        fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, &sa.sa, sa.len) < 0) {
                /* AF_UNIX answers EAGAIN when the listener's backlog is full
                 * (a hung server): that is an error, not "in progress". */
                if (errno != EINPROGRESS)
                        return negative_errno();
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
                        return negative_errno();
                if (err != 0)
                        return -err;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* After an SSL_* call returned ret <= 0: wait for what OpenSSL wants and
 * return 0 to retry, or a negative errno (-EPROTO with c->ssl_error set for
 * a TLS error, -ECONNRESET for an EOF). */
static int conn_ssl_wait(Conn *c, int ret, uint64_t deadline) {
        int e = SSL_get_error(c->ssl, ret);

        switch (e) {
        case SSL_ERROR_WANT_READ:
                return wait_fd(c->fd, POLLIN, deadline);
        case SSL_ERROR_WANT_WRITE:
                return wait_fd(c->fd, POLLOUT, deadline);
        case SSL_ERROR_ZERO_RETURN:
                return -ECONNRESET;
        case SSL_ERROR_SYSCALL:
                c->ssl_error = ERR_peek_last_error();
                return errno > 0 ? -errno : -ECONNRESET;
        default:
                c->ssl_error = ERR_peek_last_error();
                return -EPROTO;
        }
}

static int conn_write_all(Conn *c, const char *buf, size_t len, uint64_t deadline) {
        while (len > 0) {
                ssize_t n;
                int r;

                if (c->ssl) {
                        int k = SSL_write(c->ssl, buf, (int) len);
                        if (k <= 0) {
                                r = conn_ssl_wait(c, k, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        n = k;
                } else {
                        n = send(c->fd, buf, len, MSG_NOSIGNAL);
                        if (n < 0) {
                                if (errno != EAGAIN && errno != EINTR)
                                        return negative_errno();
                                r = wait_fd(c->fd, POLLOUT, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                }
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads what is there (at least one byte): > 0 bytes, 0 at EOF, or a
 * negative errno. */
static ssize_t conn_read(Conn *c, char *buf, size_t size, uint64_t deadline) {
        for (;;) {
                int r;

                if (c->ssl) {
                        int k = SSL_read(c->ssl, buf, (int) size);
                        if (k > 0)
                                return k;
                        if (SSL_get_error(c->ssl, k) == SSL_ERROR_ZERO_RETURN)
                                return 0;
                        r = conn_ssl_wait(c, k, deadline);
                        if (r < 0)
                                return r;
                } else {
                        ssize_t n = recv(c->fd, buf, size, 0);
                        if (n >= 0)
                                return n;
                        if (errno != EAGAIN && errno != EINTR)
                                return negative_errno();
                        r = wait_fd(c->fd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                }
        }
}

static int conn_request(Conn *c, const char *method, const char *path, const char *host, uint64_t deadline,
                        int *ret_status) {
        _cleanup_free_ char *req = NULL;
        char buf[STATUS_LINE_MAX + 1];
        Http1Response resp = {};
        size_t have = 0;
        int k, r;

        /* A body-less PUT still says so: Content-Length: 0 (RFC 9110 8.6). */
        k = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: regvisor-health\r\nAccept: */*\r\n"
                     "%sConnection: close\r\n\r\n",
                     method, path, host,
                     streq(method, "PUT") || streq(method, "POST") ? "Content-Length: 0\r\n" : "");
        if (k < 0)
                return -ENOMEM;
        r = conn_write_all(c, req, (size_t) k, deadline);
        if (r < 0)
                return r;

        for (;;) {
                ssize_t n = conn_read(c, buf + have, sizeof buf - 1 - have, deadline);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -ECONNRESET;
                have += (size_t) n;
                r = http1_parse_status_line(buf, have, &resp);
                if (r > 0) {
                        *ret_status = resp.status;
                        return 0;
                }
                /* A status line that never ends is refused, not waited for. */
                if (r == -1 || have >= sizeof buf - 1)
                        return -EBADMSG;
        }
}

int health_http_status(const HealthEndpoint *ep, const char *method, const char *path, const char *host_header,
                       uint64_t deadline_usec, int *ret_status) {
        Conn c = {.fd = -EBADF};
        int status = 0, r;

        r = endpoint_connect(ep, deadline_usec, &c.fd);
        if (r < 0)
                return r;
        r = conn_request(&c, method, path, host_header, deadline_usec, &status);
        conn_done(&c);
        if (r < 0)
                return r;
        *ret_status = status;
        return 0;
}

int health_exchange(const HealthEndpoint *ep, const char *req, size_t len, uint64_t deadline_usec, size_t max,
                    char **ret_buf, size_t *ret_len) {
        Conn c = {.fd = -EBADF};
        _cleanup_free_ char *buf = malloc(max + 1);
        size_t have = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        r = endpoint_connect(ep, deadline_usec, &c.fd);
        if (r >= 0)
                r = conn_write_all(&c, req, len, deadline_usec);
        while (r >= 0) {
                ssize_t n = conn_read(&c, buf + have, max - have, deadline_usec);
                if (n < 0)
                        r = (int) n;
                else if (n == 0)
                        break;
                else if ((have += (size_t) n) >= max)
                        r = -EFBIG;
        }
        conn_done(&c);
        if (r < 0)
                return r;
        buf[have] = 0;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = have;
        return 0;
}

int health_http_fetch(const HealthEndpoint *ep, const char *method, const char *path, const char *accept,
                      uint64_t deadline_usec, size_t max, int *ret_status, char **ret_body, size_t *ret_len) {
        _cleanup_free_ char *req = NULL, *buf = NULL;
        Http1Response resp = {};
        size_t have = 0;
        char *body;
        int k, r;

        /* HTTP/1.0: the answer ends at the close, never chunked. */
        k = asprintf(&req, "%s %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: regvisor\r\nAccept: %s\r\n\r\n",
                     method, path, accept ? accept : "*/*");
        if (k < 0)
                return -ENOMEM;
        r = health_exchange(ep, req, (size_t) k, deadline_usec, max + STATUS_LINE_MAX, &buf, &have);
        if (r < 0)
                return r;
        if (http1_parse_status_line(buf, have, &resp) <= 0)
                return -EBADMSG;
        body = strstr(buf, "\r\n\r\n");
        if (!body)
                return -EBADMSG;
        body += 4;
        *ret_len = have - (size_t) (body - buf);
        memmove(buf, body, *ret_len + 1);
        *ret_status = resp.status;
        *ret_body = TAKE_PTR(buf);
        return 0;
}

/* The text of a TLS failure: the certificate verification result when that
 * is what failed, else OpenSSL's reason, else errno's. */
static char *conn_error(const Conn *c, int r) {
        char buf[256];
        char *s;
        long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;

        if (v != X509_V_OK)
                (void) snprintf(buf, sizeof buf, "certificate verification failed: %s",
                                X509_verify_cert_error_string(v));
        else if (r == -EPROTO && c->ssl_error && ERR_reason_error_string(c->ssl_error))
                (void) snprintf(buf, sizeof buf, "%s", ERR_reason_error_string(c->ssl_error));
        else if (r == -EPROTO && c->ssl_error)
                ERR_error_string_n(c->ssl_error, buf, sizeof buf);
        else if (r == -ETIMEDOUT)
                (void) snprintf(buf, sizeof buf, "no answer in time");
        else
                (void) snprintf(buf, sizeof buf, "%s", strerror(-r));
        s = strdup(buf);
        return s;
}

/* The server refused us for lack of a client certificate, at the TLS layer:
 * TLS 1.3 "certificate required" (RFC 8446 4.4.2.4), or the TLS 1.2
 * handshake_failure / bad_certificate alerts servers send instead. */
static bool conn_refused_no_cert(const Conn *c, int r) {
        int reason;

        if (r != -EPROTO || !c->ssl_error)
                return false;
        reason = ERR_GET_REASON(c->ssl_error);
        return reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED || reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
               reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE;
}

/* ------------------------------------------------------------------------
 * What the checks share
 */

static int read_cert(const Config *c, const char *rel, X509 **ret) {
        _cleanup_free_ char *path = NULL, *pem = NULL;
        size_t size;
        int r;

        if (asprintf(&path, "%s/%s", c->tls_dir, rel) < 0)
                return -ENOMEM;
        r = read_file(path, PEM_MAX, &pem, &size);
        if (r < 0)
                return r;
        return pki_cert_from_pem(pem, size, ret);
}

static struct passwd *service_user(const Config *c) {
        return getpwnam(c->service_user);
}

static int no_user(HealthResult *r, const Config *c) {
        return health_set(r, HEALTH_CRITICAL, "no user %s on this host: run regvisor provision", c->service_user);
}

/* Where to check a proxy port: the address the supervisor's port probe
 * (/readyz) uses too, probe_proxy_host(): one the port's allow_cidrs admit
 * when this host has one. Returns 0, or 1 when no address of this host is
 * admitted (ep is then one the proxy refuses), -EINVAL. ep->host points
 * into host. */
static int proxy_endpoint(const PortConfig *port, char host[static INET6_ADDRSTRLEN], HealthEndpoint *ret) {
        int r;

        r = probe_proxy_host(port, host);
        if (r < 0)
                return r;
        *ret = (HealthEndpoint){.host = host, .port = port->listen.port};
        return r;
}

static const char *endpoint_text(const HealthEndpoint *ep, char buf[static 128]) {
        if (ep->path)
                (void) snprintf(buf, 128, "unix:%s", ep->path);
        else
                (void) snprintf(buf, 128, strchr(ep->host, ':') ? "[%s]:%u" : "%s:%u", ep->host,
                                (unsigned) ep->port);
        return buf;
}

/* The registry's first name, the one clients use: the Host header, SNI and
 * the name the server certificate must match. */
static const ServerName *first_name(const Config *c) {
        static const ServerName localhost = {.name = "localhost"};
        return c->n_server_names > 0 ? &c->servers[0] : &localhost;
}

/* The Host header for the registry's first name on port. */
static int host_header(const Config *c, uint16_t port, char **ret) {
        return config_server_authority(first_name(c), port, ret);
}

/* A TLS client context that trusts only the server CA of [tls] dir. */
static int tls_context(const Config *c, SSL_CTX **ret, char **ret_error) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL;
        int r;

        r = read_cert(c, TLS_SERVER_CA_CERT, &ca);
        if (r < 0) {
                if (asprintf(ret_error, "cannot read the server CA %s/%s: %s", c->tls_dir, TLS_SERVER_CA_CERT,
                             strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        ctx = SSL_CTX_new(TLS_client_method());
        if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
            X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) != 1)
                return -ENOMEM;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        /* An EOF without close_notify reads as an EOF, not an error. */
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        *ret = TAKE_PTR(ctx);
        return 0;
}

/* Connects to ep and completes a TLS handshake, verifying the server's
 * certificate against the server CA and the first server name. On error
 * *c keeps the SSL (if any) so that the caller can read why. */
static int conn_open_tls(const Config *cfg, SSL_CTX *ctx, const HealthEndpoint *ep, uint64_t deadline, Conn *c) {
        const ServerName *name = first_name(cfg);
        int r;

        r = endpoint_connect(ep, deadline, &c->fd);
        if (r < 0)
                return r;
        c->ssl = SSL_new(ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
                return -ENOMEM;
        if (name->is_ip)
                r = X509_VERIFY_PARAM_set1_ip(SSL_get0_param(c->ssl), name->address,
                                              name->family == AF_INET ? 4 : 16);
        else
                r = SSL_set_tlsext_host_name(c->ssl, name->name) == 1 && SSL_set1_host(c->ssl, name->name) == 1;
        if (r != 1)
                return -ENOMEM;
        for (;;) {
                int k = SSL_connect(c->ssl);
                if (k == 1)
                        return 0;
                r = conn_ssl_wait(c, k, deadline);
                if (r < 0)
                        return r;
        }
}

static const char *regvisor_down(const HealthContext *ctx, char *buf, size_t size);

/* The reason for a connection to the proxy that did not get through. */
static int conn_failed(const HealthContext *ctx, HealthResult *r, const Conn *c, int e, const char *what,
                       const HealthEndpoint *ep) {
        _cleanup_free_ char *why = conn_error(c, e);
        char buf[128], state[32];

        if (e == -ECONNREFUSED) {
                if (regvisor_down(ctx, state, sizeof state))
                        return health_set(r, HEALTH_CRITICAL,
                                          "%s: nothing listens on %s: %s, which runs the proxy, is %s: systemctl "
                                          "start regvisor",
                                          what, endpoint_text(ep, buf), REGVISOR_UNIT_NAME, state);
                return health_set(r, HEALTH_CRITICAL, "%s: nothing listens on %s (connection refused)", what,
                                  endpoint_text(ep, buf));
        }
        return health_set(r, HEALTH_CRITICAL, "%s: %s: %s", what, endpoint_text(ep, buf), why ?: strerror(-e));
}

/* ------------------------------------------------------------------------
 * The checks
 */

static int check_linger(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_free_ char *path = NULL;

        if (!service_user(c))
                return no_user(r, c);
        if (asprintf(&path, "%s/%s", LINGER_DIR, c->service_user) < 0)
                return -ENOMEM;
        if (access(path, F_OK) < 0)
                return health_set(r, HEALTH_CRITICAL,
                                  "linger is off for %s (no %s): its user manager and the registry stop when "
                                  "its last session ends",
                                  c->service_user, path);
        return health_set(r, HEALTH_OK, "linger enabled for %s", c->service_user);
}

/* OK for "active", WARNING while it changes, CRITICAL otherwise. */
static int unit_state(HealthResult *r, const char *unit, const char *where, const char *state) {
        if (streq(state, "active"))
                return health_set(r, HEALTH_OK, "%s is active%s", unit, where);
        if (streq(state, "activating") || streq(state, "reloading") || streq(state, "deactivating"))
                return health_set(r, HEALTH_WARNING, "%s is %s%s", unit, state, where);
        return health_set(r, HEALTH_CRITICAL, "%s is %s%s", unit, state, where);
}

static int check_user_manager(const HealthContext *ctx, HealthResult *r) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *unit = NULL, *state = NULL, *error = NULL;
        struct passwd *pw = service_user(ctx->config);
        int k;

        if (!pw)
                return no_user(r, ctx->config);
        if (asprintf(&unit, "user@%u.service", (unsigned) pw->pw_uid) < 0)
                return -ENOMEM;
        k = bus_open_system(&bus);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "cannot connect to the system bus: %s", strerror(-k));
        (void) sd_bus_set_method_call_timeout(bus, remaining_usec(ctx) ?: 1);
        k = bus_get_unit_active_state(bus, unit, &state, &error);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "cannot read the state of %s: %s", unit,
                                  error ?: strerror(-k));
        return unit_state(r, unit, "", state);
}

/* regvisor.service's state when it is neither active nor reloading (into
 * buf), else NULL: it runs the proxy and starts the registry's user unit
 * (and stops both when it stops), so then it is the cause to name. */
static const char *regvisor_down(const HealthContext *ctx, char *buf, size_t size) {
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *state = NULL;

        if (bus_open_system(&bus) < 0)
                return NULL;
        (void) sd_bus_set_method_call_timeout(bus, remaining_usec(ctx) ?: 1);
        if (bus_get_unit_active_state(bus, REGVISOR_UNIT_NAME, &state, NULL) < 0 || streq(state, "active") ||
            streq(state, "reloading"))
                return NULL;
        (void) snprintf(buf, size, "%s", state);
        return buf;
}

/* What to look at when the registry is down. */
static const char *registry_down_hint(const HealthContext *ctx, char *buf, size_t size) {
        char state[32];

        if (regvisor_down(ctx, state, sizeof state))
                (void) snprintf(buf, size, "%s, which starts it, is %s: systemctl start regvisor", REGVISOR_UNIT_NAME,
                                state);
        else
                (void) snprintf(buf, size, "is %s running?", REGISTRY_UNIT_NAME);
        return buf;
}

static int check_registry_unit(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_bus_ sd_bus *bus = NULL;
        _cleanup_free_ char *state = NULL, *error = NULL, *where = NULL;
        int k;

        if (!service_user(c))
                return no_user(r, c);
        if (asprintf(&where, " in the user manager of %s", c->service_user) < 0)
                return -ENOMEM;
        k = bus_open_user_manager(c->service_user, &bus);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "cannot reach the user manager of %s: %s", c->service_user,
                                  strerror(-k));
        (void) sd_bus_set_method_call_timeout(bus, remaining_usec(ctx) ?: 1);
        k = bus_get_unit_active_state(bus, REGISTRY_UNIT_NAME, &state, &error);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "cannot read the state of %s%s: %s", REGISTRY_UNIT_NAME,
                                  where, error ?: strerror(-k));
        if (!streq(state, "active") && !streq(state, "activating") && !streq(state, "reloading")) {
                char hint[160];
                return health_set(r, HEALTH_CRITICAL, "%s is %s%s (%s)", REGISTRY_UNIT_NAME, state, where,
                                  registry_down_hint(ctx, hint, sizeof hint));
        }
        return unit_state(r, REGISTRY_UNIT_NAME, where, state);
}

static PodmanUser podman_user(const struct passwd *pw) {
        return (PodmanUser){.user = pw->pw_name, .uid = pw->pw_uid, .gid = pw->pw_gid, .home = pw->pw_dir};
}

/* podman as the service user, for the checks that run it; NULL when the
 * user does not exist. */
static struct passwd *podman_service_user(const HealthContext *ctx, PodmanUser *ret_u) {
        struct passwd *pw = service_user(ctx->config);

        if (pw)
                *ret_u = podman_user(pw);
        return pw;
}

/* What a check that ran podman says when podman did not answer in time:
 * which command, and after how long (HEALTH_PODMAN_TIMEOUT_USEC, or less
 * when --timeout left less). */
static int podman_timed_out(HealthResult *r, const char *command, unsigned timeout_sec) {
        return health_set(r, HEALTH_CRITICAL, "%s timed out after %u s (a loaded host? --timeout bounds the whole run)",
                          command, timeout_sec);
}

static int check_container(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_free_ char *out = NULL, *err = NULL, *reason = NULL;
        unsigned timeout_sec = remaining_sec(ctx);
        PodmanUser u;
        HealthState s;
        int k;

        if (!podman_service_user(ctx, &u))
                return no_user(r, c);
        char *args[] = {"inspect", "--type", "container", "--format", "{{.State.Running}} {{.ImageDigest}}",
                        (char *) REGISTRY_CONTAINER_NAME, NULL};
        k = podman_run(&u, args, timeout_sec, &out, &err);
        if (k == -ETIMEDOUT)
                return podman_timed_out(r, "podman inspect " REGISTRY_CONTAINER_NAME, timeout_sec);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "cannot run podman as %s: %s", c->service_user,
                                  strerror(-k));
        if (k != 0) {
                if (err && strstr(err, "no such")) {
                        char hint[160];
                        return health_set(r, HEALTH_CRITICAL, "no container %s: %s", REGISTRY_CONTAINER_NAME,
                                          registry_down_hint(ctx, hint, sizeof hint));
                }
                if (err)
                        err[strcspn(err, "\n")] = 0;
                return health_set(r, HEALTH_CRITICAL, "podman inspect %s failed: %s", REGISTRY_CONTAINER_NAME,
                                  err && *err ? err : "no message");
        }
        s = health_container_state(out, c->image_digest, &reason);
        if (!reason)
                return -ENOMEM;
        return health_set(r, s, "%s", reason);
}

static int check_registry_http(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        HealthEndpoint ep;
        char buf[128];
        uint64_t t0;
        int status = 0, k;

        if (c->listen.kind == LISTEN_UNIX)
                ep = (HealthEndpoint){.path = c->listen.path};
        else
                ep = (HealthEndpoint){.host = c->listen.host, .port = c->listen.port};
        t0 = health_now_usec();
        k = health_http_status(&ep, "GET", "/v2/", "localhost", ctx->deadline_usec, &status);
        double secs = (double) (health_now_usec() - t0) / USEC_PER_SEC;
        endpoint_text(&ep, buf);
        if (k == -ETIMEDOUT)
                return health_set(r, HEALTH_CRITICAL, "GET /v2/ on %s: no answer within %.1f s (registry hung?)",
                                  buf, secs);
        if (k == -ENOENT || k == -ECONNREFUSED) {
                char hint[160];
                return health_set(r, HEALTH_CRITICAL, "GET /v2/ on %s: %s: %s", buf,
                                  k == -ENOENT ? "the socket does not exist" : "connection refused",
                                  registry_down_hint(ctx, hint, sizeof hint));
        }
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "GET /v2/ on %s: %s", buf, strerror(-k));
        health_add_perf(r, "registry_response", secs, "s", NULL, NULL);
        if (status != 200)
                return health_set(r, HEALTH_CRITICAL, "GET /v2/ on %s answered %d, expected 200", buf, status);
        return health_set(r, HEALTH_OK, "GET /v2/ on %s: 200 in %.0f ms", buf, secs * 1000);
}

static int check_storage(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        const HealthOptions *o = ctx->options;
        struct statvfs st;
        char w[24], cr[24];

        if (!c->storage)
                return health_set(r, HEALTH_OK, "a shared store: nothing stored on this host (see the store check)");
        if (statvfs(c->storage, &st) < 0)
                return health_set(r, HEALTH_CRITICAL, "registry storage %s: %s", c->storage, strerror(errno));
        double free_pct = st.f_blocks ? 100.0 * (double) st.f_bavail / (double) st.f_blocks : 0;
        double free_bytes = (double) st.f_bavail * (double) st.f_frsize;
        double total = (double) st.f_blocks * (double) st.f_frsize;
        HealthState s = health_storage_state(free_pct, o->storage_warn_pct, o->storage_crit_pct);

        (void) snprintf(w, sizeof w, "%u:", o->storage_warn_pct);
        (void) snprintf(cr, sizeof cr, "%u:", o->storage_crit_pct);
        health_add_perf(r, "storage_free", free_pct, "%", w, cr);
        health_add_perf(r, "storage_free_bytes", free_bytes, "B", NULL, NULL);
        return health_set(r, s, "%.1f%% free on %s (%.1f of %.1f GiB; warn below %u%%, critical below %u%%)",
                          free_pct, c->storage, free_bytes / (1 << 30), total / (1 << 30), o->storage_warn_pct,
                          o->storage_crit_pct);
}

/* Expiry of one certificate file: state, reason, perfdata and the
 * certificate for /metrics. When ca_rel is given, the certificate must also
 * be signed by that CA. */
static int check_cert_file(const HealthContext *ctx, HealthResult *r, const char *rel, const char *name,
                           const char *label, const char *ca_rel) {
        const Config *c = ctx->config;
        const HealthOptions *o = ctx->options;
        _cleanup_(X509_freep) X509 *cert = NULL;
        char date[32], w[24], cr[24];
        time_t not_after;
        double days;
        HealthState s;
        int k;

        k = read_cert(c, rel, &cert);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "%s/%s: %s", c->tls_dir, rel,
                                  k == -ENOENT ? "missing: run regvisor provision" : strerror(-k));
        k = pki_cert_not_after(cert, &not_after);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "%s/%s: cannot read its expiry", c->tls_dir, rel);
        k = add_cert(r, name, not_after);
        if (k < 0)
                return k;
        s = health_cert_expiry_state(not_after, ctx->now, o->cert_warn_days, o->cert_crit_days, &days);
        format_date(not_after, date);
        (void) snprintf(w, sizeof w, "%u:", o->cert_warn_days);
        (void) snprintf(cr, sizeof cr, "%u:", o->cert_crit_days);
        health_add_perf(r, label, days, "", w, cr);

        if (ca_rel) {
                _cleanup_(X509_freep) X509 *ca = NULL;
                EVP_PKEY *pub;

                k = read_cert(c, ca_rel, &ca);
                if (k < 0)
                        return health_set(r, HEALTH_CRITICAL, "%s/%s: %s", c->tls_dir, ca_rel, strerror(-k));
                pub = X509_get0_pubkey(ca);
                if (!pub || X509_verify(cert, pub) != 1) {
                        ERR_clear_error();
                        return health_set(r, HEALTH_CRITICAL, "%s/%s is not signed by %s/%s: clients will refuse it",
                                          c->tls_dir, rel, c->tls_dir, ca_rel);
                }
        }
        if (days <= 0)
                return health_set(r, s, "%s certificate %s/%s expired on %s", name, c->tls_dir, rel, date);
        return health_set(r, s, "%s certificate expires on %s, in %.0f days (warn below %u, critical below %u)",
                          name, date, days, o->cert_warn_days, o->cert_crit_days);
}

static int check_cert_server_ca(const HealthContext *ctx, HealthResult *r) {
        return check_cert_file(ctx, r, TLS_SERVER_CA_CERT, "server-ca", "server_ca_days", NULL);
}

static int check_cert_server(const HealthContext *ctx, HealthResult *r) {
        return check_cert_file(ctx, r, TLS_SERVER_CERT, "server", "server_cert_days", TLS_SERVER_CA_CERT);
}

static int check_cert_client_ca(const HealthContext *ctx, HealthResult *r) {
        return check_cert_file(ctx, r, TLS_CLIENT_CA_CERT, "client-ca", "client_ca_days", NULL);
}

/* One CRL's nextUpdate: its state (the certificates' thresholds) and one
 * phrase into buf; the perfdata under label. A CRL past its nextUpdate
 * makes OpenSSL refuse every certificate of its CA. */
static HealthState check_one_crl(const HealthContext *ctx, HealthResult *r, const char *rel, const char *ca_rel,
                                 const char *what, const char *label, char *buf, size_t size) {
        const Config *c = ctx->config;
        const HealthOptions *o = ctx->options;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL;
        _cleanup_free_ char *path = NULL, *pem = NULL;
        char date[32], w[24], cr[24];
        time_t next;
        double days;
        size_t n;
        HealthState s;
        int k;

        if (asprintf(&path, "%s/%s", c->tls_dir, rel) < 0)
                return (void) snprintf(buf, size, "%s: out of memory", what), HEALTH_UNKNOWN;
        k = read_file(path, PEM_MAX, &pem, &n);
        if (k >= 0)
                k = pki_crl_from_pem(pem, n, &crl);
        if (k < 0)
                return (void) snprintf(buf, size, "%s %s: %s", what, path,
                                       k == -ENOENT ? "missing: run regvisor provision" : strerror(-k)),
                       HEALTH_CRITICAL;
        if (read_cert(c, ca_rel, &ca) < 0 || pki_crl_verify(crl, ca) != 1)
                return (void) snprintf(buf, size, "%s %s is not signed by %s/%s", what, path, c->tls_dir, ca_rel),
                       HEALTH_CRITICAL;
        if (pki_crl_dates(crl, NULL, &next) < 0)
                return (void) snprintf(buf, size, "%s %s has no nextUpdate", what, path), HEALTH_CRITICAL;
        s = health_cert_expiry_state(next, ctx->now, o->cert_warn_days, o->cert_crit_days, &days);
        (void) snprintf(w, sizeof w, "%u:", o->cert_warn_days);
        (void) snprintf(cr, sizeof cr, "%u:", o->cert_crit_days);
        health_add_perf(r, label, days, "", w, cr);
        format_date(next, date);
        if (days <= 0)
                (void) snprintf(buf, size, "%s passed its nextUpdate on %s: every certificate of its CA is refused",
                                what, date);
        else
                (void) snprintf(buf, size, "%s nextUpdate on %s, in %.1f days", what, date, days);
        return s;
}

/* Both CRLs: the worst of their states. `regvisor run` renews them [pki]
 * renew_before their nextUpdate; a warning here means it did not. */
static int check_crls(const HealthContext *ctx, HealthResult *r) {
        const HealthOptions *o = ctx->options;
        char a[512], b[512];
        HealthState sa, sb;

        sa = check_one_crl(ctx, r, TLS_SERVER_CRL, TLS_SERVER_CA_CERT, "server CA CRL", "server_ca_crl_days", a,
                           sizeof a);
        sb = check_one_crl(ctx, r, TLS_CLIENT_CRL, TLS_CLIENT_CA_CERT, "client CA CRL", "client_ca_crl_days", b,
                           sizeof b);
        return health_set(r, severity(sa) >= severity(sb) ? sa : sb, "%s; %s (warn below %u days, critical below %u)",
                          a, b, o->cert_warn_days, o->cert_crit_days);
}

/* Every client certificate that is not revoked: the worst of their expiry
 * states, naming the ones that need attention. */
/* What the walk over the clients' certificates has found so far. */
typedef struct {
        FILE *attention; /* "NAME expires in N days; ..." */
        HealthState worst;
        size_t n;        /* valid, not revoked */
        double min_days; /* of the first to expire ... */
        char first[64], first_date[32]; /* ... its name and date */
} ClientScan;

static void scan_note(ClientScan *scan, HealthState s, const char *fmt, ...) _printf_(3, 4);
static void scan_note(ClientScan *scan, HealthState s, const char *fmt, ...) {
        va_list ap;

        fputs(ftell(scan->attention) ? "; " : "", scan->attention);
        va_start(ap, fmt);
        vfprintf(scan->attention, fmt, ap);
        va_end(ap);
        if (severity(s) > severity(scan->worst))
                scan->worst = s;
}

/* One file of TLS_DIR/clients (file: its name): skipped unless NAME.crt,
 * other than ca.crt, and not revoked in crl; otherwise its expiry is added
 * to r and to scan. */
static int client_cert_scan(const HealthContext *ctx, HealthResult *r, X509_CRL *crl, const char *file,
                            ClientScan *scan) {
        const HealthOptions *o = ctx->options;
        _cleanup_free_ char *rel = NULL, *name = NULL, *certname = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        size_t len = strlen(file);
        time_t not_after;
        double days;
        HealthState s;
        int k;

        if (len <= 4 || !streq(file + len - 4, ".crt") || streq(file, "ca.crt"))
                return 0;
        name = strndup(file, len - 4);
        if (!name || asprintf(&rel, "clients/%s", file) < 0 || asprintf(&certname, "client/%s", name) < 0)
                return -ENOMEM;
        k = read_cert(ctx->config, rel, &cert);
        if (k >= 0)
                k = pki_cert_not_after(cert, &not_after);
        if (k < 0) {
                scan_note(scan, HEALTH_WARNING, "%s: unreadable (%s)", name, strerror(-k));
                return 0;
        }
        if (crl && pki_crl_has_serial(crl, X509_get0_serialNumber(cert)) == 1)
                return 0;
        k = add_cert(r, certname, not_after);
        if (k < 0)
                return k;
        s = health_cert_expiry_state(not_after, ctx->now, o->cert_warn_days, o->cert_crit_days, &days);
        if (scan->n == 0 || days < scan->min_days) {
                scan->min_days = days;
                (void) snprintf(scan->first, sizeof scan->first, "%s", name);
                format_date(not_after, scan->first_date);
        }
        scan->n++;
        if (s != HEALTH_OK && days <= 0)
                scan_note(scan, s, "%s expired %.0f days ago", name, -days);
        else if (s != HEALTH_OK)
                scan_note(scan, s, "%s expires in %.0f days", name, days);
        return 0;
}

static int check_cert_clients(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        const HealthOptions *o = ctx->options;
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_(X509_CRL_freep) X509_CRL *crl = NULL;
        _cleanup_free_ char *dir = NULL, *crl_pem = NULL, *crl_path = NULL;
        _cleanup_free_ char *attention = NULL;
        char w[24], cr[24];
        size_t attention_len = 0, crl_size;
        _cleanup_fclose_ FILE *f = NULL;
        ClientScan scan = {.worst = HEALTH_OK};
        struct dirent *de;
        int k;

        if (asprintf(&dir, "%s/clients", c->tls_dir) < 0 || asprintf(&crl_path, "%s/%s", c->tls_dir, TLS_CLIENT_CRL) < 0)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return health_set(r, HEALTH_CRITICAL, "%s: %s", dir, strerror(errno));
        /* Revoked certificates are renamed by `regvisor pki revoke`; the
         * CRL catches one that was revoked and copied back. */
        if (read_file(crl_path, PEM_MAX, &crl_pem, &crl_size) >= 0)
                (void) pki_crl_from_pem(crl_pem, crl_size, &crl);
        f = open_memstream(&attention, &attention_len);
        if (!f)
                return -ENOMEM;
        scan.attention = f;
        while ((de = readdir(d))) {
                k = client_cert_scan(ctx, r, crl, de->d_name, &scan);
                if (k < 0)
                        return k;
        }
        if (fflush(f) != 0)
                return -ENOMEM;

        if (scan.n > 0) {
                (void) snprintf(w, sizeof w, "%u:", o->cert_warn_days);
                (void) snprintf(cr, sizeof cr, "%u:", o->cert_crit_days);
                health_add_perf(r, "client_cert_min_days", scan.min_days, "", w, cr);
        }
        if (scan.worst != HEALTH_OK)
                return health_set(r, scan.worst, "client certificates need attention: %s (reissue with regvisor pki "
                                  "issue-client NAME, or revoke)", attention);
        if (scan.n == 0)
                return health_set(r, HEALTH_OK, "no client certificates issued");
        return health_set(r, HEALTH_OK, "%zu client certificate%s; the first to expire: %s on %s", scan.n,
                          scan.n == 1 ? "" : "s", scan.first, scan.first_date);
}

static int check_podman_state(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_free_ char *detail = NULL;
        unsigned timeout_sec = remaining_sec(ctx);
        struct passwd *pw;
        PodmanUser u;
        int k;

        pw = podman_service_user(ctx, &u);
        if (!pw)
                return no_user(r, c);
        k = podman_state_outside_home(&u, timeout_sec, &detail);
        if (k == 1)
                return health_set(r, HEALTH_OK, "outside %s: %s", pw->pw_dir, detail ?: "");
        if (k == -ETIMEDOUT)
                return podman_timed_out(r, "podman info", timeout_sec);
        return health_set(r, HEALTH_CRITICAL, "%s", detail ?: strerror(k < 0 ? -k : EPERM));
}

typedef enum {
        PROBE_HANDSHAKE,    /* listening, TLS handshake, our certificate */
        PROBE_REFUSE_WRITE, /* PUT /v2/ answered 403 */
        PROBE_REQUIRE_CERT, /* no client certificate: 400 or a TLS refusal */
} ProbeKind;

/* What a probe of one proxy port has found out so far; each verdict below
 * ends the connection (conn_done()) and sets r. */
typedef struct {
        const HealthContext *ctx;
        HealthResult *r;
        Conn *conn;
        const HealthEndpoint *ep;
        const char *what;     /* "pull port HOST:PORT" */
        const char *portname; /* "pull", "push" */
} ProxyProbe;

/* The connection failed (k): a refusal, a timeout, a TLS error. */
static int probe_failed(const ProxyProbe *p, int k) {
        k = conn_failed(p->ctx, p->r, p->conn, k, p->what, p->ep);
        conn_done(p->conn);
        return k;
}

/* The port refuses this host (allow_cidrs leave out every address of it):
 * what a checker here can see is the refusal itself, the same fact
 * /readyz reports (the port accepts, then closes). k: the TLS connect's
 * result. */
static int probe_excluded(const ProxyProbe *p, int k, const char *addr) {
        if (k == 0) {
                conn_done(p->conn);
                return health_set(p->r, HEALTH_CRITICAL,
                                  "%s completed a TLS handshake with %s, which [%s] allow_cidrs exclude", p->what,
                                  addr, p->portname);
        }
        if (k == -ECONNREFUSED)
                return probe_failed(p, k);
        conn_done(p->conn);
        return health_set(p->r, HEALTH_OK,
                          "%s accepts and closes a connection from %s before TLS, as [%s] allow_cidrs say; "
                          "TLS not checked: no address of this host is in allow_cidrs",
                          p->what, addr, p->portname);
}

/* The handshake failed (k < 0). A TLS 1.2 server that wants a client
 * certificate refuses in the handshake, after we verified its own
 * certificate: where that is what kind expects, it is the port's OK. */
static int probe_handshake_failed(const ProxyProbe *p, int k, ProbeKind kind) {
        SSL *ssl = p->conn->ssl;
        bool verified = ssl && SSL_get0_peer_certificate(ssl) && SSL_get_verify_result(ssl) == X509_V_OK;

        if (kind != PROBE_REFUSE_WRITE && verified && conn_refused_no_cert(p->conn, k)) {
                _cleanup_free_ char *why = conn_error(p->conn, k);
                conn_done(p->conn);
                return health_set(p->r, HEALTH_OK,
                                  "%s: server certificate verified; a client without a certificate is "
                                  "refused in the handshake (%s)",
                                  p->what, why ?: "alert");
        }
        return probe_failed(p, k);
}

/* PROBE_HANDSHAKE: the handshake took t0 until now; is the certificate
 * served the one on disk? */
static int probe_handshake_done(const ProxyProbe *p, uint64_t t0) {
        const Config *c = p->ctx->config;
        _cleanup_(X509_freep) X509 *ours = NULL;
        /* Borrowed from conn.ssl: used before conn_done(). */
        X509 *peer = SSL_get0_peer_certificate(p->conn->ssl);
        const char *version = SSL_get_version(p->conn->ssl); /* static string */
        double secs = (double) (health_now_usec() - t0) / USEC_PER_SEC;
        /* Renewed on disk but not reloaded: clients get the old one
         * until the proxy restarts. */
        bool stale = read_cert(c, TLS_SERVER_CERT, &ours) >= 0 && peer && X509_cmp(peer, ours) != 0;

        conn_done(p->conn);
        health_add_perf(p->r, streq(p->portname, "pull") ? "pull_handshake" : "push_handshake", secs, "s", NULL,
                        NULL);
        if (stale)
                return health_set(p->r, HEALTH_WARNING,
                                  "%s serves a certificate other than %s/%s (renewed but not reloaded?)", p->what,
                                  c->tls_dir, TLS_SERVER_CERT);
        return health_set(p->r, HEALTH_OK, "%s: %s handshake in %.0f ms, certificate verified against the "
                          "server CA", p->what, version, secs * 1000);
}

/* PROBE_REFUSE_WRITE: PUT /v2/ must be answered 403. */
static int probe_refuses_write(const ProxyProbe *p, const char *host) {
        int status = 0, k;

        k = conn_request(p->conn, "PUT", "/v2/", host, p->ctx->deadline_usec, &status);
        if (k < 0)
                return probe_failed(p, k);
        conn_done(p->conn);
        if (status == 403)
                return health_set(p->r, HEALTH_OK, "%s refuses a write: PUT /v2/ answered 403", p->what);
        return health_set(p->r, HEALTH_CRITICAL, "%s: PUT /v2/ answered %d, expected 403%s", p->what, status,
                          status < 300 ? ": anonymous writes get through" : "");
}

/* The server refused us for want of a certificate (k: the error that
 * says so, conn_refused_no_cert()): the push port's OK. */
static int probe_refused_no_cert(const ProxyProbe *p, int k) {
        _cleanup_free_ char *why = conn_error(p->conn, k);

        conn_done(p->conn);
        return health_set(p->r, HEALTH_OK, "%s refuses a client without a certificate (%s)", p->what,
                          why ?: "TLS alert");
}

/* PROBE_REQUIRE_CERT: in TLS 1.3 the client's handshake completes before
 * the server has judged our (absent) certificate; its answer is an alert,
 * or a 400 to the request from an nginx-like proxy. So listen first for a
 * moment: a request sent to a server that already closed makes its kernel
 * answer with a RST, which discards the alert we want to read (seen with
 * Python's ssl module as the server). */
static int probe_requires_cert(const ProxyProbe *p, const char *host) {
        uint64_t deadline = p->ctx->deadline_usec, verdict = health_now_usec() + REFUSAL_WAIT_USEC;
        int status = 0, k;
        char byte;
        ssize_t n = conn_read(p->conn, &byte, 1, verdict < deadline ? verdict : deadline);

        if (n != -ETIMEDOUT) {
                if (n < 0 && conn_refused_no_cert(p->conn, (int) n))
                        return probe_refused_no_cert(p, (int) n);
                if (n < 0)
                        return probe_failed(p, (int) n);
                conn_done(p->conn);
                return health_set(p->r, HEALTH_CRITICAL, "%s %s before a request was sent", p->what,
                                  n == 0 ? "closed the connection" : "sent data");
        }
        k = conn_request(p->conn, "GET", "/v2/", host, deadline, &status);
        if (k < 0 && conn_refused_no_cert(p->conn, k))
                return probe_refused_no_cert(p, k);
        if (k < 0)
                return probe_failed(p, k);
        conn_done(p->conn);
        if (status == 400)
                return health_set(p->r, HEALTH_OK,
                                  "%s refuses a client without a certificate: GET /v2/ answered 400", p->what);
        return health_set(p->r, HEALTH_CRITICAL,
                          "%s: GET /v2/ without a client certificate answered %d, expected 400%s", p->what, status,
                          status < 300 ? ": unauthenticated clients get through" : "");
}

static int check_proxy(const HealthContext *ctx, HealthResult *r, const PortConfig *port, const char *portname,
                       ProbeKind kind) {
        const Config *c = ctx->config;
        _cleanup_(SSL_CTX_freep) SSL_CTX *tls = NULL;
        _cleanup_free_ char *error = NULL, *host = NULL, *what = NULL;
        HealthEndpoint ep;
        Conn conn = {.fd = -EBADF};
        char buf[128], addr[INET6_ADDRSTRLEN];
        uint64_t t0 = health_now_usec();
        int k, admitted;

        admitted = proxy_endpoint(port, addr, &ep);
        if (admitted < 0)
                return health_set(r, HEALTH_UNKNOWN, "[%s] listen = %s: not an address to probe", portname,
                                  port->listen.host);
        endpoint_text(&ep, buf);
        k = tls_context(c, &tls, &error);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "%s", error ?: strerror(-k));
        if (host_header(c, ep.port, &host) < 0 ||
            asprintf(&what, "%s port %s", portname, buf) < 0)
                return -ENOMEM;

        const ProxyProbe p = {ctx, r, &conn, &ep, what, portname};
        k = conn_open_tls(c, tls, &ep, ctx->deadline_usec, &conn);
        if (admitted == 1)
                return probe_excluded(&p, k, addr);
        if (k < 0)
                return probe_handshake_failed(&p, k, kind);
        if (kind == PROBE_HANDSHAKE)
                return probe_handshake_done(&p, t0);
        if (kind == PROBE_REFUSE_WRITE)
                return probe_refuses_write(&p, host);
        return probe_requires_cert(&p, host);
}

static int check_proxy_pull_tls(const HealthContext *ctx, HealthResult *r) {
        return check_proxy(ctx, r, &ctx->config->pull, "pull", PROBE_HANDSHAKE);
}

static int check_proxy_push_tls(const HealthContext *ctx, HealthResult *r) {
        return check_proxy(ctx, r, &ctx->config->push, "push", PROBE_HANDSHAKE);
}

static int check_proxy_pull_refuses_write(const HealthContext *ctx, HealthResult *r) {
        return check_proxy(ctx, r, &ctx->config->pull, "pull", PROBE_REFUSE_WRITE);
}

static int check_proxy_push_requires_cert(const HealthContext *ctx, HealthResult *r) {
        return check_proxy(ctx, r, &ctx->config->push, "push", PROBE_REQUIRE_CERT);
}

/* The checks, in order. Timeouts: a D-Bus round trip or a socket exchange
 * answers in milliseconds on a healthy host, so 2-3 s means something hangs;
 * rootless podman needs a second or two to start, far more on a loaded host
 * (HEALTH_PODMAN_TIMEOUT_USEC). Local checks (statvfs and
 * certificate files, microseconds each) still run after the overall
 * deadline: what they say is worth more than a line of UNKNOWN. */
const HealthCheck health_checks[] = {
        {"linger", check_linger, 1 * USEC_PER_SEC, "linger is on for the service user"},
        {"user-manager", check_user_manager, 2 * USEC_PER_SEC, "user@UID.service of the service user is active"},
        {"registry-unit", check_registry_unit, 2 * USEC_PER_SEC, REGISTRY_UNIT_NAME " is active"},
        {"registry-container", check_container, HEALTH_PODMAN_TIMEOUT_USEC,
         "the registry container runs the pinned image digest"},
        {"registry-http", check_registry_http, 3 * USEC_PER_SEC, "the registry answers GET /v2/ with 200"},
        {"registry-storage", check_storage, 1 * USEC_PER_SEC, "free space of the registry storage", true},
        /* A shared store ([registry] storage = swift or s3): store-checks.c. */
        {"store", health_check_store, 5 * USEC_PER_SEC, "the shared store answers and takes our credentials"},
        {"store-cache", health_check_store_cache, 2 * USEC_PER_SEC, "the redis cache answers PING"},
        {"store-secrets", health_check_store_secrets, 1 * USEC_PER_SEC,
         "the http secret and store credentials files: present, root's, readable by nobody else", true},
        {"podman-state", check_podman_state, HEALTH_PODMAN_TIMEOUT_USEC, "podman keeps its state outside $HOME"},
        {"cert-server-ca", check_cert_server_ca, 1 * USEC_PER_SEC, "expiry of the server CA", true},
        {"cert-server", check_cert_server, 1 * USEC_PER_SEC, "expiry of the server certificate, signed by the CA",
         true},
        {"cert-client-ca", check_cert_client_ca, 1 * USEC_PER_SEC, "expiry of the client CA", true},
        {"cert-clients", check_cert_clients, 1 * USEC_PER_SEC, "expiry of every client certificate", true},
        {"crl", check_crls, 1 * USEC_PER_SEC, "nextUpdate of both CRLs (server CA, client CA)", true},
        {"image-signatures", health_check_image_signatures, 10 * USEC_PER_SEC,
         "every stored tag carries a valid signature by a trusted signer key", true},
        {"proxy-pull-tls", check_proxy_pull_tls, 2 * USEC_PER_SEC,
         "the pull port listens and completes a verified TLS handshake"},
        {"proxy-push-tls", check_proxy_push_tls, 2 * USEC_PER_SEC,
         "the push port listens and completes a verified TLS handshake"},
        {"proxy-pull-refuses-write", check_proxy_pull_refuses_write, 2 * USEC_PER_SEC,
         "the pull port answers PUT /v2/ with 403"},
        {"proxy-push-requires-cert", check_proxy_push_requires_cert, 2 * USEC_PER_SEC,
         "the push port refuses a client without a certificate"},
};
const size_t health_n_checks = ELEMENTSOF(health_checks);

const HealthCheck *health_check_find(const char *name) {
        for (size_t i = 0; i < health_n_checks; i++)
                if (streq(health_checks[i].name, name))
                        return &health_checks[i];
        return NULL;
}

static bool selected(const HealthOptions *o, const char *name) {
        if (o->n_only == 0)
                return true;
        for (size_t i = 0; i < o->n_only; i++)
                if (streq(o->only[i], name))
                        return true;
        return false;
}

int health_run(const Config *c, const HealthOptions *options, HealthResult **ret, size_t *ret_n) {
        HealthOptions o;
        HealthResult *results;
        uint64_t start = health_now_usec(), overall;
        time_t now = time(NULL);
        size_t n = 0;

        if (options)
                o = *options;
        else
                health_options_default(&o);
        if (o.timeout_usec == 0)
                o.timeout_usec = HEALTH_DEFAULT_TIMEOUT_USEC;
        overall = start + o.timeout_usec;
        for (size_t i = 0; i < o.n_only; i++)
                if (!health_check_find(o.only[i]))
                        return -EINVAL;

        results = calloc(health_n_checks, sizeof(HealthResult));
        if (!results)
                return -ENOMEM;

        for (size_t i = 0; i < health_n_checks; i++) {
                const HealthCheck *k = &health_checks[i];
                HealthResult *r;
                uint64_t t0 = health_now_usec();
                int e;

                if (!selected(&o, k->name))
                        continue;
                r = &results[n++];
                r->name = k->name;
                if (t0 >= overall && !k->local)
                        e = health_set(r, HEALTH_UNKNOWN, "not run: the overall timeout of %.1f s had passed",
                                       (double) o.timeout_usec / USEC_PER_SEC);
                else {
                        HealthContext ctx = {
                                .config = c,
                                .options = &o,
                                .deadline_usec = t0 + k->timeout_usec < overall ? t0 + k->timeout_usec : overall,
                                .now = now,
                        };
                        e = k->run(&ctx, r);
                        if (e >= 0 && !r->reason)
                                e = health_set(r, r->state, "%s", health_state_to_string(r->state));
                        if (e < 0 && e != -ENOMEM)
                                e = health_set(r, HEALTH_UNKNOWN, "the check failed: %s", strerror(-e));
                }
                r->duration_usec = health_now_usec() - t0;
                if (e < 0) {
                        health_results_free(results, n);
                        return e;
                }
        }
        *ret = results;
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------------------------------
 * Output
 */

static void write_perf(FILE *f, const HealthPerf *p) {
        char v[48];

        format_number(p->value, v);
        fprintf(f, "%s=%s%s", p->label, v, p->unit);
        if (p->warn[0] || p->crit[0])
                fprintf(f, ";%s;%s", p->warn, p->crit);
}

/* "OK - 15 checks ok" or "CRITICAL - critical: a, b; warning: c (12 of 15 ok)" */
static void write_summary(FILE *f, const HealthResult *results, size_t n) {
        static const HealthState order[] = {HEALTH_CRITICAL, HEALTH_WARNING, HEALTH_UNKNOWN};
        HealthState worst = health_state_worst(results, n);
        size_t ok = 0;
        bool first_group = true;

        for (size_t i = 0; i < n; i++)
                ok += results[i].state == HEALTH_OK;
        fprintf(f, "REGVISOR %s - ", health_state_to_string(worst));
        if (worst == HEALTH_OK && ok == n) {
                fprintf(f, "%zu checks ok", n);
                return;
        }
        for (size_t g = 0; g < ELEMENTSOF(order); g++) {
                bool first = true;
                for (size_t i = 0; i < n; i++) {
                        if (results[i].state != order[g])
                                continue;
                        if (first) {
                                char lower[16];
                                const char *s = health_state_to_string(order[g]);
                                size_t k;
                                for (k = 0; s[k] && k < sizeof lower - 1; k++)
                                        lower[k] = (char) (s[k] | 0x20);
                                lower[k] = 0;
                                fprintf(f, "%s%s: ", first_group ? "" : "; ", lower);
                                first_group = false;
                        }
                        fprintf(f, "%s%s", first ? "" : ", ", results[i].name);
                        first = false;
                }
        }
        fprintf(f, " (%zu of %zu ok)", ok, n);
}

static int finish_memstream(FILE **f, char **buf, char **ret) {
        int r = fflush(*f) == 0 && !ferror(*f) ? 0 : -ENOMEM;

        (void) fclose(*f);
        *f = NULL;
        if (r < 0) {
                free(*buf);
                *buf = NULL;
                return r;
        }
        *ret = *buf;
        *buf = NULL;
        return 0;
}

int health_format_nagios(const HealthResult *results, size_t n, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        bool any = false;

        if (!f)
                return -ENOMEM;
        write_summary(f, results, n);
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < results[i].n_perf; k++) {
                        fputs(any ? " " : "|", f);
                        write_perf(f, &results[i].perf[k]);
                        any = true;
                }
        fputc('\n', f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%-8s %s: %s\n", health_state_to_string(results[i].state), results[i].name,
                        results[i].reason ?: "");
        return finish_memstream(&f, &buf, ret);
}

static json_object *json_number(double v) {
        char s[48];

        format_number(v, s);
        return json_object_new_double_s(v, s);
}

static json_object *json_seconds(uint64_t usec) {
        char s[48];

        format_seconds(usec, s);
        return json_object_new_double_s((double) usec / USEC_PER_SEC, s);
}

/* json_object_object_add() that reports a failed allocation. */
static int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_append(json_object *a, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static json_object *json_check(const HealthResult *r) {
        json_object *o = json_object_new_object(), *perf = json_object_new_array(),
                    *certs = json_object_new_array();
        int e = 0;

        if (!o || !perf || !certs)
                e = -ENOMEM;
        for (size_t k = 0; e >= 0 && k < r->n_perf; k++) {
                const HealthPerf *p = &r->perf[k];
                json_object *po = json_object_new_object();
                if (json_append(perf, po) < 0) {
                        e = -ENOMEM;
                        break;
                }
                e = json_add(po, "label", json_object_new_string(p->label));
                if (e >= 0)
                        e = json_add(po, "value", json_number(p->value));
                if (e >= 0)
                        e = json_add(po, "unit", json_object_new_string(p->unit));
                if (e >= 0)
                        e = json_add(po, "warn", json_object_new_string(p->warn));
                if (e >= 0)
                        e = json_add(po, "crit", json_object_new_string(p->crit));
        }
        for (size_t k = 0; e >= 0 && k < r->n_certs; k++) {
                json_object *co = json_object_new_object();
                if (json_append(certs, co) < 0) {
                        e = -ENOMEM;
                        break;
                }
                e = json_add(co, "name", json_object_new_string(r->certs[k].name));
                if (e >= 0)
                        e = json_add(co, "not_after", json_object_new_int64((int64_t) r->certs[k].not_after));
        }
        if (e >= 0)
                e = json_add(o, "name", json_object_new_string(r->name));
        if (e >= 0)
                e = json_add(o, "state", json_object_new_string(health_state_to_string(r->state)));
        if (e >= 0)
                e = json_add(o, "reason", json_object_new_string(r->reason ?: ""));
        if (e >= 0)
                e = json_add(o, "duration_seconds", json_seconds(r->duration_usec));
        if (e >= 0) {
                e = json_add(o, "perfdata", perf);
                perf = NULL;
        }
        if (e >= 0) {
                e = json_add(o, "certificates", certs);
                certs = NULL;
        }
        json_object_put(perf);
        json_object_put(certs);
        if (e < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int health_format_json(const HealthResult *results, size_t n, char **ret) {
        _cleanup_free_ char *summary = NULL;
        size_t summary_size = 0;
        json_object *root = json_object_new_object(), *checks = json_object_new_array();
        HealthState worst = health_state_worst(results, n);
        FILE *f;
        int e = 0;

        if (!root || !checks) {
                json_object_put(root);
                json_object_put(checks);
                return -ENOMEM;
        }
        f = open_memstream(&summary, &summary_size);
        if (!f)
                e = -ENOMEM;
        else {
                write_summary(f, results, n);
                if (fclose(f) != 0)
                        e = -ENOMEM;
        }
        if (e >= 0)
                e = json_add(root, "state", json_object_new_string(health_state_to_string(worst)));
        if (e >= 0)
                e = json_add(root, "exit_status", json_object_new_int((int) worst));
        if (e >= 0)
                e = json_add(root, "summary", json_object_new_string(summary));
        for (size_t i = 0; e >= 0 && i < n; i++)
                e = json_append(checks, json_check(&results[i]));
        if (e >= 0) {
                e = json_add(root, "checks", checks);
                checks = NULL;
        }
        if (e >= 0) {
                const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
                *ret = s ? strdup(s) : NULL;
                if (!*ret)
                        e = -ENOMEM;
        }
        json_object_put(checks);
        json_object_put(root);
        return e;
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
void health_write_state_metric(FILE *f, HealthState state) {
        prom_family(f, "regvisor_health_state", "gauge",
                    "Overall state of the health checks: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.");
        prom_sample_i64(f, "regvisor_health_state", NULL, 0, (int) state);
}

int health_render_metrics(const HealthResult *results, size_t n, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        char v[48];

        if (!f)
                return -ENOMEM;
        health_write_state_metric(f, health_state_worst(results, n));

        prom_family(f, "regvisor_health_check_state", "gauge",
                    "State of each health check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.");
        for (size_t i = 0; i < n; i++)
                prom_sample_i64(f, "regvisor_health_check_state", &(PromLabel){"check", results[i].name}, 1,
                                (int) results[i].state);

        prom_family(f, "regvisor_health_check_ok", "gauge", "1 when the health check is OK, else 0.");
        for (size_t i = 0; i < n; i++)
                prom_sample_i64(f, "regvisor_health_check_ok", &(PromLabel){"check", results[i].name}, 1,
                                results[i].state == HEALTH_OK);

        prom_family(f, "regvisor_health_check_duration_seconds", "gauge", "How long the health check took.");
        for (size_t i = 0; i < n; i++) {
                format_seconds(results[i].duration_usec, v);
                prom_sample(f, "regvisor_health_check_duration_seconds", &(PromLabel){"check", results[i].name}, 1,
                            v);
        }

        prom_family(f, "regvisor_health_perfdata", "gauge",
                    "The performance data of each health check (its Nagios perfdata), by label.");
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < results[i].n_perf; k++) {
                        format_number(results[i].perf[k].value, v);
                        prom_sample(f, "regvisor_health_perfdata",
                                    (const PromLabel[]){{"check", results[i].name},
                                                        {"label", results[i].perf[k].label}},
                                    2, v);
                }

        prom_family(f, "regvisor_certificate_expiry_timestamp_seconds", "gauge",
                    "notAfter of each certificate regvisor manages, as a Unix timestamp.");
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < results[i].n_certs; k++)
                        prom_sample_i64(f, "regvisor_certificate_expiry_timestamp_seconds",
                                        &(PromLabel){"certificate", results[i].certs[k].name}, 1,
                                        (int64_t) results[i].certs[k].not_after);
        return finish_memstream(&f, &buf, ret);
}
