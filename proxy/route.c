/* SPDX-License-Identifier: MIT */
/*
 * Path normalization and the per-port routing policy: see route.h, and
 * policy/proxy-routes.md for the rules in prose.
 */

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "crl-url.h"
#include "route.h"
#include "sigcheck.h"

/* ---- normalization ------------------------------------------------------ */

/* A byte that may appear in a segment of a normalized path: RFC 3986 §3.3
 * pchar without pct-encoded, i.e. unreserved, sub-delims, ':' and '@'. Not
 * '/' (separates segments), '?' (query), '#' (fragment), '%' (escape), nor
 * the visible bytes that are not allowed in a URI path at all ('"', '<',
 * '>', '\\', '^', '`', '{', '|', '}', '[', ']'): parsers disagree on those,
 * and no registry path has them (names, tags, digests and upload ids are
 * [A-Za-z0-9._:+=-]). So the result can be forwarded without re-encoding. */
static bool path_byte_ok(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c != '\0' && strchr("-._~!$&'()*+,;=:@", c));
}

size_t route_target_path_len(const char *target, size_t len) {
        const char *q = memchr(target, '?', len);

        return q ? (size_t)(q - target) : len;
}

/* Decodes the segment seg[0..n) into out (at most n bytes: decoding never
 * grows). Returns the decoded length or a negative errno. */
static ssize_t decode_segment(const char *seg, size_t n, char *out) {
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)seg[i];

                if (c == '%') {
                        int hi, lo;

                        if (n - i < 3)
                                return -EINVAL; /* "%" or "%4" at the end */
                        hi = unhexchar(seg[i + 1]);
                        lo = unhexchar(seg[i + 2]);
                        if (hi < 0 || lo < 0)
                                return -EINVAL;
                        c = (unsigned char)(hi << 4 | lo);
                        /* Decoded, a byte must be what it looks like: "%2F"
                         * is not a separator to us but would be to the
                         * registry (Go routes on the decoded path), "%25"
                         * would decode again, "%3F" would start a query, and
                         * NUL, controls, space and non-ASCII appear in no
                         * registry path. */
                        if (!path_byte_ok(c))
                                return -EILSEQ;
                        i += 2;
                } else if (!path_byte_ok(c))
                        return -EINVAL;
                out[o++] = (char)c;
        }
        return (ssize_t)o;
}

int route_normalize_path(const char *target, size_t len, char *out, size_t out_size, size_t *ret_len) {
        size_t plen, o = 0, i;
        bool trailing_slash = false;

        assert(target || len == 0);
        assert(out);
        assert(ret_len);

        /* The whole target, query included, must be what http1 lets through,
         * and carry no fragment (clients never send one). */
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)target[i];

                if (c < 0x21 || c > 0x7e || c == '#')
                        return -EINVAL;
        }
        plen = route_target_path_len(target, len);
        if (plen == 0 || target[0] != '/')
                return -EINVAL;
        if (out_size < plen + 1)
                return -ENOBUFS;

        /* RFC 3986 §5.2.4 remove_dot_segments, on decoded segments, with
         * empty segments dropped. out holds "/seg/seg..." without a trailing
         * slash; each segment is decoded in place after its '/'. */
        i = 1;
        for (;;) {
                const char *seg = target + i;
                const char *slash = memchr(seg, '/', plen - i);
                size_t n = slash ? (size_t)(slash - seg) : plen - i;
                ssize_t d;

                /* Room: o + 1 + n <= i + n <= plen < out_size, since the
                 * output never gets ahead of the input. */
                d = decode_segment(seg, n, out + o + 1);
                if (d < 0)
                        return (int)d;

                if (d == 0) {
                        /* "//": dropped; at the end: "/v2/" keeps its slash. */
                        trailing_slash = true;
                } else if (d == 1 && out[o + 1] == '.') {
                        trailing_slash = true;
                } else if (d == 2 && out[o + 1] == '.' && out[o + 2] == '.') {
                        if (o == 0)
                                return -EINVAL; /* above the root */
                        while (out[--o] != '/')
                                ;
                        trailing_slash = true;
                } else {
                        out[o] = '/';
                        o += 1 + (size_t)d;
                        trailing_slash = false;
                }

                if (!slash)
                        break;
                i += n + 1;
        }

        if (trailing_slash || o == 0)
                out[o++] = '/';
        out[o] = '\0';
        *ret_len = o;
        return 0;
}

