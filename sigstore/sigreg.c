/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "http1.h"
#include "json-util.h"
#include "macro.h"
#include "sigreg.h"

/* An upload's Location: the path and Distribution's _state parameter
 * (~250 bytes); anything much longer is not Distribution's. */
#define LOCATION_MAX 2048

typedef struct RegResponse {
        int status;
        char *raw; /* the whole response as read */
        const char *body;
        size_t body_len;
        char *decoded; /* a chunked body, decoded */
        char location[LOCATION_MAX];
        char content_digest[SIGSTORE_DIGEST_LEN + 1]; /* Docker-Content-Digest, when a valid sha256 */
} RegResponse;

static void reg_response_done(RegResponse *r) {
        free(r->raw);
        free(r->decoded);
        *r = (RegResponse){};
}

static uint64_t now_ms(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The socket's send and receive timeouts: what is left until deadline. */
static int set_timeouts(int fd, uint64_t deadline) {
        uint64_t now = now_ms(), left = deadline > now ? deadline - now : 0;
        struct timeval tv = {.tv_sec = (time_t) (left / 1000), .tv_usec = (suseconds_t) (left % 1000) * 1000};

        if (left == 0)
                return -ETIMEDOUT;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return negative_errno();
        return 0;
}

static int send_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads until the registry closes (we asked it to), at most cap bytes. Returns the number read, or
 * a negative errno (-EAGAIN: the deadline passed). */
static ssize_t recv_all(int fd, char *buf, size_t cap, uint64_t deadline) {
        size_t len = 0;

        while (len < cap) {
                ssize_t n;
                int r = set_timeouts(fd, deadline);

                if (r < 0)
                        return r;
                n = recv(fd, buf + len, cap - len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        return (ssize_t) len;
}

/* The path and query of an upload's Location: Distribution writes it absolute
 * ("http://HOST/v2/..."), built from our Host header. */
static int location_path(const Http1Header *h, char ret[static LOCATION_MAX]) {
        const char *v = h->value, *end = h->value + h->value_len, *p = v;

        if (h->value_len > 8 && (memcmp(v, "http://", 7) == 0 || memcmp(v, "https://", 8) == 0)) {
                p = memchr(v + 8, '/', (size_t) (end - v - 8));
                if (!p)
                        return -EBADMSG;
        }
        if ((size_t) (end - p) >= LOCATION_MAX || end - p < 4 || memcmp(p, "/v2/", 4) != 0)
                return -EBADMSG;
        for (const char *c = p; c < end; c++)
                if (*c <= ' ' || *c > '~')
                        return -EBADMSG;
        memcpy(ret, p, (size_t) (end - p));
        ret[end - p] = '\0';
        return 0;
}

/* The body of a parsed response, framed as head said; max_body bounds it. */
static int response_body(RegResponse *ret, const Http1Response *head, size_t head_len, size_t len, size_t max_body) {
        const char *p = ret->raw + head_len;
        size_t avail = len - head_len;
        Http1Chunked ch;

        switch (head->body) {
        case HTTP1_BODY_NONE:
                ret->body = p;
                ret->body_len = 0;
                return 0;
        case HTTP1_BODY_LENGTH:
                if (head->content_length > max_body)
                        return -EFBIG;
                if (avail < head->content_length)
                        return -EBADMSG;
                ret->body = p;
                ret->body_len = (size_t) head->content_length;
                return 0;
        case HTTP1_BODY_UNTIL_CLOSE:
                if (avail > max_body)
                        return -EFBIG;
                ret->body = p;
                ret->body_len = avail;
                return 0;
        case HTTP1_BODY_CHUNKED:
                ret->decoded = malloc(max_body + 1);
                if (!ret->decoded)
                        return -ENOMEM;
                http1_chunked_init(&ch);
                ret->body_len = 0;
                for (size_t off = 0; !http1_chunked_done(&ch);) {
                        size_t doff, dlen;
                        ssize_t n = http1_chunked_feed(&ch, p + off, avail - off, &doff, &dlen);

                        if (n <= 0)
                                return -EBADMSG; /* malformed, or cut short */
                        if (ret->body_len + dlen > max_body)
                                return -EFBIG;
                        memcpy(ret->decoded + ret->body_len, p + off + doff, dlen);
                        ret->body_len += dlen;
                        off += (size_t) n;
                }
                ret->body = ret->decoded;
                return 0;
        default:
                return -EBADMSG;
        }
}

/*
 * One call: method path on the registry, with body (content_type) or none,
 * Accept when given. The answer's body may be at most max_body bytes.
 * Returns 0 with *ret filled (any status), -EHOSTUNREACH when the registry
 * could not be reached, did not answer before deadline or answered
 * something that is not HTTP; -EFBIG for a body over max_body; -ENOMEM.
 */
static int reg_call(SigRegistry *reg, uint64_t deadline, const char *method, const char *path,
                    const char *accept, const char *content_type, const void *body, size_t body_len,
                    size_t max_body, RegResponse *ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *head = NULL;
        Http1Header headers[HTTP1_MAX_HEADERS];
        Http1Response resp = {};
        size_t cap = HTTP1_MAX_HEAD + max_body + 8 * 1024;
        ssize_t len;
        int n, r;

        *ret = (RegResponse){};
        (void) snprintf(reg->why, sizeof(reg->why), "%s %.120s: no answer", method, path);
        n = asprintf(&head,
                     "%s %s HTTP/1.1\r\n"
                     "Host: localhost\r\n"
                     "User-Agent: regvisor-sigstore\r\n"
                     "Connection: close\r\n"
                     "%s%s%s"
                     "%s%s%s"
                     "Content-Length: %zu\r\n"
                     "\r\n",
                     method, path, accept ? "Accept: " : "", accept ?: "", accept ? "\r\n" : "",
                     content_type ? "Content-Type: " : "", content_type ?: "", content_type ? "\r\n" : "",
                     body_len);
        if (n < 0) {
                head = NULL;
                return -ENOMEM;
        }

        fd = socket(reg->address.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -EHOSTUNREACH;
        if (set_timeouts(fd, deadline) < 0 || connect(fd, &reg->address.sa, reg->address.len) < 0)
                return -EHOSTUNREACH;
        if (send_all(fd, head, (size_t) n) < 0 || (body_len && send_all(fd, body, body_len) < 0))
                return -EHOSTUNREACH;

        ret->raw = malloc(cap);
        if (!ret->raw)
                return -ENOMEM;
        len = recv_all(fd, ret->raw, cap, deadline);
        if (len < 0) {
                reg_response_done(ret);
                return -EHOSTUNREACH;
        }
        r = http1_parse_response(ret->raw, (size_t) len, streq(method, "HEAD"), &resp, headers,
                                 ELEMENTSOF(headers));
        if (r > 0)
                r = response_body(ret, &resp, (size_t) r, (size_t) len, max_body);
        else
                r = -EHOSTUNREACH; /* cut short (-2) or not HTTP (-1) */
        if (r < 0) {
                reg_response_done(ret);
                return r == -EBADMSG ? -EHOSTUNREACH : r;
        }
        ret->status = resp.status;
        /* An error's JSON says what Distribution disliked ("MANIFEST_BLOB_UNKNOWN"). */
        (void) snprintf(reg->why, sizeof(reg->why), "%s %.100s: %d %.*s", method, path, resp.status,
                        resp.status >= 400 ? (int) (ret->body_len < 240 ? ret->body_len : 240) : 0, ret->body);
        for (size_t i = 0; i < resp.n_headers; i++)
                if (http1_header_is(&headers[i], "Location") && location_path(&headers[i], ret->location) < 0)
                        ret->location[0] = '\0';
                else if (http1_header_is(&headers[i], "Docker-Content-Digest") &&
                         sigcheck_digest(headers[i].value, headers[i].value_len)) {
                        memcpy(ret->content_digest, headers[i].value, headers[i].value_len);
                        ret->content_digest[headers[i].value_len] = '\0';
                }
        return 0;
}

static int sha256_hex(const SigRegistry *reg, const void *data, size_t len, char ret[static SIGSTORE_DIGEST_LEN + 1]) {
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (EVP_Digest(data, len, md, &n, reg->sha256, NULL) != 1 || n != 32)
                return -EIO;
        memcpy(ret, "sha256:", 7);
        for (unsigned i = 0; i < 32; i++) {
                ret[7 + 2 * i] = hex[md[i] >> 4];
                ret[8 + 2 * i] = hex[md[i] & 0xf];
        }
        ret[SIGSTORE_DIGEST_LEN] = '\0';
        return 0;
}

/* The deadline of one call of the API: SIGREG_TIMEOUT_SEC, or reg->deadline_ms when sooner. */
static uint64_t call_deadline(const SigRegistry *reg) {
        uint64_t d = now_ms() + SIGREG_TIMEOUT_SEC * 1000;

        return reg->deadline_ms && reg->deadline_ms < d ? reg->deadline_ms : d;
}

int sigreg_init(SigRegistry *reg, const char *address) {
        SigRegistry r = {};
        int e;

        e = sockaddr_parse(address, &r.address);
        if (e < 0)
                return e;
        r.sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (!r.sha256)
                return -EIO;
        e = sha256_hex(&r, sigmanifest_config, strlen(sigmanifest_config), r.config_digest);
        if (e < 0) {
                EVP_MD_free(r.sha256);
                return e;
        }
        *reg = r;
        return 0;
}

void sigreg_done(SigRegistry *reg) {
        EVP_MD_free(reg->sha256);
        reg->sha256 = NULL;
}

/* "/v2/<repository>/<what>/<ref>": the repository passed sigcheck. */
static char *v2_path(const char *repository, size_t repository_len, const char *what, const char *ref) {
        char *p = NULL;

        if (asprintf(&p, "/v2/%.*s/%s/%s", (int) repository_len, repository, what, ref) < 0)
                return NULL;
        return p;
}

/*
 * The layers of the manifest at tag (digest's signature manifest, either
 * form) into layers[0..*ret_n); 0 layers when the tag (or the repository)
 * does not exist.
 */
static int fetch_manifest(SigRegistry *reg, uint64_t deadline, const char *repository, size_t repository_len,
                          const char *digest, const char *tag, SigLayer layers[static SIGSTORE_MAX_PER_DIGEST],
                          size_t *ret_n) {
        _cleanup_(reg_response_done) RegResponse resp = {};
        _cleanup_free_ char *path = NULL;
        int r;

        path = v2_path(repository, repository_len, "manifests", tag);
        if (!path)
                return -ENOMEM;
        /* Without this Accept, Distribution 2.8 answers 404 for an OCI manifest. Its filesystem
         * driver answers 500 now and then while another host writes the same tag (measured):
         * asked once more. */
        for (int i = 0; i < 2; i++) {
                reg_response_done(&resp);
                r = reg_call(reg, deadline, "GET", path, SIGMANIFEST_TYPE, NULL, NULL, 0, SIGMANIFEST_MAX, &resp);
                if (r == -EFBIG)
                        return -EBADMSG;
                if (r < 0)
                        return r;
                if (resp.status < 500)
                        break;
        }
        if (resp.status == 404) {
                *ret_n = 0;
                return 0;
        }
        if (resp.status != 200)
                return -EHOSTUNREACH;
        return sigmanifest_parse(resp.body, resp.body_len, digest, layers, ret_n, NULL);
}

/* One blob, checked against its descriptor: its size and its digest. *ret is malloc'd. */
static int fetch_blob(SigRegistry *reg, uint64_t deadline, const char *repository, size_t repository_len,
                      const SigLayer *l, uint8_t **ret) {
        _cleanup_(reg_response_done) RegResponse resp = {};
        _cleanup_free_ char *path = NULL;
        char got[SIGSTORE_DIGEST_LEN + 1];
        uint8_t *copy;
        int r;

        path = v2_path(repository, repository_len, "blobs", l->digest);
        if (!path)
                return -ENOMEM;
        r = reg_call(reg, deadline, "GET", path, NULL, NULL, NULL, 0, l->size, &resp);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        if (resp.status == 404)
                return -EBADMSG; /* the manifest names a blob the registry does not have */
        if (resp.status != 200)
                return -EHOSTUNREACH;
        if (resp.body_len != l->size)
                return -EBADMSG;
        r = sha256_hex(reg, resp.body, resp.body_len, got);
        if (r < 0)
                return r;
        if (!streq(got, l->digest))
                return -EBADMSG;
        copy = malloc(l->size);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, resp.body, l->size);
        *ret = copy;
        return 0;
}

/* The registry's answer to a write: 405 is Distribution's read-only mode (gc's window). */
static int write_status(int status, int want) {
        if (status == want)
                return 0;
        if (status == 405)
                return -EROFS;
        return status >= 500 ? -EHOSTUNREACH : -EIO;
}

/* Uploads data as a blob of repository (a POST for a session, a PUT that completes it: Distribution
 * 2.8 has no single-request upload). */
static int upload_blob(SigRegistry *reg, uint64_t deadline, const char *repository, size_t repository_len,
                       const void *data, size_t len, const char *digest) {
        _cleanup_(reg_response_done) RegResponse post = {}, put = {};
        _cleanup_free_ char *path = NULL, *target = NULL;
        int r;

        path = v2_path(repository, repository_len, "blobs", "uploads/");
        if (!path)
                return -ENOMEM;
        r = reg_call(reg, deadline, "POST", path, NULL, NULL, NULL, 0, 4096, &post);
        if (r < 0)
                return r;
        r = write_status(post.status, 202);
        if (r < 0)
                return r;
        if (!post.location[0])
                return -EHOSTUNREACH;
        if (asprintf(&target, "%s%cdigest=%s", post.location, strchr(post.location, '?') ? '&' : '?', digest) < 0) {
                target = NULL;
                return -ENOMEM;
        }
        r = reg_call(reg, deadline, "PUT", target, NULL, "application/octet-stream", data, len, 4096, &put);
        if (r < 0)
                return r;
        return write_status(put.status, 201);
}

/* A name the registry listed (a tag, [A-Za-z0-9_.-], or a repository, with "/"), before it goes
 * into a query string or a path; the callers check it more closely. */
static bool name_plausible(const char *t, size_t n) {
        if (n == 0 || n > 255)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
                      t[i] == '_' || t[i] == '.' || t[i] == '-' || t[i] == '/'))
                        return false;
        return true;
}

/*
 * One page of a list of names (base "/v2/_catalog", key "repositories"; or "/v2/NAME/tags/list",
 * "tags") at path: fn gets each name; a negative return stops with it. *ret_count is how many the
 * page held, ret_last (room for 256) the last of them. A 404 (no such repository) and a list of
 * null (every tag deleted) are an empty page. The body may be at most max_body bytes.
 */
static int list_page(SigRegistry *reg, uint64_t deadline, const char *path, const char *key, size_t max_body,
                     SigRegNameFn fn, void *userdata, size_t *ret_count, char ret_last[static 256]) {
        _cleanup_(reg_response_done) RegResponse resp = {};
        _cleanup_json_ json_object *o = NULL;
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        json_object *list;
        size_t count;
        int r;

        *ret_count = 0;
        r = reg_call(reg, deadline, "GET", path, "application/json", NULL, NULL, 0, max_body, &resp);
        if (r == -EFBIG) {
                (void) snprintf(reg->why, sizeof(reg->why), "GET %.120s: a list over %zu bytes", path, max_body);
                return -EHOSTUNREACH;
        }
        if (r < 0)
                return r;
        if (resp.status == 404)
                return 0;
        if (resp.status != 200)
                return -EHOSTUNREACH;
        tok = json_tokener_new_ex(3);
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, resp.body, (int) resp.body_len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(o, json_type_object))
                return -EHOSTUNREACH;
        if (!json_object_object_get_ex(o, key, &list) || json_object_is_type(list, json_type_null))
                return 0; /* a repository whose tags were all deleted */
        if (!json_object_is_type(list, json_type_array))
                return -EHOSTUNREACH;
        count = json_object_array_length(list);
        for (size_t i = 0; i < count; i++) {
                json_object *t = json_object_array_get_idx(list, i);
                const char *v;
                size_t len;

                if (!json_object_is_type(t, json_type_string))
                        return -EHOSTUNREACH;
                v = json_object_get_string(t);
                len = (size_t) json_object_get_string_len(t);
                if (!name_plausible(v, len))
                        return -EHOSTUNREACH;
                r = fn(v, len, userdata);
                if (r < 0)
                        return r;
                if (i + 1 == count)
                        memcpy(ret_last, v, len + 1);
        }
        *ret_count = count;
        return 0;
}

