/* SPDX-License-Identifier: MIT */
/*
 * Health checks: the pure parts (state aggregation and judgements, the
 * Nagios line and perfdata, the JSON shape, the Prometheus text) and the
 * tiny HTTP client against a unix socket server forked by the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "config.h"
#include "fileio.h"
#include "health.h"
#include "macro.h"
#include "pki.h"
#include "server-names.h"
#include "probe.h"
#include "tmpdir.h"

#define assert_has(hay, needle)                                                                   \
        do {                                                                                      \
                if (!strstr((hay), (needle)))                                                     \
                        fail_msg("missing '%s' in:\n%s", (needle), (hay));                         \
        } while (0)

static HealthResult *results_new(size_t n) {
        HealthResult *r = calloc(n, sizeof(HealthResult));
        assert_non_null(r);
        return r;
}

/* ------------------------------------------------------------------------
 * The table and the judgements
 */

static void test_table_shape(void **state) {
        (void) state;
        assert_true(health_n_checks >= 15);
        for (size_t i = 0; i < health_n_checks; i++) {
                const HealthCheck *c = &health_checks[i];
                assert_non_null(c->name);
                assert_non_null(c->run);
                assert_non_null(c->description);
                /* Each check bounded, and well inside the overall deadline. */
                assert_true(c->timeout_usec > 0);
                assert_true(c->timeout_usec <= HEALTH_DEFAULT_TIMEOUT_USEC);
                /* What runs podman gets what a loaded host needs (5 s timed
                 * out at load ~15 on 2 cores), with room for the fast
                 * checks around it inside the default overall timeout. */
                if (c->run == health_check_find("podman-state")->run ||
                    c->run == health_check_find("registry-container")->run) {
                        assert_true(c->timeout_usec >= 20 * UINT64_C(1000000));
                        assert_true(c->timeout_usec + 5 * UINT64_C(1000000) <= HEALTH_DEFAULT_TIMEOUT_USEC);
                }
                /* Names are used as Nagios text and Prometheus label values. */
                for (const char *p = c->name; *p; p++)
                        assert_true((*p >= 'a' && *p <= 'z') || *p == '-');
                for (size_t k = 0; k < i; k++)
                        assert_string_not_equal(c->name, health_checks[k].name);
        }
}

static void test_state_worst(void **state) {
        HealthResult r[3] = {};

        (void) state;
        assert_int_equal(health_state_worst(r, 0), HEALTH_OK);
        assert_int_equal(health_state_worst(r, 3), HEALTH_OK);
        r[1].state = HEALTH_UNKNOWN;
        assert_int_equal(health_state_worst(r, 3), HEALTH_UNKNOWN);
        /* A warning is not hidden by a check that could not tell. */
        r[2].state = HEALTH_WARNING;
        assert_int_equal(health_state_worst(r, 3), HEALTH_WARNING);
        r[0].state = HEALTH_CRITICAL;
        assert_int_equal(health_state_worst(r, 3), HEALTH_CRITICAL);
        assert_string_equal(health_state_to_string(HEALTH_OK), "OK");
        assert_string_equal(health_state_to_string(HEALTH_WARNING), "WARNING");
        assert_string_equal(health_state_to_string(HEALTH_CRITICAL), "CRITICAL");
        assert_string_equal(health_state_to_string(HEALTH_UNKNOWN), "UNKNOWN");
        assert_string_equal(health_state_to_string((HealthState) 42), "UNKNOWN");
}