/* ---- policy ------------------------------------------------------------- */

/* A path pattern: segments separated by '/', compared ASCII
 * case-insensitively; "*" is exactly one segment, "**" zero or more. A
 * trailing slash on the path does not matter ("/v2/_catalog/" matches like
 * "/v2/_catalog"). */
typedef struct RouteRule {
        const char *pattern;
} RouteRule;

/* What the pull port never forwards, whatever the method. One row per rule,
 * each with its reason. */
static const RouteRule pull_forbidden[] = {
        /* GET /v2/_catalog lists every repository in the registry; its
         * paginated form only adds a query. Anything below it too: the
         * registry would 404 or redirect it, and there is nothing to pull
         * there. */
        {"/v2/_catalog/**"},
        /* GET /v2/<name>/tags/list lists a repository's tags (and thereby
         * which images exist); <name> is one or more path components. */
        {"/v2/*/**/tags/list"},
        /* Defence in depth: a path ending in tags/list, whatever is before it,
         * also with an empty or invalid name, or outside /v2, in case a
         * future router reads names more liberally. A repository may be
         * called "tags" ("/v2/tags/manifests/latest" stays allowed); it is
         * only the final "tags/list" pair that is refused. */
        {"/**/tags/list"},
};

static bool segment_eq(const char *a, size_t alen, const char *b, size_t blen) {
        if (alen != blen)
                return false;
        for (size_t i = 0; i < alen; i++) {
                char x = a[i], y = b[i];

                if (x >= 'A' && x <= 'Z')
                        x = (char)(x - 'A' + 'a');
                if (y >= 'A' && y <= 'Z')
                        y = (char)(y - 'A' + 'a');
                if (x != y)
                        return false;
        }
        return true;
}

/* Matches pattern segments pat (NUL-terminated, no leading '/') against path
 * segments path[0..len) (no leading or trailing '/'). Recursion depth is
 * bounded by the number of pattern segments; "**" loops. */
static bool glob_match(const char *pat, const char *path, size_t len) {
        const char *pend, *prest, *pslash;
        size_t plen, slen;

        if (*pat == '\0')
                return len == 0;

        pend = strchrnul(pat, '/');
        plen = (size_t)(pend - pat);
        prest = *pend ? pend + 1 : pend;

        if (plen == 2 && pat[0] == '*' && pat[1] == '*') {
                for (;;) {
                        if (glob_match(prest, path, len))
                                return true;
                        if (len == 0)
                                return false;
                        pslash = memchr(path, '/', len);
                        if (!pslash)
                                return glob_match(prest, path + len, 0);
                        len -= (size_t)(pslash + 1 - path);
                        path = pslash + 1;
                }
        }

        if (len == 0)
                return false;
        pslash = memchr(path, '/', len);
        slen = pslash ? (size_t)(pslash - path) : len;
        if (!(plen == 1 && pat[0] == '*') && !segment_eq(pat, plen, path, slen))
                return false;
        return pslash ? glob_match(prest, pslash + 1, len - slen - 1) : glob_match(prest, path + len, 0);
}

static bool rule_matches(const RouteRule *rule, const char *path, size_t len) {
        assert(rule->pattern[0] == '/');

        /* Strip the leading and trailing slash: "/v2/x/" is "v2/x". */
        if (len > 0 && path[0] == '/')
                path++, len--;
        if (len > 0 && path[len - 1] == '/')
                len--;
        return glob_match(rule->pattern + 1, path, len);
}

/* Fails closed on a path that did not come from route_normalize_path(). */
static bool is_normalized(const char *path, size_t len) {
        if (len == 0 || path[0] != '/')
                return false;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)path[i];

                if (c == '/') {
                        const char *seg = path + i + 1;
                        size_t rest = len - i - 1;
                        const char *end = memchr(seg, '/', rest);
                        size_t n = end ? (size_t)(end - seg) : rest;

                        if ((n == 0 && end) || (n == 1 && seg[0] == '.') ||
                            (n == 2 && seg[0] == '.' && seg[1] == '.'))
                                return false;
                } else if (!path_byte_ok(c))
                        return false;
        }
        return true;
}

/* Paths the proxy answers itself, on both ports, for GET and HEAD only:
 * nothing here reaches the registry. Matched exactly, case-sensitively, on
 * the normalized path. */
