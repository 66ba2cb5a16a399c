/* SPDX-License-Identifier: MIT */
/*
 * Fuzzer for proxy/route.c. The input is a request target. Checked:
 *   - a normalized path starts with '/', has only bytes 0x21-0x7e, never
 *     contains "//", "/./", "/../", '%', '?' or '#', nor ends in "/." or
 *     "/..", and is no longer than the target's path;
 *   - normalization is idempotent: normalize(normalize(x)) == normalize(x);
 *   - the pull policy agrees with a naive reference (the two CRL paths the
 *     proxy answers itself, exactly; then lower-case, strip one trailing
 *     '/', then look for /v2/_catalog and a final /tags/list; then the
 *     signature extension's path by a POSIX regex of the distribution
 *     grammar, anything else below /extensions refused), and refuses every
 *     other method; the push policy forwards exactly /v2... to the
 *     registry and the extension's path (GET, HEAD, PUT) to the store, and
 *     refuses other methods than GET/HEAD on the CRL paths;
 *   - a raw, unnormalized target is only ever allowed if it is already in
 *     normalized form (the policy fails closed).
 */

#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route.h"
#include "fuzz-check.h"

/* route_is_signature_manifest(), written differently: the segments are
 * v2, NAME..., manifests (any case), TAG (a trailing slash allowed), and TAG
 * is sha256-<64 lowercase hex>.simplesig then nothing or "." and anything. */
static bool reference_signature_manifest(const char *path, size_t len) {
        char *copy = strndup(path, len), *save = NULL, **segs = calloc(len / 2 + 2, sizeof(char *));
        size_t k = 0;
        bool ok;

        CHECK(copy && segs);
        for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save))
                segs[k++] = t;
        ok = len >= 4 && memcmp(path, "/v2/", 4) == 0 && k >= 4 && strcasecmp(segs[k - 2], "manifests") == 0;
        if (ok) {
                const char *tag = segs[k - 1];
                size_t n = strlen(tag), hex = strspn(tag + 7 < tag + n ? tag + 7 : tag + n, "0123456789abcdef");

                ok = n >= 81 && strncmp(tag, "sha256-", 7) == 0 && hex >= 64 &&
                     strncmp(tag + 71, ".simplesig", 10) == 0 && (tag[81] == '\0' || tag[81] == '.');
        }
        free(segs);
        free(copy);
        return ok;
}

/* route_is_signature_repository(), written differently: some segment after
 * v2 and a first NAME segment, with at least one segment after it, is
 * exactly sha256-<64 lowercase hex>.simplesig. */
static bool reference_signature_repository(const char *path, size_t len) {
        char *copy = strndup(path, len), *save = NULL, **segs = calloc(len / 2 + 2, sizeof(char *));
        size_t k = 0;
        bool ok = false;

        CHECK(copy && segs);
        for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save))
                segs[k++] = t;
        if (len >= 4 && memcmp(path, "/v2/", 4) == 0)
                for (size_t i = 2; i + 1 < k && !ok; i++)
                        ok = strlen(segs[i]) == 81 && strncmp(segs[i], "sha256-", 7) == 0 &&
                             strspn(segs[i] + 7, "0123456789abcdef") == 64 && strcmp(segs[i] + 71, ".simplesig") == 0;
        free(segs);
        free(copy);
        return ok;
}

