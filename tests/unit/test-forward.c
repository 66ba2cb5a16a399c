/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/forward.c: what reaches the registry. The oracle
 * (forward_check()) is tested both ways: every head forward_request()
 * writes passes it, and heads that smuggle, forge or drift fail it.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "http1.h"

static char *names[] = {"registry.test", "Other.Example", "192.0.2.10", "2001:db8::10"};

static ForwardPolicy policy(bool push) {
        return (ForwardPolicy){
                .push = push,
                .port_number = push ? 4443 : 443,
                .server_names = names,
                .n_server_names = 4,
                .max_body = 1024 * 1024,
                .sigstore = true,
        };
}

typedef struct Result {
        int r;
        char out[HTTP1_MAX_HEAD + 4096];
        ForwardRefusal refusal;
} Result;

static ForwardScratch scratch;

/* forward_request() on raw client bytes; the parse must succeed. */
static void forward(const char *raw, bool push, const char *sni, Result *res) {
        Http1Request req = {};
        Http1Header h[HTTP1_MAX_HEADERS];
        ForwardPolicy p = policy(push);
        ForwardClient c = {.peer = "198.51.100.7", .sni = sni, .subject = "CN=x"};

        int n = http1_parse_request(raw, strlen(raw), &req, h, HTTP1_MAX_HEADERS);
        assert_true(n > 0);
        res->r = forward_request(&p, &c, &req, h, &scratch, res->out, sizeof(res->out), &res->refusal);
        if (res->r > 0) {
                assert_int_equal(forward_check(&p, &c, &req, &scratch, res->out, (size_t)res->r), 0);
                res->out[res->r] = 0;
        }
}

/* The attack that opened issue 8: an SNI that is a request of its own. The
 * SNI never reaches the registry: Host is a configured name, one request. */
static void test_sni_is_never_forwarded(void **state) {
        static const char *const snis[] = {
                "x\r\n\r\nGET /v2/_catalog HTTP/1.1\r\nHost: x",
                "registry.test\r\nX-Forwarded-For: 1.2.3.4",
                "registry.test:4443\r\nContent-Length: 500",
                "",
                NULL,
        };
        Result res;

        for (size_t i = 0; i < sizeof(snis) / sizeof(snis[0]); i++) {
                forward("GET /v2/ HTTP/1.0\r\n\r\n", false, snis[i], &res);
                assert_true(res.r > 0);
                assert_string_equal(res.out, "GET /v2/ HTTP/1.1\r\n"
                                             "Host: registry.test\r\n"
                                             "X-Forwarded-Proto: https\r\n"
                                             "X-Forwarded-For: 198.51.100.7\r\n"
                                             "X-Real-IP: 198.51.100.7\r\n"
                                             "\r\n");
                forward("PUT /v2/a/manifests/latest HTTP/1.0\r\nContent-Length: 2\r\n\r\n", true, snis[i], &res);
                assert_true(res.r > 0);
                assert_non_null(strstr(res.out, "\r\nHost: registry.test:4443\r\n"));
                assert_null(strstr(res.out, "_catalog"));
        }
}