typedef struct LocalRoute {
        const char *path;
        RouteDecision decision;
} LocalRoute;

static const LocalRoute local_routes[] = {
        /* The CAs' CRLs, DER, as loaded by the proxy (crl-route.c): the
         * CRL distribution point of every certificate provision issues
         * names one of them (common/config/paths.h). Public data: anyone
         * checking a certificate may fetch its issuer's CRL. */
        {CRL_URL_PATH_SERVER_CA, ROUTE_LOCAL_SERVER_CRL},
        {CRL_URL_PATH_CLIENT_CA, ROUTE_LOCAL_CLIENT_CRL},
};

/* The local route of a normalized path, or ROUTE_ALLOW when it is none. */
static RouteDecision local_route(const char *path, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(local_routes); i++)
                if (strlen(local_routes[i].path) == len && memcmp(local_routes[i].path, path, len) == 0)
                        return local_routes[i].decision;
        return ROUTE_ALLOW;
}

/* The signature extension (docs/signature-extension.md): its one path, by
 * the store's own parser, so that the proxy forwards exactly what the store
 * would accept; ROUTE_FORBIDDEN_PATH for anything else below the prefix,
 * which the registry does not serve either; ROUTE_ALLOW (not ours) for a
 * path outside it. Case-sensitive, like the store. */
static RouteDecision extension_route(const char *path, size_t len) {
        const size_t plen = strlen(SIGSTORE_PATH_PREFIX);
        SigPath sp;

        /* "/extensions" and "/extensions/" themselves are the prefix too. */
        if (len < plen - 4 || memcmp(path, SIGSTORE_PATH_PREFIX, plen - 4) != 0 ||
            (len > plen - 4 && path[plen - 4] != '/'))
                return ROUTE_ALLOW;
        return sigcheck_parse_path(path, len, &sp) == 0 ? ROUTE_SIGSTORE : ROUTE_FORBIDDEN_PATH;
}

static bool under_v2(const char *path, size_t len) {
        return (len == 3 && memcmp(path, "/v2", 3) == 0) || (len >= 4 && memcmp(path, "/v2/", 4) == 0);
}

static bool method_is(const char *method, size_t mlen, const char *lit) {
        return mlen == strlen(lit) && memcmp(method, lit, mlen) == 0;
}

/* What a pull reads, and nothing else: an allowlist, because the registry
 * also answers GET on upload sessions (/v2/<name>/blobs/uploads/<uuid>),
 * which resumes an upload, rewrites its state and, with a stale _state
 * token, cancels it. Each row: /v2/<name>/<segment>/<last>, with <name> one
 * or more segments (the registry checks its grammar). Compared
 * case-sensitively, as the registry's router does. */
typedef struct PullEndpoint {
        const char *segment;
        bool last_is_digest; /* "<algorithm>:<hex>": blobs are only by digest */
} PullEndpoint;

static const PullEndpoint pull_endpoints[] = {
        /* GET/HEAD /v2/<name>/manifests/<tag or digest>: what an image is. */
        {"manifests", false},
        /* GET/HEAD /v2/<name>/blobs/<digest>: its layers and config. */
        {"blobs", true},
};

static bool segment_is(const char *seg, size_t n, const char *lit) {
        return n == strlen(lit) && memcmp(seg, lit, n) == 0;
}

/* Whether a normalized path is one a pull needs: "/v2", "/v2/" (the
 * version check every client starts with) or a row above. */
static bool pull_endpoint(const char *path, size_t len) {
        const char *last, *prev;

        if ((len == 3 && memcmp(path, "/v2", 3) == 0) || (len == 4 && memcmp(path, "/v2/", 4) == 0))
                return true;
        if (len < 4 || memcmp(path, "/v2/", 4) != 0 || path[len - 1] == '/')
                return false;
        last = memrchr(path, '/', len);
        prev = memrchr(path, '/', (size_t)(last - path));
        if (!prev || prev <= path + 3) /* no <name> between /v2/ and the endpoint */
                return false;
        const char *seg = prev + 1, *ref = last + 1;
        size_t seg_len = (size_t)(last - seg), ref_len = len - (size_t)(ref - path);
        for (size_t i = 0; i < ELEMENTSOF(pull_endpoints); i++) {
                if (!segment_is(seg, seg_len, pull_endpoints[i].segment))
                        continue;
                return ref_len > 0 && (!pull_endpoints[i].last_is_digest || memchr(ref, ':', ref_len));
        }
        return false;
}

