/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "store.h"

#define SECRET_FILE_MAX (64 * 1024)
#define HTTP_SECRET_MIN 32
#define HTTP_SECRET_MAX 1024

_printf_(3, 4) static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

static void secret_free(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
                *p = NULL;
        }
}

void store_credentials_done(StoreCredentials *s) {
        if (!s)
                return;
        secret_free(&s->username);
        secret_free(&s->password);
        secret_free(&s->tenant);
        secret_free(&s->domain);
        secret_free(&s->access_key);
        secret_free(&s->secret_key);
}

int store_secret_file_read(const char *path, char **ret_text, char **ret_error) {
        char *text = NULL;
        struct stat st;
        size_t size;
        int r;

        /* The mode and owner checked are those of the file read (its fd; a
         * symlink is refused). A secret others could read was read here
         * too, and is wiped before refusing it. */
        r = read_file_stat(path, SECRET_FILE_MAX, &text, &size, &st);
        if (r == -EBADFD)
                return fail(ret_error, -EINVAL, "%s: expected a regular file", path);
        if (r == -EFBIG)
                return fail(ret_error, r, "%s: expected at most 64 KiB", path);
        if (r < 0)
                return fail(ret_error, r, "%s: cannot read: %s", path, strerror(-r));
        if (st.st_uid != 0 || (st.st_mode & 077)) {
                secret_free(&text);
                return fail(ret_error, -EPERM,
                            "%s: expected a file of root's that nobody else may read or write (chown root "
                            "and chmod 0600), got owner %u and mode %04o: refused, the secret may be known",
                            path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        }
        if (memchr(text, 0, size)) {
                secret_free(&text);
                return fail(ret_error, -EINVAL, "%s: expected text, got a NUL byte", path);
        }
        *ret_text = text;
        return 0;
}

/* A credential value: printable ASCII or UTF-8, no control characters (it
 * becomes a double-quoted YAML string, see render_registry_config). */
static bool value_valid(const char *v) {
        if (!*v)
                return false;
        for (; *v; v++)
                if ((unsigned char)*v < 0x20 || *v == 0x7f)
                        return false;
        return true;
}

#define KEY_ECHO_MAX 32

/* The error for a line whose key is none of ours. The text before '=' is
 * named only when it looks like a key ([a-z_]): a line such as YAML's
 * "secret_key: wJal.../K7MD+bPx=" holds a secret there, and errors end up
 * in provision's output and health's (a monitoring system's) text. */
static int unknown_key(const char *path, unsigned line, const char *k, size_t n, char **ret_error) {
        bool show = n > 0 && n <= KEY_ECHO_MAX && strspn(k, "abcdefghijklmnopqrstuvwxyz_") >= n;

        return fail(ret_error, -EINVAL,
                    "%s:%u: expected username, password, tenant, domain, access_key or secret_key before "
                    "'='%s%.*s%s",
                    path, line, show ? ", got '" : " (what is there is not shown: it is not a key name)",
                    show ? (int)n : 0, k, show ? "'" : "");
}

int store_credentials_parse(const Config *c, const char *path, const char *text, StoreCredentials *ret,
                            char **ret_error) {
        _cleanup_(store_credentials_done) StoreCredentials s = {};
        struct {
                const char *key;
                char **field;
        } keys[] = {
                {"username", &s.username},     {"password", &s.password},
                {"tenant", &s.tenant},         {"domain", &s.domain},
                {"access_key", &s.access_key}, {"secret_key", &s.secret_key},
        };
        unsigned line = 0;

        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n'), *end = nl ?: p + strlen(p), *eq, *k, *ke, *v, *ve;
                bool found = false;

                line++;
                k = p;
                while (k < end && (*k == ' ' || *k == '\t'))
                        k++;
                ve = end;
                while (ve > k && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                        ve--;
                p = nl ? nl + 1 : end;
                if (k == ve || *k == '#')
                        continue;
                eq = memchr(k, '=', (size_t)(ve - k));
                if (!eq)
                        return fail(ret_error, -EINVAL, "%s:%u: expected 'key = value'", path, line);
                ke = eq;
                while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                        ke--;
                v = eq + 1;
                while (v < ve && (*v == ' ' || *v == '\t'))
                        v++;
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        if (strlen(keys[i].key) != (size_t)(ke - k) || !strneq(keys[i].key, k, (size_t)(ke - k)))
                                continue;
                        found = true;
                        if (*keys[i].field)
                                return fail(ret_error, -EINVAL, "%s:%u: %s: duplicate key", path, line,
                                            keys[i].key);
                        if (!(*keys[i].field = strndup(v, (size_t)(ve - v))))
                                return -ENOMEM;
                        if (!value_valid(*keys[i].field))
                                return fail(ret_error, -EINVAL,
                                            "%s:%u: %s: expected a value of printable characters", path, line,
                                            keys[i].key);
                }
                if (!found)
                        return unknown_key(path, line, k, (size_t)(ke - k), ret_error);
        }

        if (c->storage_kind == STORAGE_SWIFT && (!s.username || !s.password))
                return fail(ret_error, -EINVAL, "%s: expected username and password for [registry] storage = swift",
                            path);
        if (c->storage_kind == STORAGE_S3 && (!s.access_key || !s.secret_key))
                return fail(ret_error, -EINVAL, "%s: expected access_key and secret_key for [registry] storage = s3",
                            path);
        *ret = s;
        s = (StoreCredentials){};
        return 0;
}

int store_credentials_load(const Config *c, StoreCredentials *ret, char **ret_error) {
        char *text = NULL;
        int r;

        if (!c->store_credentials_file)
                return fail(ret_error, -EINVAL, "[store] credentials_file: expected a file");
        r = store_secret_file_read(c->store_credentials_file, &text, ret_error);
        if (r < 0)
                return r;
        r = store_credentials_parse(c, c->store_credentials_file, text, ret, ret_error);
        secret_free(&text);
        return r;
}

int store_http_secret_load(const char *path, char **ret_secret, char **ret_error) {
        char *text = NULL;
        size_t n;
        int r;

        r = store_secret_file_read(path, &text, ret_error);
        if (r < 0)
                return r;
        n = strcspn(text, "\n");
        if (text[n] == '\n' && text[n + 1 + strspn(text + n + 1, "\n")] != 0) {
                secret_free(&text);
                return fail(ret_error, -EINVAL, "%s: expected the secret on one line", path);
        }
        text[n] = 0;
        if (n < HTTP_SECRET_MIN || n > HTTP_SECRET_MAX ||
            strspn(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/=_-") != n) {
                secret_free(&text);
                return fail(ret_error, -EINVAL,
                            "%s: expected %d to %d of [A-Za-z0-9+/=_-] (openssl rand -hex 32 makes one)", path,
                            HTTP_SECRET_MIN, HTTP_SECRET_MAX);
        }
        *ret_secret = text;
        return 0;
}
