/* SPDX-License-Identifier: MIT */
/*
 * Strict HTTP/1.1 parsing for the proxy: see http1.h for the contract and the
 * list of what is refused. RFC 9112 section numbers in comments.
 */

#include <assert.h>
#include <string.h>

#include "http1.h"
#include "macro.h"

#define PARTIAL (-2)

static inline size_t min_size(size_t a, size_t b) {
        return a < b ? a : b;
}

/* tchar (RFC 9110 §5.6.2): the bytes of a token (method, field name,
 * transfer coding, connection option, chunk extension). */
static const uint8_t tchar_table[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
        ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
        ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

/* Host (RFC 9110 §7.2, RFC 3986 §3.2.2): reg-name (unreserved, sub-delims,
 * pct-encoded), IP-literal brackets and the port colon. No '/', '@', '?',
 * '#', whitespace or anything that could change what the authority is. */
static const uint8_t host_table[256] = {
        ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['-'] = 1, ['.'] = 1,  ['_'] = 1,
        ['~'] = 1,         ['!'] = 1,         ['$'] = 1,         ['&'] = 1, ['\''] = 1, ['('] = 1,
        [')'] = 1,         ['*'] = 1,         ['+'] = 1,         [','] = 1, [';'] = 1,  ['='] = 1,
        ['%'] = 1,         [':'] = 1,         ['['] = 1,         [']'] = 1,
};

static inline bool is_tchar(char c) {
        return tchar_table[(unsigned char)c];
}

/* VCHAR: visible US-ASCII. obs-text (0x80-0xff) is deliberately not here. */
static inline bool is_vchar(char c) {
        return (unsigned char)c >= 0x21 && (unsigned char)c <= 0x7e;
}

static inline bool is_ows(char c) {
        return c == ' ' || c == '\t';
}

/* reason-phrase = *( HTAB / SP / VCHAR ), obs-text refused as above. */
static inline bool is_reason_char(char c) {
        return is_vchar(c) || is_ows(c);
}

static inline char ascii_lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the NUL-terminated lower-case literal lit, ASCII
 * case-insensitively. */
static bool case_eq(const char *s, size_t n, const char *lit) {
        size_t i;

        for (i = 0; i < n; i++)
                if (lit[i] == '\0' || ascii_lower(s[i]) != lit[i])
                        return false;
        return lit[i] == '\0';
}

bool http1_header_is(const Http1Header *h, const char *name) {
        size_t n = strlen(name);

        if (h->name_len != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (ascii_lower(h->name[i]) != ascii_lower(name[i]))
                        return false;
        return true;
}

/* ---- head scanning ---------------------------------------------------- */

/* A linear scan over buf[0..end). Each step returns 0 (advanced), PARTIAL
 * (ran out of input before deciding) or -1 (error recorded in error). */
typedef struct Scan {
        const char *buf;
        size_t end;
        size_t pos;
        Http1Error error;
} Scan;

static int fail(Scan *s, Http1Error e) {
        s->error = e;
        return -1;
}

/* Matches the literal lit byte by byte: a mismatch is reported at the first
 * differing byte, so a prefix of a bad line already fails. */
static int scan_literal(Scan *s, const char *lit, Http1Error e) {
        for (; *lit; lit++, s->pos++) {
                if (s->pos >= s->end)
                        return PARTIAL;
                if (s->buf[s->pos] != *lit)
                        return fail(s, e);
        }
        return 0;
}

/* Consumes the CRLF that ends a line (RFC 9112 §2.2: no bare CR, no bare LF
 * as a line terminator). other is the error for any other byte. */
static int scan_crlf(Scan *s, Http1Error other) {
        if (s->pos >= s->end)
                return PARTIAL;
        if (s->buf[s->pos] == '\n')
                return fail(s, HTTP1_ERR_BARE_LF);
        if (s->buf[s->pos] != '\r')
                return fail(s, other);
        if (s->pos + 1 >= s->end)
                return PARTIAL;
        if (s->buf[s->pos + 1] != '\n')
                return fail(s, HTTP1_ERR_BARE_CR);
        s->pos += 2;
        return 0;
}

/* Steps over the bytes that pass is(): 0 at the first that does not,
 * PARTIAL when the buffer ends first (the run may go on). */
static inline int scan_span(Scan *s, bool (*is)(char c)) {
        while (s->pos < s->end && is(s->buf[s->pos]))
                s->pos++;
        return s->pos < s->end ? 0 : PARTIAL;
}

/* A request-line token: [start, here) into *ret and *ret_len, and the SP
 * that ends it stepped over; PARTIAL when nothing follows it yet. */
static int take_token(Scan *s, size_t start, const char **ret, size_t *ret_len) {
        *ret = s->buf + start;
        *ret_len = s->pos - start;
        s->pos++;
        return s->pos < s->end ? 0 : PARTIAL;
}

/* "HTTP/1.0" or "HTTP/1.1", case-sensitively (RFC 9112 §2.3). */
static int scan_version(Scan *s, int *ret_minor) {
        int r;

        r = scan_literal(s, "HTTP/1.", HTTP1_ERR_VERSION);
        if (r != 0)
                return r;
        if (s->pos >= s->end)
                return PARTIAL;
        if (s->buf[s->pos] != '0' && s->buf[s->pos] != '1')
                return fail(s, HTTP1_ERR_VERSION);
        *ret_minor = s->buf[s->pos++] - '0';
        return 0;
}

/* request-line = method SP request-target SP HTTP-version CRLF (§3). */
static int scan_request_line(Scan *s, Http1Request *req) {
        const char *b = s->buf;
        size_t start;
        int r;

        if (s->pos >= s->end)
                return PARTIAL;
        /* §2.2 allows ignoring empty lines before the request-line; we refuse
         * them so that a request always starts where the last one ended. */
        if (b[s->pos] == '\r' || b[s->pos] == '\n')
                return fail(s, HTTP1_ERR_LEADING_EMPTY_LINE);

        start = s->pos;
        r = scan_span(s, is_tchar);
        if (r != 0)
                return r;
        if (s->pos == start)
                return fail(s, HTTP1_ERR_METHOD);
        if (b[s->pos] != ' ') {
                /* "GET\t/", "GET\r\n": a separator, but not the single SP. */
                if (is_ows(b[s->pos]) || b[s->pos] == '\r' || b[s->pos] == '\n')
                        return fail(s, HTTP1_ERR_REQUEST_LINE);
                return fail(s, HTTP1_ERR_METHOD);
        }
        r = take_token(s, start, &req->method, &req->method_len);
        if (r != 0)
                return r;
        switch (b[s->pos]) {
        case '/':
                break;
        case '*':
                /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": h2 with prior knowledge. */
                if (req->method_len == 3 && memcmp(req->method, "PRI", 3) == 0)
                        return fail(s, HTTP1_ERR_HTTP2_PREFACE);
                return fail(s, HTTP1_ERR_TARGET_FORM);
        case ' ':
        case '\t':
        case '\r':
        case '\n':
                return fail(s, HTTP1_ERR_REQUEST_LINE);
        default:
                /* absolute-form "http://..." or authority-form "host:443":
                 * only a forward proxy takes those; we are an origin. */
                return fail(s, HTTP1_ERR_TARGET_FORM);
        }

        start = s->pos;
        r = scan_span(s, is_vchar);
        if (r != 0)
                return r;
        if (b[s->pos] == '\r' || b[s->pos] == '\n')
                return fail(s, HTTP1_ERR_HTTP09); /* "GET /\r\n": no version */
        if (b[s->pos] == '\t')
                return fail(s, HTTP1_ERR_REQUEST_LINE);
        if (b[s->pos] != ' ')
                return fail(s, HTTP1_ERR_TARGET_CHAR);
        r = take_token(s, start, &req->target, &req->target_len);
        if (r != 0)
                return r;
        if (is_ows(b[s->pos]))
                return fail(s, HTTP1_ERR_REQUEST_LINE); /* "GET /  HTTP/1.1" */

        r = scan_version(s, &req->minor_version);
        if (r != 0)
                return r;
        return scan_crlf(s, HTTP1_ERR_REQUEST_LINE);
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (§4).
 * Also accepts no SP after the code: RFC 9112 asks recipients to accept it. */
static int scan_status_line(Scan *s, Http1Response *resp) {
        const char *b = s->buf;
        size_t start;
        int r, status = 0;

        if (s->pos >= s->end)
                return PARTIAL;
        if (b[s->pos] == '\r' || b[s->pos] == '\n')
                return fail(s, HTTP1_ERR_LEADING_EMPTY_LINE);

        r = scan_version(s, &resp->minor_version);
        if (r != 0)
                return r;
        if (s->pos >= s->end)
                return PARTIAL;
        if (b[s->pos] != ' ')
                return fail(s, HTTP1_ERR_STATUS_LINE);
        s->pos++;

        for (int i = 0; i < 3; i++, s->pos++) {
                if (s->pos >= s->end)
                        return PARTIAL;
                if (b[s->pos] < '0' || b[s->pos] > '9' || (i == 0 && (b[s->pos] < '1' || b[s->pos] > '5')))
                        return fail(s, HTTP1_ERR_STATUS_CODE);
                status = status * 10 + (b[s->pos] - '0');
        }
        resp->status = status;

        if (s->pos >= s->end)
                return PARTIAL;
        if (b[s->pos] == ' ') {
                s->pos++;
        } else if (b[s->pos] != '\r' && b[s->pos] != '\n') {
                return fail(s, HTTP1_ERR_STATUS_CODE); /* "2000", "200x" */
        }

        start = s->pos;
        r = scan_span(s, is_reason_char);
        if (r != 0)
                return r;
        resp->reason = b + start;
        resp->reason_len = s->pos - start;
        return scan_crlf(s, HTTP1_ERR_STATUS_LINE);
}

/* *( field-line CRLF ) CRLF (§2.1, §5): field-line = field-name ":" OWS
 * field-value OWS. Fills headers[0..*ret_n). */
static int scan_fields(Scan *s, Http1Header *headers, size_t max_headers, size_t *ret_n) {
        const char *b = s->buf;
        size_t n = 0;
        int r;

        for (;;) {
                size_t name, name_len, value, value_end;

                if (s->pos >= s->end)
                        return PARTIAL;
                if (b[s->pos] == '\r' || b[s->pos] == '\n') {
                        r = scan_crlf(s, HTTP1_ERR_HEADER_NAME);
                        if (r != 0)
                                return r;
                        *ret_n = n;
                        return 0;
                }
                /* obs-fold (§5.2), or whitespace between the start-line and
                 * the first field (§2.2): both MUST be rejected or ignored
                 * by a server; ignoring them is how smuggling starts. */
                if (is_ows(b[s->pos]))
                        return fail(s, HTTP1_ERR_OBS_FOLD);
                if (n >= max_headers)
                        return fail(s, HTTP1_ERR_TOO_MANY_HEADERS);

                name = s->pos;
                r = scan_span(s, is_tchar);
                if (r != 0)
                        return r;
                if (b[s->pos] != ':') {
                        /* §5.1: no whitespace between name and colon. */
                        if (is_ows(b[s->pos]))
                                return fail(s, HTTP1_ERR_SPACE_BEFORE_COLON);
                        if (b[s->pos] == '\r' || b[s->pos] == '\n')
                                return fail(s, HTTP1_ERR_NO_COLON);
                        return fail(s, HTTP1_ERR_HEADER_NAME);
                }
                if (s->pos == name)
                        return fail(s, HTTP1_ERR_HEADER_NAME);
                name_len = s->pos - name;
                s->pos++;

                while (s->pos < s->end && is_ows(b[s->pos]))
                        s->pos++;
                value = value_end = s->pos;
                while (s->pos < s->end) {
                        if (is_vchar(b[s->pos]))
                                value_end = ++s->pos;
                        else if (is_ows(b[s->pos]))
                                s->pos++;
                        else
                                break;
                }
                if (s->pos >= s->end)
                        return PARTIAL;
                /* CTLs but HTAB, and obs-text: refused (§5.5 allows a
                 * recipient to reject them; NUL, CR and LF it must). */
                r = scan_crlf(s, HTTP1_ERR_HEADER_VALUE);
                if (r != 0)
                        return r;

                headers[n++] = (Http1Header){
                        .name = b + name,
                        .name_len = name_len,
                        .value = b + value,
                        .value_len = value_end - value,
                };
        }
}

/* ---- field semantics ---------------------------------------------------- */

/* What the fields that govern framing and the connection say. */
typedef struct Fields {
        const char *host;
        size_t host_len;
        bool has_content_length;
        uint64_t content_length;
        bool has_transfer_encoding;
        bool conn_close;
        bool conn_keep_alive;
        bool expect_continue;
} Fields;

/* Content-Length = 1*DIGIT (RFC 9110 §8.6). Leading zeros are refused as
 * well: no client sends them and some parsers read them as octal. */
static Http1Error parse_content_length(const char *v, size_t n, uint64_t *ret) {
        uint64_t x = 0;

        if (n == 0 || (v[0] == '0' && n > 1))
                return HTTP1_ERR_CONTENT_LENGTH_INVALID;
        for (size_t i = 0; i < n; i++)
                if (v[i] < '0' || v[i] > '9')
                        return HTTP1_ERR_CONTENT_LENGTH_INVALID;
        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned)(v[i] - '0');

                if (x > (HTTP1_MAX_CONTENT_LENGTH - d) / 10)
                        return HTTP1_ERR_CONTENT_LENGTH_TOO_LARGE;
                x = x * 10 + d;
        }
        *ret = x;
        return HTTP1_OK;
}

static bool host_valid(const char *v, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!host_table[(unsigned char)v[i]])
                        return false;
        return true;
}