static void test_cert_expiry_state(void **state) {
        const time_t now = 1700000000, day = 86400;
        double days;

        (void) state;
        assert_int_equal(health_cert_expiry_state(now + 365 * day, now, 30, 7, &days), HEALTH_OK);
        assert_true(days > 364.9 && days < 365.1);
        assert_int_equal(health_cert_expiry_state(now + 30 * day, now, 30, 7, NULL), HEALTH_OK);
        assert_int_equal(health_cert_expiry_state(now + 30 * day - 1, now, 30, 7, NULL), HEALTH_WARNING);
        /* The integration test's certificate: 10 days left. */
        assert_int_equal(health_cert_expiry_state(now + 10 * day, now, 30, 7, NULL), HEALTH_WARNING);
        assert_int_equal(health_cert_expiry_state(now + 7 * day, now, 30, 7, NULL), HEALTH_WARNING);
        assert_int_equal(health_cert_expiry_state(now + 7 * day - 1, now, 30, 7, NULL), HEALTH_CRITICAL);
        assert_int_equal(health_cert_expiry_state(now, now, 30, 7, NULL), HEALTH_CRITICAL);
        assert_int_equal(health_cert_expiry_state(now - 2 * day, now, 30, 7, &days), HEALTH_CRITICAL);
        assert_true(days < -1.9);
        /* crit 0: only an expired certificate is critical. */
        assert_int_equal(health_cert_expiry_state(now + 60, now, 30, 0, NULL), HEALTH_WARNING);
}

static void test_storage_state(void **state) {
        (void) state;
        assert_int_equal(health_storage_state(73.5, 20, 10), HEALTH_OK);
        assert_int_equal(health_storage_state(20, 20, 10), HEALTH_OK);
        assert_int_equal(health_storage_state(19.9, 20, 10), HEALTH_WARNING);
        assert_int_equal(health_storage_state(10, 20, 10), HEALTH_WARNING);
        assert_int_equal(health_storage_state(9.99, 20, 10), HEALTH_CRITICAL);
        assert_int_equal(health_storage_state(0, 20, 10), HEALTH_CRITICAL);
}

#define DIGEST "sha256:8be26f81ffea54106bae012c6f349df70f4d5e7e2ec01b143c46e2c03b9e551d"

static void test_container_state(void **state) {
        char *why = NULL;

        (void) state;
        assert_int_equal(health_container_state("true " DIGEST "\n", DIGEST, &why), HEALTH_OK);
        assert_has(why, "pinned");
        free(why);
        assert_int_equal(health_container_state("false " DIGEST "\n", DIGEST, &why), HEALTH_CRITICAL);
        assert_has(why, "not running");
        free(why);
        assert_int_equal(health_container_state("true sha256:0000\n", DIGEST, &why), HEALTH_CRITICAL);
        assert_has(why, "sha256:0000");
        assert_has(why, "not the pinned " DIGEST);
        free(why);
        assert_int_equal(health_container_state("true\n", DIGEST, &why), HEALTH_CRITICAL);
        free(why);
        assert_int_equal(health_container_state("", DIGEST, &why), HEALTH_CRITICAL);
        free(why);
        assert_int_equal(health_container_state(NULL, DIGEST, &why), HEALTH_CRITICAL);
        free(why);
}

static void test_set_one_line(void **state) {
        HealthResult r = {};

        (void) state;
        assert_int_equal(health_set(&r, HEALTH_WARNING, "a|b\nc\r%s", "d"), 0);
        assert_string_equal(r.reason, "a/b c d");
        assert_int_equal(r.state, HEALTH_WARNING);
        /* Replacing frees the old reason (ASan checks the leak). */
        assert_int_equal(health_set(&r, HEALTH_OK, "fine"), 0);
        assert_string_equal(r.reason, "fine");
        free(r.reason);
}

/* ------------------------------------------------------------------------
 * Output formats
 */

