/* SPDX-License-Identifier: MIT */
/*
 * The request head sent to the registry, decided and checked; see forward.h.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "forward.h"
#include "headers.h"
#include "macro.h"
#include "route.h"
#include "sigcheck.h"

static RouteDecision decide(const ForwardPolicy *p, const char *method, size_t mlen, const char *path, size_t plen) {
        return p->push ? route_decide_push(method, mlen, path, plen) : route_decide_pull(method, mlen, path, plen);
}

/* The host part of a Host value the parser accepted (reg-name, IPv4 or
 * "[IP-literal]", then an optional ":port"), without brackets and port. */
static void host_name_part(const char *host, size_t len, const char **ret_name, size_t *ret_len) {
        if (len > 0 && host[0] == '[') {
                const char *close = memchr(host, ']', len);
                size_t n = close ? (size_t)(close - host) : len;
                *ret_name = host + 1;
                *ret_len = n > 0 ? n - 1 : 0;
                return;
        }
        const char *colon = memchr(host, ':', len);
        *ret_name = host;
        *ret_len = colon ? (size_t)(colon - host) : len;
}

int forward_authority(const ForwardPolicy *policy, const Http1Request *req, char *out, size_t out_size) {
        const char *name = policy->n_server_names > 0 ? policy->server_names[0] : "localhost";
        int n;

        if (req->host) {
                const char *h;
                size_t hlen;
                host_name_part(req->host, req->host_len, &h, &hlen);
                for (size_t i = 0; i < policy->n_server_names; i++) {
                        const char *s = policy->server_names[i];
                        if (strlen(s) == hlen && strncasecmp(s, h, hlen) == 0) {
                                name = s;
                                break;
                        }
                }
        }
        /* Configured names are checked by the configuration parser (DNS
         * names and IP addresses); an IPv6 address needs its brackets. */
        bool v6 = strchr(name, ':') != NULL;
        if (policy->port_number == 443)
                n = snprintf(out, out_size, "%s%s%s", v6 ? "[" : "", name, v6 ? "]" : "");
        else
                n = snprintf(out, out_size, "%s%s%s:%u", v6 ? "[" : "", name, v6 ? "]" : "", policy->port_number);
        if (n < 0 || (size_t)n >= out_size)
                return -ENOBUFS;
        return n;
}

/* The query sent upstream: the client's on the push port to the registry;
 * none on the pull port, where no endpoint a pull reads takes one
 * (containerd adds "?ns=" for mirrors: dropped, not refused), nor to the
 * signature store, whose one path takes none. */
static void upstream_query(const ForwardPolicy *policy, RouteDecision d, const Http1Request *req,
                           const char **ret_query, size_t *ret_len) {
        size_t plen = route_target_path_len(req->target, req->target_len);

        *ret_query = req->target + plen;
        *ret_len = policy->push && d == ROUTE_ALLOW ? req->target_len - plen : 0;
}

static int refuse(ForwardRefusal *r, int status, const char *code, const char *message, const char *detail,
                  bool may_keep) {
        *r = (ForwardRefusal){
                .status = status,
                .code = code,
                .message = message,
                .detail = detail,
                .may_keep = may_keep,
        };
        return 0;
}

int forward_request(const ForwardPolicy *policy, const ForwardClient *client, const Http1Request *req,
                    const Http1Header *h, ForwardScratch *scratch, char *out, size_t out_size,
                    ForwardRefusal *ret_refusal) {
        /* A refusal may keep the connection only when no body follows that
         * would have to be skipped. */
        bool no_body = req->body == HTTP1_BODY_NONE || (req->body == HTTP1_BODY_LENGTH && req->content_length == 0);
        size_t plen = route_target_path_len(req->target, req->target_len);
        RouteDecision d;
        int r, n;

        r = route_normalize_path(req->target, plen, scratch->path, sizeof(scratch->path), &scratch->path_len);
        if (r == -EILSEQ && !policy->push &&
            route_normalize_path_as_router(req->target, plen, scratch->path, sizeof(scratch->path),
                                           &scratch->path_len) == 0 &&
            route_decide_pull(req->method, req->method_len, scratch->path, scratch->path_len) ==
                    ROUTE_FORBIDDEN_PATH)
                /* "%2F" where the registry's router sees a "/": a spelling
                 * of a forbidden endpoint, so the pull port's 403. */
                return refuse(ret_refusal, 403, "DENIED", "requested access to the resource is denied",
                              route_decision_string(ROUTE_FORBIDDEN_PATH), no_body);
        if (r < 0)
                return refuse(ret_refusal, 400, "BAD_REQUEST", "invalid request path",
                              r == -EILSEQ ? "refused byte in the path" : "malformed path", false);

        d = decide(policy, req->method, req->method_len, scratch->path, scratch->path_len);
        if (route_decision_local(d)) {
                /* Answered by the proxy; a body it would have to skip
                 * closes the connection after the answer. */
                refuse(ret_refusal, route_decision_status(d), NULL, NULL, route_decision_string(d), no_body);
                ret_refusal->route = d;
                return 0;
        }
        if (d == ROUTE_SIGSTORE && !policy->sigstore)
                /* No store to forward to: the extension is not served (and
                 * /v2/ does not announce it). */
                d = ROUTE_NOT_FOUND;
        if (!route_decision_forwarded(d)) {
                int status = route_decision_status(d);
                const char *message = status == 404 ? "not found"
                                      : d == ROUTE_FORBIDDEN_SIGNATURE_TAG
                                              ? "signatures go through the signature extension, not manifests"
                                              : "requested access to the resource is denied";
                return refuse(ret_refusal, status, status == 404 ? "NOT_FOUND" : "DENIED", message,
                              route_decision_string(d), no_body);
        }
        if (!policy->push && !no_body)
                /* No pull sends a body; the registry would read (and Go
                 * skip) what an anonymous client sends. */
                return refuse(ret_refusal, 400, "BAD_REQUEST", "a pull request carries no body",
                              "GET and HEAD on this port take no request body", false);
        if (req->body == HTTP1_BODY_LENGTH && req->content_length > policy->max_body)
                return refuse(ret_refusal, 413, "SIZE_INVALID", "request body too large",
                              "the body is larger than [proxy] max_body", false);
        if (d == ROUTE_SIGSTORE && req->body == HTTP1_BODY_LENGTH && req->content_length > SIGSTORE_MAX_BODY)
                /* The store would refuse it too; it never has to see it. */
                return refuse(ret_refusal, 413, "SIZE_INVALID", "request body too large",
                              "a signature object is at most 128 KiB", false);
        scratch->route = d;

        r = forward_authority(policy, req, scratch->authority, sizeof(scratch->authority));
        if (r < 0)
                return r;
        HeadersRequestOptions o = {
                .path = scratch->path,
                .path_len = scratch->path_len,
                .authority = scratch->authority,
                .peer = client->peer,
                .chunked = req->body == HTTP1_BODY_CHUNKED,
        };
        upstream_query(policy, d, req, &o.query, &o.query_len);
        n = headers_request(req, h, req->n_headers, &o, out, out_size);
        if (n < 0 || n > HTTP1_MAX_HEAD)
                return -ENOBUFS;
        if (forward_check(policy, client, req, scratch, out, (size_t)n) < 0)
                /* Never expected: the serializer and the parser disagree.
                 * Nothing is sent; the fuzzer hunts for this. */
                return refuse(ret_refusal, 500, "UNKNOWN", "the proxy refused its own request head", NULL, false);
        return n;
}