/* Connection = #connection-option (RFC 9110 §7.6.1): a comma-separated list
 * of tokens, empty elements allowed. */
static Http1Error parse_connection(const char *v, size_t n, Fields *f) {
        size_t i = 0;

        while (i < n) {
                size_t start, end;

                while (i < n && (is_ows(v[i]) || v[i] == ','))
                        i++;
                if (i >= n)
                        break;
                start = i;
                while (i < n && is_tchar(v[i]))
                        i++;
                end = i;
                while (i < n && is_ows(v[i]))
                        i++;
                if (end == start || (i < n && v[i] != ','))
                        return HTTP1_ERR_CONNECTION;

                if (case_eq(v + start, end - start, "close"))
                        f->conn_close = true;
                else if (case_eq(v + start, end - start, "keep-alive"))
                        f->conn_keep_alive = true;
                else if (case_eq(v + start, end - start, "host") ||
                         case_eq(v + start, end - start, "content-length") ||
                         case_eq(v + start, end - start, "transfer-encoding"))
                        /* A hop-by-hop nomination that would let a proxy
                         * strip the framing or the authority. */
                        return HTTP1_ERR_CONNECTION;
        }
        return HTTP1_OK;
}

/* Reads the fields that matter to us, in order; the first problem wins. */
static Http1Error scan_semantics(const Http1Header *headers, size_t n, bool request, Fields *f) {
        Http1Error e;

        for (size_t i = 0; i < n; i++) {
                const Http1Header *h = headers + i;

                if (http1_header_is(h, "content-length")) {
                        /* §6.3: a list or a repeat of equal values MAY be
                         * accepted; we don't, duplicates smuggle. */
                        if (f->has_content_length)
                                return HTTP1_ERR_CONTENT_LENGTH_DUPLICATE;
                        e = parse_content_length(h->value, h->value_len, &f->content_length);
                        if (e != HTTP1_OK)
                                return e;
                        f->has_content_length = true;
                } else if (http1_header_is(h, "transfer-encoding")) {
                        if (f->has_transfer_encoding)
                                return HTTP1_ERR_TRANSFER_ENCODING_DUPLICATE;
                        /* Only "chunked" alone: we apply no other coding, and
                         * a list is where parsers disagree. */
                        if (!case_eq(h->value, h->value_len, "chunked"))
                                return HTTP1_ERR_TRANSFER_ENCODING;
                        f->has_transfer_encoding = true;
                } else if (http1_header_is(h, "connection")) {
                        e = parse_connection(h->value, h->value_len, f);
                        if (e != HTTP1_OK)
                                return e;
                } else if (!request) {
                        continue;
                } else if (http1_header_is(h, "host")) {
                        /* §3.2: a request with more than one Host, or an
                         * invalid one, MUST get 400. */
                        if (f->host)
                                return HTTP1_ERR_HOST_DUPLICATE;
                        if (!host_valid(h->value, h->value_len))
                                return HTTP1_ERR_HOST_INVALID;
                        f->host = h->value;
                        f->host_len = h->value_len;
                } else if (http1_header_is(h, "expect")) {
                        if (!case_eq(h->value, h->value_len, "100-continue"))
                                return HTTP1_ERR_EXPECT;
                        f->expect_continue = true;
                } else if (http1_header_is(h, "upgrade") || http1_header_is(h, "http2-settings")) {
                        return HTTP1_ERR_UPGRADE;
                }
        }
        return HTTP1_OK;
}