/* Only the signature store writes there. */
static bool reference_signature_write(const char *path, size_t len) {
        return reference_signature_manifest(path, len) || reference_signature_repository(path, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has(const char *s, size_t n, const char *needle) {
        return memmem(s, n, needle, strlen(needle)) != NULL;
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
        size_t k = strlen(suffix);

        return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The local routes, spelled out here rather than taken from paths.h. */
static RouteDecision reference_local(const char *path, size_t len) {
        if (len == 27 && memcmp(path, "/regvisor/crl/server-ca.crl", 27) == 0)
                return ROUTE_LOCAL_SERVER_CRL;
        if (len == 27 && memcmp(path, "/regvisor/crl/client-ca.crl", 27) == 0)
                return ROUTE_LOCAL_CLIENT_CRL;
        return ROUTE_ALLOW;
}

/* The extension's path, written out independently of sigcheck.c: the
 * distribution spec's name regex (at most 255 bytes) and a sha256 digest.
 * ROUTE_ALLOW: not below /extensions at all. */
static RouteDecision reference_extension(const char *path, size_t len) {
        static regex_t re;
        static bool compiled;
        const char *name, *end;
        char *copy;
        bool ok;

        if (!compiled) {
                CHECK(regcomp(&re,
                              "^/extensions/v2/"
                              "[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*"
                              "/signatures/sha256:[a-f0-9]{64}$",
                              REG_EXTENDED | REG_NOSUB) == 0);
                compiled = true;
        }
        if (!(len >= 11 && memcmp(path, "/extensions", 11) == 0 && (len == 11 || path[11] == '/')))
                return ROUTE_ALLOW;
        copy = strndup(path, len);
        CHECK(copy);
        ok = regexec(&re, copy, 0, NULL, 0) == 0;
        if (ok) {
                name = copy + strlen("/extensions/v2/");
                end = copy + len - strlen("/signatures/sha256:") - 64;
                ok = end - name <= 255;
        }
        free(copy);
        return ok ? ROUTE_SIGSTORE : ROUTE_FORBIDDEN_PATH;
}

static RouteDecision reference_pull(const char *path, size_t len) {
        char *lc;
        size_t n = len;
        bool forbidden;

        if (reference_local(path, len) != ROUTE_ALLOW)
                return reference_local(path, len);
        lc = malloc(len + 1);

        CHECK(lc);
        for (size_t i = 0; i < len; i++)
                lc[i] = (char)(path[i] >= 'A' && path[i] <= 'Z' ? path[i] - 'A' + 'a' : path[i]);
        lc[len] = '\0';
        if (n > 1 && lc[n - 1] == '/')
                n--;
        forbidden = (n == 12 && memcmp(lc, "/v2/_catalog", 12) == 0) ||
                    (n > 12 && memcmp(lc, "/v2/_catalog/", 13) == 0) || ends_with(lc, n, "/tags/list");
        free(lc);
        if (forbidden)
                return ROUTE_FORBIDDEN_PATH;
        if (reference_extension(path, len) != ROUTE_ALLOW)
                return reference_extension(path, len);
        if (!((len == 3 && memcmp(path, "/v2", 3) == 0) || (len >= 4 && memcmp(path, "/v2/", 4) == 0)))
                return ROUTE_NOT_FOUND;
        if (len <= 4)
                return ROUTE_ALLOW; /* "/v2", "/v2/" */
        /* The allowlist, modelled on the segments: v2, NAME..., ENDPOINT,
         * REFERENCE, with at least one NAME segment. */
        char *copy = strndup(path, len), *save = NULL, **segs = calloc(len / 2 + 2, sizeof(char *));
        size_t k = 0;
        CHECK(copy && segs);
        bool trailing = path[len - 1] == '/';
        for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save))
                segs[k++] = t;
        bool ok = !trailing && k >= 4 &&
                  ((strcmp(segs[k - 2], "manifests") == 0) ||
                   (strcmp(segs[k - 2], "blobs") == 0 && strchr(segs[k - 1], ':')));
        free(segs);
        free(copy);
        return ok ? ROUTE_ALLOW : ROUTE_FORBIDDEN_PATH;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *target = (const char *)data;
        char *out = malloc(size + 1), *again = malloc(size + 1);
        size_t len = 0, len2 = 0;
        RouteDecision d;
        int r;

        CHECK(out && again);
        r = route_normalize_path(target, size, out, size + 1, &len);
        CHECK(r == 0 || r == -EINVAL || r == -EILSEQ);

        /* Fail closed on raw input. */
        d = route_decide_pull("GET", 3, target, size);
        if (d == ROUTE_ALLOW) {
                CHECK(r == 0);
                CHECK(len == size && memcmp(out, target, size) == 0);
        }
        d = route_decide_push("PUT", 3, target, size);
        if (d == ROUTE_ALLOW)
                CHECK(r == 0 && len == size && memcmp(out, target, size) == 0);

        if (r == 0) {
                CHECK(len > 0 && len <= route_target_path_len(target, size));
                CHECK(out[0] == '/' && out[len] == '\0');
                for (size_t i = 0; i < len; i++)
                        CHECK((unsigned char)out[i] >= 0x21 && (unsigned char)out[i] <= 0x7e);
                CHECK(!has(out, len, "//") && !has(out, len, "/./") && !has(out, len, "/../"));
                CHECK(!memchr(out, '%', len) && !memchr(out, '?', len) && !memchr(out, '#', len));
                CHECK(!ends_with(out, len, "/.") && !ends_with(out, len, "/.."));

                CHECK(route_normalize_path(out, len, again, len + 1, &len2) == 0);
                CHECK(len2 == len && memcmp(again, out, len + 1) == 0);

                CHECK(route_decide_pull("GET", 3, out, len) == reference_pull(out, len));
                CHECK(route_decide_pull("HEAD", 4, out, len) == reference_pull(out, len));
                CHECK(route_decide_pull("POST", 4, out, len) == (reference_signature_write(out, len)
                                                                         ? ROUTE_FORBIDDEN_SIGNATURE_TAG
                                                                         : ROUTE_FORBIDDEN_METHOD));
                d = route_decide_push("DELETE", 6, out, len);
                if (reference_local(out, len) != ROUTE_ALLOW) {
                        CHECK(d == ROUTE_FORBIDDEN_METHOD);
                        CHECK(route_decide_push("GET", 3, out, len) == reference_local(out, len));
                } else if (reference_extension(out, len) == ROUTE_SIGSTORE) {
                        CHECK(d == ROUTE_FORBIDDEN_METHOD);
                        CHECK(route_decide_push("GET", 3, out, len) == ROUTE_SIGSTORE);
                        CHECK(route_decide_push("PUT", 3, out, len) == ROUTE_SIGSTORE);
                        CHECK(route_decide_pull("PUT", 3, out, len) == ROUTE_FORBIDDEN_METHOD);
                } else if (reference_extension(out, len) == ROUTE_FORBIDDEN_PATH)
                        CHECK(d == ROUTE_FORBIDDEN_PATH);
                else if (reference_signature_write(out, len)) {
                        CHECK(d == ROUTE_FORBIDDEN_SIGNATURE_TAG);
                        CHECK(route_decide_push("GET", 3, out, len) == ROUTE_ALLOW);
                } else
                        CHECK(d == ((len == 3 && memcmp(out, "/v2", 3) == 0) ||
                                                    (len >= 4 && memcmp(out, "/v2/", 4) == 0)
                                            ? ROUTE_ALLOW
                                            : ROUTE_NOT_FOUND));
        }

        free(out);
        free(again);
        return 0;
}
