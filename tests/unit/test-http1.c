/* SPDX-License-Identifier: MIT */
/*
 * Tests for common/http/http1.c: every refused request with its error, valid
 * requests parsed whole and byte by byte, the chunked decoder, responses.
 * Inputs are placed right before a PROT_NONE guard page so that a read past
 * the end of the buffer crashes instead of passing silently.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http1.h"
#include "macro.h"

#define MAX_HEADERS 16
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---- guard page helper -------------------------------------------------- */

typedef struct Guarded {
        char *map;
        size_t map_size;
        char *data; /* n bytes, ending at the guard page */
        size_t n;
} Guarded;

static Guarded guarded_new(const char *s, size_t n) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t data_pages = (n + page - 1) / page;
        Guarded g = {.map_size = (data_pages + 1) * page, .n = n};

        g.map = mmap(NULL, g.map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(g.map != MAP_FAILED);
        assert_int_equal(mprotect(g.map + data_pages * page, page, PROT_NONE), 0);
        g.data = g.map + data_pages * page - n;
        if (n > 0)
                memcpy(g.data, s, n);
        return g;
}

static void guarded_free(Guarded *g) {
        assert_int_equal(munmap(g->map, g->map_size), 0);
}

#define STR(s) s, sizeof(s) - 1

/* ---- refused requests --------------------------------------------------- */

typedef struct BadRequest {
        const char *name;
        const char *raw;
        size_t len;
        Http1Error error;
} BadRequest;

#define BAD(n, s, e)                                                                                        \
        { n, s, sizeof(s) - 1, e }