/* Framing rules shared by requests and responses (§6.1, §6.3). */
static Http1Error check_framing(const Fields *f, int minor_version) {
        /* §6.1: a server MUST NOT apply chunked to an HTTP/1.0 message, and a
         * 1.0 recipient of Transfer-Encoding cannot trust the framing. */
        if (f->has_transfer_encoding && minor_version == 0)
                return HTTP1_ERR_TRANSFER_ENCODING_HTTP10;
        /* §6.3 point 3: MAY be processed as chunked, but "ought to be handled
         * as an error"; it is the textbook smuggling request. */
        if (f->has_transfer_encoding && f->has_content_length)
                return HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING;
        return HTTP1_OK;
}

static bool keep_alive(const Fields *f, int minor_version) {
        if (f->conn_close)
                return false;
        /* HTTP/1.0 persistence only on request (RFC 9112 §9.3, Appendix C.2.2):
         * "ab -k" sends "Connection: Keep-Alive". */
        return minor_version == 1 || f->conn_keep_alive;
}

/* ---- entry points ------------------------------------------------------- */

/* The result of a head scan that stopped before the end of the head (k is
 * PARTIAL or -1): -2 to read more, or -1 with *ret_error set, which is
 * HTTP1_ERR_HEAD_TOO_LARGE once more than HTTP1_MAX_HEAD bytes did not hold
 * a head. */