static void test_authority(void **state) {
        static const struct {
                const char *host; /* the client's Host, NULL: none */
                bool push;
                const char *expect;
        } rows[] = {
                {"registry.test", false, "registry.test"},
                {"REGISTRY.TEST:443", false, "registry.test"},
                {"other.example", true, "Other.Example:4443"},
                {"other.example:8443", true, "Other.Example:4443"}, /* the port connected to */
                {"192.0.2.10", false, "192.0.2.10"},
                {"[2001:db8::10]:4443", true, "[2001:db8::10]:4443"},
                {"[2001:DB8::10]", false, "[2001:db8::10]"},
                {"evil.example", false, "registry.test"}, /* not ours: the first name */
                {"registry.test.evil.example", true, "registry.test:4443"},
                {"registry", false, "registry.test"},
                {NULL, true, "registry.test:4443"},
        };
        char raw[256], expect[300];
        Result res;

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                if (rows[i].host)
                        snprintf(raw, sizeof(raw), "GET /v2/ HTTP/1.1\r\nHost: %s\r\n\r\n", rows[i].host);
                else
                        snprintf(raw, sizeof(raw), "GET /v2/ HTTP/1.0\r\n\r\n");
                forward(raw, rows[i].push, NULL, &res);
                assert_true(res.r > 0);
                snprintf(expect, sizeof(expect), "\r\nHost: %s\r\n", rows[i].expect);
                if (!strstr(res.out, expect))
                        fail_msg("row %zu (%s): %s", i, rows[i].host ? rows[i].host : "(none)", res.out);
        }

        /* No server names at all: localhost. */
        ForwardPolicy p = policy(false);
        p.n_server_names = 0;
        Http1Request req = {.host = "x", .host_len = 1};
        char out[64];
        assert_int_equal(forward_authority(&p, &req, out, sizeof(out)), 9);
        assert_string_equal(out, "localhost");
        assert_int_equal(forward_authority(&p, &req, out, 4), -ENOBUFS);
}

/* The pull port sends no query (no pull endpoint reads one); the push port
 * sends the client's. An empty Content-Length is no body. */
static void test_query(void **state) {
        Result res;

        forward("GET /v2/a/manifests/t?ns=docker.io HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false,
                NULL, &res);
        assert_true(res.r > 0);
        assert_ptr_equal(strstr(res.out, "GET /v2/a/manifests/t HTTP/1.1\r\n"), res.out);
        forward("PATCH /v2/a/blobs/uploads/u?_state=s HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true,
                NULL, &res);
        assert_true(res.r > 0);
        assert_ptr_equal(strstr(res.out, "PATCH /v2/a/blobs/uploads/u?_state=s HTTP/1.1\r\n"), res.out);
}

static void test_refusals(void **state) {
        static const struct {
                const char *raw;
                bool push;
                int status;
                bool may_keep;
        } rows[] = {
                {"PUT /v2/a/manifests/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", false, 403, true},
                {"POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", false, 403, false},
                {"GET /v2/_catalog HTTP/1.1\r\nHost: a\r\n\r\n", false, 403, true},
                {"GET /v2/a/tags%2Flist HTTP/1.1\r\nHost: a\r\n\r\n", false, 403, true},
                {"GET /v2/a/tags%2Flist HTTP/1.1\r\nHost: a\r\n\r\n", true, 400, false},
                {"GET /v2/%00 HTTP/1.1\r\nHost: a\r\n\r\n", true, 400, false},
                {"GET /other HTTP/1.1\r\nHost: a\r\n\r\n", true, 404, true},
                {"PUT /v2/a/blobs/uploads/u HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", true, 413,
                 false},
                /* An upload session through the pull port (review of issue 8). */
                {"GET /v2/a/blobs/uploads/u?_state=s HTTP/1.1\r\nHost: a\r\n\r\n", false, 403, true},
                /* A body on the pull port. */
                {"GET /v2/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n", false, 400, false},
                {"GET /v2/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", false, 400, false},
        };
        Result res;

        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                forward(rows[i].raw, rows[i].push, NULL, &res);
                if (res.r != 0 || res.refusal.status != rows[i].status || res.refusal.may_keep != rows[i].may_keep)
                        fail_msg("row %zu: r=%d status=%d keep=%d", i, res.r, res.refusal.status,
                                 res.refusal.may_keep);
        }
}