/* Three checks: OK with perfdata, WARNING with a certificate, CRITICAL. */
static HealthResult *sample(size_t *ret_n) {
        HealthResult *r = results_new(3);

        r[0].name = "registry-storage";
        assert_int_equal(health_set(&r[0], HEALTH_OK, "73.5%% free"), 0);
        health_add_perf(&r[0], "storage_free", 73.5, "%", "20:", "10:");
        health_add_perf(&r[0], "storage_free_bytes", 1073741824, "B", NULL, NULL);
        r[0].duration_usec = 1500;

        r[1].name = "cert-server";
        assert_int_equal(health_set(&r[1], HEALTH_WARNING, "server certificate expires in 10 days"), 0);
        health_add_perf(&r[1], "server_cert_days", 9.99999, "", "30:", "7:");
        r[1].certs = calloc(1, sizeof(HealthCert));
        assert_non_null(r[1].certs);
        r[1].certs[0] = (HealthCert){.name = strdup("server"), .not_after = 1700864000};
        r[1].n_certs = 1;

        r[2].name = "proxy-pull-tls";
        assert_int_equal(health_set(&r[2], HEALTH_CRITICAL, "nothing listens on 127.0.0.1:443"), 0);
        *ret_n = 3;
        return r;
}

static void test_nagios(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t n;
        HealthResult *r = sample(&n);

        (void) state;
        assert_int_equal(health_format_nagios(r, n, &text), 0);
        assert_string_equal(text,
                            "REGVISOR CRITICAL - critical: proxy-pull-tls; warning: cert-server (1 of 3 ok)"
                            "|storage_free=73.5%;20:;10: storage_free_bytes=1073741824B server_cert_days=10;30:;7:\n"
                            "OK       registry-storage: 73.5% free\n"
                            "WARNING  cert-server: server certificate expires in 10 days\n"
                            "CRITICAL proxy-pull-tls: nothing listens on 127.0.0.1:443\n");
        health_results_free(r, n);
}

static void test_nagios_ok_and_unknown(void **state) {
        _cleanup_free_ char *ok = NULL, *unknown = NULL;
        HealthResult *r = results_new(2);

        (void) state;
        r[0].name = "linger";
        r[1].name = "registry-http";
        assert_int_equal(health_set(&r[0], HEALTH_OK, "on"), 0);
        assert_int_equal(health_set(&r[1], HEALTH_OK, "200"), 0);
        health_add_perf(&r[1], "registry_response", 0.0042, "s", NULL, NULL);
        assert_int_equal(health_format_nagios(r, 2, &ok), 0);
        assert_string_equal(ok, "REGVISOR OK - 2 checks ok|registry_response=0.004s\n"
                                "OK       linger: on\nOK       registry-http: 200\n");

        assert_int_equal(health_set(&r[1], HEALTH_UNKNOWN, "not run"), 0);
        r[1].n_perf = 0;
        assert_int_equal(health_format_nagios(r, 2, &unknown), 0);
        assert_string_equal(unknown, "REGVISOR UNKNOWN - unknown: registry-http (1 of 2 ok)\n"
                                     "OK       linger: on\nUNKNOWN  registry-http: not run\n");
        health_results_free(r, 2);
}

/* OBJ has KEY, a string equal to WANT. */
static void assert_json_string(json_object *obj, const char *key, const char *want) {
        json_object *v;

        assert_true(json_object_object_get_ex(obj, key, &v));
        assert_string_equal(json_object_get_string(v), want);
}

