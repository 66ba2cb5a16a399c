/* SPDX-License-Identifier: MIT */
/*
 * Tests for proxy/headers.c: the request head sent to the registry, the
 * response head sent to the client, and the proxy's own error responses.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "headers.h"
#include "http1.h"
#include "macro.h"

static int rewrite_request(const char *raw, const char *authority, bool chunked, char *out, size_t size) {
        Http1Request req = {};
        Http1Header h[HTTP1_MAX_HEADERS];
        int n = http1_parse_request(raw, strlen(raw), &req, h, HTTP1_MAX_HEADERS);
        assert_true(n > 0);
        HeadersRequestOptions o = {
                .path = "/v2/x",
                .path_len = 5,
                .query = "?n=1",
                .query_len = 4,
                .authority = authority,
                .peer = "192.0.2.1",
                .chunked = chunked,
        };
        return headers_request(&req, h, req.n_headers, &o, out, size);
}

static void test_request_rewrite(void **state) {
        char out[4096];
        int n = rewrite_request("GET /v2/./x?n=1 HTTP/1.1\r\n"
                                "Host: evil.example\r\n"
                                "Connection: keep-alive, X-Secret\r\n"
                                "X-Secret: s\r\n"
                                "Keep-Alive: timeout=5\r\n"
                                "Proxy-Authorization: Basic x\r\n"
                                "TE: trailers\r\n"
                                "X-Forwarded-Proto: http\r\n"
                                "X-Forwarded-For: 10.0.0.1\r\n"
                                "x-real-ip: 10.0.0.2\r\n"
                                "Forwarded: for=10.0.0.3;host=evil\r\n"
                                "X-Forwarded-Host: evil\r\n"
                                "X-Forwarded-Port: 80\r\n"
                                "X-Original-URL: /v2/_catalog\r\n"
                                "Authorization: Bearer t\r\n"
                                "\r\n",
                                "registry.test:4443", false, out, sizeof(out));
        assert_true(n > 0);
        out[n] = 0;
        /* Only the peer the proxy saw, only the configured authority. */
        assert_string_equal(out, "GET /v2/x?n=1 HTTP/1.1\r\n"
                                 "Host: registry.test:4443\r\n"
                                 "X-Forwarded-Proto: https\r\n"
                                 "X-Forwarded-For: 192.0.2.1\r\n"
                                 "X-Real-IP: 192.0.2.1\r\n"
                                 "\r\n");
}

/* [push] htpasswd: the proxy checks the Basic credentials; the password
 * must not reach the registry, in any spelling of the field name, nor any
 * other credential a client sends (the registry has no auth of its own). */
static void test_request_authorization_dropped(void **state) {
        static const char *const fields[] = {
                "Authorization: Basic Y2ktYm90OnMzY3JldA==\r\n", /* ci-bot:s3cret */
                "authorization: Basic Y2ktYm90OnMzY3JldA==\r\n",
                "AUTHORIZATION: Bearer eyJhbGciOiJub25lIn0.e30.\r\n",
        };
        char raw[512], out[4096];

        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                snprintf(raw, sizeof(raw), "PUT /v2/app/manifests/1 HTTP/1.1\r\nHost: registry.test:4443\r\n%s"
                                           "Content-Length: 0\r\nX-Keep: 1\r\n\r\n",
                         fields[i]);
                int n = rewrite_request(raw, "registry.test:4443", false, out, sizeof(out));
                assert_true(n > 0);
                out[n] = 0;
                assert_null(strcasestr(out, "Authorization"));
                assert_null(strstr(out, "Y2ktYm90OnMzY3JldA=="));
                assert_null(strstr(out, "eyJ"));
                /* The rest goes on as before. */
                assert_non_null(strstr(out, "\r\nContent-Length: 0\r\nX-Keep: 1\r\n"));
        }
}