/* Heads that are not what was approved fail the oracle. */
static void test_oracle_refuses(void **state) {
        static const char approved_raw[] = "PUT /v2/a/manifests/t HTTP/1.1\r\nHost: registry.test:4443\r\n"
                                           "Content-Length: 2\r\n\r\n";
        static const char good[] = "PUT /v2/a/manifests/t HTTP/1.1\r\n"
                                   "Content-Length: 2\r\n"
                                   "Host: registry.test:4443\r\n"
                                   "X-Forwarded-Proto: https\r\n"
                                   "X-Forwarded-For: 198.51.100.7\r\n"
                                   "X-Real-IP: 198.51.100.7\r\n"
                                   "\r\n";
        static const char *const bad[] = {
                /* a second request behind the first */
                "PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 2\r\nHost: registry.test:4443\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\n\r\n"
                "GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n",
                /* another Host */
                "PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 2\r\nHost: evil\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\n\r\n",
                /* a forged address first */
                "PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 2\r\nHost: registry.test:4443\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 198.51.100.7\r\n"
                "X-Real-IP: 198.51.100.7\r\n\r\n",
                /* another framing */
                "PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 200\r\nHost: registry.test:4443\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\n\r\n",
                /* another path */
                "PUT /v2/b/manifests/t HTTP/1.1\r\nContent-Length: 2\r\nHost: registry.test:4443\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\n\r\n",
                /* a forwarding field the proxy drops */
                "PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 2\r\nHost: registry.test:4443\r\n"
                "Forwarded: for=1.2.3.4\r\n"
                "X-Forwarded-Proto: https\r\nX-Forwarded-For: 198.51.100.7\r\nX-Real-IP: 198.51.100.7\r\n\r\n",
                /* not complete */
                "PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 2\r\nHost: registry.test:4443\r\n",
        };
        Http1Request req = {};
        Http1Header h[HTTP1_MAX_HEADERS];
        ForwardPolicy p = policy(true);
        ForwardClient c = {.peer = "198.51.100.7"};
        ForwardRefusal refusal;
        char out[4096];

        assert_true(http1_parse_request(approved_raw, strlen(approved_raw), &req, h, HTTP1_MAX_HEADERS) > 0);
        int n = forward_request(&p, &c, &req, h, &scratch, out, sizeof(out), &refusal);
        assert_int_equal(n, (int)strlen(good));
        assert_memory_equal(out, good, strlen(good));
        assert_int_equal(forward_check(&p, &c, &req, &scratch, good, strlen(good)), 0);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (forward_check(&p, &c, &req, &scratch, bad[i], strlen(bad[i])) != -EBADMSG)
                        fail_msg("bad head %zu passed the oracle", i);
}

/* A property test: requests assembled from hostile pieces (forged fields,
 * odd Host values, both framings, both ports, SNI and subject noise) either
 * are refused by the proxy or produce a head that passes the oracle, and
 * the head never depends on the SNI or the subject. */
static void test_property_random_requests(void **state) {
        static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "X-Y"};
        static const char *const targets[] = {
                "/v2/", "/v2/a/manifests/latest", "/v2//a/../_catalog", "/v2/a/tags/list?n=1", "/v2/%2e%2e/x",
                "/v2/a/blobs/uploads/?digest=sha256:00", "/v2/a%2Fb/tags/list", "/x", "/v2/a/./b/manifests/t?x=%0d",
        };
        static const char *const fields[] = {
                "Host: registry.test\r\n", "Host: evil\r\n", "Host: [2001:db8::10]:4443\r\n",
                "X-Forwarded-For: 10.9.9.9\r\n", "X-Real-IP: 1.1.1.1\r\n", "Forwarded: for=x\r\n",
                "Connection: X-A\r\n", "X-A: 1\r\n", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n",
                "Expect: 100-continue\r\n", "User-Agent: skopeo\r\n", "X-Forwarded-Host: e\r\n",
                "Proxy-Connection: keep-alive\r\n", "Accept: */*\r\n",
        };
        static const char *const snis[] = {"a\r\n\r\nPUT /v2/x/manifests/y HTTP/1.1\r\nHost: z", "registry.test"};
        unsigned seed = 20261202;
        size_t forwarded = 0;

        for (unsigned iter = 0; iter < 20000; iter++) {
                char raw[2048];
                size_t len = 0;
                bool http10 = rand_r(&seed) % 4 == 0;
                len += (size_t)snprintf(raw + len, sizeof(raw) - len, "%s %s HTTP/1.%d\r\n",
                                        methods[rand_r(&seed) % 7], targets[rand_r(&seed) % 9], http10 ? 0 : 1);
                unsigned nf = (unsigned)rand_r(&seed) % 6;
                for (unsigned k = 0; k < nf; k++)
                        len += (size_t)snprintf(raw + len, sizeof(raw) - len, "%s", fields[rand_r(&seed) % 15]);
                len += (size_t)snprintf(raw + len, sizeof(raw) - len, "\r\n");

                Http1Request req = {};
                Http1Header h[HTTP1_MAX_HEADERS];
                if (http1_parse_request(raw, len, &req, h, HTTP1_MAX_HEADERS) <= 0)
                        continue;
                for (int push = 0; push <= 1; push++) {
                        ForwardPolicy p = policy(push);
                        char out[2][4096];
                        int r[2];
                        ForwardRefusal refusal;
                        for (int s = 0; s < 2; s++) {
                                ForwardClient c = {.peer = "2001:db8::7", .sni = snis[s], .subject = snis[1 - s]};
                                r[s] = forward_request(&p, &c, &req, h, &scratch, out[s], sizeof(out[s]), &refusal);
                                if (r[s] > 0)
                                        assert_int_equal(forward_check(&p, &c, &req, &scratch, out[s], (size_t)r[s]), 0);
                                else
                                        assert_true(r[s] == 0 && refusal.status >= 400 && refusal.status != 500);
                        }
                        assert_int_equal(r[0], r[1]);
                        if (r[0] > 0) {
                                assert_memory_equal(out[0], out[1], (size_t)r[0]);
                                forwarded++;
                        }
                }
        }
        assert_true(forwarded > 1000); /* the property was exercised */
}

