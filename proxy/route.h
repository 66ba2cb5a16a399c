/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Request routing policy for the proxy's two ports, as pure functions.
 *
 * The pull port (443, anonymous) passes only GET and HEAD, refuses the two
 * listing endpoints of the Distribution API (/v2/_catalog and
 * /v2/<name>/tags/list) in every spelling, and passes only the endpoints a
 * pull reads (the version check, manifests, blobs by digest). The push port (authenticated) passes every method.
 * Both forward only paths under /v2 and answer everything else with 404
 * themselves, except the few paths the proxy answers itself (local routes,
 * never forwarded: the CAs' CRLs). policy/proxy-routes.md is the
 * human-readable copy of the rules.
 *
 * Decisions are taken on one normalized path, never on the raw target, so
 * that no spelling the registry would route to a forbidden endpoint gets
 * through: route_normalize_path() first, then route_decide_*(). The proxy
 * should forward the normalized path (plus the original query) rather than
 * the raw target, so the registry sees exactly what was decided on.
 */

#include <stdbool.h>
#include <stddef.h>

typedef enum RouteDecision {
        ROUTE_ALLOW,            /* forward to the registry */
        ROUTE_SIGSTORE,         /* forward to the signature store (the extension) */
        ROUTE_LOCAL_SERVER_CRL, /* the proxy answers: the server CA's CRL */
        ROUTE_LOCAL_CLIENT_CRL, /* the proxy answers: the client CA's CRL */
        ROUTE_FORBIDDEN_METHOD, /* 403: method not allowed on this port */
        ROUTE_FORBIDDEN_PATH,   /* 403: a listing endpoint, in any spelling */
        ROUTE_NOT_FOUND,        /* 404 from the proxy: not an API path */
        ROUTE_FORBIDDEN_SIGNATURE_TAG, /* 403: a write to a signature tag's manifest */
        _ROUTE_DECISION_MAX,
} RouteDecision;

/* Normalizes the path of an origin-form request target (RFC 3986 §6.2.2,
 * the way Go's net/http plus gorilla/mux would read it, but stricter):
 *   - the query ('?' and after) is dropped, not decoded and not checked
 *     beyond this: a '#' anywhere is refused, and every byte of the target
 *     must be 0x21-0x7e;
 *   - the path must start with '/' and its bytes must be RFC 3986 pchar
 *     (unreserved, sub-delims, ':', '@') or '%': a raw '"', '<', '>', '\\',
 *     '^', '`', '{', '|', '}', '[' or ']' is refused;
 *   - %XX is decoded once (hex digits of either case); an invalid escape is
 *     refused. A decoded byte must be a pchar too, so refused are NUL and
 *     other control bytes, space, 0x7f-0xff, the bytes above, and those that
 *     would mean something else than their literal self: '/' (%2F: Go
 *     decodes it before routing, so "/v2%2F_catalog" would reach the
 *     catalog), '%' (%25: a second decoding would differ), '?' and '#';
 *   - empty segments ("//") are collapsed, "." segments removed, ".." removes
 *     the segment before it (%2E counts as '.'); ".." above the root is
 *     refused;
 *   - a trailing slash is kept: "/v2/" and "/v2" stay different, and a path
 *     ending in a "." or ".." segment ends in '/' ("/v2/." is "/v2/").
 * Case is preserved (tags and digests are case-sensitive).
 *
 * The result, NUL-terminated, goes to out[0..out_size), which must not
 * overlap target; out_size >= len + 1 is always enough. It contains only
 * pchar and '/', no "//", no "." or ".." segment, needs no re-encoding to be
 * forwarded, and normalizing it again gives the same string.
 * Returns 0 and sets *ret_len; -EINVAL for a malformed target (answer 400),
 * -EILSEQ for a refused decoded byte (400), -ENOBUFS when out_size < len + 1
 * (*ret_len untouched on error). */
int route_normalize_path(const char *target, size_t len, char *out, size_t out_size, size_t *ret_len);

/* Length of the path part of a target: up to the first '?', or len. The
 * query, if any, starts at target + return value. */
size_t route_target_path_len(const char *target, size_t len);

/* For a path route_normalize_path() refused with -EILSEQ: decodes every
 * "%2F" the way the registry's router does (into a separator) and
 * normalizes the result into out. Returns 0 when that yields a normalized
 * path, so the caller can answer a request the registry would have routed
 * to a forbidden endpoint ("/v2/x/tags%2Flist") with 403 instead of 400.
 * Only for that decision: such a request is never forwarded. */
int route_normalize_path_as_router(const char *target, size_t len, char *out, size_t out_size, size_t *ret_len);

/* The pull port's decision for method and a normalized path (from
 * route_normalize_path(); anything not in normalized form is refused with
 * ROUTE_FORBIDDEN_PATH, fail closed). In order:
 *   - a method other than exactly "GET" or "HEAD":
 *     ROUTE_FORBIDDEN_SIGNATURE_TAG for a signature tag's manifest or a
 *     path in a signature repository (a normalized path,
 *     route_is_signature_manifest(), route_is_signature_repository()), else
 *     ROUTE_FORBIDDEN_METHOD;
 *   - a local route's path, exactly (case-sensitive): its ROUTE_LOCAL_*;
 *   - a forbidden listing path, matched ASCII case-insensitively: the
 *     registry's router is case-sensitive, so "/V2/_CATALOG" would only get
 *     a 404 from it, but we refuse every case variant anyway so that the
 *     policy does not depend on that (defence in depth):
 *     ROUTE_FORBIDDEN_PATH;
 *   - the signature extension's path,
 *     "/extensions/v2/<name>/signatures/<digest>" as sigcheck_parse_path()
 *     accepts it (the store's own grammar): ROUTE_SIGSTORE; anything else
 *     under "/extensions/": ROUTE_FORBIDDEN_PATH;
 *   - not "/v2" nor under "/v2/" (case-sensitive): ROUTE_NOT_FOUND;
 *   - not an endpoint a pull reads (an allowlist, case-sensitive): "/v2",
 *     "/v2/", "/v2/<name>/manifests/<reference>" and
 *     "/v2/<name>/blobs/<algorithm>:<hex>"; anything else, the blob-upload
 *     endpoints in particular, is ROUTE_FORBIDDEN_PATH;
 *   - otherwise ROUTE_ALLOW. */
RouteDecision route_decide_pull(const char *method, size_t mlen, const char *norm_path, size_t plen);

/* Whether reference (a tag) is one of the signature store's tags:
 * "sha256-" + 64 lowercase hex + ".simplesig", alone (the legacy tag) or
 * followed by "." and anything (one tag per signature). Case-sensitive, like
 * tags. Not cosign's "sha256-<hex>.sig": clients write those. */
bool route_is_signature_tag(const char *reference, size_t len);

/* Whether a normalized path is "/v2/<name>/manifests/<signature tag>", with
 * at least one <name> segment ("manifests" matched ASCII
 * case-insensitively, defence in depth). */
bool route_is_signature_manifest(const char *norm_path, size_t plen);

/* Whether a normalized path is below a signature store's repository:
 * "/v2/<name>/sha256-<64 lowercase hex>.simplesig/<more>", a segment of
 * exactly that form after at least one <name> segment and before at least
 * one more (the store keeps each digest's signatures in NAME/<that>). */
bool route_is_signature_repository(const char *norm_path, size_t plen);

/* The push port's decision: a local route's path is its ROUTE_LOCAL_* for
 * GET and HEAD, ROUTE_FORBIDDEN_METHOD for any other method; the signature
 * extension's path is ROUTE_SIGSTORE for GET, HEAD and PUT (how podman
 * stores a signature), ROUTE_FORBIDDEN_METHOD for any other; anything else
 * under "/extensions/" is ROUTE_FORBIDDEN_PATH; a signature tag's manifest
 * (route_is_signature_manifest()) or any path in a signature repository
 * (route_is_signature_repository()) with any method but GET and HEAD is
 * ROUTE_FORBIDDEN_SIGNATURE_TAG (only the signature store writes them,
 * straight to the registry); otherwise any
 * method, and a path that is "/v2" or under "/v2/" is ROUTE_ALLOW, anything
 * else ROUTE_NOT_FOUND (ROUTE_FORBIDDEN_PATH for a path not in normalized
 * form). */
RouteDecision route_decide_push(const char *method, size_t mlen, const char *norm_path, size_t plen);

/* Whether d is forwarded (ROUTE_ALLOW to the registry, ROUTE_SIGSTORE to
 * the signature store): the decisions forward_check() accepts. */
bool route_decision_forwarded(RouteDecision d);

/* Whether a normalized path is the version check ("/v2" or "/v2/"), whose
 * answer carries X-Registry-Supports-Signatures when the extension is
 * served (docs/signature-extension.md). */
bool route_is_version_check(const char *norm_path, size_t plen);

/* "allow", "forbidden method", ...; never NULL. */
const char *route_decision_string(RouteDecision d);

/* The status the proxy answers with: 0 for ROUTE_ALLOW (forward), 200 for
 * a local route, 403 or 404. */
int route_decision_status(RouteDecision d);

/* Whether the proxy answers d itself (a ROUTE_LOCAL_*): never forwarded. */
bool route_decision_local(RouteDecision d);