static void test_request_chunked_reframed(void **state) {
        char out[4096];
        int n = rewrite_request("PATCH / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
                                "Expect: 100-continue\r\n\r\n",
                                "a", true, out, sizeof(out));
        out[n] = 0;
        assert_null(strstr(out, "Chunked"));
        assert_null(strstr(out, "Expect"));
        assert_non_null(strstr(out, "\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

static void test_request_enobufs(void **state) {
        char out[32];
        assert_int_equal(rewrite_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", "a", false, out, sizeof(out)),
                         -ENOBUFS);
}

static int rewrite_response(const char *raw, bool head, const HeadersResponseOptions *o, char *out, size_t size) {
        Http1Response resp = {};
        Http1Header h[HTTP1_MAX_HEADERS];
        int n = http1_parse_response(raw, strlen(raw), head, &resp, h, HTTP1_MAX_HEADERS);
        assert_true(n > 0);
        n = headers_response(&resp, h, resp.n_headers, o, out, size);
        assert_true(n > 0);
        out[n] = 0;
        return n;
}

static void test_response_rewrite(void **state) {
        char out[4096];
        HeadersResponseOptions o = {};

        rewrite_response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n"
                         "Keep-Alive: timeout=5\r\nStrict-Transport-Security: max-age=1\r\n"
                         "Location: /v2/x/blobs/uploads/u?_state=s\r\n\r\n",
                         false, &o, out, sizeof(out));
        assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
                                 "Content-Length: 3\r\n"
                                 "Location: /v2/x/blobs/uploads/u?_state=s\r\n"
                                 "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
                                 "Docker-Distribution-Api-Version: registry/2.0\r\n"
                                 "\r\n");

        /* The registry's own API version header is kept, not doubled. */
        o.close = true;
        rewrite_response("HTTP/1.1 404\r\nDocker-Distribution-Api-Version: registry/2.0\r\n"
                         "Content-Length: 0\r\n\r\n",
                         false, &o, out, sizeof(out));
        assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
        assert_non_null(strstr(out, "Connection: close\r\n"));
        assert_ptr_equal(strstr(out, "Docker-Distribution"), strstr(out, "Docker-Distribution-Api-Version: registry"));
        assert_null(strstr(strstr(out, "Docker-Distribution") + 1, "Docker-Distribution"));

        /* HTTP/1.0 client of a chunked body: de-chunked, closed. */
        HeadersResponseOptions o10 = {.close = true, .dechunk = true};
        rewrite_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, &o10, out, sizeof(out));
        assert_null(strstr(out, "Transfer-Encoding"));
        HeadersResponseOptions ka = {.keep_alive_http10 = true};
        rewrite_response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &ka, out, sizeof(out));
        assert_non_null(strstr(out, "Connection: keep-alive\r\n"));

        /* The extension is announced by the proxy alone, exactly "1", once:
         * an upstream's own value never passes. */
        HeadersResponseOptions sig = {.supports_signatures = true};
        rewrite_response("HTTP/1.1 200 OK\r\nX-Registry-Supports-Signatures: 0\r\nContent-Length: 0\r\n\r\n", false,
                         &sig, out, sizeof(out));
        assert_non_null(strstr(out, "X-Registry-Supports-Signatures: 1\r\n"));
        assert_null(strstr(out, "X-Registry-Supports-Signatures: 0"));
        rewrite_response("HTTP/1.1 200 OK\r\nX-Registry-Supports-Signatures: 1\r\nContent-Length: 0\r\n\r\n", false,
                         &o, out, sizeof(out));
        assert_null(strstr(out, "X-Registry-Supports-Signatures"));
}

static void test_error_response(void **state) {
        char out[4096];
        HeadersError e = {
                .status = 429,
                .code = "TOOMANYREQUESTS",
                .message = "too many requests",
                .detail = "a \"quoted\"\\ detail\n",
                .retry_after = 3,
                .close = true,
        };
        int n = headers_error(&e, out, sizeof(out));
        assert_true(n > 0);
        out[n] = 0;
        const char *body = "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"too many requests\","
                           "\"detail\":\"a \\\"quoted\\\"\\\\ detail\\u000a\"}]}\n";
        assert_non_null(strstr(out, "HTTP/1.1 429 Too Many Requests\r\n"));
        assert_non_null(strstr(out, "Retry-After: 3\r\n"));
        assert_non_null(strstr(out, "Connection: close\r\n"));
        assert_non_null(strstr(out, "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"));
        assert_non_null(strstr(out, "Docker-Distribution-Api-Version: registry/2.0\r\n"));
        assert_non_null(strstr(out, "X-Content-Type-Options: nosniff\r\n"));
        assert_string_equal(strstr(out, "\r\n\r\n") + 4, body);
        char cl[64];
        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
        assert_non_null(strstr(out, cl));

        /* HEAD: same head, no body; no detail: null. */
        e = (HeadersError){.status = 403, .code = "DENIED", .message = "denied", .head = true};
        n = headers_error(&e, out, sizeof(out));
        out[n] = 0;
        assert_string_equal(strstr(out, "\r\n\r\n"), "\r\n\r\n");
        assert_null(strstr(out, "Connection: close"));
        assert_int_equal(headers_error(&e, out, 40), -ENOBUFS);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_rewrite),
                cmocka_unit_test(test_request_authorization_dropped),
                cmocka_unit_test(test_request_chunked_reframed),
                cmocka_unit_test(test_request_enobufs),
                cmocka_unit_test(test_response_rewrite),
                cmocka_unit_test(test_error_response),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