static void test_json(void **state) {
        _cleanup_free_ char *text = NULL;
        json_object *root, *v, *checks, *c, *perf, *p, *certs;
        size_t n;
        HealthResult *r = sample(&n);

        (void) state;
        assert_int_equal(health_format_json(r, n, &text), 0);
        root = json_tokener_parse(text);
        assert_non_null(root);
        assert_json_string(root, "state", "CRITICAL");
        assert_true(json_object_object_get_ex(root, "exit_status", &v));
        assert_int_equal(json_object_get_int(v), 2);
        assert_json_string(root, "summary",
                           "REGVISOR CRITICAL - critical: proxy-pull-tls; warning: cert-server (1 of 3 ok)");
        assert_true(json_object_object_get_ex(root, "checks", &checks));
        assert_int_equal(json_object_array_length(checks), 3);

        c = json_object_array_get_idx(checks, 0);
        assert_json_string(c, "name", "registry-storage");
        assert_json_string(c, "state", "OK");
        assert_json_string(c, "reason", "73.5% free");
        assert_true(json_object_object_get_ex(c, "duration_seconds", &v));
        assert_true(json_object_get_double(v) > 0.0014 && json_object_get_double(v) < 0.0016);
        assert_true(json_object_object_get_ex(c, "perfdata", &perf));
        assert_int_equal(json_object_array_length(perf), 2);
        p = json_object_array_get_idx(perf, 0);
        assert_json_string(p, "label", "storage_free");
        assert_true(json_object_object_get_ex(p, "value", &v));
        assert_true(json_object_get_double(v) == 73.5);
        assert_json_string(p, "unit", "%");
        assert_json_string(p, "warn", "20:");
        assert_json_string(p, "crit", "10:");

        c = json_object_array_get_idx(checks, 1);
        assert_true(json_object_object_get_ex(c, "certificates", &certs));
        assert_int_equal(json_object_array_length(certs), 1);
        assert_true(json_object_object_get_ex(json_object_array_get_idx(certs, 0), "not_after", &v));
        assert_int_equal(json_object_get_int64(v), 1700864000);
        json_object_put(root);
        health_results_free(r, n);
}

/* Every line of the exposition is a HELP, a TYPE (gauge) or a sample of the
 * family declared just before it, "name{label="value"} number". */
static void assert_exposition(const char *text) {
        _cleanup_free_ char *copy = strdup(text);
        char family[128] = "";
        char *save = NULL;

        assert_non_null(copy);
        assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strneq(line, "# HELP ", 7)) {
                        assert_int_equal(sscanf(line + 7, "%127s", family), 1);
                        continue;
                }
                if (strneq(line, "# TYPE ", 7)) {
                        char name[128], type[32];
                        assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
                        assert_string_equal(name, family);
                        assert_string_equal(type, "gauge");
                        continue;
                }
                size_t len = strlen(family);
                assert_true(len > 0);
                if (!strneq(line, family, len) || (line[len] != ' ' && line[len] != '{'))
                        fail_msg("sample '%s' outside its family %s", line, family);
                char *value = strrchr(line, ' ');
                char *end;
                assert_non_null(value);
                (void) strtod(value + 1, &end);
                assert_true(*end == 0 && end > value + 1);
        }
}

static void test_metrics(void **state) {
        _cleanup_free_ char *text = NULL, *odd_text = NULL;
        size_t n;
        HealthResult *r = sample(&n);

        (void) state;
        r[0].duration_usec = 1500;
        assert_int_equal(health_render_metrics(r, n, &text), 0);
        assert_exposition(text);
        assert_has(text, "# TYPE regvisor_health_state gauge\nregvisor_health_state 2\n");
        assert_has(text, "regvisor_health_check_state{check=\"registry-storage\"} 0\n");
        assert_has(text, "regvisor_health_check_state{check=\"cert-server\"} 1\n");
        assert_has(text, "regvisor_health_check_state{check=\"proxy-pull-tls\"} 2\n");
        assert_has(text, "regvisor_health_check_ok{check=\"registry-storage\"} 1\n");
        assert_has(text, "regvisor_health_check_ok{check=\"proxy-pull-tls\"} 0\n");
        assert_has(text, "regvisor_health_check_duration_seconds{check=\"registry-storage\"} 0.0015\n");
        assert_has(text, "# HELP regvisor_certificate_expiry_timestamp_seconds ");
        assert_has(text, "regvisor_certificate_expiry_timestamp_seconds{certificate=\"server\"} 1700864000\n");
        health_results_free(r, n);

        /* Label values are escaped: a client certificate's file name is
         * chosen by an operator. */
        r = results_new(1);
        r[0].name = "cert-clients";
        assert_int_equal(health_set(&r[0], HEALTH_OK, "ok"), 0);
        r[0].certs = calloc(1, sizeof(HealthCert));
        assert_non_null(r[0].certs);
        r[0].certs[0] = (HealthCert){.name = strdup("client/a\"b\\c\nd"), .not_after = 1};
        r[0].n_certs = 1;
        assert_int_equal(health_render_metrics(r, 1, &odd_text), 0);
        assert_exposition(odd_text);
        assert_has(odd_text, "{certificate=\"client/a\\\"b\\\\c\\nd\"} 1\n");
        health_results_free(r, 1);
}

