/* SPDX-License-Identifier: MIT */
/*
 * Request and response heads the proxy writes; see headers.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "macro.h"

/* An output cursor: appends until the first overflow, then only counts. */
typedef struct {
        char *buf;
        size_t size, len;
        bool overflow;
} Out;

static void out_mem(Out *o, const void *p, size_t n) {
        if (o->overflow || n > o->size - o->len) {
                o->overflow = true;
                return;
        }
        memcpy(o->buf + o->len, p, n);
        o->len += n;
}

static void out_str(Out *o, const char *s) {
        out_mem(o, s, strlen(s));
}

_printf_(2, 3) static void out_fmt(Out *o, const char *fmt, ...) {
        va_list ap;
        int n;

        if (o->overflow)
                return;
        va_start(ap, fmt);
        n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= o->size - o->len)
                o->overflow = true;
        else
                o->len += (size_t)n;
}

static void out_field(Out *o, const Http1Header *h) {
        out_mem(o, h->name, h->name_len);
        out_mem(o, ": ", 2);
        out_mem(o, h->value, h->value_len);
        out_mem(o, "\r\n", 2);
}

static int out_done(const Out *o) {
        return o->overflow ? -ENOBUFS : (int)o->len;
}

static bool name_is(const char *a, size_t a_len, const char *b, size_t b_len) {
        return a_len == b_len && strncasecmp(a, b, a_len) == 0;
}

/* Whether the Connection fields among h[] nominate this field name. The
 * parser has checked that each list element is a token. */
static bool nominated(const Http1Header *h, size_t n, const char *name, size_t name_len) {
        for (size_t i = 0; i < n; i++) {
                if (!http1_header_is(&h[i], "Connection"))
                        continue;
                const char *p = h[i].value, *end = p + h[i].value_len;
                while (p < end) {
                        while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
                                p++;
                        const char *tok = p;
                        while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                                p++;
                        if (p > tok && name_is(tok, (size_t)(p - tok), name, name_len))
                                return true;
                }
        }
        return false;
}

/* RFC 9110 §7.6.1 and the Proxy-* family. */
static bool hop_by_hop(const Http1Header *all, size_t n, const Http1Header *h) {
        static const char *const fixed[] = {
                "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade", "HTTP2-Settings",
        };
        for (size_t i = 0; i < ELEMENTSOF(fixed); i++)
                if (http1_header_is(h, fixed[i]))
                        return true;
        if (h->name_len >= 6 && strncasecmp(h->name, "Proxy-", 6) == 0)
                return true;
        return nominated(all, n, h->name, h->name_len);
}

/* Request fields the proxy never passes on, besides hop-by-hop ones: what
 * it writes itself, and what would let a client speak for the proxy. Go's
 * registry takes the client address for its log from X-Forwarded-For, then
 * X-Real-IP; other fields are there for whatever may sit behind it one day.
 * Each row: why. */
static const char *const request_dropped[] = {
        "Host",               /* ours: a configured server name, forward_authority() */
        "Expect",             /* the proxy answers 100-continue itself */
        "X-Forwarded-Proto",  /* ours: https */
        "X-Forwarded-For",    /* ours: the peer alone; a client's list would be logged */
        "X-Real-IP",          /* ours: the peer */
        "Forwarded",          /* RFC 7239: for=, host=, proto= of the client's choosing */
        "X-Forwarded-Host",   /* would change the URLs a registry builds */
        "X-Forwarded-Port",   /* same */
        "X-Forwarded-Server", /* same family, no use here */
        "X-Forwarded-Prefix", /* same */
        "X-Client-IP",        /* address forgeries some frameworks believe */
        "True-Client-IP",     /* same */
        "X-Original-URL",     /* path overrides some frameworks believe */
        "X-Rewrite-URL",      /* same */
        /* Credentials end here. The registry has no auth of its own (no
         * auth: section in its configuration), so it has no use for them:
         * [push] htpasswd passwords are checked by the proxy
         * (exchange_check_auth()), and whatever a client sends elsewhere (a
         * stored login, a token for another registry) is not for the
         * registry's logs or process either. */
        "Authorization",
};

bool headers_request_dropped(const Http1Header *all, size_t n, const Http1Header *h) {
        if (hop_by_hop(all, n, h))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(request_dropped); i++)
                if (http1_header_is(h, request_dropped[i]))
                        return true;
        return false;
}