/* A CRL route is answered by the proxy: nothing is written for the
 * registry, and the refusal names the route. */
static void test_local_route_not_forwarded(void **state) {
        Result res;

        (void)state;
        for (int push = 0; push <= 1; push++) {
                forward("GET /regvisor/crl/client-ca.crl HTTP/1.1\r\nHost: registry.test\r\n\r\n", push, NULL,
                        &res);
                assert_int_equal(res.r, 0);
                assert_int_equal(res.refusal.route, ROUTE_LOCAL_CLIENT_CRL);
                assert_int_equal(res.refusal.status, 200);
                assert_true(res.refusal.may_keep);
                forward("HEAD /regvisor/crl/server-ca.crl HTTP/1.1\r\nHost: registry.test\r\n\r\n", push, NULL,
                        &res);
                assert_int_equal(res.r, 0);
                assert_int_equal(res.refusal.route, ROUTE_LOCAL_SERVER_CRL);
                /* A body there: answered, then the connection closes. */
                forward("GET /regvisor/crl/server-ca.crl HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", push,
                        NULL, &res);
                assert_int_equal(res.r, 0);
                assert_int_equal(res.refusal.route, ROUTE_LOCAL_SERVER_CRL);
                assert_false(res.refusal.may_keep);
                /* Any other method is refused, and no refusal is a route. */
                forward("PUT /regvisor/crl/client-ca.crl HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", push,
                        NULL, &res);
                assert_int_equal(res.r, 0);
                assert_int_equal(res.refusal.status, 403);
                assert_int_equal(res.refusal.route, ROUTE_ALLOW);
        }
}

#define SIG_PATH "/extensions/v2/app/web/signatures/sha256:" \
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* The signature extension: GET on both ports, PUT on the push port, to the
 * signature store (scratch.route), without the client's query; refused
 * when no store is configured; a body over the store's cap never sent. */