static int scan_unfinished(const Scan *s, int k, size_t len, Http1Error *ret_error) {
        if (k == PARTIAL && len <= HTTP1_MAX_HEAD)
                return PARTIAL;
        *ret_error = k == PARTIAL ? HTTP1_ERR_HEAD_TOO_LARGE : s->error;
        return -1;
}

/* One head, request (req) or response (resp; the other NULL): the start line, the fields, their
 * semantics and the framing they describe, into *req or *resp, headers and *f. Returns the
 * head's length, PARTIAL to read more, or -1 with *ret_error set. */
static int scan_head(const char *buf, size_t len, Http1Request *req, Http1Response *resp,
                     Http1Header *headers, size_t max_headers, Fields *f, Http1Error *ret_error) {
        Scan s = {
                .buf = buf,
                .end = min_size(len, HTTP1_MAX_HEAD),
        };
        size_t *n_headers = req ? &req->n_headers : &resp->n_headers;
        Http1Error e;
        int k;

        assert(buf || len == 0);
        assert(!req != !resp);
        assert(headers || max_headers == 0);

        k = req ? scan_request_line(&s, req) : scan_status_line(&s, resp);
        if (k == 0)
                k = scan_fields(&s, headers, max_headers, n_headers);
        if (k != 0)
                return scan_unfinished(&s, k, len, ret_error);

        e = scan_semantics(headers, *n_headers, req != NULL, f);
        if (e == HTTP1_OK)
                e = check_framing(f, req ? req->minor_version : resp->minor_version);
        if (e != HTTP1_OK) {
                *ret_error = e;
                return -1;
        }
        return (int)s.pos;
}