/* Fields forward_check() wants exactly once, with the value it names. */
typedef struct Expected {
        const char *name;
        const char *value;
        unsigned seen;
} Expected;

static bool value_is(const Http1Header *f, const char *v) {
        return f->value_len == strlen(v) && memcmp(f->value, v, f->value_len) == 0;
}

int forward_check(const ForwardPolicy *policy, const ForwardClient *client, const Http1Request *approved,
                  const ForwardScratch *scratch, const char *head, size_t len) {
        Http1Header h[HTTP1_MAX_HEADERS + 8];
        Http1Request req = {};
        const char *query;
        size_t plen, qlen;
        char path[HTTP1_MAX_HEAD + 1];
        size_t path_len;
        int n;

        if (!route_decision_forwarded(scratch->route) || (scratch->route == ROUTE_SIGSTORE && !policy->sigstore))
                return -EBADMSG;
        upstream_query(policy, scratch->route, approved, &query, &qlen);
        n = http1_parse_request(head, len, &req, h, ELEMENTSOF(h));
        if (n < 0 || (size_t)n != len)
                return -EBADMSG; /* not exactly one complete request */

        /* The request line the policy approved. */
        if (req.minor_version != 1 || req.method_len != approved->method_len ||
            memcmp(req.method, approved->method, req.method_len) != 0 ||
            req.target_len != scratch->path_len + qlen || memcmp(req.target, scratch->path, scratch->path_len) != 0 ||
            memcmp(req.target + scratch->path_len, query, qlen) != 0)
                return -EBADMSG;

        /* Host: ours, once (the parser refuses a second one). */
        if (!req.host || req.host_len != strlen(scratch->authority) ||
            memcmp(req.host, scratch->authority, req.host_len) != 0)
                return -EBADMSG;

        /* The framing the client's request had. */
        if (req.body != approved->body ||
            (req.body == HTTP1_BODY_LENGTH && req.content_length != approved->content_length) || req.expect_continue)
                return -EBADMSG;

        /* The proxy's own fields once each, nothing the proxy drops. */
        Expected ours[] = {
                {"X-Forwarded-For", client->peer},
                {"X-Real-IP", client->peer},
                {"X-Forwarded-Proto", "https"},
                {"Host", NULL},
        };
        for (size_t i = 0; i < req.n_headers; i++) {
                bool mine = false;
                for (size_t k = 0; k < ELEMENTSOF(ours); k++) {
                        if (!http1_header_is(&h[i], ours[k].name))
                                continue;
                        if (ours[k].value && !value_is(&h[i], ours[k].value))
                                return -EBADMSG;
                        ours[k].seen++;
                        mine = true;
                }
                if (!mine && headers_request_dropped(h, req.n_headers, &h[i]))
                        return -EBADMSG;
        }
        for (size_t k = 0; k < ELEMENTSOF(ours); k++)
                if (ours[k].seen != 1)
                        return -EBADMSG;

        /* And the route policy still says yes to what the registry reads. */
        plen = route_target_path_len(req.target, req.target_len);
        if (route_normalize_path(req.target, plen, path, sizeof(path), &path_len) < 0 ||
            path_len != scratch->path_len || memcmp(path, scratch->path, path_len) != 0 ||
            decide(policy, req.method, req.method_len, path, path_len) != scratch->route)
                return -EBADMSG;
        return 0;
}
