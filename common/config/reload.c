/* SPDX-License-Identifier: MIT */
/*
 * The reload policy (a table of restart-only keys) and the reload outcome
 * file; see reload.h.
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "reload.h"

typedef enum FieldKind {
        FIELD_STRING,   /* char *, NULL-safe */
        FIELD_UNSIGNED, /* unsigned */
        FIELD_U64,      /* uint64_t */
        FIELD_LISTEN,   /* ListenAddress */
        FIELD_UPSTREAM, /* UpstreamAddress */
} FieldKind;

typedef struct RestartOnly {
        const char *name;
        FieldKind kind;
        size_t offset;
        unsigned owners;
        /* Why a running process cannot take a new value (documentation;
         * docs/ARCHITECTURE.md lists the same). */
        const char *why;
} RestartOnly;

#define ROW(name, kind, field, owners, why) {name, kind, offsetof(Config, field), owners, why}

/* Every key set up once at a process's start. Not here and therefore
 * applied by a reload: [pull]/[push] rate, burst, delay, conn_per_ip,
 * allow_cidrs; [push] htpasswd and [scopes]; [proxy] max_body and the timeouts; [tls] dir and
 * server_names (certificates and the CRL are loaded again); [supervise]; [pki];
 * [status] allow_remote and allow_cidrs; [proxy] trusted_proxies. Keys only the one-shot commands read (provision,
 * pki, health: [host] subid_range, [tls] key_type/ca_days/cert_days/
 * organization, [signing], [health]) are read again by their next run. */
static const RestartOnly restart_only[] = {
        ROW("[host] service_user", FIELD_STRING, service_user, RELOAD_SUPERVISOR,
            "the supervisor's bus connection to that user's manager is opened at start"),
        ROW("[host] proxy_user", FIELD_STRING, proxy_user, RELOAD_PROXY,
            "the proxy looks the user up once; its group is the supervisor's too"),
        /* [registry] image and image_archive are not here: a reload with a
         * new image restarts the registry on it (supervisor/run/
         * reconfigure.c), once provision has written its unit. */
        ROW("[registry] storage", FIELD_STRING, storage, RELOAD_SUPERVISOR,
            "part of the registry unit written by provision"),
        ROW("[registry] listen", FIELD_UPSTREAM, listen, RELOAD_SUPERVISOR | RELOAD_PROXY,
            "the registry unit (provision) and the proxy's upstream must change together"),
        ROW("[registry] memory_max", FIELD_U64, memory_max, RELOAD_SUPERVISOR,
            "part of the registry unit written by provision"),
        ROW("[registry] cpu_quota", FIELD_UNSIGNED, cpu_quota, RELOAD_SUPERVISOR,
            "part of the registry unit written by provision"),
        ROW("[pull] listen", FIELD_LISTEN, pull.listen, RELOAD_PROXY,
            "bound once, while the proxy may still bind low ports"),
        ROW("[push] listen", FIELD_LISTEN, push.listen, RELOAD_PROXY,
            "bound once, while the proxy may still bind low ports"),
        ROW("[proxy] workers", FIELD_UNSIGNED, proxy.workers, RELOAD_PROXY,
            "sizes the worker slots and the limits table's columns"),
        ROW("[proxy] limits_slots", FIELD_UNSIGNED, proxy.limits_slots, RELOAD_PROXY,
            "sizes the per-client limits table, created once and shared by every generation"),
        ROW("[status] listen", FIELD_LISTEN, status_listen, RELOAD_SUPERVISOR, "bound once at start"),
        ROW("[signing] store", FIELD_UNSIGNED, signature_store, RELOAD_SUPERVISOR,
            "the signature store is started with it, before the proxy"),
};