static void test_metrics_empty(void **state) {
        _cleanup_free_ char *text = NULL;

        (void) state;
        assert_int_equal(health_render_metrics(NULL, 0, &text), 0);
        assert_exposition(text);
        assert_has(text, "regvisor_health_state 0\n");
}

/* ------------------------------------------------------------------------
 * The HTTP client
 */

typedef enum {
        SERVE_200,        /* one write */
        SERVE_403_SPLIT,  /* the status line in three writes */
        SERVE_CLOSE,      /* close without answering */
        SERVE_GARBAGE,    /* not HTTP */
        SERVE_SILENT,     /* read the request, never answer */
} Serve;

typedef struct {
        char dir[TMPDIR_PATH_MAX];
        char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
        pid_t pid;
} Server;

/* A unix socket server in a child process that answers one connection. */
static void server_start(Server *s, Serve how) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        assert_int_equal(tmpdir_make(s->dir, sizeof s->dir, "test-health"), 0);
        /* A socket path has 108 bytes: a $TMPDIR too long for it fails here, by name. */
        assert_true((size_t) snprintf(s->path, sizeof s->path, "%s/sock", s->dir) < sizeof s->path);
        strcpy(sa.sun_path, s->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(listen(fd, 4), 0);

        s->pid = fork();
        assert_true(s->pid >= 0);
        if (s->pid == 0) {
                char req[4096];
                size_t have = 0;
                int c = accept(fd, NULL, NULL);
                if (c < 0)
                        _exit(1);
                /* Read the whole request head first, as a server does. */
                while (have < sizeof req - 1) {
                        ssize_t k = read(c, req + have, sizeof req - 1 - have);
                        if (k <= 0)
                                break;
                        have += (size_t) k;
                        req[have] = 0;
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                if (!strneq(req, "GET /v2/ HTTP/1.1\r\n", 19) || !strstr(req, "\r\nHost: localhost\r\n"))
                        _exit(2);
                switch (how) {
                case SERVE_200:
                        (void) !write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 40);
                        break;
                case SERVE_403_SPLIT:
                        (void) !write(c, "HTTP/1.", 7);
                        usleep(20000);
                        (void) !write(c, "1 40", 4);
                        usleep(20000);
                        (void) !write(c, "3 Forbidden\r\n\r\n", 15);
                        break;
                case SERVE_CLOSE:
                        break;
                case SERVE_GARBAGE:
                        (void) !write(c, "SSH-2.0-OpenSSH\r\n", 17);
                        break;
                case SERVE_SILENT:
                        pause();
                        break;
                }
                _exit(0);
        }
        (void) close(fd);
}

static void server_stop(Server *s) {
        int status;

        (void) kill(s->pid, SIGKILL);
        assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
        (void) unlink(s->path);
        (void) rmdir(s->dir);
}

static int request(const Server *s, uint64_t timeout_usec, int *ret_status) {
        HealthEndpoint ep = {.path = s->path};
        return health_http_status(&ep, "GET", "/v2/", "localhost", health_now_usec() + timeout_usec, ret_status);
}

