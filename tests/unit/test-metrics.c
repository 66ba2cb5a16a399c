/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/metrics.c: counting, the shared memfd region and its
 * header check, and the Prometheus text, parsed back line by line.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "metrics.h"

static char *render(const ProxyMetrics *m) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        assert_int_equal(proxy_metrics_render(m, f), 0);
        assert_int_equal(fclose(f), 0);
        return text;
}

/* The value of the sample whose name and labels are exactly key ("name" or
 * "name{a=\"b\",...}"); fails when absent. */
static double value_of(const char *text, const char *key) {
        size_t n = strlen(key);

        for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, key, n) == 0 && l[n] == ' ')
                        return strtod(l + n + 1, NULL);
        fail_msg("no sample %s", key);
        return -1;
}

/* Every line is a HELP or TYPE comment or "name{labels} value" with a
 * name of [a-zA-Z_:][a-zA-Z0-9_:]*, labels of name="escaped value" and a
 * number; a TYPE line precedes its samples; nothing is written twice. */
static void check_format(const char *text) {
        char *copy = strdup(text), *save = NULL, *line;
        char typed[64][96];
        unsigned n_typed = 0, n_samples = 0;

        assert_non_null(copy);
        assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
        for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "# HELP ", 7) == 0)
                        continue;
                if (strncmp(line, "# TYPE ", 7) == 0) {
                        char name[96], type[32];
                        assert_int_equal(sscanf(line + 7, "%95s %31s", name, type), 2);
                        assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                                    strcmp(type, "histogram") == 0);
                        for (unsigned i = 0; i < n_typed; i++)
                                if (strcmp(typed[i], name) == 0)
                                        fail_msg("TYPE twice: %s", name);
                        assert_true(n_typed < 64);
                        strcpy(typed[n_typed++], name);
                        continue;
                }
                assert_true(line[0] != '#');
                /* The name, and its family: the last TYPE seen. */
                const char *p = line;
                assert_true(p[0] == '_' || p[0] == ':' || (p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z'));
                size_t name_len = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
                assert_true(n_typed > 0);
                const char *family = typed[n_typed - 1];
                if (strncmp(p, family, strlen(family)) != 0)
                        fail_msg("sample outside its family %s: %s", family, line);
                p += name_len;
                if (*p == '{') {
                        p++;
                        while (*p != '}') {
                                size_t ln = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
                                assert_true(ln > 0);
                                p += ln;
                                assert_true(p[0] == '=' && p[1] == '"');
                                p += 2;
                                while (*p != '"') {
                                        assert_true(*p != 0 && *p != '\n');
                                        if (*p == '\\') {
                                                assert_true(p[1] == '\\' || p[1] == '"' || p[1] == 'n');
                                                p++;
                                        }
                                        p++;
                                }
                                p++;
                                assert_true(*p == ',' || *p == '}');
                                if (*p == ',')
                                        p++;
                        }
                        p++;
                }
                assert_true(*p == ' ');
                char *end;
                (void)strtod(p + 1, &end);
                assert_true(end > p + 1 && *end == 0);
                n_samples++;
        }
        assert_true(n_samples > 100);
        free(copy);
}

static void test_render_empty(void **state) {
        ProxyMetrics m = {};
        _cleanup_free_ char *text = NULL;

        (void)state;
        /* No header: refused, nothing written. */
        FILE *f = tmpfile();
        assert_non_null(f);
        assert_int_equal(proxy_metrics_render(&m, f), -EBADMSG);
        assert_int_equal(ftell(f), 0);
        fclose(f);

        proxy_metrics_header(&m);
        text = render(&m);
        check_format(text);
        assert_true(strstr(text, "# TYPE regvisor_proxy_request_duration_seconds histogram\n") != NULL);
        assert_float_equal(value_of(text, "regvisor_proxy_requests_total{port=\"pull\",method=\"GET\",status=\"2xx\"}"),
                           0, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_workers_alive"), 0, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_request_duration_seconds_count{port=\"push\"}"), 0, 0);
}

