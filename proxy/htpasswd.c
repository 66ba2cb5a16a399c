/* SPDX-License-Identifier: MIT */
/*
 * The htpasswd second factor: the file, Basic credentials, bcrypt through
 * crypt_r(); see htpasswd.h.
 */

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "htpasswd.h"
#include "macro.h"

void htpasswd_done(Htpasswd *h) {
        if (!h)
                return;
        for (unsigned i = 0; i < h->n; i++)
                free(h->entries[i].user);
        if (h->entries)
                OPENSSL_cleanse(h->entries, h->n * sizeof(HtpasswdEntry));
        free(h->entries);
        *h = (Htpasswd){};
}

/* "$2y$NN$" and 53 of bcrypt's base64 ([./A-Za-z0-9]), NN 04 to 31. */
static bool bcrypt_hash_valid(const char *s, size_t n) {
        if (n != HTPASSWD_BCRYPT_LEN || s[0] != '$' || s[1] != '2' || !strchr("aby", s[2]) || s[3] != '$' ||
            s[6] != '$')
                return false;
        if (s[4] < '0' || s[4] > '3' || s[5] < '0' || s[5] > '9')
                return false;
        unsigned cost = (unsigned)(s[4] - '0') * 10 + (unsigned)(s[5] - '0');
        if (cost < 4 || cost > 31)
                return false;
        return strspn(s + 7, "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") >= n - 7;
}

static bool user_valid(const char *s, size_t n) {
        if (n == 0 || n > HTPASSWD_USER_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ':')
                        return false;
        return true;
}

int htpasswd_parse(const char *text, size_t size, Htpasswd *ret, unsigned *ret_line, const char **ret_why) {
        _cleanup_(htpasswd_done) Htpasswd h = {};
        unsigned line = 0, cap = 0, costliest = 0;

        for (size_t pos = 0; pos < size;) {
                const char *l = text + pos, *nl = memchr(l, '\n', size - pos);
                size_t len = nl ? (size_t)(nl - l) : size - pos;

                pos += len + (nl ? 1 : 0);
                line++;
                if (len > 0 && l[len - 1] == '\r')
                        len--;
                if (len == 0 || l[0] == '#')
                        continue;
                const char *colon = memchr(l, ':', len);
                *ret_line = line;
                if (!colon || !user_valid(l, (size_t)(colon - l))) {
                        *ret_why = "expected 'user:hash' with a user name of 1 to 255 visible characters";
                        return -EINVAL;
                }
                size_t ulen = (size_t)(colon - l), hlen = len - ulen - 1;
                if (!bcrypt_hash_valid(colon + 1, hlen)) {
                        *ret_why = "expected a bcrypt hash ($2y$, as `htpasswd -B` writes; other formats are "
                                   "refused)";
                        return -EINVAL;
                }
                for (unsigned i = 0; i < h.n; i++)
                        if (strlen(h.entries[i].user) == ulen && memcmp(h.entries[i].user, l, ulen) == 0) {
                                *ret_why = "expected each user once";
                                return -EINVAL;
                        }
                if (h.n == HTPASSWD_MAX_USERS) {
                        *ret_why = "expected at most 4096 users";
                        return -EINVAL;
                }
                if (h.n == cap) {
                        unsigned ncap = cap ? cap * 2 : 16;
                        HtpasswdEntry *e = reallocarray(h.entries, ncap, sizeof(HtpasswdEntry));
                        if (!e)
                                return -ENOMEM;
                        h.entries = e;
                        cap = ncap;
                }
                HtpasswdEntry *e = &h.entries[h.n];
                if (!(e->user = strndup(l, ulen)))
                        return -ENOMEM;
                memcpy(e->hash, colon + 1, HTPASSWD_BCRYPT_LEN);
                e->hash[HTPASSWD_BCRYPT_LEN] = 0;
                /* The costliest hash ("$2y$NN": NN compares as text). */
                if (memcmp(e->hash + 4, h.entries[costliest].hash + 4, 2) > 0)
                        costliest = h.n;
                h.n++;
        }
        /* Into entries, which no longer move. */
        h.dummy = h.n > 0 ? h.entries[costliest].hash : NULL;
        *ret = h;
        h = (Htpasswd){};
        return 0;
}

int htpasswd_stamp(const char *path, HtpasswdStamp *ret) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return negative_errno();
        *ret = (HtpasswdStamp){
                .dev = st.st_dev,
                .ino = st.st_ino,
                .size = st.st_size,
                .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                .ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec,
        };
        return 0;
}