static void test_sigstore_route(void **state) {
        Result res;

        (void)state;
        for (int push = 0; push <= 1; push++) {
                forward("GET " SIG_PATH "?x=1 HTTP/1.1\r\nHost: registry.test\r\n\r\n", push, NULL, &res);
                assert_true(res.r > 0);
                assert_int_equal(scratch.route, ROUTE_SIGSTORE);
                assert_ptr_equal(strstr(res.out, "GET " SIG_PATH " HTTP/1.1\r\n"), res.out);
                /* A spelling that normalizes to it is it, sent normalized. */
                forward("HEAD /extensions//v2/./app/web/signatures/%73ha256:"
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: x\r\n\r\n",
                        push, NULL, &res);
                assert_true(res.r > 0);
                assert_int_equal(scratch.route, ROUTE_SIGSTORE);
                assert_ptr_equal(strstr(res.out, "HEAD " SIG_PATH " HTTP/1.1\r\n"), res.out);
                /* The registry's routes still go to the registry. */
                forward("GET /v2/ HTTP/1.1\r\nHost: registry.test\r\n\r\n", push, NULL, &res);
                assert_true(res.r > 0);
                assert_int_equal(scratch.route, ROUTE_ALLOW);
        }
        forward("PUT " SIG_PATH "?x=1 HTTP/1.1\r\nHost: registry.test\r\nContent-Length: 2\r\n\r\n{}", true, NULL,
                &res);
        assert_true(res.r > 0);
        assert_int_equal(scratch.route, ROUTE_SIGSTORE);
        assert_ptr_equal(strstr(res.out, "PUT " SIG_PATH " HTTP/1.1\r\n"), res.out);

        static const struct {
                const char *raw;
                bool push;
                int status;
        } refused[] = {
                /* Only reads on the pull port. */
                {"PUT " SIG_PATH " HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}", false, 403},
                /* No DELETE in the extension. */
                {"DELETE " SIG_PATH " HTTP/1.1\r\nHost: a\r\n\r\n", true, 403},
                {"POST " SIG_PATH " HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true, 403},
                /* The store's own grammar: an invalid name or digest, other paths below /extensions. */
                {"GET /extensions/v2/App/signatures/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n",
                 false, 403},
                {"GET /extensions/v2/app/signatures/sha256:00 HTTP/1.1\r\nHost: a\r\n\r\n", true, 403},
                {"GET /extensions/v2/_catalog HTTP/1.1\r\nHost: a\r\n\r\n", true, 403},
                {"GET /extensions HTTP/1.1\r\nHost: a\r\n\r\n", false, 403},
                /* Over the store's cap: the store never sees it. */
                {"PUT " SIG_PATH " HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n", true, 413},
        };
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                forward(refused[i].raw, refused[i].push, NULL, &res);
                if (res.r != 0 || res.refusal.status != refused[i].status)
                        fail_msg("row %zu: r=%d status=%d", i, res.r, res.refusal.status);
        }

        /* No store configured: the route does not exist. */
        Http1Request req = {};
        Http1Header h[HTTP1_MAX_HEADERS];
        ForwardPolicy p = policy(false);
        ForwardClient c = {.peer = "198.51.100.7"};
        const char *raw = "GET " SIG_PATH " HTTP/1.1\r\nHost: a\r\n\r\n";
        p.sigstore = false;
        assert_true(http1_parse_request(raw, strlen(raw), &req, h, HTTP1_MAX_HEADERS) > 0);
        assert_int_equal(forward_request(&p, &c, &req, h, &scratch, res.out, sizeof(res.out), &res.refusal), 0);
        assert_int_equal(res.refusal.status, 404);

        /* The oracle holds the head to the route it was approved for: the
         * same head approved for the registry is not the store's, and a
         * store head with no store configured is refused. */
        p.sigstore = true;
        int n = forward_request(&p, &c, &req, h, &scratch, res.out, sizeof(res.out), &res.refusal);
        assert_true(n > 0);
        assert_int_equal(forward_check(&p, &c, &req, &scratch, res.out, (size_t)n), 0);
        scratch.route = ROUTE_ALLOW;
        assert_int_equal(forward_check(&p, &c, &req, &scratch, res.out, (size_t)n), -EBADMSG);
        scratch.route = ROUTE_SIGSTORE;
        p.sigstore = false;
        assert_int_equal(forward_check(&p, &c, &req, &scratch, res.out, (size_t)n), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sni_is_never_forwarded),
                cmocka_unit_test(test_authority),
                cmocka_unit_test(test_query),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_local_route_not_forwarded),
                cmocka_unit_test(test_sigstore_route),
                cmocka_unit_test(test_oracle_refuses),
                cmocka_unit_test(test_property_random_requests),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