static void test_render_counts(void **state) {
        ProxyMetrics m = {};
        _cleanup_free_ char *text = NULL;

        (void)state;
        proxy_metrics_header(&m);
        proxy_metrics_request(&m, METRICS_PULL, "GET", 200, 100, 1000, 3000);       /* 3 ms */
        proxy_metrics_request(&m, METRICS_PULL, "GET", 206, 100, 500, 10000);       /* 10 ms: le 0.01 */
        proxy_metrics_request(&m, METRICS_PULL, "HEAD", 404, 50, 20, 200000);       /* 200 ms */
        proxy_metrics_request(&m, METRICS_PULL, "PROPFIND", 403, 10, 10, 61000000); /* 61 s: +Inf only */
        proxy_metrics_request(&m, METRICS_PUSH, "PUT", 201, 1 << 20, 300, 2500000); /* 2.5 s */
        proxy_metrics_request(&m, METRICS_PUSH, "PATCH", 0, 7, 0, 1);               /* no status: bytes only */
        proxy_metrics_inc(&m.port[METRICS_PUSH].tls_failures[METRICS_TLS_NO_CERTIFICATE]);
        proxy_metrics_inc(&m.port[METRICS_PULL].rate_limited);
        proxy_metrics_inc(&m.port[METRICS_PUSH].upstream_errors[METRICS_UPSTREAM_TIMEOUT]);
        proxy_metrics_inc(&m.port[METRICS_PULL].limits_table_full);
        proxy_metrics_inc(&m.port[METRICS_PULL].limits_table_full);
        proxy_metrics_set_workers(&m, 4);
        text = render(&m);
        check_format(text);

        assert_float_equal(value_of(text, "regvisor_proxy_requests_total{port=\"pull\",method=\"GET\",status=\"2xx\"}"),
                           2, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_requests_total{port=\"pull\",method=\"HEAD\",status=\"4xx\"}"),
                           1, 0);
        assert_float_equal(
                value_of(text, "regvisor_proxy_requests_total{port=\"pull\",method=\"other\",status=\"4xx\"}"), 1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_requests_total{port=\"push\",method=\"PUT\",status=\"2xx\"}"),
                           1, 0);
        assert_float_equal(
                value_of(text, "regvisor_proxy_requests_total{port=\"push\",method=\"PATCH\",status=\"5xx\"}"), 0, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_received_bytes_total{port=\"pull\"}"), 260, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_sent_bytes_total{port=\"pull\"}"), 1530, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_received_bytes_total{port=\"push\"}"), (1 << 20) + 7, 0);

        /* Cumulative buckets, le is "less or equal". */
        const struct {
                const char *le;
                double n;
        } want[] = {{"0.005", 1}, {"0.01", 2}, {"0.025", 2}, {"0.1", 2}, {"0.25", 3},
                    {"30", 3},    {"60", 3},   {"+Inf", 4}};
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                char key[160];
                (void)snprintf(key, sizeof key, "regvisor_proxy_request_duration_seconds_bucket{port=\"pull\",le=\"%s\"}",
                               want[i].le);
                assert_float_equal(value_of(text, key), want[i].n, 0);
        }
        assert_float_equal(value_of(text, "regvisor_proxy_request_duration_seconds_count{port=\"pull\"}"), 4, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_request_duration_seconds_sum{port=\"pull\"}"), 61.213, 1e-9);
        assert_float_equal(
                value_of(text, "regvisor_proxy_request_duration_seconds_bucket{port=\"push\",le=\"2.5\"}"), 1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_request_duration_seconds_bucket{port=\"push\",le=\"1\"}"),
                           0, 0);

        assert_float_equal(
                value_of(text, "regvisor_proxy_tls_handshake_failures_total{port=\"push\",reason=\"no_certificate\"}"),
                1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_rate_limited_total{port=\"pull\"}"), 1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_limits_table_full_total{port=\"pull\"}"), 2, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_limits_table_full_total{port=\"push\"}"), 0, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_upstream_errors_total{port=\"push\",kind=\"timeout\"}"), 1,
                           0);
        assert_float_equal(value_of(text, "regvisor_proxy_workers_alive"), 4, 0);

        /* Buckets never decrease, in every histogram. */
        for (const char *l = text; (l = strstr(l, "_bucket{port=\"")); ) {
                static double prev = -1;
                const char *le = strstr(l, "le=\"");
                assert_non_null(le);
                double v = strtod(strchr(l, '}') + 2, NULL);
                if (strncmp(le + 4, "0.005\"", 6) == 0)
                        prev = -1;
                assert_true(v >= prev);
                prev = v;
                l++;
        }
}

