/* SPDX-License-Identifier: MIT */
/*
 * Fuzzer for common/http/http1.c. Every input is parsed as a request head, as a
 * response head and as a chunked body, and the properties the proxy relies
 * on are checked:
 *   - consumed <= len, and every returned pointer lies inside the head;
 *   - a parse of any prefix that is not "incomplete" gives exactly the
 *     whole input's result (same length, error, fields): reading the head in
 *     pieces cannot change what it means. The prefix is checked at a point
 *     chosen by the fuzzer (from the input's last byte) and at the end of
 *     the head, and copied into an exact-size heap buffer so that ASan sees
 *     any read past it;
 *   - the chunked decoder gives the same data, consumption and error fed
 *     whole, byte by byte, or split in two; re-framed output decodes to the
 *     same data.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "fuzz-check.h"

#define MAX_HEADERS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *copy(const uint8_t *data, size_t n) {
        char *p = malloc(n ? n : 1);

        CHECK(p);
        memcpy(p, data, n);
        return p;
}

static bool in_range(const char *p, size_t n, const char *buf, size_t len) {
        return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static bool is_tchar(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* The parsed head, as offsets, to compare parses of different buffers. */
typedef struct Summary {
        int r;
        int error;
        size_t method, method_len, target, target_len, host, host_len;
        int minor, status;
        size_t reason, reason_len;
        size_t n_headers;
        size_t name[MAX_HEADERS], name_len[MAX_HEADERS], value[MAX_HEADERS], value_len[MAX_HEADERS];
        int body;
        uint64_t content_length;
        bool keep_alive, expect_continue;
} Summary;

static void check_headers(const char *buf, size_t r, const Http1Header *h, size_t n, Summary *s) {
        CHECK(n <= MAX_HEADERS);
        s->n_headers = n;
        for (size_t i = 0; i < n; i++) {
                CHECK(h[i].name_len > 0);
                CHECK(in_range(h[i].name, h[i].name_len, buf, r));
                CHECK(in_range(h[i].value, h[i].value_len, buf, r));
                for (size_t j = 0; j < h[i].name_len; j++)
                        CHECK(is_tchar(h[i].name[j]));
                for (size_t j = 0; j < h[i].value_len; j++) {
                        unsigned char c = (unsigned char)h[i].value[j];

                        CHECK(c == '\t' || (c >= 0x20 && c <= 0x7e));
                }
                if (h[i].value_len > 0) {
                        CHECK(h[i].value[0] != ' ' && h[i].value[0] != '\t');
                        CHECK(h[i].value[h[i].value_len - 1] != ' ' &&
                              h[i].value[h[i].value_len - 1] != '\t');
                }
                s->name[i] = (size_t)(h[i].name - buf);
                s->name_len[i] = h[i].name_len;
                s->value[i] = (size_t)(h[i].value - buf);
                s->value_len[i] = h[i].value_len;
        }
}

/* What every parse of LEN bytes returns, in s->r: -2 (more to come) only
 * while a head may still fit, -1 with a known *error (kept in s->error), or
 * the bytes of a head that fits. true when there is no head to check. */
static bool no_head(size_t len, const Http1Error *error, Summary *s) {
        CHECK(s->r >= -2);
        if (s->r == -2) {
                CHECK(len <= HTTP1_MAX_HEAD);
                return true;
        }
        if (s->r == -1) {
                CHECK(*error > HTTP1_OK && *error < _HTTP1_ERR_MAX);
                s->error = *error;
                return true;
        }
        CHECK(s->r > 0 && (size_t)s->r <= len && s->r <= HTTP1_MAX_HEAD);
        return false;
}