static const BadRequest bad_requests[] = {
        /* Line endings (RFC 9112 §2.2). */
        BAD("bare LF ending the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP1_ERR_BARE_LF),
        BAD("bare LF ending a field line", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", HTTP1_ERR_BARE_LF),
        BAD("bare LF as the empty line", "GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP1_ERR_BARE_LF),
        BAD("only bare LFs", "GET / HTTP/1.1\nHost: a\n\n", HTTP1_ERR_BARE_LF),
        BAD("bare CR ending the request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", HTTP1_ERR_BARE_CR),
        BAD("bare CR inside a field value", "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", HTTP1_ERR_BARE_CR),
        BAD("bare CR as the empty line", "GET / HTTP/1.1\r\nHost: a\r\n\rGET", HTTP1_ERR_BARE_CR),
        BAD("empty line before the request line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            HTTP1_ERR_LEADING_EMPTY_LINE),
        BAD("bare LF before the request line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            HTTP1_ERR_LEADING_EMPTY_LINE),

        /* Request line (§3). */
        BAD("HTTP/0.9 simple request", "GET /\r\n", HTTP1_ERR_HTTP09),
        BAD("HTTP/0.9 with bare LF", "GET /v2/_catalog\n", HTTP1_ERR_HTTP09),
        BAD("HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTP1_ERR_HTTP2_PREFACE),
        BAD("HTTP/2.0 version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION),
        BAD("HTTP/1.2 version", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION),
        BAD("HTTP/3 version", "GET / HTTP/3\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION),
        BAD("lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_VERSION),
        BAD("HTTP/1.10 version", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("space after the version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("two spaces after the method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("two spaces after the target", "GET /  HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("tab after the method", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("tab after the target", "GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("method alone", "GET\r\n\r\n", HTTP1_ERR_REQUEST_LINE),
        BAD("no target", "GET HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_TARGET_FORM),
        BAD("space before the method", " GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_METHOD),
        BAD("control byte in the method", "G\001T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_METHOD),
        BAD("non-ASCII method", "G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_METHOD),
        BAD("separator in the method", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_METHOD),
        BAD("absolute-form target", "GET http://a/v2/_catalog HTTP/1.1\r\nHost: a\r\n\r\n",
            HTTP1_ERR_TARGET_FORM),
        BAD("authority-form target", "CONNECT registry:443 HTTP/1.1\r\nHost: a\r\n\r\n",
            HTTP1_ERR_TARGET_FORM),
        BAD("asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_TARGET_FORM),
        BAD("NUL in the target", "GET /v2/\0 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_TARGET_CHAR),
        BAD("DEL in the target", "GET /v2/\x7f HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_TARGET_CHAR),
        BAD("non-ASCII target", "GET /v2/\xff HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_TARGET_CHAR),
        BAD("vertical tab in the target", "GET /v2\x0b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP1_ERR_TARGET_CHAR),

        /* Field lines (§5). */
        BAD("obs-fold with space", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", HTTP1_ERR_OBS_FOLD),
        BAD("obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", HTTP1_ERR_OBS_FOLD),
        BAD("folded Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", HTTP1_ERR_OBS_FOLD),
        BAD("whitespace before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTP1_ERR_OBS_FOLD),
        BAD("space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON),
        BAD("tab before the colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n",
            HTTP1_ERR_SPACE_BEFORE_COLON),
        BAD("space before the colon of Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            HTTP1_ERR_SPACE_BEFORE_COLON),
        BAD("control byte in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\001Y: z\r\n\r\n",
            HTTP1_ERR_HEADER_NAME),
        BAD("NUL in a name", "GET / HTTP/1.1\r\nHost: a\r\nX\0Y: z\r\n\r\n", HTTP1_ERR_HEADER_NAME),
        BAD("non-ASCII name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: z\r\n\r\n", HTTP1_ERR_HEADER_NAME),
        BAD("separator in a name", "GET / HTTP/1.1\r\nHost: a\r\nX(Y): z\r\n\r\n", HTTP1_ERR_HEADER_NAME),
        BAD("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", HTTP1_ERR_HEADER_NAME),
        BAD("line without colon", "GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n", HTTP1_ERR_NO_COLON),
        BAD("NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", HTTP1_ERR_HEADER_VALUE),
        BAD("vertical tab before Content-Length value",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \x0b"
            "5\r\n\r\n",
            HTTP1_ERR_HEADER_VALUE),
        BAD("form feed in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\fb\r\n\r\n", HTTP1_ERR_HEADER_VALUE),
        BAD("DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", HTTP1_ERR_HEADER_VALUE),
        BAD("obs-text in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n",
            HTTP1_ERR_HEADER_VALUE),

        /* Host (§3.2). */
        BAD("missing Host in HTTP/1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", HTTP1_ERR_HOST_MISSING),
        BAD("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", HTTP1_ERR_HOST_DUPLICATE),
        BAD("duplicate Host, different case and value", "GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n",
            HTTP1_ERR_HOST_DUPLICATE),
        BAD("duplicate Host in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            HTTP1_ERR_HOST_DUPLICATE),
        BAD("empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", HTTP1_ERR_HOST_INVALID),
        BAD("Host with a path", "GET / HTTP/1.1\r\nHost: a/v2\r\n\r\n", HTTP1_ERR_HOST_INVALID),
        BAD("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", HTTP1_ERR_HOST_INVALID),
        BAD("Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", HTTP1_ERR_HOST_INVALID),

        /* Framing (§6). */
        BAD("Content-Length and Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING),
        BAD("Transfer-Encoding and Content-Length",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING),
        BAD("Transfer-Encoding and Content-Length: 0",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING),
        BAD("duplicate Content-Length, same value",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_DUPLICATE),
        BAD("duplicate Content-Length, different values",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 50\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_DUPLICATE),
        BAD("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("Content-Length with plus", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("Content-Length with leading zero", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("Content-Length with inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("Content-Length in exponent form", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_INVALID),
        BAD("Content-Length overflowing 64 bits",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_TOO_LARGE),
        BAD("Content-Length of 2^62 + 1",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4611686018427387905\r\n\r\n",
            HTTP1_ERR_CONTENT_LENGTH_TOO_LARGE),
        BAD("Transfer-Encoding gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("Transfer-Encoding chunked, chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("Transfer-Encoding gzip, chunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("Transfer-Encoding xchunked",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("Transfer-Encoding with a parameter",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("Transfer-Encoding identity",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING),
        BAD("two Transfer-Encoding fields",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING_DUPLICATE),
        BAD("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            HTTP1_ERR_TRANSFER_ENCODING_HTTP10),

        /* Connection, Expect, Upgrade. */
        BAD("Connection nominating Content-Length",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close, Content-Length\r\n\r\n",
            HTTP1_ERR_CONNECTION),
        BAD("Connection nominating Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\n\r\n", HTTP1_ERR_CONNECTION),
        BAD("Connection nominating Host", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Host\r\n\r\n",
            HTTP1_ERR_CONNECTION),
        BAD("Connection with a non-token", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close;x\r\n\r\n",
            HTTP1_ERR_CONNECTION),
        BAD("unknown expectation", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", HTTP1_ERR_EXPECT),
        BAD("h2c upgrade",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            HTTP1_ERR_UPGRADE),
        BAD("HTTP2-Settings alone", "GET / HTTP/1.1\r\nHost: a\r\nHTTP2-Settings: AAMAAABk\r\n\r\n",
            HTTP1_ERR_UPGRADE),
        BAD("websocket upgrade", "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
            HTTP1_ERR_UPGRADE),
};

/* Feeds every prefix of the request: each is either incomplete or fails
 * with the same error, and once failed, every longer prefix fails. */
static void check_bad(const BadRequest *t) {
        Http1Header headers[MAX_HEADERS];
        Http1Request req;
        bool failed = false;
        int r;

        for (size_t k = 0; k <= t->len; k++) {
                Guarded g = guarded_new(t->raw, k);

                req.error = HTTP1_OK;
                r = http1_parse_request(g.data, k, &req, headers, MAX_HEADERS);
                guarded_free(&g);
                if (r == -2) {
                        if (failed)
                                fail_msg("%s: prefix of %zu bytes incomplete after an error", t->name, k);
                        continue;
                }
                if (r != -1)
                        fail_msg("%s: prefix of %zu bytes returned %d", t->name, k, r);
                if (req.error != t->error)
                        fail_msg("%s: prefix of %zu bytes: got \"%s\", expected \"%s\"", t->name, k,
                                 http1_error_string(req.error), http1_error_string(t->error));
                failed = true;
        }
        if (!failed)
                fail_msg("%s: was not refused", t->name);
}

static void test_bad_requests(void **state) {
        (void)state;
        assert_true(ELEMENTSOF(bad_requests) >= 40);
        for (size_t i = 0; i < ELEMENTSOF(bad_requests); i++)
                check_bad(bad_requests + i);
}

/* The status each error is answered with. */
static const struct {
        Http1Error error;
        int status;
} statuses[] = {
        {HTTP1_ERR_HEAD_TOO_LARGE, 431},
        {HTTP1_ERR_TOO_MANY_HEADERS, 431},
        {HTTP1_ERR_EXPECT, 417},
        {HTTP1_ERR_VERSION, 505},
        {HTTP1_ERR_HTTP09, 400},
        {HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING, 400},
        {HTTP1_ERR_TRANSFER_ENCODING, 400},
};

static void test_error_strings(void **state) {
        (void)state;
        for (int e = 0; e < _HTTP1_ERR_MAX; e++)
                assert_string_not_equal(http1_error_string(e), "unknown error");
        assert_string_equal(http1_error_string(-1), "unknown error");
        assert_string_equal(http1_error_string(_HTTP1_ERR_MAX), "unknown error");
        assert_string_equal(http1_error_string(HTTP1_ERR_BARE_LF), "bare LF");

        for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                assert_int_equal(http1_error_status(statuses[i].error), statuses[i].status);
}

/* ---- valid requests ----------------------------------------------------- */

typedef struct GoodRequest {
        const char *name;
        const char *raw;
        size_t len;
        size_t head_len; /* what the parser must consume */
        const char *method;
        const char *target;
        int minor_version;
        size_t n_headers;
        const char *host; /* NULL: none */
        Http1BodyKind body;
        uint64_t content_length;
        bool keep_alive;
        bool expect_continue;
} GoodRequest;

static const GoodRequest good_requests[] = {
        {
                .name = "GET, HTTP/1.1, persistent by default",
                .raw = "GET /v2/library/busybox/manifests/latest HTTP/1.1\r\n"
                       "Host: registry.example:443\r\n"
                       "User-Agent: docker/24.0.7 go/go1.20.10\r\n"
                       "Accept: application/vnd.oci.image.index.v1+json\r\n"
                       "Accept-Encoding: gzip\r\n"
                       "\r\n",
                .method = "GET",
                .target = "/v2/library/busybox/manifests/latest",
                .minor_version = 1,
                .n_headers = 4,
                .host = "registry.example:443",
                .body = HTTP1_BODY_NONE,
                .keep_alive = true,
        },
        {
                .name = "HEAD, HTTP/1.1, Connection: close",
                .raw = "HEAD /v2/ HTTP/1.1\r\nHost: [::1]:8443\r\nConnection: close\r\n\r\n",
                .method = "HEAD",
                .target = "/v2/",
                .minor_version = 1,
                .n_headers = 2,
                .host = "[::1]:8443",
                .keep_alive = false,
        },
        {
                .name = "HTTP/1.0 with Connection: Keep-Alive (ab -k)",
                .raw = "GET /v2/ HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: 127.0.0.1\r\n"
                       "User-Agent: ApacheBench/2.3\r\nAccept: */*\r\n\r\n",
                .method = "GET",
                .target = "/v2/",
                .minor_version = 0,
                .n_headers = 4,
                .host = "127.0.0.1",
                .keep_alive = true,
        },
        {
                .name = "HTTP/1.0 without Host, not persistent",
                .raw = "GET / HTTP/1.0\r\n\r\n",
                .method = "GET",
                .target = "/",
                .minor_version = 0,
                .n_headers = 0,
                .keep_alive = false,
        },
        {
                .name = "HTTP/1.1 with both keep-alive and close",
                .raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, , CLOSE\r\n\r\n",
                .method = "GET",
                .target = "/",
                .minor_version = 1,
                .n_headers = 2,
                .host = "a",
                .keep_alive = false,
        },
        {
                .name = "PUT with Content-Length, body follows",
                .raw = "PUT /v2/a/manifests/latest HTTP/1.1\r\nHost: r\r\n"
                       "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                       "Content-Length: 1234\r\n\r\n{\"schemaVersion\":2}",
                .head_len = sizeof("PUT /v2/a/manifests/latest HTTP/1.1\r\nHost: r\r\n"
                                   "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                                   "Content-Length: 1234\r\n\r\n") -
                            1,
                .method = "PUT",
                .target = "/v2/a/manifests/latest",
                .minor_version = 1,
                .n_headers = 3,
                .host = "r",
                .body = HTTP1_BODY_LENGTH,
                .content_length = 1234,
                .keep_alive = true,
        },
        {
                .name = "PATCH chunked",
                .raw = "PATCH /v2/a/blobs/uploads/4f3c?_state=x HTTP/1.1\r\nHost: r\r\n"
                       "Transfer-Encoding: Chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
                       "5\r\nhello\r\n0\r\n\r\n",
                .head_len = sizeof("PATCH /v2/a/blobs/uploads/4f3c?_state=x HTTP/1.1\r\nHost: r\r\n"
                                   "Transfer-Encoding: Chunked\r\nContent-Type: "
                                   "application/octet-stream\r\n\r\n") -
                            1,
                .method = "PATCH",
                .target = "/v2/a/blobs/uploads/4f3c?_state=x",
                .minor_version = 1,
                .n_headers = 3,
                .host = "r",
                .body = HTTP1_BODY_CHUNKED,
                .keep_alive = true,
        },
        {
                .name = "PUT with Expect: 100-continue",
                .raw = "PUT /v2/a/blobs/uploads/1?digest=sha256:00 HTTP/1.1\r\nHost: r\r\n"
                       "Content-Length: 0\r\nExpect: 100-Continue\r\n\r\n",
                .method = "PUT",
                .target = "/v2/a/blobs/uploads/1?digest=sha256:00",
                .minor_version = 1,
                .n_headers = 3,
                .host = "r",
                .body = HTTP1_BODY_LENGTH,
                .content_length = 0,
                .keep_alive = true,
                .expect_continue = true,
        },
        {
                .name = "Expect: 100-continue ignored in HTTP/1.0",
                .raw = "PUT /x HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
                .method = "PUT",
                .target = "/x",
                .minor_version = 0,
                .n_headers = 2,
                .body = HTTP1_BODY_LENGTH,
                .content_length = 2,
        },
        {
                .name = "largest Content-Length, OWS around values, empty value",
                .raw = "POST /x HTTP/1.1\r\nHost:a\r\nContent-Length:\t4611686018427387904 \t\r\n"
                       "X-Empty:\r\nX-Spaces: a  b\t \r\n\r\n",
                .method = "POST",
                .target = "/x",
                .minor_version = 1,
                .n_headers = 4,
                .host = "a",
                .body = HTTP1_BODY_LENGTH,
                .content_length = UINT64_C(4611686018427387904),
                .keep_alive = true,
        },
        {
                .name = "pipelined: only the first request is consumed",
                .raw = "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
                .head_len = sizeof("GET /a HTTP/1.1\r\nHost: a\r\n\r\n") - 1,
                .method = "GET",
                .target = "/a",
                .minor_version = 1,
                .n_headers = 1,
                .host = "a",
                .keep_alive = true,
        },
        {
                .name = "any token is a method; every visible byte in the target",
                .raw = "M-SEARCH! /%41?a=b&c=[d]|~`{}^\\\"'<> HTTP/1.1\r\nHost: a\r\n\r\n",
                .method = "M-SEARCH!",
                .target = "/%41?a=b&c=[d]|~`{}^\\\"'<>",
                .minor_version = 1,
                .n_headers = 1,
                .host = "a",
                .keep_alive = true,
        },
};

static void assert_request_equal(const GoodRequest *t, const char *buf, const Http1Request *req,
                                 const Http1Header *headers) {
        assert_int_equal(req->error, HTTP1_OK);
        assert_int_equal(req->method_len, strlen(t->method));
        assert_memory_equal(req->method, t->method, req->method_len);
        assert_int_equal(req->target_len, strlen(t->target));
        assert_memory_equal(req->target, t->target, req->target_len);
        assert_int_equal(req->minor_version, t->minor_version);
        assert_int_equal(req->n_headers, t->n_headers);
        if (t->host) {
                assert_non_null(req->host);
                assert_int_equal(req->host_len, strlen(t->host));
                assert_memory_equal(req->host, t->host, req->host_len);
        } else
                assert_null(req->host);
        assert_int_equal(req->body, t->body);
        assert_true(req->content_length == t->content_length);
        assert_int_equal(req->keep_alive, t->keep_alive);
        assert_int_equal(req->expect_continue, t->expect_continue);

        /* Zero-copy: everything points into buf. */
        assert_ptr_equal(req->method, buf);
        assert_true(req->target > buf && req->target < buf + t->len);
        for (size_t i = 0; i < req->n_headers; i++) {
                assert_true(headers[i].name > buf && headers[i].name + headers[i].name_len < buf + t->len);
                assert_true(headers[i].value >= buf &&
                            headers[i].value + headers[i].value_len < buf + t->len);
                assert_true(headers[i].name_len > 0);
                /* Values are trimmed. */
                if (headers[i].value_len > 0) {
                        assert_true(headers[i].value[0] != ' ' && headers[i].value[0] != '\t');
                        assert_true(headers[i].value[headers[i].value_len - 1] != ' ' &&
                                    headers[i].value[headers[i].value_len - 1] != '\t');
                }
        }
}

static void test_good_requests(void **state) {
        (void)state;

        for (size_t i = 0; i < ELEMENTSOF(good_requests); i++) {
                GoodRequest t = good_requests[i];
                Http1Header headers[MAX_HEADERS];
                Http1Request req;
                int r;

                t.len = strlen(t.raw);
                if (t.head_len == 0)
                        t.head_len = t.len;

                /* Whole, then every prefix: -2 until the head is complete,
                 * then the same result whatever follows. */
                for (size_t k = 0; k <= t.len; k++) {
                        Guarded g = guarded_new(t.raw, k);

                        memset(&req, 0xaa, sizeof(req));
                        r = http1_parse_request(g.data, k, &req, headers, MAX_HEADERS);
                        if (k < t.head_len) {
                                if (r != -2)
                                        fail_msg("%s: prefix of %zu bytes returned %d (%s)", t.name, k, r,
                                                 http1_error_string(req.error));
                        } else {
                                if (r < 0 || (size_t)r != t.head_len)
                                        fail_msg("%s: %zu bytes returned %d (%s)", t.name, k, r,
                                                 r == -1 ? http1_error_string(req.error) : "");
                                assert_request_equal(&t, g.data, &req, headers);
                        }
                        guarded_free(&g);
                }
        }
}

static void test_header_values(void **state) {
        static const char raw[] = "POST /x HTTP/1.1\r\nHost:a\r\nX-Empty:\r\nX-Spaces: \t a  b\t \r\n\r\n";
        Http1Header headers[MAX_HEADERS];
        Http1Request req;

        (void)state;
        assert_int_equal(http1_parse_request(STR(raw), &req, headers, MAX_HEADERS), (int)sizeof(raw) - 1);
        assert_int_equal(req.n_headers, 3);
        assert_true(http1_header_is(&headers[0], "HOST"));
        assert_int_equal(headers[0].value_len, 1);
        assert_true(http1_header_is(&headers[1], "x-empty"));
        assert_int_equal(headers[1].value_len, 0);
        assert_true(http1_header_is(&headers[2], "X-Spaces"));
        assert_false(http1_header_is(&headers[2], "X-Space"));
        assert_int_equal(headers[2].value_len, 4);
        assert_memory_equal(headers[2].value, "a  b", 4);
}

static void test_too_many_headers(void **state) {
        static const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        Http1Header headers[3];
        Http1Request req;

        (void)state;
        assert_int_equal(http1_parse_request(STR(raw), &req, headers, 3), (int)sizeof(raw) - 1);
        assert_int_equal(http1_parse_request(STR(raw), &req, headers, 2), -1);
        assert_int_equal(req.error, HTTP1_ERR_TOO_MANY_HEADERS);
        assert_int_equal(http1_parse_request(STR("GET / HTTP/1.0\r\n\r\n"), &req, NULL, 0), 18);
        assert_int_equal(http1_parse_request(STR("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &req, NULL, 0), -1);
        assert_int_equal(req.error, HTTP1_ERR_TOO_MANY_HEADERS);
}

static void test_head_too_large(void **state) {
        static const char prefix[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
        _cleanup_free_ char *buf = malloc(HTTP1_MAX_HEAD + 2);
        Http1Header headers[MAX_HEADERS];
        Http1Request req;
        size_t fill;

        (void)state;
        assert_non_null(buf);

        /* A head of exactly HTTP1_MAX_HEAD bytes is accepted... */
        memcpy(buf, prefix, sizeof(prefix) - 1);
        fill = HTTP1_MAX_HEAD - (sizeof(prefix) - 1) - 4;
        memset(buf + sizeof(prefix) - 1, 'x', fill);
        memcpy(buf + HTTP1_MAX_HEAD - 4, "\r\n\r\n", 4);
        assert_int_equal(http1_parse_request(buf, HTTP1_MAX_HEAD, &req, headers, MAX_HEADERS),
                         HTTP1_MAX_HEAD);
        /* ...also with more bytes behind it... */
        buf[HTTP1_MAX_HEAD] = 'G';
        assert_int_equal(http1_parse_request(buf, HTTP1_MAX_HEAD + 1, &req, headers, MAX_HEADERS),
                         HTTP1_MAX_HEAD);

        /* ...one more byte is not: incomplete at the limit, then an error. */
        memset(buf + sizeof(prefix) - 1, 'x', fill + 1);
        memcpy(buf + HTTP1_MAX_HEAD - 3, "\r\n\r\n", 4);
        assert_int_equal(http1_parse_request(buf, HTTP1_MAX_HEAD, &req, headers, MAX_HEADERS), -2);
        req.error = HTTP1_OK;
        assert_int_equal(http1_parse_request(buf, HTTP1_MAX_HEAD + 1, &req, headers, MAX_HEADERS), -1);
        assert_int_equal(req.error, HTTP1_ERR_HEAD_TOO_LARGE);
}

static void test_empty_input(void **state) {
        Http1Request req;
        Http1Response resp;

        (void)state;
        assert_int_equal(http1_parse_request(NULL, 0, &req, NULL, 0), -2);
        assert_int_equal(http1_parse_response(NULL, 0, false, &resp, NULL, 0), -2);
}

/* ---- chunked bodies ----------------------------------------------------- */

/* Decodes body fed in pieces of at most step bytes; appends data to out.
 * Returns bytes consumed in total or -1 (error in *ret_error). */
static ssize_t decode_chunked(const char *body, size_t len, size_t step, char *out, size_t *out_len,
                              Http1Error *ret_error, bool *ret_done) {
        Http1Chunked s;
        size_t pos = 0;

        http1_chunked_init(&s);
        *out_len = 0;
        while (pos < len && !http1_chunked_done(&s)) {
                size_t avail = MIN(step, len - pos);
                size_t off = SIZE_MAX, n = SIZE_MAX;
                ssize_t r;

                r = http1_chunked_feed(&s, body + pos, avail, &off, &n);
                if (r < 0) {
                        *ret_error = s.error;
                        *ret_done = false;
                        /* Sticky. */
                        assert_int_equal(http1_chunked_feed(&s, "0", 1, &off, &n), -1);
                        return -1;
                }
                assert_true(r > 0);
                assert_true((size_t)r <= avail);
                assert_true(off + n <= (size_t)r);
                if (n > 0)
                        assert_int_equal(off + n, r); /* data is the last thing consumed */
                memcpy(out + *out_len, body + pos + off, n);
                *out_len += n;
                pos += (size_t)r;
        }
        *ret_error = s.error;
        *ret_done = http1_chunked_done(&s);
        if (*ret_done) {
                size_t off, n;

                assert_int_equal(http1_chunked_feed(&s, "GET", 3, &off, &n), 0);
                assert_int_equal(n, 0);
                assert_true(s.body_len == *out_len);
        }
        return (ssize_t)pos;
}

static void test_chunked_valid(void **state) {
        static const char body[] = "4;ext=1;flag\r\nWiki\r\n"
                                   "5\r\npedia\r\n"
                                   "E;a=b;c=d\r\n in\r\n\r\nchunks.\r\n"
                                   "000000000000000A\r\n0123456789\r\n"
                                   "0;last\r\n"
                                   "X-Checksum: abc\r\nY:\r\n\r\n"
                                   "GET / HTTP/1.1\r\n";
        static const char data[] = "Wikipedia in\r\n\r\nchunks.0123456789";
        size_t body_len = sizeof(body) - 1 - strlen("GET / HTTP/1.1\r\n");
        char out[sizeof(body)];
        size_t out_len;
        Http1Error e;
        bool done;

        (void)state;
        for (size_t step = 1; step <= sizeof(body); step++) {
                Guarded g = guarded_new(STR(body));

                assert_int_equal(decode_chunked(g.data, g.n, step, out, &out_len, &e, &done), body_len);
                assert_true(done);
                assert_int_equal(e, HTTP1_OK);
                assert_int_equal(out_len, sizeof(data) - 1);
                assert_memory_equal(out, data, out_len);
                guarded_free(&g);
        }

        /* The smallest body, and an incomplete one. */
        assert_int_equal(decode_chunked(STR("0\r\n\r\n"), 1, out, &out_len, &e, &done), 5);
        assert_true(done);
        assert_int_equal(out_len, 0);
        assert_int_equal(decode_chunked(STR("5\r\nhel"), 100, out, &out_len, &e, &done), 6);
        assert_false(done);
        assert_int_equal(e, HTTP1_OK);
        assert_int_equal(out_len, 3);
}

typedef struct BadChunked {
        const char *name;
        const char *raw;
        size_t len;
        Http1Error error;
} BadChunked;

static const BadChunked bad_chunked[] = {
        BAD("empty chunk size", "\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("non-hex chunk size", "g\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("chunk size with trailing space", "5 \r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("chunk size with leading space", " 5\r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("chunk size with tab before extension", "5\t;a\r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("negative chunk size", "-5\r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("chunk size with 0x", "0x5\r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("chunk size with plus", "+5\r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("extension without size", ";a\r\n", HTTP1_ERR_CHUNK_SIZE),
        BAD("17 hex digits", "00000000000000005\r\nhello\r\n", HTTP1_ERR_CHUNK_SIZE_TOO_LARGE),
        BAD("chunk size overflowing 64 bits", "10000000000000000\r\n", HTTP1_ERR_CHUNK_SIZE_TOO_LARGE),
        BAD("bare LF after the size", "5\nhello\r\n", HTTP1_ERR_BARE_LF),
        BAD("bare CR after the size", "5\rhello\r\n", HTTP1_ERR_BARE_CR),
        BAD("data longer than the size", "5\r\nhello!\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF),
        BAD("data shorter than the size", "6\r\nhello\r\n0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF),
        BAD("bare LF after data", "5\r\nhello\n0\r\n\r\n", HTTP1_ERR_CHUNK_DATA_CRLF),
        BAD("bare CR after data", "5\r\nhello\r0\r\n\r\n", HTTP1_ERR_BARE_CR),
        BAD("empty extension", "5;\r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("space in extension", "5; a\r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("space after extension", "5;a \r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("quoted extension value", "5;a=\"b\"\r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("empty extension value", "5;a=\r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("two '=' in extension", "5;a=b=c\r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("control byte in extension", "5;a\001\r\nhello\r\n", HTTP1_ERR_CHUNK_EXTENSION),
        BAD("bare LF after extension", "5;a=b\nhello\r\n", HTTP1_ERR_BARE_LF),
        BAD("trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", HTTP1_ERR_OBS_FOLD),
        BAD("trailer space before colon", "0\r\nA : b\r\n\r\n", HTTP1_ERR_SPACE_BEFORE_COLON),
        BAD("trailer without colon", "0\r\nAb\r\n\r\n", HTTP1_ERR_NO_COLON),
        BAD("trailer with control byte in name", "0\r\n\001: b\r\n\r\n", HTTP1_ERR_HEADER_NAME),
        BAD("trailer with empty name", "0\r\n: b\r\n\r\n", HTTP1_ERR_HEADER_NAME),
        BAD("trailer with control byte in value", "0\r\nA: \001\r\n\r\n", HTTP1_ERR_HEADER_VALUE),
        BAD("trailer with obs-text", "0\r\nA: \xe9\r\n\r\n", HTTP1_ERR_HEADER_VALUE),
        BAD("trailer ending in bare LF", "0\r\nA: b\n\r\n", HTTP1_ERR_BARE_LF),
        BAD("trailer ending in bare CR", "0\r\nA: b\rX\r\n", HTTP1_ERR_BARE_CR),
        BAD("final bare LF", "0\r\n\n", HTTP1_ERR_BARE_LF),
        BAD("final bare CR", "0\r\n\rX", HTTP1_ERR_BARE_CR),
};

static void test_chunked_errors(void **state) {
        char out[16384];
        size_t out_len;
        Http1Error e;
        bool done;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad_chunked); i++) {
                const BadChunked *t = bad_chunked + i;

                for (size_t step = 1; step <= t->len; step++) {
                        Guarded g = guarded_new(t->raw, t->len);
                        ssize_t r = decode_chunked(g.data, g.n, step, out, &out_len, &e, &done);

                        guarded_free(&g);
                        if (r != -1 || e != t->error)
                                fail_msg("%s (step %zu): got %zd \"%s\", expected \"%s\"", t->name, step, r,
                                         http1_error_string(e), http1_error_string(t->error));
                }
        }
}

static void test_chunked_limits(void **state) {
        char body[8192], out[8192];
        size_t n, out_len;
        Http1Error e;
        bool done;

        (void)state;

        /* Extension bytes per size line: ";" + name is counted. */
        n = (size_t)snprintf(body, sizeof(body), "1;");
        memset(body + n, 'a', HTTP1_CHUNK_EXT_MAX - 1);
        n += HTTP1_CHUNK_EXT_MAX - 1;
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nx\r\n0\r\n\r\n");
        assert_int_equal(decode_chunked(body, n, 7, out, &out_len, &e, &done), n);
        assert_true(done);
        n = (size_t)snprintf(body, sizeof(body), "1;");
        memset(body + n, 'a', HTTP1_CHUNK_EXT_MAX);
        n += HTTP1_CHUNK_EXT_MAX;
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\nx\r\n0\r\n\r\n");
        assert_int_equal(decode_chunked(body, n, 7, out, &out_len, &e, &done), -1);
        assert_int_equal(e, HTTP1_ERR_CHUNK_EXTENSION);

        /* Trailer section: HTTP1_MAX_TRAILER bytes including the final CRLF. */
        n = (size_t)snprintf(body, sizeof(body), "0\r\nX: ");
        memset(body + n, 'v', HTTP1_MAX_TRAILER - 7);
        n += HTTP1_MAX_TRAILER - 7;
        n += (size_t)snprintf(body + n, sizeof(body) - n, "\r\n\r\n");
        assert_int_equal(n, HTTP1_MAX_TRAILER + 3);
        assert_int_equal(decode_chunked(body, n, 100, out, &out_len, &e, &done), n);
        assert_true(done);
        memmove(body + 6, body + 5, n - 5);
        n++;
        assert_int_equal(decode_chunked(body, n, 100, out, &out_len, &e, &done), -1);
        assert_int_equal(e, HTTP1_ERR_TRAILER_TOO_LARGE);

        /* 16 hex digits are fine, even the largest size. */
        assert_int_equal(decode_chunked(STR("ffffffffffffffff\r\nabc"), 4, out, &out_len, &e, &done), 21);
        assert_false(done);
        assert_int_equal(out_len, 3);
}

static void test_chunk_header(void **state) {
        char buf[HTTP1_CHUNK_HEADER_MAX];

        (void)state;
        assert_int_equal(http1_chunk_header(buf, 1), 3);
        assert_string_equal(buf, "1\r\n");
        assert_int_equal(http1_chunk_header(buf, 0x1a2b), 6);
        assert_string_equal(buf, "1a2b\r\n");
        assert_int_equal(http1_chunk_header(buf, 0x10), 4);
        assert_string_equal(buf, "10\r\n");
        assert_int_equal(http1_chunk_header(buf, UINT64_MAX), 18);
        assert_string_equal(buf, "ffffffffffffffff\r\n");
}

/* Re-framing: decode, re-emit each data run as a chunk, decode again. */
static void test_chunked_reframe(void **state) {
        static const char body[] = "3;x=y\r\nabc\r\n00a\r\n0123456789\r\n0\r\nT: v\r\n\r\n";
        char framed[512], out[512];
        size_t n = 0, out_len;
        Http1Chunked s;
        Http1Error e;
        bool done;

        (void)state;
        http1_chunked_init(&s);
        for (size_t pos = 0; pos < sizeof(body) - 1 && !http1_chunked_done(&s);) {
                size_t off, len;
                ssize_t r = http1_chunked_feed(&s, body + pos, MIN((size_t)4, sizeof(body) - 1 - pos), &off,
                                               &len);

                assert_true(r > 0);
                if (len > 0) {
                        n += http1_chunk_header(framed + n, len);
                        memcpy(framed + n, body + pos + off, len);
                        n += len;
                        memcpy(framed + n, "\r\n", 2);
                        n += 2;
                }
                pos += (size_t)r;
        }
        assert_true(http1_chunked_done(&s));
        memcpy(framed + n, "0\r\n\r\n", 5);
        n += 5;

        assert_int_equal(decode_chunked(framed, n, 1, out, &out_len, &e, &done), n);
        assert_true(done);
        assert_int_equal(out_len, 13);
        assert_memory_equal(out, "abc0123456789", 13);
}

/* ---- responses ---------------------------------------------------------- */

static void test_responses(void **state) {
        static const struct {
                const char *raw;
                bool head;
                int status;
                const char *reason;
                Http1BodyKind body;
                uint64_t content_length;
                bool keep_alive;
        } good[] = {
                {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nDocker-Distribution-Api-Version: "
                 "registry/2.0\r\n\r\n",
                 false, 200, "OK", HTTP1_BODY_LENGTH, 5, true},
                {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 200, "OK", HTTP1_BODY_NONE, 5, true},
                {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, "OK",
                 HTTP1_BODY_CHUNKED, 0, true},
                {"HTTP/1.1 204 No Content\r\n\r\n", false, 204, "No Content", HTTP1_BODY_NONE, 0, true},
                {"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, 304, "Not Modified",
                 HTTP1_BODY_NONE, 10, true},
                {"HTTP/1.1 100 Continue\r\n\r\n", false, 100, "Continue", HTTP1_BODY_NONE, 0, true},
                {"HTTP/1.1 200 OK\r\n\r\n", false, 200, "OK", HTTP1_BODY_UNTIL_CLOSE, 0, false},
                {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, 200, "OK", HTTP1_BODY_LENGTH, 1,
                 false},
                {"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", false, 200, "OK",
                 HTTP1_BODY_LENGTH, 1, true},
                {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 404,
                 "Not Found", HTTP1_BODY_LENGTH, 0, false},
                {"HTTP/1.1 599 status code 599\r\nContent-Length: 0\r\n\r\n", false, 599, "status code 599",
                 HTTP1_BODY_LENGTH, 0, true},
                {"HTTP/1.1 401 \r\nContent-Length: 0\r\n\r\n", false, 401, "", HTTP1_BODY_LENGTH, 0, true},
                {"HTTP/1.1 401\r\nContent-Length: 0\r\n\r\n", false, 401, "", HTTP1_BODY_LENGTH, 0, true},
        };
        static const BadRequest bad[] = {
                BAD("101 without asking", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
                    HTTP1_ERR_UPGRADE),
                BAD("status 600", "HTTP/1.1 600 X\r\n\r\n", HTTP1_ERR_STATUS_CODE),
                BAD("status 099", "HTTP/1.1 099 X\r\n\r\n", HTTP1_ERR_STATUS_CODE),
                BAD("two-digit status", "HTTP/1.1 20 OK\r\n\r\n", HTTP1_ERR_STATUS_CODE),
                BAD("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", HTTP1_ERR_STATUS_CODE),
                BAD("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", HTTP1_ERR_STATUS_CODE),
                BAD("HTTP/2 status line", "HTTP/2 200\r\n\r\n", HTTP1_ERR_VERSION),
                BAD("no space after version", "HTTP/1.1\r\n\r\n", HTTP1_ERR_STATUS_LINE),
                BAD("control byte in reason", "HTTP/1.1 200 O\001K\r\n\r\n", HTTP1_ERR_STATUS_LINE),
                BAD("bare LF after status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
                    HTTP1_ERR_BARE_LF),
                BAD("leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP1_ERR_LEADING_EMPTY_LINE),
                BAD("duplicate Content-Length",
                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                    HTTP1_ERR_CONTENT_LENGTH_DUPLICATE),
                BAD("Content-Length and Transfer-Encoding",
                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                    HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING),
                BAD("Transfer-Encoding gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                    HTTP1_ERR_TRANSFER_ENCODING),
                BAD("Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    HTTP1_ERR_TRANSFER_ENCODING_HTTP10),
                BAD("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP1_ERR_OBS_FOLD),
        };
        Http1Header headers[MAX_HEADERS];
        Http1Response resp;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                size_t len = strlen(good[i].raw);

                for (size_t k = 0; k <= len; k++) {
                        Guarded g = guarded_new(good[i].raw, k);
                        int r = http1_parse_response(g.data, k, good[i].head, &resp, headers, MAX_HEADERS);

                        if (k < len) {
                                if (r != -2)
                                        fail_msg("\"%s\": prefix of %zu bytes returned %d", good[i].raw, k,
                                                 r);
                        } else {
                                if (r != (int)len)
                                        fail_msg("\"%s\": returned %d (%s)", good[i].raw, r,
                                                 http1_error_string(resp.error));
                                assert_int_equal(resp.status, good[i].status);
                                assert_int_equal(resp.reason_len, strlen(good[i].reason));
                                assert_memory_equal(resp.reason, good[i].reason, resp.reason_len);
                                assert_int_equal(resp.body, good[i].body);
                                assert_true(resp.content_length == good[i].content_length);
                                assert_int_equal(resp.keep_alive, good[i].keep_alive);
                        }
                        guarded_free(&g);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Guarded g = guarded_new(bad[i].raw, bad[i].len);
                int r = http1_parse_response(g.data, g.n, false, &resp, headers, MAX_HEADERS);

                guarded_free(&g);
                if (r != -1 || resp.error != bad[i].error)
                        fail_msg("%s: got %d \"%s\", expected \"%s\"", bad[i].name, r,
                                 http1_error_string(resp.error), http1_error_string(bad[i].error));
        }
}

/* The status line alone, as the supervisor's probe and `regvisor health`
 * read it (they were hand-written parsers of their own before). */
static void test_status_line(void **state) {
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        Http1Response resp = {};
        char *longline;

        (void)state;
        assert_int_equal(http1_parse_status_line(ok, strlen(ok), &resp), 17);
        assert_int_equal(resp.status, 200);
        assert_int_equal(resp.minor_version, 1);
        assert_int_equal(resp.reason_len, 2);
        assert_memory_equal(resp.reason, "OK", 2);
        /* Every prefix of the status line is partial, never an error. */
        for (size_t i = 0; i < 17; i++)
                assert_int_equal(http1_parse_status_line(ok, i, &resp), -2);
        assert_int_equal(http1_parse_status_line("HTTP/1.0 403 \r\n", 15, &resp), 15);
        assert_int_equal(resp.status, 403);
        assert_int_equal(resp.minor_version, 0);
        assert_int_equal(http1_parse_status_line("HTTP/1.1 400\r\n", 14, &resp), 14);
        assert_int_equal(resp.status, 400);

        /* Garbage fails as soon as it shows. */
        assert_int_equal(http1_parse_status_line("SSH-2.0", 7, &resp), -1);
        assert_int_equal(resp.error, HTTP1_ERR_VERSION);
        assert_int_equal(http1_parse_status_line("\x16\x03\x01", 3, &resp), -1);
        assert_int_equal(http1_parse_status_line("HTTP/2 200\r\n", 12, &resp), -1);
        assert_int_equal(http1_parse_status_line("HTTP/1.1 200 OK\n", 16, &resp), -1);
        assert_int_equal(resp.error, HTTP1_ERR_BARE_LF);
        assert_int_equal(http1_parse_status_line("HTTP/1.1 20x OK\r\n", 17, &resp), -1);
        assert_int_equal(resp.error, HTTP1_ERR_STATUS_CODE);
        assert_int_equal(http1_parse_status_line("HTTP/1.1 2000 OK\r\n", 18, &resp), -1);
        assert_int_equal(http1_parse_status_line("HTTP/1.1 099 OK\r\n", 17, &resp), -1);
        assert_int_equal(http1_parse_status_line("HTTP/1.1 200 O\x01K\r\n", 18, &resp), -1);

        /* The same answer as the whole-head parser's first line. */
        {
                static const char head[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
                Http1Header h[4];
                Http1Response full = {};
                assert_true(http1_parse_response(head, strlen(head), false, &full, h, 4) > 0);
                assert_int_equal(http1_parse_status_line(head, strlen(head), &resp), 24);
                assert_int_equal(resp.status, full.status);
                assert_int_equal(resp.reason_len, full.reason_len);
        }

        /* A status line that never ends is refused, not waited for. */
        longline = malloc(HTTP1_MAX_HEAD + 2);
        assert_non_null(longline);
        memcpy(longline, "HTTP/1.1 200 ", 13);
        memset(longline + 13, 'x', HTTP1_MAX_HEAD + 2 - 13);
        assert_int_equal(http1_parse_status_line(longline, HTTP1_MAX_HEAD, &resp), -2);
        assert_int_equal(http1_parse_status_line(longline, HTTP1_MAX_HEAD + 2, &resp), -1);
        assert_int_equal(resp.error, HTTP1_ERR_HEAD_TOO_LARGE);
        free(longline);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bad_requests),     cmocka_unit_test(test_error_strings),
                cmocka_unit_test(test_good_requests),    cmocka_unit_test(test_header_values),
                cmocka_unit_test(test_too_many_headers), cmocka_unit_test(test_head_too_large),
                cmocka_unit_test(test_empty_input),      cmocka_unit_test(test_chunked_valid),
                cmocka_unit_test(test_chunked_errors),   cmocka_unit_test(test_chunked_limits),
                cmocka_unit_test(test_chunk_header),     cmocka_unit_test(test_chunked_reframe),
                cmocka_unit_test(test_responses),        cmocka_unit_test(test_status_line),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