/* The worker's own gauges and counters: slow clients, accept pauses, and
 * open connections summed over the worker slots. */
static void test_render_worker_counters(void **state) {
        ProxyMetrics *m = calloc(1, sizeof(ProxyMetrics));
        _cleanup_free_ char *text = NULL;

        (void)state;
        assert_non_null(m);
        proxy_metrics_header(m);
        proxy_metrics_inc(&m->port[METRICS_PUSH].slow_clients[METRICS_SLOW_BODY]);
        proxy_metrics_inc(&m->port[METRICS_PULL].slow_clients[METRICS_SLOW_RESPONSE]);
        proxy_metrics_inc(&m->port[METRICS_PULL].slow_clients[METRICS_SLOW_RESPONSE]);
        proxy_metrics_inc(&m->accept_paused[METRICS_PAUSE_FD_LIMIT]);
        proxy_metrics_inc(&m->accept_paused[METRICS_PAUSE_MAX_CONNECTIONS]);
        proxy_metrics_inc(&m->accept_paused[METRICS_PAUSE_MAX_CONNECTIONS]);
        proxy_metrics_inc(&m->accept_dropped);
        proxy_metrics_set_open(m, 0, 7);
        proxy_metrics_set_open(m, 3, 5);
        proxy_metrics_set_open(m, METRICS_WORKER_SLOTS - 1, 1);
        proxy_metrics_set_open(m, METRICS_WORKER_SLOTS, 1000); /* beyond the slots: ignored */
        proxy_metrics_accepted(m, 1);
        proxy_metrics_accepted(m, 1);
        proxy_metrics_accepted(m, METRICS_WORKER_SLOTS - 1);
        proxy_metrics_accepted(m, METRICS_WORKER_SLOTS); /* beyond the slots: ignored */
        text = render(m);
        check_format(text);

        assert_float_equal(value_of(text, "regvisor_proxy_slow_clients_total{port=\"push\",transfer=\"body\"}"), 1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_slow_clients_total{port=\"pull\",transfer=\"response\"}"),
                           2, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_slow_clients_total{port=\"pull\",transfer=\"body\"}"), 0, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_accept_paused_total{reason=\"fd_limit\"}"), 1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_accept_paused_total{reason=\"max_connections\"}"), 2, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_accept_dropped_total"), 1, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_connections_open"), 13, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_connections_accepted_total{worker=\"1\"}"), 2, 0);
        assert_float_equal(value_of(text, "regvisor_proxy_connections_accepted_total{worker=\"2047\"}"), 1, 0);
        assert_null(strstr(text, "regvisor_proxy_connections_accepted_total{worker=\"0\"}")); /* none: no line */

        /* A worker gone: the parent zeroes its slot. */
        proxy_metrics_set_open(m, 3, 0);
        free(text);
        text = render(m);
        assert_float_equal(value_of(text, "regvisor_proxy_connections_open"), 8, 0);
        free(m);
}

static void test_method_classes(void **state) {
        (void)state;
        assert_int_equal(proxy_metrics_method("GET"), METRICS_GET);
        assert_int_equal(proxy_metrics_method("DELETE"), METRICS_DELETE);
        assert_int_equal(proxy_metrics_method("get"), METRICS_OTHER); /* methods are case-sensitive */
        assert_int_equal(proxy_metrics_method("GETX"), METRICS_OTHER);
        assert_int_equal(proxy_metrics_method(""), METRICS_OTHER);
}