static Summary parse_request(const char *buf, size_t len) {
        Http1Header headers[MAX_HEADERS];
        Http1Request req;
        Summary s = {};

        s.r = http1_parse_request(buf, len, &req, headers, MAX_HEADERS);
        if (no_head(len, &req.error, &s))
                return s;
        CHECK(s.r >= 4 && memcmp(buf + s.r - 4, "\r\n\r\n", 4) == 0);
        CHECK(req.error == HTTP1_OK);
        CHECK(req.method == buf && req.method_len > 0);
        CHECK(in_range(req.target, req.target_len, buf, (size_t)s.r));
        CHECK(req.target_len > 0 && req.target[0] == '/');
        CHECK(req.minor_version == 0 || req.minor_version == 1);
        CHECK(req.body == HTTP1_BODY_NONE || req.body == HTTP1_BODY_LENGTH ||
              req.body == HTTP1_BODY_CHUNKED);
        CHECK(req.content_length <= HTTP1_MAX_CONTENT_LENGTH);
        CHECK(req.body == HTTP1_BODY_LENGTH || req.content_length == 0);
        CHECK(req.minor_version == 1 || req.body != HTTP1_BODY_CHUNKED);
        CHECK(req.minor_version == 1 || !req.expect_continue);
        if (req.host)
                CHECK(req.host_len > 0 && in_range(req.host, req.host_len, buf, (size_t)s.r));
        else
                CHECK(req.minor_version == 0);
        check_headers(buf, (size_t)s.r, headers, req.n_headers, &s);

        s.method = 0;
        s.method_len = req.method_len;
        s.target = (size_t)(req.target - buf);
        s.target_len = req.target_len;
        s.host = req.host ? (size_t)(req.host - buf) : SIZE_MAX;
        s.host_len = req.host_len;
        s.minor = req.minor_version;
        s.body = req.body;
        s.content_length = req.content_length;
        s.keep_alive = req.keep_alive;
        s.expect_continue = req.expect_continue;
        return s;
}

static Summary parse_response(const char *buf, size_t len, bool head) {
        Http1Header headers[MAX_HEADERS];
        Http1Response resp;
        Summary s = {};

        s.r = http1_parse_response(buf, len, head, &resp, headers, MAX_HEADERS);
        if (no_head(len, &resp.error, &s))
                return s;
        CHECK(resp.status >= 100 && resp.status <= 599 && resp.status != 101);
        {
                /* The status line alone (the probe's and health's parser)
                 * reads the same line the same way. */
                Http1Response line;
                int k = http1_parse_status_line(buf, len, &line);
                CHECK(k > 0 && k < s.r);
                CHECK(line.status == resp.status && line.minor_version == resp.minor_version);
                CHECK(line.reason == resp.reason && line.reason_len == resp.reason_len);
        }
        CHECK(in_range(resp.reason, resp.reason_len, buf, (size_t)s.r));
        CHECK(resp.body != HTTP1_BODY_UNTIL_CLOSE || !resp.keep_alive);
        if (head || resp.status < 200 || resp.status == 204 || resp.status == 304)
                CHECK(resp.body == HTTP1_BODY_NONE);
        check_headers(buf, (size_t)s.r, headers, resp.n_headers, &s);

        s.reason = (size_t)(resp.reason - buf);
        s.reason_len = resp.reason_len;
        s.minor = resp.minor_version;
        s.status = resp.status;
        s.body = resp.body;
        s.content_length = resp.content_length;
        s.keep_alive = resp.keep_alive;
        return s;
}

static bool summary_equal(const Summary *a, const Summary *b) {
        if (a->r != b->r || a->error != b->error)
                return false;
        if (a->r < 0)
                return true;
        return a->method_len == b->method_len && a->target == b->target && a->target_len == b->target_len &&
               a->host == b->host && a->host_len == b->host_len && a->minor == b->minor &&
               a->status == b->status && a->reason == b->reason && a->reason_len == b->reason_len &&
               a->n_headers == b->n_headers &&
               memcmp(a->name, b->name, sizeof(a->name[0]) * a->n_headers) == 0 &&
               memcmp(a->name_len, b->name_len, sizeof(a->name_len[0]) * a->n_headers) == 0 &&
               memcmp(a->value, b->value, sizeof(a->value[0]) * a->n_headers) == 0 &&
               memcmp(a->value_len, b->value_len, sizeof(a->value_len[0]) * a->n_headers) == 0 &&
               a->body == b->body && a->content_length == b->content_length &&
               a->keep_alive == b->keep_alive && a->expect_continue == b->expect_continue;
}

/* A prefix that is not incomplete must mean what the whole means. */
static void check_prefix(const uint8_t *data, size_t k, const Summary *whole, int kind) {
        char *p = copy(data, k);
        Summary s = kind == 0 ? parse_request(p, k) : parse_response(p, k, kind == 2);

        if (s.r != -2)
                CHECK(summary_equal(&s, whole));
        free(p);
}

static void check_head(const uint8_t *data, size_t size, size_t split, int kind) {
        Summary whole = kind == 0 ? parse_request((const char *)data, size)
                                  : parse_response((const char *)data, size, kind == 2);

        check_prefix(data, split, &whole, kind);
        if (whole.r > 0) {
                /* Exactly the head parses the same; one byte less is
                 * incomplete, never an error. */
                char *p = copy(data, (size_t)whole.r - 1);
                Summary s = kind == 0 ? parse_request(p, (size_t)whole.r - 1)
                                      : parse_response(p, (size_t)whole.r - 1, kind == 2);

                CHECK(s.r == -2);
                free(p);
                check_prefix(data, (size_t)whole.r, &whole, kind);
        }
}