static bool str_eq(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

static bool field_eq(const RestartOnly *row, const Config *a, const Config *b) {
        const void *x = (const char *) a + row->offset, *y = (const char *) b + row->offset;

        switch (row->kind) {
        case FIELD_STRING:
                return str_eq(*(char *const *) x, *(char *const *) y);
        case FIELD_UNSIGNED:
                return *(const unsigned *) x == *(const unsigned *) y;
        case FIELD_U64:
                return *(const uint64_t *) x == *(const uint64_t *) y;
        case FIELD_LISTEN: {
                const ListenAddress *l = x, *m = y;
                return l->port == m->port && str_eq(l->host, m->host);
        }
        case FIELD_UPSTREAM: {
                const UpstreamAddress *u = x, *v = y;
                return u->kind == v->kind && u->port == v->port && str_eq(u->path, v->path) &&
                       str_eq(u->host, v->host);
        }
        }
        return false;
}

int reload_restart_only_changes(const Config *running, const Config *fresh, unsigned owners, char **ret_list) {
        char *list = NULL;
        size_t size = 0;
        FILE *f;
        int n = 0;

        f = open_memstream(&list, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(restart_only); i++) {
                const RestartOnly *row = &restart_only[i];
                if (!(row->owners & owners) || field_eq(row, running, fresh))
                        continue;
                fprintf(f, "%s%s", n > 0 ? ", " : "", row->name);
                n++;
        }
        if (fclose(f) != 0 || !list) {
                free(list);
                return -ENOMEM;
        }
        if (n == 0) {
                free(list);
                list = NULL;
        }
        *ret_list = list;
        return n;
}

int reload_load_config(const char *path, Config *ret, char **ret_error) {
        int r;

        *ret_error = NULL;
        r = config_init_defaults(ret);
        if (r < 0)
                return r;
        r = config_load(ret, path, ret_error);
        if (r >= 0)
                r = config_validate(ret, path, ret_error);
        if (r < 0)
                config_done(ret);
        return r;
}

int reload_check_file(const char *path, const Config *running, unsigned owners, const char *restart,
                      Config *ret_fresh, char **ret_refusal) {
        _cleanup_free_ char *error = NULL, *changed = NULL;
        Config fresh;
        int r;

        *ret_refusal = NULL;
        r = reload_load_config(path, &fresh, &error);
        if (r < 0) {
                *ret_refusal = error ? TAKE_PTR(error) : strdup(strerror(-r));
                return r;
        }
        r = reload_restart_only_changes(running, &fresh, owners, &changed);
        if (r != 0) {
                config_done(&fresh);
                if (asprintf(ret_refusal, "%s: %s %s only with %s", path, r > 0 ? changed : "(out of memory)",
                             r == 1 ? "changes" : "change", restart) < 0)
                        *ret_refusal = NULL;
                return -EPERM;
        }
        *ret_fresh = fresh;
        return 0;
}

int reload_status_write(const char *path, unsigned long seq, bool ok, const char *message) {
        _cleanup_free_ char *line = NULL;
        int n;

        n = asprintf(&line, "%lu %s %s\n", seq, ok ? "ok" : "failed", message ? message : "");
        if (n < 0)
                return -ENOMEM;
        /* One line: a message never ends the record early. */
        for (int i = 0; i < n - 1; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        return write_file_atomic(path, line, (size_t) n, 0644, (uid_t) -1, (gid_t) -1);
}

int reload_status_read(const char *path, unsigned long *ret_seq, bool *ret_ok, char **ret_message) {
        _cleanup_free_ char *data = NULL;
        char *p, *end;
        unsigned long seq;
        size_t size;
        int r;

        r = read_file(path, 64 * 1024, &data, &size);
        if (r == -ENOENT) {
                *ret_seq = 0;
                *ret_ok = false;
                if (ret_message)
                        *ret_message = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        errno = 0;
        seq = strtoul(data, &end, 10);
        if (errno != 0 || end == data || *end != ' ')
                return -EBADMSG;
        p = end + 1;
        if (strncmp(p, "ok ", 3) == 0)
                *ret_ok = true, p += 3;
        else if (strncmp(p, "failed ", 7) == 0)
                *ret_ok = false, p += 7;
        else
                return -EBADMSG;
        p[strcspn(p, "\n")] = 0;
        *ret_seq = seq;
        if (ret_message) {
                *ret_message = strdup(p);
                if (!*ret_message)
                        return -ENOMEM;
        }
        return 0;
}