bool route_is_signature_tag(const char *reference, size_t len) {
        static const char prefix[] = "sha256-", suffix[] = ".simplesig";
        const size_t plen = sizeof(prefix) - 1, hexlen = 64, slen = sizeof(suffix) - 1;

        if (len < plen + hexlen + slen || memcmp(reference, prefix, plen) != 0 ||
            memcmp(reference + plen + hexlen, suffix, slen) != 0)
                return false;
        for (size_t i = plen; i < plen + hexlen; i++)
                if (!((reference[i] >= '0' && reference[i] <= '9') || (reference[i] >= 'a' && reference[i] <= 'f')))
                        return false;
        /* The legacy tag, or a per-signature one: any ".<suffix>" counts, so
         * that no tag the store could ever list is left to clients. */
        return len == plen + hexlen + slen || reference[plen + hexlen + slen] == '.';
}

bool route_is_signature_manifest(const char *norm_path, size_t plen) {
        const char *last, *prev;

        if (plen < 4 || memcmp(norm_path, "/v2/", 4) != 0)
                return false;
        /* A trailing slash: the registry's router would not take it as a
         * tag, but refuse it too rather than depend on that. */
        if (norm_path[plen - 1] == '/')
                plen--;
        last = memrchr(norm_path, '/', plen);
        prev = last ? memrchr(norm_path, '/', (size_t)(last - norm_path)) : NULL;
        if (!prev || prev <= norm_path + 3) /* no <name> between /v2/ and manifests */
                return false;
        return segment_eq(prev + 1, (size_t)(last - prev - 1), "manifests", strlen("manifests")) &&
               route_is_signature_tag(last + 1, plen - (size_t)(last + 1 - norm_path));
}

bool route_is_signature_repository(const char *norm_path, size_t plen) {
        static const size_t tag_len = 7 + 64 + 10; /* "sha256-" HEX ".simplesig" */
        const char *end = norm_path + plen, *seg;

        if (plen < 4 || memcmp(norm_path, "/v2/", 4) != 0)
                return false;
        seg = memchr(norm_path + 4, '/', plen - 4); /* the first <name> segment is NAME's */
        while (seg && seg + 1 < end) {
                const char *next = memchr(seg + 1, '/', (size_t)(end - seg - 1));

                /* A segment with more after it: the repository's, not an endpoint's last. */
                if (next && next + 1 < end && (size_t)(next - seg - 1) == tag_len &&
                    route_is_signature_tag(seg + 1, tag_len))
                        return true;
                seg = next;
        }
        return false;
}

RouteDecision route_decide_pull(const char *method, size_t mlen, const char *norm_path, size_t plen) {
        RouteDecision local, ext;

        assert(method || mlen == 0);
        assert(norm_path || plen == 0);

        /* Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET. A
         * write to a signature tag says why, as on the push port. */
        if (!method_is(method, mlen, "GET") && !method_is(method, mlen, "HEAD"))
                return is_normalized(norm_path, plen) && (route_is_signature_manifest(norm_path, plen) ||
                                                          route_is_signature_repository(norm_path, plen))
                               ? ROUTE_FORBIDDEN_SIGNATURE_TAG
                               : ROUTE_FORBIDDEN_METHOD;
        if (!is_normalized(norm_path, plen))
                return ROUTE_FORBIDDEN_PATH;
        local = local_route(norm_path, plen);
        if (local != ROUTE_ALLOW)
                return local;
        for (size_t i = 0; i < ELEMENTSOF(pull_forbidden); i++)
                if (rule_matches(pull_forbidden + i, norm_path, plen))
                        return ROUTE_FORBIDDEN_PATH;
        ext = extension_route(norm_path, plen);
        if (ext != ROUTE_ALLOW)
                return ext; /* GET and HEAD only: checked above */
        if (!under_v2(norm_path, plen))
                return ROUTE_NOT_FOUND;
        if (!pull_endpoint(norm_path, plen))
                return ROUTE_FORBIDDEN_PATH;
        return ROUTE_ALLOW;
}

