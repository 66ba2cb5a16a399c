/* SPDX-License-Identifier: MIT */
/*
 * `regvisor health` for a shared store ([registry] storage = swift or s3):
 * the store answers and (Swift tempauth, v1) takes our credentials and has
 * the container; redis answers PING; the shared secret files are there and
 * root's alone. health runs as root in the host's network namespace, which
 * the registry's egress table does not restrict: a failure here is the
 * store's, not the rules'.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "health.h"
#include "http1.h"
#include "macro.h"
#include "store.h"

#define STORE_ANSWER_MAX (64 * 1024)

/* The value of header name in a response (case-insensitive name), copied to
 * out; false when absent or longer than size - 1. */
static bool header_value(const char *resp, const char *name, char *out, size_t size) {
        size_t n = strlen(name);

        for (const char *p = strstr(resp, "\r\n"); p && !strneq(p, "\r\n\r\n", 4); p = strstr(p + 2, "\r\n")) {
                const char *v = p + 2;
                size_t len;

                if (strncasecmp(v, name, n) != 0 || v[n] != ':')
                        continue;
                v += n + 1;
                v += strspn(v, " \t");
                len = strcspn(v, "\r\n");
                if (len >= size)
                        return false;
                memcpy(out, v, len);
                out[len] = 0;
                return true;
        }
        return false;
}

/* One request to host:port; the response's status and text. */
static int exchange(const char *host, uint16_t port, const char *req, uint64_t deadline, int *ret_status,
                    char **ret_resp) {
        HealthEndpoint ep = {.host = host, .port = port};
        Http1Response resp = {};
        char *buf = NULL;
        size_t len;
        int r;

        r = health_exchange(&ep, req, strlen(req), deadline, STORE_ANSWER_MAX, &buf, &len);
        if (r < 0)
                return r;
        if (http1_parse_status_line(buf, len, &resp) <= 0) {
                free(buf);
                return -EBADMSG;
        }
        *ret_status = resp.status;
        *ret_resp = buf;
        return 0;
}

static const char *url_path(const char *url) {
        const char *h = strstr(url, "://");
        const char *p = h ? strchr(h + 3, '/') : NULL;
        return p ?: "/";
}

/* Swift tempauth (v1): the token and storage URL, then a HEAD of the
 * container through that URL. */
static int check_swift(const HealthContext *ctx, HealthResult *r, const char *host, uint16_t port) {
        _cleanup_(store_credentials_done) StoreCredentials cred = {};
        _cleanup_free_ char *req = NULL, *resp = NULL, *error = NULL;
        const Config *c = ctx->config;
        char token[512], storage[1024], shost[INET6_ADDRSTRLEN];
        uint16_t sport;
        int status, k;

        k = store_credentials_load(c, &cred, &error);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "%s", error ?: strerror(-k));
        if (asprintf(&req, "GET %s HTTP/1.0\r\nHost: %s\r\nX-Auth-User: %s\r\nX-Auth-Key: %s\r\n\r\n",
                     url_path(c->store_auth_url), host, cred.username, cred.password) < 0)
                return -ENOMEM;
        k = exchange(host, port, req, ctx->deadline_usec, &status, &resp);
        explicit_bzero(req, strlen(req));
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "Swift auth at %s: %s", c->store_auth_url, strerror(-k));
        if (status == 401 || status == 403)
                return health_set(r, HEALTH_CRITICAL, "Swift auth at %s: %d, the credentials of %s are refused",
                                  c->store_auth_url, status, c->store_credentials_file);
        if (status / 100 != 2 || !header_value(resp, "X-Auth-Token", token, sizeof token) ||
            !header_value(resp, "X-Storage-Url", storage, sizeof storage))
                return health_set(r, HEALTH_CRITICAL, "Swift auth at %s: answered %d without a token and storage URL",
                                  c->store_auth_url, status);
        /* The URL becomes our next request line: no spaces in it. */
        if (strpbrk(storage, " \t") || config_url_address(storage, shost, &sport) < 0 || !streq(shost, host) ||
            sport != port)
                return health_set(r, HEALTH_CRITICAL,
                                  "Swift's storage URL %.200s is not on %s port %u: the registry may reach only "
                                  "the auth URL's address",
                                  storage, host, (unsigned) port);
        free(req);
        free(resp);
        resp = NULL;
        if (asprintf(&req, "HEAD %s/%s HTTP/1.0\r\nHost: %s\r\nX-Auth-Token: %s\r\n\r\n", url_path(storage),
                     c->store_container, host, token) < 0) {
                req = NULL;
                return -ENOMEM;
        }
        k = exchange(host, port, req, ctx->deadline_usec, &status, &resp);
        explicit_bzero(token, sizeof token);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "Swift container %s: %s", c->store_container, strerror(-k));
        if (status == 404)
                return health_set(r, HEALTH_WARNING,
                                  "Swift auth works; the container %s does not exist (the registry makes it at "
                                  "start)",
                                  c->store_container);
        if (status / 100 != 2)
                return health_set(r, HEALTH_CRITICAL, "Swift container %s: HEAD answered %d", c->store_container,
                                  status);
        return health_set(r, HEALTH_OK, "Swift at %s: auth works, container %s is there", c->store_auth_url,
                          c->store_container);
}

