/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "config.h"
#include "fileio.h"
#include "install.h"
#include "macro.h"
#include "paths.h"
#include "policy.h"

#define BUNDLE_FILE_MAX (1024 * 1024)
#define POLICY_MAX (4 * 1024 * 1024)

static int fail(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (ret_error && vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}

/* A MANIFEST path install may write: absolute, below one of the trees,
 * no empty, "." or ".." component (the bundle comes from another machine
 * and install runs as root). */
static bool path_allowed(const char *path) {
        static const char *const trees[] = {CLIENT_CERTS_D "/", CLIENT_CONTAINERD_CERTS_D "/", CLIENT_KEYS_DIR "/"};
        bool under = false;

        for (size_t i = 0; i < ELEMENTSOF(trees); i++)
                under = under || strncmp(path, trees[i], strlen(trees[i])) == 0;
        if (!under || strstr(path, "//") || strstr(path, "/./") || strstr(path, "/../") ||
            path[strlen(path) - 1] == '/')
                return false;
        for (const char *c = path; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return false;
        return true;
}

static int plan_add(InstallPlan *plan, InstallAction a) {
        InstallAction *n = realloc(plan->actions, (plan->n + 1) * sizeof *n);

        if (!n) {
                free(a.path);
                free(a.data);
                strv_free(a.scopes);
                return -ENOMEM;
        }
        plan->actions = n;
        plan->actions[plan->n++] = a;
        return 0;
}

static bool plan_has_dir(const InstallPlan *plan, const char *path) {
        for (size_t i = 0; i < plan->n; i++)
                if (plan->actions[i].kind == INSTALL_MKDIR && streq(plan->actions[i].path, path))
                        return true;
        return false;
}

/* Plans the missing parents of path, outermost first. */
static int plan_parents(const char *root, InstallPlan *plan, const char *path, char **ret_error) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                _cleanup_free_ char *full = NULL;
                struct stat st;
                *s = '\0';
                full = path_join_root(root, p);
                if (!full)
                        return -ENOMEM;
                if (lstat(full, &st) == 0) {
                        if (!S_ISDIR(st.st_mode))
                                return fail(ret_error, -ENOTDIR, "%s: not a directory", full);
                } else if (errno != ENOENT)
                        return fail(ret_error, -errno, "%s: %s", full, strerror(errno));
                else if (!plan_has_dir(plan, p)) {
                        char *d = strdup(p);
                        if (!d || plan_add(plan, (InstallAction){.kind = INSTALL_MKDIR, .path = d, .mode = 0755}) < 0)
                                return -ENOMEM;
                }
                *s = '/';
        }
        return 0;
}

/* Plans a (which owns its data and scopes, freed on failure) to write
 * path, after the missing parents of path. */
static int plan_write(const char *root, InstallPlan *plan, const char *path, InstallAction a, char **ret_error) {
        int r = plan_parents(root, plan, path, ret_error);

        if (r >= 0 && !(a.path = strdup(path)))
                r = -ENOMEM;
        if (r < 0) {
                free(a.data);
                strv_free(a.scopes);
                return r;
        }
        return plan_add(plan, a);
}

/* Plans writing src (a file of the bundle, or the client's own key) to
 * path with mode, unless it is there already. */
static int plan_file(const char *root, const char *src, InstallPlan *plan, mode_t mode, const char *path,
                     char **ret_error) {
        _cleanup_free_ char *full = NULL, *data = NULL;
        size_t size;
        int r;

        r = read_file(src, BUNDLE_FILE_MAX, &data, &size);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", src, strerror(-r));
        full = path_join_root(root, path);
        if (!full)
                return -ENOMEM;
        r = file_matches(full, data, size, mode, geteuid(), getegid(), NULL);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", full, strerror(-r));
        if (r > 0)
                return 0;
        return plan_write(root, plan, path,
                          (InstallAction){.kind = INSTALL_WRITE, .mode = mode, .data = TAKE_PTR(data), .size = size},
                          ret_error);
}