/* Decodes a chunked body fed in pieces of step bytes (and split at split
 * first, if nonzero), appending data to out. */
typedef struct Decoded {
        ssize_t consumed; /* -1 on error */
        int error;
        bool done;
        size_t out_len;
        uint64_t body_len;
} Decoded;

static Decoded decode(const char *in, size_t len, size_t step, size_t split, char *out) {
        Http1Chunked s;
        Decoded d = {};
        size_t pos = 0;

        http1_chunked_init(&s);
        while (pos < len && !http1_chunked_done(&s)) {
                size_t avail = len - pos, off, n;
                ssize_t r;

                if (split > pos && avail > split - pos)
                        avail = split - pos;
                if (avail > step)
                        avail = step;
                r = http1_chunked_feed(&s, in + pos, avail, &off, &n);
                if (r < 0) {
                        CHECK(r == -1);
                        CHECK(s.error > HTTP1_OK && s.error < _HTTP1_ERR_MAX);
                        CHECK(http1_chunked_feed(&s, in, len, &off, &n) == -1);
                        d.consumed = -1;
                        d.error = s.error;
                        return d;
                }
                CHECK(r > 0 && (size_t)r <= avail);
                CHECK(off <= (size_t)r && n <= (size_t)r - off);
                CHECK(n == 0 || off + n == (size_t)r);
                memcpy(out + d.out_len, in + pos + off, n);
                d.out_len += n;
                pos += (size_t)r;
        }
        d.consumed = (ssize_t)pos;
        d.done = http1_chunked_done(&s);
        d.body_len = s.body_len;
        CHECK(d.body_len == d.out_len);
        if (d.done) {
                size_t off, n;

                CHECK(http1_chunked_feed(&s, in, len, &off, &n) == 0);
                CHECK(n == 0);
        }
        return d;
}

static void check_chunked(const char *in, size_t len, size_t split) {
        char *out1 = malloc(len + 1), *out2 = malloc(len + 1), *out3 = malloc(len + 1);
        Decoded a, b, c;

        CHECK(out1 && out2 && out3);
        a = decode(in, len, SIZE_MAX, 0, out1);
        b = decode(in, len, 1, 0, out2);
        c = decode(in, len, SIZE_MAX, split, out3);
        CHECK(a.consumed == b.consumed && a.consumed == c.consumed);
        CHECK(a.error == b.error && a.error == c.error);
        CHECK(a.done == b.done && a.done == c.done);
        if (a.consumed >= 0) {
                CHECK(a.out_len == b.out_len && a.out_len == c.out_len);
                CHECK(memcmp(out1, out2, a.out_len) == 0 && memcmp(out1, out3, a.out_len) == 0);
        }

        if (a.done) {
                /* Re-frame as one chunk plus the last chunk, decode again. */
                char hdr[HTTP1_CHUNK_HEADER_MAX];
                size_t h = a.out_len ? http1_chunk_header(hdr, a.out_len) : 0;
                size_t flen = h + a.out_len + (a.out_len ? 2 : 0) + 5;
                char *framed = malloc(flen), *out4 = malloc(a.out_len + 1);
                size_t n = 0;
                Decoded d;

                CHECK(framed && out4);
                memcpy(framed, hdr, h);
                n += h;
                memcpy(framed + n, out1, a.out_len);
                n += a.out_len;
                if (a.out_len) {
                        memcpy(framed + n, "\r\n", 2);
                        n += 2;
                }
                memcpy(framed + n, "0\r\n\r\n", 5);
                n += 5;
                CHECK(n == flen);
                d = decode(framed, flen, SIZE_MAX, 0, out4);
                CHECK(d.done && d.consumed == (ssize_t)flen && d.out_len == a.out_len);
                CHECK(memcmp(out4, out1, a.out_len) == 0);
                free(framed);
                free(out4);
        }
        free(out1);
        free(out2);
        free(out3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t split = size ? ((size_t)data[size - 1] * 2654435761u) % (size + 1) : 0;
        Summary req;

        check_head(data, size, split, 0);
        check_head(data, size, split, 1);
        check_head(data, size, split, 2);

        /* The whole input as a chunked body, and the body after a request
         * head that announced one. */
        check_chunked((const char *)data, size, split);
        req = parse_request((const char *)data, size);
        if (req.r > 0 && req.body == HTTP1_BODY_CHUNKED)
                check_chunked((const char *)data + req.r, size - (size_t)req.r,
                              split > (size_t)req.r ? split - (size_t)req.r : 0);
        return 0;
}