int health_check_store(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_free_ char *resp = NULL, *req = NULL;
        const char *url = c->storage_kind == STORAGE_SWIFT ? c->store_auth_url : c->store_endpoint;
        char host[INET6_ADDRSTRLEN];
        uint16_t port;
        int status, k;

        if (!config_storage_is_shared(c))
                return health_set(r, HEALTH_OK, "the filesystem store: no shared store to check");
        if (!url || config_url_address(url, host, &port) < 0)
                return health_set(r, HEALTH_CRITICAL, "no store URL in the configuration");
        if (strneq(url, "http://", 7) && c->storage_kind == STORAGE_SWIFT && c->store_auth_version == 1)
                return check_swift(ctx, r, host, port);
        /* https, Keystone or S3 (SigV4): that it answers HTTP at all. */
        if (strneq(url, "https://", 8)) {
                HealthEndpoint ep = {.host = host, .port = port};
                char *buf = NULL;
                size_t len;

                /* A TLS server waits for our hello: connected is the answer. */
                uint64_t soon = health_now_usec() + 500000;
                k = health_exchange(&ep, "", 0, soon < ctx->deadline_usec ? soon : ctx->deadline_usec, 1, &buf, &len);
                free(buf);
                if (k < 0 && k != -ETIMEDOUT && k != -EFBIG)
                        return health_set(r, HEALTH_CRITICAL, "store at %s: %s", url, strerror(-k));
                return health_set(r, HEALTH_OK, "store at %s: reachable (TLS and credentials not checked)", url);
        }
        if (asprintf(&req, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host) < 0)
                return -ENOMEM;
        k = exchange(host, port, req, ctx->deadline_usec, &status, &resp);
        if (k < 0)
                return health_set(r, HEALTH_CRITICAL, "store at %s: %s", url, strerror(-k));
        return health_set(r, HEALTH_OK, "store at %s: answers HTTP (%d; credentials not checked)", url, status);
}

int health_check_store_cache(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_free_ char *resp = NULL;
        HealthEndpoint ep = {};
        char host[INET6_ADDRSTRLEN];
        size_t len;
        int k;

        if (!c->cache)
                return health_set(r, HEALTH_OK, "no [registry] cache: the registry caches in its own memory");
        if (config_url_address(c->cache, host, &ep.port) < 0)
                return health_set(r, HEALTH_CRITICAL, "[registry] cache: not redis://IP:PORT");
        ep.host = host;
        /* QUIT after PING: redis answers both and closes. */
        k = health_exchange(&ep, "PING\r\nQUIT\r\n", 12, ctx->deadline_usec, 256, &resp, &len);
        if (k < 0)
                return health_set(r, HEALTH_WARNING, "redis at %s: %s (the registry works without its cache, slower)",
                                  c->cache, strerror(-k));
        if (!strneq(resp, "+PONG\r\n", 7))
                return health_set(r, HEALTH_WARNING, "redis at %s: no +PONG to PING", c->cache);
        return health_set(r, HEALTH_OK, "redis at %s: PONG", c->cache);
}

int health_check_store_secrets(const HealthContext *ctx, HealthResult *r) {
        const Config *c = ctx->config;
        _cleanup_(store_credentials_done) StoreCredentials cred = {};
        _cleanup_free_ char *error = NULL;
        char *secret = NULL;
        int k;

        if (!config_storage_is_shared(c) && !c->http_secret_file)
                return health_set(r, HEALTH_OK, "the filesystem store: provision's own http secret");
        if (c->http_secret_file) {
                k = store_http_secret_load(c->http_secret_file, &secret, &error);
                if (secret) {
                        explicit_bzero(secret, strlen(secret));
                        free(secret);
                }
                if (k < 0)
                        return health_set(r, HEALTH_CRITICAL, "%s", error ?: strerror(-k));
        }
        if (config_storage_is_shared(c)) {
                k = store_credentials_load(c, &cred, &error);
                if (k < 0)
                        return health_set(r, HEALTH_CRITICAL, "%s", error ?: strerror(-k));
        }
        return health_set(r, HEALTH_OK, "%s%s%s: root's, readable by nobody else", c->http_secret_file ?: "",
                          c->http_secret_file && c->store_credentials_file ? " and " : "",
                          config_storage_is_shared(c) ? c->store_credentials_file : "");
}