/* The supervisor's side and the proxy's: a writer in another process is
 * seen through the read-only mapping; a wrong header is refused. */
static void test_memfd_shared(void **state) {
        ProxyMetrics *ro = NULL, *rw = NULL;
        int fd, status;
        pid_t pid;

        (void)state;
        assert_int_equal(proxy_metrics_memfd_new(&fd), 0);
        assert_int_equal(proxy_metrics_map_fd(fd, false, &ro), 0);
        assert_true(proxy_metrics_valid(ro));

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                ProxyMetrics *m;
                if (proxy_metrics_map_fd(fd, true, &m) < 0)
                        _exit(1);
                for (int i = 0; i < 1000; i++)
                        proxy_metrics_request(m, METRICS_PUSH, "PUT", 201, 1, 2, 10);
                proxy_metrics_set_workers(m, 3);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(ro->port[METRICS_PUSH].requests[METRICS_PUT][1], 1000);
        assert_int_equal(ro->port[METRICS_PUSH].bytes_out, 2000);
        assert_int_equal(ro->workers_alive, 3);

        /* Another build's layout: refused. */
        uint64_t v = PROXY_METRICS_VERSION + 1;
        assert_int_equal(pwrite(fd, &v, sizeof v, offsetof(ProxyMetrics, version)), (ssize_t)sizeof v);
        assert_int_equal(proxy_metrics_map_fd(fd, true, &rw), -EBADMSG);
        FILE *f = tmpfile();
        assert_int_equal(proxy_metrics_render(ro, f), -EBADMSG);
        fclose(f);
        /* A wrong size: refused too. */
        assert_int_equal(ftruncate(fd, 64), 0);
        assert_int_equal(proxy_metrics_map_fd(fd, false, &rw), -EBADMSG);
        proxy_metrics_unmap(ro);
        close(fd);
}

/* The proxy's side: REGVISOR_METRICS_FD is mapped and then closed and
 * unset; without it (or with garbage) a private region is used. */
static void test_open_env(void **state) {
        ProxyMetrics *m = NULL, *ro = NULL;
        const char *why;
        char n[16];
        int fd;

        (void)state;
        assert_int_equal(proxy_metrics_memfd_new(&fd), 0);
        assert_int_equal(proxy_metrics_map_fd(fd, false, &ro), 0);
        int dupfd = dup(fd);
        (void)snprintf(n, sizeof n, "%d", dupfd);
        assert_int_equal(setenv(PROXY_METRICS_FD_ENV, n, 1), 0);
        assert_int_equal(proxy_metrics_open(&m, &why), 0);
        assert_null(why);
        assert_null(getenv(PROXY_METRICS_FD_ENV));
        assert_int_equal(fcntl(dupfd, F_GETFD), -1); /* closed */
        proxy_metrics_inc(&m->port[METRICS_PULL].conn_limited);
        assert_int_equal(ro->port[METRICS_PULL].conn_limited, 1);
        proxy_metrics_unmap(m);

        assert_int_equal(setenv(PROXY_METRICS_FD_ENV, "nope", 1), 0);
        assert_int_equal(proxy_metrics_open(&m, &why), 0);
        assert_non_null(why);
        assert_true(proxy_metrics_valid(m));
        proxy_metrics_unmap(m);

        assert_int_equal(proxy_metrics_open(&m, &why), 0); /* unset now */
        assert_null(why);
        assert_true(proxy_metrics_valid(m));
        proxy_metrics_unmap(m);
        proxy_metrics_unmap(ro);
        close(fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_empty),   cmocka_unit_test(test_render_counts),
                cmocka_unit_test(test_render_worker_counters), cmocka_unit_test(test_method_classes),
                cmocka_unit_test(test_memfd_shared),   cmocka_unit_test(test_open_env),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