static int plan_policy(const char *root, const char *bundle, InstallPlan *plan, char **ret_error) {
        _cleanup_free_ char *src = NULL, *frag = NULL, *full = NULL, *cur = NULL, *json = NULL, *error = NULL;
        _cleanup_strv_free_ char **scopes = NULL;
        int r;

        if (asprintf(&src, "%s/" BUNDLE_POLICY, bundle) < 0)
                return -ENOMEM;
        r = read_file(src, POLICY_MAX, &frag, NULL);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", src, strerror(-r));
        full = path_join_root(root, CONTAINERS_POLICY_PATH);
        if (!full)
                return -ENOMEM;
        r = read_file(full, POLICY_MAX, &cur, NULL);
        if (r < 0 && r != -ENOENT)
                return fail(ret_error, r, "%s: %s", full, strerror(-r));
        r = policy_merge_fragment(cur, frag, &json, &scopes, &error);
        if (r < 0)
                return fail(ret_error, r, "%s or %s: %s", full, src, error ?: strerror(-r));
        if (r == 0)
                return 0;
        size_t size = strlen(json);
        return plan_write(root, plan, CONTAINERS_POLICY_PATH,
                          (InstallAction){.kind = INSTALL_POLICY, .mode = 0644, .size = size, .data = TAKE_PTR(json),
                                          .scopes = TAKE_PTR(scopes), .created = !cur},
                          ret_error);
}

/* The key `client request` made here for client, never in the bundle:
 * copied to path, next to the certificate. */
static int plan_client_key(const char *root, const char *client, const char *path, InstallPlan *plan,
                           char **ret_error) {
        _cleanup_free_ char *own = NULL, *src = NULL;
        int r;

        if (asprintf(&own, CLIENT_OWN_KEYS_DIR "/%s.key", client) < 0 || !(src = path_join_root(root, own)))
                return -ENOMEM;
        r = plan_file(root, src, plan, 0600, path, ret_error);
        if (r == -ENOENT) {
                if (ret_error)
                        free(TAKE_PTR(*ret_error));
                r = fail(ret_error, r, "%s: missing: the bundle has no key for %s; its key is made on this machine "
                                       "by 'regvisor client request %s'",
                         own, client, client);
        }
        return r;
}