int http1_parse_request(const char *buf, size_t len, Http1Request *req, Http1Header *headers,
                        size_t max_headers) {
        Http1Request r = {};
        Fields f = {};
        int k;

        assert(req);

        k = scan_head(buf, len, &r, NULL, headers, max_headers, &f, &req->error);
        if (k < 0)
                return k;
        /* §3.2: a client MUST send Host in every HTTP/1.1 request. */
        if (r.minor_version == 1 && !f.host) {
                req->error = HTTP1_ERR_HOST_MISSING;
                return -1;
        }

        r.host = f.host;
        r.host_len = f.host_len;
        if (f.has_transfer_encoding)
                r.body = HTTP1_BODY_CHUNKED;
        else if (f.has_content_length) {
                r.body = HTTP1_BODY_LENGTH;
                r.content_length = f.content_length;
        } else
                r.body = HTTP1_BODY_NONE; /* §6.3 point 7 */
        r.keep_alive = keep_alive(&f, r.minor_version);
        /* RFC 9110 §10.1.1: a 100-continue in an HTTP/1.0 request MUST be
         * ignored. */
        r.expect_continue = f.expect_continue && r.minor_version == 1;
        r.error = HTTP1_OK;

        *req = r;
        return k;
}

int http1_parse_response(const char *buf, size_t len, bool head_request, Http1Response *resp,
                         Http1Header *headers, size_t max_headers) {
        Http1Response r = {};
        Fields f = {};
        int k;

        assert(resp);

        k = scan_head(buf, len, NULL, &r, headers, max_headers, &f, &resp->error);
        if (k < 0)
                return k;
        /* We never send Upgrade, so a 101 is a confused upstream. */
        if (r.status == 101) {
                resp->error = HTTP1_ERR_UPGRADE;
                return -1;
        }

        r.keep_alive = keep_alive(&f, r.minor_version);
        r.content_length = f.content_length;
        /* §6.3 points 1 and 2: no body after HEAD, 1xx, 204, 304, whatever
         * the fields say (Content-Length then describes the GET). */
        if (head_request || r.status < 200 || r.status == 204 || r.status == 304)
                r.body = HTTP1_BODY_NONE;
        else if (f.has_transfer_encoding)
                r.body = HTTP1_BODY_CHUNKED;
        else if (f.has_content_length)
                r.body = HTTP1_BODY_LENGTH;
        else {
                /* §6.3 point 8: read until close. */
                r.body = HTTP1_BODY_UNTIL_CLOSE;
                r.keep_alive = false;
        }
        r.error = HTTP1_OK;

        *resp = r;
        return k;
}

int http1_parse_status_line(const char *buf, size_t len, Http1Response *resp) {
        Scan s = {
                .buf = buf,
                .end = min_size(len, HTTP1_MAX_HEAD),
        };
        Http1Response r = {};
        int k;

        assert(buf || len == 0);
        assert(resp);

        k = scan_status_line(&s, &r);
        if (k != 0)
                return scan_unfinished(&s, k, len, &resp->error);
        resp->minor_version = r.minor_version;
        resp->status = r.status;
        resp->reason = r.reason;
        resp->reason_len = r.reason_len;
        resp->error = HTTP1_OK;
        return (int)s.pos;
}