/*
 * Every name of a list the registry pages, page by page (n and last, as the distribution spec
 * says; Distribution 2.8 ignores both and answers every name at once, unsorted, which ends the
 * walk too). Bounded: SIGREG_TAG_PAGES pages of SIGREG_TAG_PAGE names, SIGREG_TAGS_BODY_MAX bytes a
 * page, the deadline. For the census (a walk of everything); a signature read never lists a
 * repository's own tags (list_sig_tags()).
 */
static int list_paged(SigRegistry *reg, uint64_t deadline, const char *base, const char *key, SigRegNameFn fn,
                      void *userdata) {
        char last[256] = "";

        for (unsigned page = 0; page < SIGREG_TAG_PAGES; page++) {
                _cleanup_free_ char *path = NULL;
                char got_last[256] = "";
                size_t count = 0;
                int r;

                if (asprintf(&path, "%s?n=%d%s%s", base, SIGREG_TAG_PAGE, last[0] ? "&last=" : "", last) < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                r = list_page(reg, deadline, path, key, SIGREG_TAGS_BODY_MAX, fn, userdata, &count, got_last);
                if (r < 0)
                        return r;
                /* A short page is the last; a longer one means the registry ignored n (all at once);
                 * a page that does not move on means it ignored last. */
                if (count != SIGREG_TAG_PAGE || (page > 0 && strcmp(got_last, last) <= 0))
                        return 0;
                memcpy(last, got_last, sizeof(last));
        }
        (void) snprintf(reg->why, sizeof(reg->why), "GET %.120s: more than %d names", base,
                        SIGREG_TAG_PAGES * SIGREG_TAG_PAGE);
        return -EHOSTUNREACH;
}

typedef struct {
        const char *digest;
        char (*tags)[SIGMANIFEST_SIG_TAG_LEN + 1];
        size_t n;
} SigTags;

/* Keeps the digest's signature tags sorted and at most SIGREG_SERVE_MAX: the same choice on every
 * host whatever order the registry lists them in. */
static int sig_tag_insert(const char *t, size_t len, void *userdata) {
        SigTags *st = userdata;
        size_t i = 0;

        if (!sigmanifest_is_sig_tag_of(t, len, st->digest))
                return 0;
        while (i < st->n && strcmp(st->tags[i], t) < 0)
                i++;
        if ((i < st->n && streq(st->tags[i], t)) || i >= SIGREG_SERVE_MAX)
                return 0;
        if (st->n == SIGREG_SERVE_MAX)
                st->n--;
        memmove(st->tags[i + 1], st->tags[i], (st->n - i) * sizeof(st->tags[0]));
        memcpy(st->tags[i], t, SIGMANIFEST_SIG_TAG_LEN + 1);
        st->n++;
        return 0;
}

/*
 * The tags of digest's signatures (sigmanifest_is_sig_tag_of()) in sig_repository, the digest's own
 * repository (sigmanifest_repository()): one GET of its tag list, which holds this digest's
 * signatures and nothing else, so its size does not depend on how many tags NAME has. n and last
 * ask a registry that pages for the tags right after the digest's tag; Distribution 2.8 ignores
 * both and answers all of them, at most SIGREG_SIG_LIST_BODY_MAX bytes (more: 503).
 */
static int list_sig_tags(SigRegistry *reg, uint64_t deadline, const char *sig_repository, const char *digest,
                         char tags[static SIGREG_SERVE_MAX][SIGMANIFEST_SIG_TAG_LEN + 1], size_t *ret_n) {
        _cleanup_free_ char *path = NULL;
        char tag[SIGMANIFEST_TAG_LEN + 1], last[256];
        SigTags st = {.digest = digest, .tags = tags};
        size_t count = 0;
        int r;

        sigmanifest_tag(digest, tag);
        if (asprintf(&path, "/v2/%s/tags/list?n=%d&last=%s", sig_repository, SIGREG_SIG_LIST_MAX, tag) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        r = list_page(reg, deadline, path, "tags", SIGREG_SIG_LIST_BODY_MAX, sig_tag_insert, &st, &count, last);
        if (r < 0)
                return r;
        *ret_n = st.n;
        return 0;
}

int sigreg_each_repository(SigRegistry *reg, SigRegNameFn fn, void *userdata) {
        return list_paged(reg, call_deadline(reg), "/v2/_catalog", "repositories", fn, userdata);
}

int sigreg_each_tag(SigRegistry *reg, const char *repository, SigRegNameFn fn, void *userdata) {
        _cleanup_free_ char *base = v2_path(repository, strlen(repository), "tags", "list");

        if (!base)
                return -ENOMEM;
        return list_paged(reg, call_deadline(reg), base, "tags", fn, userdata);
}

/* HEAD of the manifest repository:ref (a tag or a digest): its digest into ret. -ENOENT when the
 * registry has no such manifest (or repository). */
static int head_manifest(SigRegistry *reg, uint64_t deadline, const char *repository, size_t repository_len,
                         const char *ref, char ret[static SIGSTORE_DIGEST_LEN + 1]) {
        _cleanup_(reg_response_done) RegResponse resp = {};
        _cleanup_free_ char *path = v2_path(repository, repository_len, "manifests", ref);
        int r;

        if (!path)
                return -ENOMEM;
        /* Every manifest type: without schema 2 in Accept, Distribution converts to schema 1, of
         * another digest; without OCI it answers 404 for an OCI manifest. */
        r = reg_call(reg, deadline, "HEAD", path, SIGREG_MANIFEST_TYPES, NULL, NULL, 0, 0, &resp);
        if (r < 0)
                return r;
        if (resp.status == 404)
                return -ENOENT;
        if (resp.status != 200 || !resp.content_digest[0])
                return -EHOSTUNREACH;
        memcpy(ret, resp.content_digest, sizeof(resp.content_digest));
        return 0;
}

int sigreg_resolve(SigRegistry *reg, const char *repository, const char *tag, char ret[static SIGSTORE_DIGEST_LEN + 1]) {
        /* -ENOENT: deleted since it was listed. */
        return head_manifest(reg, call_deadline(reg), repository, strlen(repository), tag, ret);
}

/* One signature found for a digest: its layer, and where its blob is, in NAME (the first
 * version's one manifest) or in the digest's own repository. */
typedef struct SigFound {
        SigLayer layer;
        bool legacy;
} SigFound;

static int found_compare(const void *a, const void *b) {
        const SigLayer *x = &((const SigFound *) a)->layer, *y = &((const SigFound *) b)->layer;
        int c = strcmp(x->suffix, y->suffix);

        return c ? c : strcmp(x->digest, y->digest);
}

/* A signature manifest or blob that is not what this store writes: left out, the others still
 * served. The first one's reason is kept for the log (reg->skipped). */
_printf_(2, 3) static void skip(SigRegistry *reg, const char *format, ...) {
        va_list ap;

        if (reg->n_skipped++ > 0)
                return;
        va_start(ap, format);
        (void) vsnprintf(reg->skipped, sizeof(reg->skipped), format, ap);
        va_end(ap);
}

/*
 * Every signature of repository@digest, sorted by name, then by the digest of the bytes, at most
 * SIGREG_SERVE_MAX, the same bytes once: the first version's one manifest at sha256-HEX.simplesig
 * in NAME (read only, so that what was stored then is served), and one manifest per signature at
 * sha256-HEX.simplesig.<hex> in the digest's own repository (at most SIGREG_SERVE_MAX of them read,
 * the first by tag). A tag that vanished between the list and the read (deleted by hand) is
 * skipped; so is a manifest this store did not write, with skip(). Requests: 2 + one per
 * signature tag, whatever NAME holds.
 */
static int collect_layers(SigRegistry *reg, uint64_t deadline, const char *repository, size_t repository_len,
                          const char *digest, char sig_repository[static 256],
                          SigFound ret[static SIGREG_SERVE_MAX], size_t *ret_n) {
        char tags[SIGREG_SERVE_MAX][SIGMANIFEST_SIG_TAG_LEN + 1], old_tag[SIGMANIFEST_TAG_LEN + 1];
        SigLayer layers[SIGSTORE_MAX_PER_DIGEST];
        size_t n = 0, n_tags = 0, k = 0;
        int r;

        sigmanifest_tag(digest, old_tag);
        r = fetch_manifest(reg, deadline, repository, repository_len, digest, old_tag, layers, &n);
        if (r == -EBADMSG) {
                skip(reg, "the manifest at %.*s:%s is not the signature store's",
                     (int) (repository_len < 100 ? repository_len : 100), repository, old_tag);
                n = 0;
        } else if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                ret[k++] = (SigFound){.layer = layers[i], .legacy = true};
        /* A NAME too long for a repository of its own has no per-signature tags: sigreg_put() refuses. */
        if (sigmanifest_repository(repository, repository_len, digest, sig_repository) < 0)
                sig_repository[0] = '\0';
        else {
                r = list_sig_tags(reg, deadline, sig_repository, digest, tags, &n_tags);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_tags && k < SIGREG_SERVE_MAX; i++) {
                bool dup = false;

                r = fetch_manifest(reg, deadline, sig_repository, strlen(sig_repository), digest, tags[i], layers, &n);
                if (r == -EBADMSG) {
                        skip(reg, "the manifest at %.100s:%s is not the signature store's", sig_repository, tags[i]);
                        continue;
                }
                if (r < 0)
                        return r;
                if (n == 0)
                        continue;
                /* One layer, the one the tag names: a manifest copied to another signature's tag
                 * would otherwise serve one signature twice and hide another. */
                if (n != 1 || memcmp(layers[0].digest + 7, tags[i] + SIGMANIFEST_TAG_LEN + 1, SIGMANIFEST_SIG_HEX) != 0) {
                        skip(reg, "the manifest at %.100s:%s is not that signature's", sig_repository, tags[i]);
                        continue;
                }
                for (size_t j = 0; j < k; j++)
                        dup = dup || streq(ret[j].layer.digest, layers[0].digest);
                if (!dup)
                        ret[k++] = (SigFound){.layer = layers[0]};
        }
        qsort(ret, k, sizeof(SigFound), found_compare);
        *ret_n = k;
        return 0;
}

int sigreg_list(SigRegistry *reg, const char *repository, size_t repository_len, const char *digest,
                SigEntry **ret, size_t *ret_n) {
        uint64_t deadline = call_deadline(reg);
        SigFound found[SIGREG_SERVE_MAX];
        char sig_repository[256];
        SigEntry *entries;
        size_t n = 0, k = 0;
        int r;

        reg->n_skipped = 0;
        reg->skipped[0] = '\0';
        r = collect_layers(reg, deadline, repository, repository_len, digest, sig_repository, found, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        entries = calloc(n, sizeof(SigEntry));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const SigLayer *l = &found[i].layer;
                const char *where = found[i].legacy ? repository : sig_repository;
                size_t where_len = found[i].legacy ? repository_len : strlen(sig_repository);

                r = fetch_blob(reg, deadline, where, where_len, l, &entries[k].content);
                if (r == -EBADMSG) {
                        skip(reg, "the blob %s of signature %.100s is missing or does not match", l->digest,
                             l->suffix);
                        continue;
                }
                if (r < 0) {
                        sig_entries_free(entries, k);
                        return r;
                }
                entries[k].content_len = l->size;
                strcpy(entries[k].suffix, l->suffix); /* sigcheck_suffix(): fits */
                k++;
        }
        *ret = entries;
        *ret_n = k;
        return 0;
}

/* The manifest of one signature, at its own tag in the digest's repository: a tag is written
 * atomically, so writers of different signatures never touch each other's manifest. */
static int put_manifest(SigRegistry *reg, uint64_t deadline, const char *sig_repository, const char *digest,
                        const SigLayer *add) {
        _cleanup_(reg_response_done) RegResponse resp = {};
        _cleanup_free_ char *path = NULL, *json = NULL;
        char tag[SIGMANIFEST_SIG_TAG_LEN + 1];
        size_t len = 0;
        int r;

        r = sigmanifest_build(add, 1, digest, reg->config_digest, &json, &len);
        if (r < 0)
                return r;
        sigmanifest_sig_tag(digest, add->digest, tag);
        path = v2_path(sig_repository, strlen(sig_repository), "manifests", tag);
        if (!path)
                return -ENOMEM;
        r = reg_call(reg, deadline, "PUT", path, NULL, SIGMANIFEST_TYPE, json, len, 4096, &resp);
        if (r < 0)
                return r;
        return write_status(resp.status, 201);
}

int sigreg_put(SigRegistry *reg, const char *repository, size_t repository_len, const char *digest,
               const SigEntry *sig) {
        uint64_t deadline = call_deadline(reg);
        SigFound found[SIGREG_SERVE_MAX];
        SigLayer add = {.size = sig->content_len};
        char sig_repository[256], image_digest[SIGSTORE_DIGEST_LEN + 1];
        size_t n = 0;
        int r;

        reg->n_skipped = 0;
        reg->skipped[0] = '\0';
        if (repository_len > SIGMANIFEST_REPOSITORY_BASE_MAX) {
                (void) snprintf(reg->why, sizeof(reg->why), "a repository name over %zu bytes",
                                (size_t) SIGMANIFEST_REPOSITORY_BASE_MAX);
                return -ENAMETOOLONG;
        }
        /* Only for an image the registry holds: every digest gets a repository of its own, so a
         * PUT for made-up digests would add repositories without end (the census reads at most
         * SIGREG_TAG_PAGES pages of the catalog) for a pusher allowed one repository. An image
         * deleted between this check and the write keeps its signature, as one deleted later does. */
        r = head_manifest(reg, deadline, repository, repository_len, digest, image_digest);
        if (r == -ENOENT)
                (void) snprintf(reg->why, sizeof(reg->why), "no manifest %.*s@%s in the registry",
                                (int) (repository_len < 180 ? repository_len : 180), repository, digest);
        if (r < 0)
                return r;

        strcpy(add.suffix, sig->suffix);
        r = sha256_hex(reg, sig->content, sig->content_len, add.digest);
        if (r < 0) {
                (void) snprintf(reg->why, sizeof(reg->why), "SHA-256 failed");
                return r;
        }

        /* The local store's rules against what is stored now. Another host may store a signature
         * between this read and our write: then the name check and the count cap may be passed
         * by both (docs/signature-extension.md), but neither signature is lost. */
        r = collect_layers(reg, deadline, repository, repository_len, digest, sig_repository, found, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                if (streq(found[i].layer.digest, add.digest))
                        return 1;
                if (streq(found[i].layer.suffix, add.suffix))
                        return -EEXIST;
        }
        if (n >= SIGSTORE_MAX_PER_DIGEST)
                return -EDQUOT;

        for (unsigned attempt = 0;; attempt++) {
                /* Blobs first: Distribution refuses a manifest that names a blob it lacks. */
                r = upload_blob(reg, deadline, sig_repository, strlen(sig_repository), sigmanifest_config,
                                strlen(sigmanifest_config), reg->config_digest);
                if (r < 0)
                        return r;
                r = upload_blob(reg, deadline, sig_repository, strlen(sig_repository), sig->content,
                                sig->content_len, add.digest);
                if (r < 0)
                        return r;
                r = put_manifest(reg, deadline, sig_repository, digest, &add);
                /* MANIFEST_BLOB_UNKNOWN: two uploads of the same blob (the config) that committed
                 * at once can leave it unlinked (measured): upload again. */
                if (r != -EIO || attempt + 1 >= SIGREG_ATTEMPTS)
                        return r;
        }
}