static void test_http_unix(void **state) {
        Server s;
        int status = 0;

        (void) state;
        server_start(&s, SERVE_200);
        assert_int_equal(request(&s, 2000000, &status), 0);
        assert_int_equal(status, 200);
        server_stop(&s);

        server_start(&s, SERVE_403_SPLIT);
        assert_int_equal(request(&s, 2000000, &status), 0);
        assert_int_equal(status, 403);
        server_stop(&s);

        server_start(&s, SERVE_CLOSE);
        assert_int_equal(request(&s, 2000000, &status), -ECONNRESET);
        server_stop(&s);

        server_start(&s, SERVE_GARBAGE);
        assert_int_equal(request(&s, 2000000, &status), -EBADMSG);
        server_stop(&s);
}

/* A server that hangs (the SIGSTOPped registry) costs the timeout, no more. */
static void test_http_timeout(void **state) {
        Server s;
        int status = 0;
        uint64_t t0;

        (void) state;
        server_start(&s, SERVE_SILENT);
        t0 = health_now_usec();
        assert_int_equal(request(&s, 200000, &status), -ETIMEDOUT);
        assert_true(health_now_usec() - t0 >= 200000);
        assert_true(health_now_usec() - t0 < 1000000);
        server_stop(&s);
}

static void test_http_no_server(void **state) {
        HealthEndpoint missing = {.path = "/nonexistent/regvisor-test.sock"};
        HealthEndpoint toolong = {.path = NULL};
        HealthEndpoint badhost = {.host = "localhost", .port = 1};
        char path[200];
        int status = 0;

        (void) state;
        assert_int_equal(health_http_status(&missing, "GET", "/v2/", "localhost", health_now_usec() + 1000000,
                                            &status),
                         -ENOENT);
        memset(path, 'a', sizeof path - 1);
        path[sizeof path - 1] = 0;
        toolong.path = path;
        assert_int_equal(health_http_status(&toolong, "GET", "/v2/", "localhost", health_now_usec() + 1000000,
                                            &status),
                         -EINVAL);
        /* Numeric addresses only: no resolver call that could block. */
        assert_int_equal(health_http_status(&badhost, "GET", "/v2/", "localhost", health_now_usec() + 1000000,
                                            &status),
                         -EINVAL);
}

/* ------------------------------------------------------------------------
 * health_run() on a certificate tree made here (the local checks)
 */

static void write_cert(const char *dir, const char *rel, X509 *cert) {
        _cleanup_free_ char *path = NULL, *pem = NULL;
        size_t size;

        assert_true(asprintf(&path, "%s/%s", dir, rel) > 0);
        assert_int_equal(pki_cert_to_pem(cert, &pem, &size), 0);
        assert_int_equal(mkdir_parents(path), 0);
        assert_int_equal(write_file_atomic(path, pem, size, 0644, (uid_t) -1, (gid_t) -1), 0);
}

static const HealthResult *find(const HealthResult *r, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(r[i].name, name))
                        return &r[i];
        fail_msg("no result for %s", name);
        return NULL;
}