int headers_request(const Http1Request *req, const Http1Header *h, size_t n_headers,
                    const HeadersRequestOptions *o, char *out, size_t out_size) {
        Out w = {.buf = out, .size = out_size};

        out_mem(&w, req->method, req->method_len);
        out_mem(&w, " ", 1);
        out_mem(&w, o->path, o->path_len);
        out_mem(&w, o->query, o->query_len);
        out_str(&w, " HTTP/1.1\r\n");

        for (size_t i = 0; i < n_headers; i++) {
                const Http1Header *f = &h[i];
                if (headers_request_dropped(h, n_headers, f))
                        continue;
                if (o->chunked && http1_header_is(f, "Transfer-Encoding"))
                        continue;
                out_field(&w, f);
        }

        /* Ours, in place of the client's (request_dropped[]). */
        out_fmt(&w,
                "Host: %s\r\n"
                "X-Forwarded-Proto: https\r\n"
                "X-Forwarded-For: %s\r\n"
                "X-Real-IP: %s\r\n",
                o->authority, o->peer, o->peer);
        if (o->chunked)
                out_str(&w, "Transfer-Encoding: chunked\r\n");
        out_str(&w, "\r\n");
        return out_done(&w);
}

int headers_response(const Http1Response *resp, const Http1Header *h, size_t n_headers,
                     const HeadersResponseOptions *o, char *out, size_t out_size) {
        Out w = {.buf = out, .size = out_size};
        bool api_version = false;

        out_fmt(&w, "HTTP/1.1 %d ", resp->status);
        if (resp->reason_len > 0)
                out_mem(&w, resp->reason, resp->reason_len);
        else
                out_str(&w, headers_reason(resp->status));
        out_str(&w, "\r\n");

        for (size_t i = 0; i < n_headers; i++) {
                const Http1Header *f = &h[i];
                if (hop_by_hop(h, n_headers, f) || http1_header_is(f, "Strict-Transport-Security") ||
                    http1_header_is(f, "X-Registry-Supports-Signatures"))
                        continue;
                if (o->dechunk && http1_header_is(f, "Transfer-Encoding"))
                        continue;
                if (http1_header_is(f, "Docker-Distribution-Api-Version"))
                        api_version = true;
                out_field(&w, f);
        }
        out_str(&w, "Strict-Transport-Security: " HEADERS_HSTS "\r\n");
        if (!api_version)
                out_str(&w, "Docker-Distribution-Api-Version: " HEADERS_API_VERSION "\r\n");
        if (o->supports_signatures)
                out_str(&w, "X-Registry-Supports-Signatures: 1\r\n");
        if (o->close)
                out_str(&w, "Connection: close\r\n");
        else if (o->keep_alive_http10)
                out_str(&w, "Connection: keep-alive\r\n");
        out_str(&w, "\r\n");
        return out_done(&w);
}

/* JSON string contents: our messages are ASCII constants, but a detail may
 * quote what a library said; escape everything JSON requires. */
static void out_json_string(Out *w, const char *s) {
        out_mem(w, "\"", 1);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\') {
                        char e[2] = {'\\', (char)ch};
                        out_mem(w, e, 2);
                } else if (ch < 0x20 || ch >= 0x7f)
                        out_fmt(w, "\\u%04x", ch);
                else
                        out_mem(w, s, 1);
        }
        out_mem(w, "\"", 1);
}

int headers_error(const HeadersError *e, char *out, size_t out_size) {
        char body[1024];
        Out b = {.buf = body, .size = sizeof(body)};
        Out w = {.buf = out, .size = out_size};

        out_str(&b, "{\"errors\":[{\"code\":");
        out_json_string(&b, e->code);
        out_str(&b, ",\"message\":");
        out_json_string(&b, e->message);
        out_str(&b, ",\"detail\":");
        if (e->detail)
                out_json_string(&b, e->detail);
        else
                out_str(&b, "null");
        out_str(&b, "}]}\n");
        if (b.overflow)
                return -ENOBUFS;

        out_fmt(&w, "HTTP/1.1 %d %s\r\n", e->status, headers_reason(e->status));
        out_str(&w, "Content-Type: application/json; charset=utf-8\r\n");
        out_fmt(&w, "Content-Length: %zu\r\n", b.len);
        out_str(&w, "Strict-Transport-Security: " HEADERS_HSTS "\r\n"
                    "Docker-Distribution-Api-Version: " HEADERS_API_VERSION "\r\n");
        /* As the registry's own answers: a JSON error is never sniffed as
         * something else (testssl.sh rates its absence medium). */
        out_str(&w, "X-Content-Type-Options: nosniff\r\n");
        if (e->retry_after > 0)
                out_fmt(&w, "Retry-After: %u\r\n", e->retry_after);
        if (e->basic_challenge)
                out_str(&w, "WWW-Authenticate: Basic realm=\"regvisor\"\r\n");
        if (e->close)
                out_str(&w, "Connection: close\r\n");
        out_str(&w, "\r\n");
        if (!e->head)
                out_mem(&w, body, b.len);
        return out_done(&w);
}

const char *headers_reason(int status) {
        switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 416: return "Range Not Satisfiable";
        case 417: return "Expectation Failed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
        }
}