/* ---- chunked bodies (§7.1) ---------------------------------------------- */

enum {
        CH_SIZE,            /* chunk-size: 1*HEXDIG */
        CH_EXT_NAME_START,  /* after ';' */
        CH_EXT_NAME,        /* chunk-ext-name: token */
        CH_EXT_VALUE_START, /* after '=' */
        CH_EXT_VALUE,       /* chunk-ext-val: token (no quoted-string) */
        CH_SIZE_LF,         /* CR seen at the end of the size line */
        CH_DATA,            /* remaining data bytes of this chunk */
        CH_DATA_CR,         /* CRLF after chunk-data */
        CH_DATA_LF,
        CH_TRAILER_START, /* start of a trailer line, or the final CRLF */
        CH_TRAILER_NAME,
        CH_TRAILER_VALUE,
        CH_TRAILER_LF,
        CH_END_LF, /* CR of the final empty line seen */
        CH_DONE,
        CH_ERROR,
};

void http1_chunked_init(Http1Chunked *s) {
        assert(s);
        *s = (Http1Chunked){.state = CH_SIZE};
}

bool http1_chunked_done(const Http1Chunked *s) {
        return s->state == CH_DONE;
}

/* The chunked decoder's steps below each take one framing byte (never in
 * CH_DATA) in the states they are named for, and return the next state, or
 * CH_ERROR with s->error set. */
static unsigned chunk_error(Http1Chunked *s, Http1Error e) {
        s->error = e;
        return CH_ERROR;
}

/* The end of a line of the chunked framing (size line, extension, trailer field): CR goes on
 * to on_cr (its LF), a bare LF is its own error, anything else the line's error. */
static unsigned chunk_line_end(Http1Chunked *s, char c, unsigned on_cr, Http1Error otherwise) {
        if (c == '\r')
                return on_cr;
        if (c == '\n')
                return chunk_error(s, HTTP1_ERR_BARE_LF);
        return chunk_error(s, otherwise);
}

/* chunk-size = 1*HEXDIG, ended by ';' (extensions) or CRLF. */
static unsigned chunk_size_step(Http1Chunked *s, char c) {
        int v = unhexchar(c);

        if (v >= 0) {
                /* 16 digits at most: the size always fits. */
                if (s->count >= HTTP1_CHUNK_SIZE_MAX_DIGITS)
                        return chunk_error(s, HTTP1_ERR_CHUNK_SIZE_TOO_LARGE);
                s->remaining = (s->remaining << 4) | (uint64_t)v;
                s->count++;
                return CH_SIZE;
        }
        /* No whitespace anywhere in the size line: "5 ;x" and "5\t" are read
         * differently by different parsers. */
        if (s->count == 0)
                return chunk_error(s, HTTP1_ERR_CHUNK_SIZE);
        if (c == ';') {
                s->count = 1; /* now counting extension bytes */
                return CH_EXT_NAME_START;
        }
        return chunk_line_end(s, c, CH_SIZE_LF, HTTP1_ERR_CHUNK_SIZE);
}

/* chunk-ext = *( ";" token [ "=" token ] ) up to the size line's CR,
 * accepted and not interpreted; at most HTTP1_CHUNK_EXT_MAX bytes counted
 * from its first ';'. */
static unsigned chunk_ext_step(Http1Chunked *s, char c) {
        if (c != '\r' && c != '\n' && ++s->count > HTTP1_CHUNK_EXT_MAX)
                return chunk_error(s, HTTP1_ERR_CHUNK_EXTENSION);

        switch (s->state) {
        case CH_EXT_NAME_START:
        case CH_EXT_VALUE_START:
                if (is_tchar(c))
                        return s->state == CH_EXT_NAME_START ? CH_EXT_NAME : CH_EXT_VALUE;
                return chunk_error(s, HTTP1_ERR_CHUNK_EXTENSION);
        default: /* CH_EXT_NAME, CH_EXT_VALUE */
                if (is_tchar(c))
                        return s->state;
                if (c == '=' && s->state == CH_EXT_NAME)
                        return CH_EXT_VALUE_START;
                if (c == ';')
                        return CH_EXT_NAME_START;
                return chunk_line_end(s, c, CH_SIZE_LF, HTTP1_ERR_CHUNK_EXTENSION);
        }
}

/* The CRLFs around chunk-data: the LF of the size line (then the data, or
 * the trailer after the last chunk), and the CRLF after the data. */