static void test_run_local_checks(void **state) {
        char dir[TMPDIR_PATH_MAX];
        const ServerName names[] = {SN_DNS("registry.test")};
        char *only[] = {(char *) "cert-server-ca", (char *) "cert-server", (char *) "cert-client-ca",
                        (char *) "cert-clients", (char *) "registry-storage"};
        char *bogus[] = {(char *) "no-such-check"};
        EVP_PKEY *ca_key = NULL, *key = NULL, *other_key = NULL;
        X509 *ca = NULL, *server = NULL, *ci = NULL, *soon = NULL, *other_ca = NULL, *stray = NULL;
        _cleanup_free_ char *text = NULL, *conf = NULL, *metrics = NULL, *err = NULL;
        HealthResult *r = NULL;
        HealthOptions o;
        Config c;
        size_t n = 0;

        (void) state;
        assert_int_equal(tmpdir_make(dir, sizeof dir, "test-health-certs"), 0);
        assert_int_equal(pki_generate_key(KEY_EC_P256, &ca_key), 0);
        assert_int_equal(pki_generate_key(KEY_EC_P256, &key), 0);
        assert_int_equal(pki_make_ca(ca_key, "test", "ca", 3650, &ca), 0);
        assert_int_equal(pki_issue_server(ca, ca_key, key, "test", names, 1, 10, NULL, &server), 0);
        assert_int_equal(pki_issue_client(ca, ca_key, key, "test", "ci", 365, NULL, &ci), 0);
        assert_int_equal(pki_issue_client(ca, ca_key, key, "test", "soon", 20, NULL, &soon), 0);
        write_cert(dir, "ca/ca.crt", ca);
        write_cert(dir, "registry.crt", server);
        write_cert(dir, "clients/ci.crt", ci);
        write_cert(dir, "clients/soon.crt", soon);
        /* clients/ca.crt missing on purpose */

        assert_int_equal(config_init_defaults(&c), 0);
        assert_true(asprintf(&conf, "[tls]\nserver_names = registry.test\ndir = %s\n[registry]\nstorage = %s\n", dir,
                             dir) > 0);
        assert_int_equal(config_load_string(&c, conf, "test.conf", &err), 0);

        health_options_default(&o);
        o.only = bogus;
        o.n_only = 1;
        assert_int_equal(health_run(&c, &o, &r, &n), -EINVAL);

        o.only = only;
        o.n_only = ELEMENTSOF(only);
        assert_int_equal(health_run(&c, &o, &r, &n), 0);
        assert_int_equal(n, ELEMENTSOF(only));
        /* Table order, not the order asked in. */
        assert_string_equal(r[0].name, "registry-storage");
        assert_int_equal(find(r, n, "cert-server-ca")->state, HEALTH_OK);
        assert_int_equal(find(r, n, "cert-server")->state, HEALTH_WARNING);
        assert_has(find(r, n, "cert-server")->reason, "in 10 days");
        assert_int_equal(find(r, n, "cert-client-ca")->state, HEALTH_CRITICAL);
        assert_has(find(r, n, "cert-client-ca")->reason, "missing");
        assert_int_equal(find(r, n, "cert-clients")->state, HEALTH_WARNING);
        assert_has(find(r, n, "cert-clients")->reason, "soon expires in 20 days");
        assert_int_equal(find(r, n, "cert-clients")->n_certs, 2);
        assert_int_equal(find(r, n, "registry-storage")->n_perf, 2);
        assert_int_equal(health_state_worst(r, n), HEALTH_CRITICAL);

        assert_int_equal(health_render_metrics(r, n, &metrics), 0);
        assert_exposition(metrics);
        assert_has(metrics, "regvisor_certificate_expiry_timestamp_seconds{certificate=\"client/soon\"} ");
        assert_has(metrics, "regvisor_certificate_expiry_timestamp_seconds{certificate=\"server-ca\"} ");
        health_results_free(r, n);

        /* A server certificate from another CA: clients would refuse it. */
        assert_int_equal(pki_generate_key(KEY_EC_P256, &other_key), 0);
        assert_int_equal(pki_make_ca(other_key, "test", "other", 3650, &other_ca), 0);
        assert_int_equal(pki_issue_server(other_ca, other_key, key, "test", names, 1, 365, NULL, &stray), 0);
        write_cert(dir, "registry.crt", stray);
        o.only = only + 1;
        o.n_only = 1;
        assert_int_equal(health_run(&c, &o, &r, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(r[0].state, HEALTH_CRITICAL);
        assert_has(r[0].reason, "is not signed by");
        assert_int_equal(health_format_nagios(r, n, &text), 0);
        assert_has(text, "REGVISOR CRITICAL - critical: cert-server (0 of 1 ok)|server_cert_days=");
        health_results_free(r, n);

        config_done(&c);
        EVP_PKEY_free(ca_key);
        EVP_PKEY_free(key);
        EVP_PKEY_free(other_key);
        X509_free(ca);
        X509_free(server);
        X509_free(ci);
        X509_free(soon);
        X509_free(other_ca);
        X509_free(stray);
        {
                _cleanup_free_ char *cmd = NULL;
                assert_true(asprintf(&cmd, "rm -rf -- '%s'", dir) > 0);
                assert_int_equal(system(cmd), 0);
        }
}

/* The address the push port's check comes from, for IPv6 ranges in
 * allow_cidrs where only /proc/net/if_inet6 lists this host's addresses
 * (getifaddrs() without netlink); and for an IPv6 listen address. */
static void admit(PortConfig *port, const char *cidr_addr, unsigned prefix) {
        Cidr *c = &port->allow_cidrs[port->n_allow_cidrs++];

        c->family = strchr(cidr_addr, ':') ? AF_INET6 : AF_INET;
        assert_int_equal(inet_pton(c->family, cidr_addr, c->addr), 1);
        c->prefix = prefix;
}

static void test_proxy_host_ipv6_ranges(void **state) {
        static const char if_inet6[] = "fe800000000000000000000000000001 02 40 20 80     eth0\n"
                                       "00000000000000000000000000000001 01 80 10 80       lo\n"
                                       "20010db8000000000000000000000005 02 40 00 80     eth0\n"
                                       "fd000000000000000000000000000002 04 40 00 82     eth1\n";
        char host[INET6_ADDRSTRLEN];
        PortConfig port = {};

        (void)state;
        admit(&port, "fd00::", 8);
        assert_int_equal(probe_ipv6_admitted(&port, if_inet6, host), 0);
        assert_string_equal(host, "fd00::2");

        port = (PortConfig){};
        admit(&port, "10.0.0.0", 8);
        admit(&port, "2001:db8::", 32);
        assert_int_equal(probe_ipv6_admitted(&port, if_inet6, host), 0);
        assert_string_equal(host, "2001:db8::5");

        port = (PortConfig){};
        admit(&port, "::1", 128);
        assert_int_equal(probe_ipv6_admitted(&port, if_inet6, host), 0);
        assert_string_equal(host, "::1");

        /* Link-local needs a scope a host string does not carry: skipped. */
        port = (PortConfig){};
        admit(&port, "fe80::", 10);
        assert_int_equal(probe_ipv6_admitted(&port, if_inet6, host), 1);
        port = (PortConfig){};
        admit(&port, "10.0.0.0", 8);
        assert_int_equal(probe_ipv6_admitted(&port, if_inet6, host), 1);
        assert_int_equal(probe_ipv6_admitted(&port, "", host), 1);
        assert_int_equal(probe_ipv6_admitted(&port, "zz\n0000\n", host), 1);

        /* An IPv6 listen address is checked from itself. */
        port = (PortConfig){.listen = {.host = (char *)"[::1]", .port = 4443}};
        admit(&port, "::1", 128);
        assert_int_equal(probe_proxy_host(&port, host), 0);
        assert_string_equal(host, "::1");
        port.n_allow_cidrs = 0;
        admit(&port, "2001:db8::", 32);
        assert_int_equal(probe_proxy_host(&port, host), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_shape),
                cmocka_unit_test(test_proxy_host_ipv6_ranges),
                cmocka_unit_test(test_state_worst),
                cmocka_unit_test(test_cert_expiry_state),
                cmocka_unit_test(test_storage_state),
                cmocka_unit_test(test_container_state),
                cmocka_unit_test(test_set_one_line),
                cmocka_unit_test(test_nagios),
                cmocka_unit_test(test_nagios_ok_and_unknown),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_metrics),
                cmocka_unit_test(test_metrics_empty),
                cmocka_unit_test(test_http_unix),
                cmocka_unit_test(test_http_timeout),
                cmocka_unit_test(test_http_no_server),
                cmocka_unit_test(test_run_local_checks),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