bool htpasswd_stamp_equal(const HtpasswdStamp *a, const HtpasswdStamp *b) {
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
               a->ctime_ns == b->ctime_ns;
}

int htpasswd_load(const char *path, Htpasswd *ret, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        HtpasswdStamp stamp;
        const char *why = NULL;
        unsigned line = 0;
        size_t size;
        int r;

        /* The stamp first: a change while reading shows as a new stamp at
         * the next look, and the file is read again. */
        r = htpasswd_stamp(path, &stamp);
        if (r >= 0)
                r = read_file(path, HTPASSWD_MAX_SIZE, &text, &size);
        if (r < 0) {
                if (asprintf(ret_error, "%s: cannot read the htpasswd file: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        r = htpasswd_parse(text, size, ret, &line, &why);
        if (r == -EINVAL && asprintf(ret_error, "%s:%u: %s", path, line, why) < 0)
                *ret_error = NULL;
        if (r < 0)
                return r;
        ret->stamp = stamp;
        return 0;
}

int htpasswd_basic_decode(const char *value, size_t len, char *buf, size_t size, const char **ret_user,
                          const char **ret_password) {
        static const char scheme[] = "Basic ";
        size_t k = sizeof(scheme) - 1;

        /* The scheme is case-insensitive (RFC 9110 §11.1). */
        if (len <= k || strncasecmp(value, scheme, k) != 0)
                return -EINVAL;
        value += k;
        len -= k;
        while (len > 0 && value[0] == ' ')
                value++, len--;
        if (len == 0 || len % 4 != 0)
                return -EINVAL;
        if (len / 4 * 3 + 1 > size)
                return -E2BIG;
        for (size_t i = 0; i < len; i++)
                if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", value[i]) ||
                    (value[i] == '=' && i < len - 2) || (value[i] == '=' && i == len - 2 && value[len - 1] != '='))
                        return -EINVAL;
        int n = EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)value, (int)len);
        if (n < 0)
                return -EINVAL;
        n -= (value[len - 1] == '=') + (value[len - 2] == '=');
        buf[n] = 0;
        char *colon = memchr(buf, ':', (size_t)n);
        if (!colon)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
                        return -EINVAL;
        *colon = 0;
        *ret_user = buf;
        *ret_password = colon + 1;
        return 0;
}

bool htpasswd_verify(const Htpasswd *h, const char *user, const char *password, struct crypt_data *data) {
        const HtpasswdEntry *found = NULL;

        if (!h || h->n == 0 || strlen(password) > HTPASSWD_PASSWORD_MAX)
                return false;
        for (unsigned i = 0; i < h->n; i++)
                if (streq(h->entries[i].user, user))
                        found = &h->entries[i];
        /* An unknown user costs what a known one does. */
        const char *setting = found ? found->hash : h->dummy;
        const char *out = crypt_rn(password, setting, data, (int)sizeof(*data));
        bool ok = out && strlen(out) == HTPASSWD_BCRYPT_LEN &&
                  CRYPTO_memcmp(out, setting, HTPASSWD_BCRYPT_LEN) == 0;
        OPENSSL_cleanse(data->output, sizeof(data->output));
        return ok && found;
}

void htpasswd_cache_key(const char *cn, const char *value, size_t len, unsigned char ret[32]) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned n = 32;

        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, cn, strlen(cn) + 1) != 1 || EVP_DigestUpdate(ctx, value, len) != 1 ||
            EVP_DigestFinal_ex(ctx, ret, &n) != 1)
                /* No key: a value no cache holds, so it is verified again. */
                memset(ret, 0, 32);
        EVP_MD_CTX_free(ctx);
}

bool htpasswd_cache_has(const HtpasswdCache *c, const unsigned char key[32]) {
        static const unsigned char zero[32];

        if (memcmp(key, zero, 32) == 0)
                return false;
        for (unsigned i = 0; i < HTPASSWD_CACHE_SLOTS; i++)
                if (c->used[i] && CRYPTO_memcmp(c->key[i], key, 32) == 0)
                        return true;
        return false;
}

void htpasswd_cache_add(HtpasswdCache *c, const unsigned char key[32]) {
        memcpy(c->key[c->next], key, 32);
        c->used[c->next] = true;
        c->next = (c->next + 1) % HTPASSWD_CACHE_SLOTS;
}