RouteDecision route_decide_push(const char *method, size_t mlen, const char *norm_path, size_t plen) {
        RouteDecision local, ext;

        assert(method || mlen == 0);
        assert(norm_path || plen == 0);

        if (!is_normalized(norm_path, plen))
                return ROUTE_FORBIDDEN_PATH;
        local = local_route(norm_path, plen);
        if (local != ROUTE_ALLOW)
                return method_is(method, mlen, "GET") || method_is(method, mlen, "HEAD") ? local
                                                                                     : ROUTE_FORBIDDEN_METHOD;
        /* The extension: read as on the pull port, and PUT, the one way a
         * signature is stored (there is no DELETE in the extension). */
        ext = extension_route(norm_path, plen);
        if (ext == ROUTE_SIGSTORE && !method_is(method, mlen, "GET") && !method_is(method, mlen, "HEAD") &&
            !method_is(method, mlen, "PUT"))
                return ROUTE_FORBIDDEN_METHOD;
        if (ext != ROUTE_ALLOW)
                return ext;
        /* Signatures are written by the signature store only, straight to
         * the registry: a client that PUT a manifest at a signature tag could
         * hide real signatures (the store serves the first tags in order)
         * or break every signature read of a digest; DELETE would drop one.
         * Reads stay allowed. No POST or PATCH creates a manifest. A digest's
         * own repository of signatures (NAME/sha256-HEX.simplesig) is the
         * store's alone: junk tags or blobs there would grow the one list a
         * signature read makes. */
        if ((route_is_signature_manifest(norm_path, plen) || route_is_signature_repository(norm_path, plen)) &&
            !method_is(method, mlen, "GET") && !method_is(method, mlen, "HEAD"))
                return ROUTE_FORBIDDEN_SIGNATURE_TAG;
        /* Any other method: the push port is authenticated, and the http1
         * parser has already made sure the method is a token. */
        if (!under_v2(norm_path, plen))
                return ROUTE_NOT_FOUND;
        return ROUTE_ALLOW;
}

/* Each decision: its name in the log, and the status the proxy answers
 * with (0: none, the request is forwarded and the upstream answers). */
static const struct {
        const char *text;
        int status;
} decisions[_ROUTE_DECISION_MAX] = {
        [ROUTE_ALLOW] = {"allow", 0},
        [ROUTE_SIGSTORE] = {"allow: signature store", 0},
        [ROUTE_LOCAL_SERVER_CRL] = {"local: server CA CRL", 200},
        [ROUTE_LOCAL_CLIENT_CRL] = {"local: client CA CRL", 200},
        [ROUTE_FORBIDDEN_METHOD] = {"forbidden method", 403},
        [ROUTE_FORBIDDEN_PATH] = {"forbidden path", 403},
        [ROUTE_NOT_FOUND] = {"not found", 404},
        [ROUTE_FORBIDDEN_SIGNATURE_TAG] = {"signatures go through the signature extension", 403},
};

const char *route_decision_string(RouteDecision d) {
        if ((unsigned)d >= _ROUTE_DECISION_MAX)
                return "unknown decision";
        return decisions[d].text;
}

int route_decision_status(RouteDecision d) {
        if ((unsigned)d >= _ROUTE_DECISION_MAX)
                return 403; /* fail closed */
        return decisions[d].status;
}

bool route_decision_forwarded(RouteDecision d) {
        return d == ROUTE_ALLOW || d == ROUTE_SIGSTORE;
}

bool route_is_version_check(const char *norm_path, size_t plen) {
        return (plen == 3 && memcmp(norm_path, "/v2", 3) == 0) || (plen == 4 && memcmp(norm_path, "/v2/", 4) == 0);
}

bool route_decision_local(RouteDecision d) {
        return d == ROUTE_LOCAL_SERVER_CRL || d == ROUTE_LOCAL_CLIENT_CRL;
}

int route_normalize_path_as_router(const char *target, size_t len, char *out, size_t out_size, size_t *ret_len) {
        _cleanup_free_ char *copy = NULL;
        size_t n = 0;

        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (target[i] == '%' && i + 2 < len && target[i + 1] == '2' &&
                    (target[i + 2] == 'F' || target[i + 2] == 'f')) {
                        copy[n++] = '/';
                        i += 2;
                } else
                        copy[n++] = target[i];
        }
        return route_normalize_path(copy, n, out, out_size, ret_len);
}