int client_install_plan(const char *root, const char *bundle, InstallPlan *ret, char **ret_error) {
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *mpath = NULL, *manifest = NULL, *client = NULL;
        char *save = NULL;
        unsigned line = 0;
        bool policy = false;
        int r;

        if (asprintf(&mpath, "%s/" BUNDLE_MANIFEST, bundle) < 0)
                return -ENOMEM;
        r = read_file(mpath, BUNDLE_FILE_MAX, &manifest, NULL);
        if (r < 0)
                return fail(ret_error, r, "%s: %s (not a bundle from 'regvisor pki export'?)", mpath, strerror(-r));
        for (char *l = strtok_r(manifest, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                _cleanup_free_ char *src = NULL;
                char *path = strchr(l, ' ');
                line++;
                if (l[0] == '#')
                        continue;
                if (!path)
                        return fail(ret_error, -EINVAL, "%s:%u: expected 'MODE PATH' or 'policy FILE'", mpath, line);
                *path++ = '\0';
                if (streq(l, "policy")) {
                        if (!streq(path, BUNDLE_POLICY))
                                return fail(ret_error, -EINVAL, "%s:%u: policy must be %s", mpath, line,
                                            BUNDLE_POLICY);
                        policy = true;
                        continue;
                }
                if (streq(l, "client")) {
                        if (!config_client_name_valid(path))
                                return fail(ret_error, -EINVAL, "%s:%u: client %s: not a client name", mpath, line,
                                            path);
                        free(client);
                        client = strdup(path);
                        if (!client)
                                return -ENOMEM;
                        continue;
                }
                if (streq(l, "client-key")) {
                        if (!client || !path_allowed(path))
                                return fail(ret_error, -EINVAL, "%s:%u: client-key %s: %s", mpath, line, path,
                                            client ? "not below the certs.d trees" : "no client line before it");
                        r = plan_client_key(root, client, path, &plan, ret_error);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!streq(l, "0644") && !streq(l, "0600"))
                        return fail(ret_error, -EINVAL, "%s:%u: mode %s: only 0644 and 0600", mpath, line, l);
                if (!path_allowed(path))
                        return fail(ret_error, -EINVAL,
                                    "%s:%u: %s: only plain paths below " CLIENT_CERTS_D ", " CLIENT_CONTAINERD_CERTS_D
                                    " and " CLIENT_KEYS_DIR,
                                    mpath, line, path);
                if (asprintf(&src, "%s/" BUNDLE_FILES "%s", bundle, path) < 0)
                        return -ENOMEM;
                r = plan_file(root, src, &plan, streq(l, "0600") ? 0600 : 0644, path, ret_error);
                if (r < 0)
                        return r;
        }
        if (policy) {
                r = plan_policy(root, bundle, &plan, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = plan;
        plan = (InstallPlan){};
        return 0;
}

void install_plan_done(InstallPlan *plan) {
        for (size_t i = 0; i < plan->n; i++) {
                free(plan->actions[i].path);
                free(plan->actions[i].data);
                strv_free(plan->actions[i].scopes);
        }
        free(plan->actions);
        *plan = (InstallPlan){};
}

void install_plan_print(const InstallPlan *plan, FILE *f) {
        for (size_t i = 0; i < plan->n; i++) {
                const InstallAction *a = &plan->actions[i];
                switch (a->kind) {
                case INSTALL_MKDIR:
                        fprintf(f, "create directory %s\n", a->path);
                        break;
                case INSTALL_WRITE:
                        fprintf(f, "write %s (%04o)\n", a->path, (unsigned) a->mode);
                        break;
                case INSTALL_POLICY:
                        fprintf(f, "%s %s: rules for", a->created ? "create" : "merge into", a->path);
                        for (char **s = a->scopes; s && *s; s++)
                                fprintf(f, " %s", *s);
                        fprintf(f, "\n");
                        break;
                }
        }
        if (plan->n == 0)
                fprintf(f, "nothing to do: the bundle is installed\n");
}

/* ---- the record: "dir|file|policy-file|policy-scope VALUE" per line ---- */

static int record_read(const char *root, char **ret) {
        _cleanup_free_ char *full = path_join_root(root, CLIENT_RECORD_PATH);

        if (!full)
                return -ENOMEM;
        return read_file(full, BUNDLE_FILE_MAX, ret, NULL);
}

/* Appends "kind value\n" to *text unless that line is there already. */
static int record_add(char **text, const char *kind, const char *value) {
        _cleanup_free_ char *line = NULL;
        char *n;

        if (asprintf(&line, "%s %s\n", kind, value) < 0)
                return -ENOMEM;
        /* Already there: a line of its own equal to it. */
        for (const char *p = *text; p && (p = strstr(p, line)); p++)
                if (p == *text || p[-1] == '\n')
                        return 0;
        if (asprintf(&n, "%s%s", *text ?: "", line) < 0)
                return -ENOMEM;
        free(*text);
        *text = n;
        return 0;
}

int client_install_apply(const char *root, const InstallPlan *plan, char **ret_error) {
        _cleanup_free_ char *record = NULL, *rfull = NULL;
        int r;

        if (plan->n == 0)
                return 0;
        r = record_read(root, &record);
        if (r < 0 && r != -ENOENT)
                return fail(ret_error, r, CLIENT_RECORD_PATH ": %s", strerror(-r));
        rfull = path_join_root(root, CLIENT_RECORD_PATH);
        if (!rfull)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n; i++) {
                const InstallAction *a = &plan->actions[i];
                _cleanup_free_ char *full = path_join_root(root, a->path);

                if (!full)
                        return -ENOMEM;
                if (a->kind == INSTALL_MKDIR) {
                        r = ensure_directory(full, 0755, geteuid(), getegid());
                        if (r >= 0)
                                r = record_add(&record, "dir", a->path);
                } else {
                        r = write_file_atomic(full, a->data, a->size, a->mode, geteuid(), getegid());
                        if (r >= 0 && a->kind == INSTALL_WRITE)
                                r = record_add(&record, "file", a->path);
                        if (r >= 0 && a->kind == INSTALL_POLICY && a->created)
                                r = record_add(&record, "policy-file", a->path);
                        for (char **s = a->scopes; r >= 0 && s && *s; s++)
                                r = record_add(&record, "policy-scope", *s);
                }
                if (r < 0)
                        return fail(ret_error, r, "%s: %s", full, strerror(-r));
                /* Written after every step: an interrupted install still
                 * leaves a record of what it added so far. */
                r = mkdir_parents(rfull);
                if (r >= 0)
                        r = write_file_atomic(rfull, record, strlen(record), 0644, geteuid(), getegid());
                if (r < 0)
                        return fail(ret_error, r, "%s: %s", rfull, strerror(-r));
        }
        return 0;
}

/* ---- uninstall ---------------------------------------------------------- */

/* Removes the recorded scopes from policy.json; the file itself when
 * install created it and nothing but the default it started with is left. */
static int uninstall_policy(const char *root, char **scopes, bool created, bool dry_run, FILE *out,
                            char **ret_error) {
        _cleanup_free_ char *full = path_join_root(root, CONTAINERS_POLICY_PATH), *cur = NULL, *json = NULL,
                            *fresh = NULL, *error = NULL;
        _cleanup_strv_free_ char **none = NULL;
        int r;

        if (!full)
                return -ENOMEM;
        r = read_file(full, POLICY_MAX, &cur, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return fail(ret_error, r, "%s: %s", full, strerror(-r));
        r = policy_remove_scopes(cur, scopes, &json, &error);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", full, error ?: strerror(-r));
        if (r == 0)
                return 0;
        if (created && policy_merge_fragment(NULL, "{}", &fresh, &none, NULL) > 0 && streq(fresh, json)) {
                fprintf(out, "remove %s (install created it)\n", CONTAINERS_POLICY_PATH);
                if (!dry_run && unlink(full) < 0 && errno != ENOENT)
                        return fail(ret_error, -errno, "%s: %s", full, strerror(errno));
                return 0;
        }
        fprintf(out, "remove this registry's rules from %s\n", CONTAINERS_POLICY_PATH);
        if (dry_run)
                return 0;
        r = write_file_atomic(full, json, strlen(json), 0644, geteuid(), getegid());
        return r < 0 ? fail(ret_error, r, "%s: %s", full, strerror(-r)) : 0;
}

int client_uninstall(const char *root, bool dry_run, FILE *out, char **ret_error) {
        _cleanup_free_ char *record = NULL, *rfull = NULL, *rdir = NULL;
        _cleanup_strv_free_ char **lines = NULL, **scopes = NULL;
        size_t n = 0, n_scopes = 0;
        bool created = false;
        char *save = NULL;
        int r;

        r = record_read(root, &record);
        if (r == -ENOENT) {
                fprintf(out, "nothing to do: no record of an install (" CLIENT_RECORD_PATH ")\n");
                return 0;
        }
        if (r < 0)
                return fail(ret_error, r, CLIENT_RECORD_PATH ": %s", strerror(-r));
        for (const char *c = record; *c; c++)
                n += *c == '\n';
        lines = calloc(n + 2, sizeof *lines);
        scopes = calloc(n + 2, sizeof *scopes);
        if (!lines || !scopes)
                return -ENOMEM;
        n = 0;
        for (char *l = strtok_r(record, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                if (strncmp(l, "policy-scope ", 13) == 0) {
                        if (!(scopes[n_scopes++] = strdup(l + 13)))
                                return -ENOMEM;
                } else if (!(lines[n++] = strdup(l)))
                        return -ENOMEM;
                created = created || strncmp(l, "policy-file ", 12) == 0;
        }
        /* Files first, then the policy, then directories innermost first
         * (they were recorded outermost first). */
        for (size_t i = 0; i < n; i++)
                if (strncmp(lines[i], "file ", 5) == 0) {
                        _cleanup_free_ char *full = path_join_root(root, lines[i] + 5);
                        if (!full)
                                return -ENOMEM;
                        fprintf(out, "remove %s\n", lines[i] + 5);
                        if (!dry_run && unlink(full) < 0 && errno != ENOENT)
                                return fail(ret_error, -errno, "%s: %s", full, strerror(errno));
                }
        r = uninstall_policy(root, scopes, created, dry_run, out, ret_error);
        if (r < 0)
                return r;
        for (size_t i = n; i-- > 0;)
                if (strncmp(lines[i], "dir ", 4) == 0) {
                        _cleanup_free_ char *full = path_join_root(root, lines[i] + 4);
                        if (!full)
                                return -ENOMEM;
                        fprintf(out, "remove directory %s (when empty)\n", lines[i] + 4);
                        /* Not empty: something else put a file there since. */
                        if (!dry_run && rmdir(full) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST)
                                return fail(ret_error, -errno, "%s: %s", full, strerror(errno));
                }
        fprintf(out, "remove %s\n", CLIENT_RECORD_PATH);
        if (dry_run)
                return 0;
        rfull = path_join_root(root, CLIENT_RECORD_PATH);
        rdir = path_join_root(root, CLIENT_RECORD_DIR);
        if (!rfull || !rdir)
                return -ENOMEM;
        if (unlink(rfull) < 0 && errno != ENOENT)
                return fail(ret_error, -errno, "%s: %s", rfull, strerror(errno));
        (void) rmdir(rdir);
        return 0;
}