static unsigned chunk_line_end_step(Http1Chunked *s, char c) {
        switch (s->state) {
        case CH_SIZE_LF:
                if (c != '\n')
                        return chunk_error(s, HTTP1_ERR_BARE_CR);
                s->count = 0;
                return s->remaining == 0 ? CH_TRAILER_START : CH_DATA;
        case CH_DATA_CR:
                /* The data was longer or shorter than its size said. */
                if (c != '\r')
                        return chunk_error(s, HTTP1_ERR_CHUNK_DATA_CRLF);
                return CH_DATA_LF;
        default: /* CH_DATA_LF */
                if (c != '\n')
                        return chunk_error(s, HTTP1_ERR_BARE_CR);
                s->remaining = 0;
                s->count = 0;
                return CH_SIZE;
        }
}

/* trailer-section = *( field-line CRLF ) CRLF, the same rules as the head;
 * validated and dropped, at most HTTP1_MAX_TRAILER bytes. */
static unsigned chunk_trailer_step(Http1Chunked *s, char c) {
        if (++s->trailer_len > HTTP1_MAX_TRAILER)
                return chunk_error(s, HTTP1_ERR_TRAILER_TOO_LARGE);

        switch (s->state) {
        case CH_TRAILER_START:
                if (c == '\r')
                        return CH_END_LF;
                if (c == '\n')
                        return chunk_error(s, HTTP1_ERR_BARE_LF);
                if (is_ows(c))
                        return chunk_error(s, HTTP1_ERR_OBS_FOLD);
                if (is_tchar(c))
                        return CH_TRAILER_NAME;
                return chunk_error(s, HTTP1_ERR_HEADER_NAME);
        case CH_TRAILER_NAME:
                if (is_tchar(c))
                        return CH_TRAILER_NAME;
                if (c == ':')
                        return CH_TRAILER_VALUE;
                if (is_ows(c))
                        return chunk_error(s, HTTP1_ERR_SPACE_BEFORE_COLON);
                if (c == '\r' || c == '\n')
                        return chunk_error(s, HTTP1_ERR_NO_COLON);
                return chunk_error(s, HTTP1_ERR_HEADER_NAME);
        case CH_TRAILER_VALUE:
                if (is_vchar(c) || is_ows(c))
                        return CH_TRAILER_VALUE;
                return chunk_line_end(s, c, CH_TRAILER_LF, HTTP1_ERR_HEADER_VALUE);
        default: /* CH_TRAILER_LF, CH_END_LF */
                if (c != '\n')
                        return chunk_error(s, HTTP1_ERR_BARE_CR);
                return s->state == CH_END_LF ? CH_DONE : CH_TRAILER_START;
        }
}

/* One framing byte: dispatches on the part of the body the state is in. */
static unsigned chunked_step(Http1Chunked *s, char c) {
        switch (s->state) {
        case CH_SIZE:
                return chunk_size_step(s, c);
        case CH_EXT_NAME_START:
        case CH_EXT_NAME:
        case CH_EXT_VALUE_START:
        case CH_EXT_VALUE:
                return chunk_ext_step(s, c);
        case CH_SIZE_LF:
        case CH_DATA_CR:
        case CH_DATA_LF:
                return chunk_line_end_step(s, c);
        case CH_TRAILER_START:
        case CH_TRAILER_NAME:
        case CH_TRAILER_VALUE:
        case CH_TRAILER_LF:
        case CH_END_LF:
                return chunk_trailer_step(s, c);
        default:
                assert(!"unreachable chunked state");
                return chunk_error(s, HTTP1_ERR_CHUNK_SIZE);
        }
}

ssize_t http1_chunked_feed(Http1Chunked *s, const char *in, size_t len, size_t *ret_data_off,
                           size_t *ret_data_len) {
        size_t i = 0;

        assert(s);
        assert(in || len == 0);
        assert(ret_data_off && ret_data_len);

        if (s->state == CH_ERROR)
                return -1;

        while (i < len && s->state != CH_DONE) {
                if (s->state == CH_DATA) {
                        size_t n = s->remaining < len - i ? (size_t)s->remaining : len - i;

                        s->remaining -= n;
                        s->body_len += n;
                        if (s->remaining == 0)
                                s->state = CH_DATA_CR;
                        *ret_data_off = i;
                        *ret_data_len = n;
                        return (ssize_t)(i + n);
                }
                s->state = chunked_step(s, in[i]);
                if (s->state == CH_ERROR)
                        return -1;
                i++;
        }

        *ret_data_off = i;
        *ret_data_len = 0;
        return (ssize_t)i;
}

size_t http1_chunk_header(char buf[static HTTP1_CHUNK_HEADER_MAX], uint64_t len) {
        static const char digits[] = "0123456789abcdef";
        size_t n = 0;

        assert(len > 0);
        for (int shift = 60; shift >= 0; shift -= 4) {
                unsigned d = (unsigned)(len >> shift) & 0xf;

                if (d != 0 || n > 0)
                        buf[n++] = digits[d];
        }
        buf[n++] = '\r';
        buf[n++] = '\n';
        buf[n] = '\0';
        return n;
}

/* ---- errors ------------------------------------------------------------- */

static const char *const error_strings[_HTTP1_ERR_MAX] = {
        [HTTP1_OK] = "no error",
        [HTTP1_ERR_HEAD_TOO_LARGE] = "head too large",
        [HTTP1_ERR_TOO_MANY_HEADERS] = "too many header fields",
        [HTTP1_ERR_LEADING_EMPTY_LINE] = "empty line before the start line",
        [HTTP1_ERR_BARE_LF] = "bare LF",
        [HTTP1_ERR_BARE_CR] = "bare CR",
        [HTTP1_ERR_METHOD] = "method is not a token",
        [HTTP1_ERR_REQUEST_LINE] = "malformed request line",
        [HTTP1_ERR_TARGET_FORM] = "request target is not in origin-form",
        [HTTP1_ERR_TARGET_CHAR] = "invalid byte in request target",
        [HTTP1_ERR_HTTP09] = "HTTP/0.9 request (no version)",
        [HTTP1_ERR_HTTP2_PREFACE] = "HTTP/2 connection preface",
        [HTTP1_ERR_VERSION] = "unsupported HTTP version",
        [HTTP1_ERR_OBS_FOLD] = "obs-fold or whitespace at start of a field line",
        [HTTP1_ERR_HEADER_NAME] = "invalid field name",
        [HTTP1_ERR_SPACE_BEFORE_COLON] = "whitespace before colon in field line",
        [HTTP1_ERR_NO_COLON] = "field line without colon",
        [HTTP1_ERR_HEADER_VALUE] = "invalid byte in field value",
        [HTTP1_ERR_HOST_MISSING] = "missing Host",
        [HTTP1_ERR_HOST_DUPLICATE] = "duplicate Host",
        [HTTP1_ERR_HOST_INVALID] = "invalid Host",
        [HTTP1_ERR_CONTENT_LENGTH_INVALID] = "invalid Content-Length",
        [HTTP1_ERR_CONTENT_LENGTH_DUPLICATE] = "duplicate Content-Length",
        [HTTP1_ERR_CONTENT_LENGTH_TOO_LARGE] = "Content-Length too large",
        [HTTP1_ERR_TRANSFER_ENCODING] = "unsupported Transfer-Encoding",
        [HTTP1_ERR_TRANSFER_ENCODING_DUPLICATE] = "duplicate Transfer-Encoding",
        [HTTP1_ERR_TRANSFER_ENCODING_HTTP10] = "Transfer-Encoding in HTTP/1.0",
        [HTTP1_ERR_CONTENT_LENGTH_AND_TRANSFER_ENCODING] = "both Content-Length and Transfer-Encoding",
        [HTTP1_ERR_CONNECTION] = "invalid Connection",
        [HTTP1_ERR_EXPECT] = "unsupported expectation",
        [HTTP1_ERR_UPGRADE] = "protocol upgrade refused",
        [HTTP1_ERR_STATUS_LINE] = "malformed status line",
        [HTTP1_ERR_STATUS_CODE] = "invalid status code",
        [HTTP1_ERR_CHUNK_SIZE] = "invalid chunk size",
        [HTTP1_ERR_CHUNK_SIZE_TOO_LARGE] = "chunk size too large",
        [HTTP1_ERR_CHUNK_EXTENSION] = "invalid chunk extension",
        [HTTP1_ERR_CHUNK_DATA_CRLF] = "missing CRLF after chunk data",
        [HTTP1_ERR_TRAILER_TOO_LARGE] = "trailer section too large",
};

const char *http1_error_string(int error) {
        if (error < 0 || error >= _HTTP1_ERR_MAX || !error_strings[error])
                return "unknown error";
        return error_strings[error];
}

int http1_error_status(int error) {
        switch (error) {
        case HTTP1_ERR_HEAD_TOO_LARGE:
        case HTTP1_ERR_TOO_MANY_HEADERS:
                return 431; /* Request Header Fields Too Large */
        case HTTP1_ERR_EXPECT:
                return 417; /* Expectation Failed */
        case HTTP1_ERR_VERSION:
                return 505; /* HTTP Version Not Supported */
        default:
                return 400;
        }
}
