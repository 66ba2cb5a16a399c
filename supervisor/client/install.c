/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
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

/* Reads rel below root into *ret_full (its full path) and *ret: NULL when
 * it does not exist. Error message in *ret_error. */
static int read_root_optional(const char *root, const char *rel, size_t max, char **ret_full, char **ret,
                              char **ret_error) {
        int r;

        *ret_full = path_join_root(root, rel);
        if (!*ret_full)
                return -ENOMEM;
        r = read_file(*ret_full, max, ret, NULL);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        return r < 0 ? fail(ret_error, r, "%s: %s", *ret_full, strerror(-r)) : 0;
}

/* Reads the bundle's file name (BUNDLE_MANIFEST, BUNDLE_POLICY) into
 * *ret_path and *ret. Error message in *ret_error, followed by hint. */
static int read_bundle_file(const char *bundle, const char *name, size_t max, const char *hint, char **ret_path,
                            char **ret, char **ret_error) {
        int r;

        if (asprintf(ret_path, "%s/%s", bundle, name) < 0) {
                *ret_path = NULL;
                return -ENOMEM;
        }
        r = read_file(*ret_path, max, ret, NULL);
        return r < 0 ? fail(ret_error, r, "%s: %s%s", *ret_path, strerror(-r), hint) : 0;
}

/* A MANIFEST path install may write: absolute, below one of the trees,
 * no empty, "." or ".." component (the bundle comes from another machine
 * and install runs as root). */
static const char *const trees[] = {CLIENT_CERTS_D "/", CLIENT_CONTAINERD_CERTS_D "/", CLIENT_DOCKER_CERTS_D "/",
                                    CLIENT_KEYS_DIR "/"};

static bool path_allowed(const char *path) {
        bool under = false;

        for (size_t i = 0; i < ELEMENTSOF(trees); i++)
                under = under || strncmp(path, trees[i], strlen(trees[i])) == 0;
        if (!under)
                return false;
        for (const char *c = path; *c; c++)
                if ((unsigned char) *c <= ' ' || *c == 0x7f)
                        return false;
        /* Each component after the leading '/', the last one too: a
         * trailing "/.." names a tree's parent. */
        for (const char *c = path + 1;; c++) {
                size_t n = strcspn(c, "/");

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
                if (!*c)
                        return true;
        }
}

/* A path_allowed() one that is TREE/NAME/FILE, NAME one of the bundle's
 * registry names: a bundle writes nothing for another registry (its CA,
 * client certificate, hosts.toml or trusted keys), nor any shared file. */
static bool path_in_registry(const char *path, char *const *names) {
        for (size_t i = 0; i < ELEMENTSOF(trees); i++) {
                size_t t = strlen(trees[i]);
                const char *name = path + t, *slash;
                if (strncmp(path, trees[i], t) != 0 || !(slash = strchr(name, '/')) || strchr(slash + 1, '/'))
                        continue;
                for (char *const *n = names; n && *n; n++)
                        if (strlen(*n) == (size_t) (slash - name) && strncmp(name, *n, (size_t) (slash - name)) == 0)
                                return true;
        }
        return false;
}

/* A directory install may have made: a path_allowed() one, or a parent of
 * one of the trees ("/etc/containers"). */
static bool dir_allowed(const char *path) {
        size_t n = strlen(path);

        for (size_t i = 0; i < ELEMENTSOF(trees); i++)
                if (n > 1 && strncmp(trees[i], path, n) == 0 && trees[i][n] == '/')
                        return true;
        return path_allowed(path);
}

static int plan_add(InstallPlan *plan, InstallAction a) {
        InstallAction *n = realloc(plan->actions, (plan->n + 1) * sizeof *n);

        if (!n) {
                free(a.path);
                free(a.data);
                strv_free(a.scopes);
                strv_free(a.replaced);
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
                strv_free(a.replaced);
                return r;
        }
        return plan_add(plan, a);
}

/* Plans writing src to path with mode, unless it is there already. src is
 * the client's own key (files_fd < 0), or a file of the bundle: path below
 * its files/ directory files_fd, resolved without following any symlink
 * (the bundle comes from another machine: a symlinked directory on the way
 * would have root copy any file of this one, a 0600 key as 0644). */
static int plan_file(const char *root, int files_fd, const char *src, InstallPlan *plan, mode_t mode,
                     const char *path, char **ret_error) {
        _cleanup_free_ char *full = NULL, *data = NULL;
        struct stat st;
        size_t size;
        int r;

        r = files_fd < 0 ? read_file(src, BUNDLE_FILE_MAX, &data, &size)
                         : read_file_beneath(files_fd, path + 1, BUNDLE_FILE_MAX, &data, &size);
        if (r == -ELOOP)
                return fail(ret_error, r, "%s: a symbolic link on the way; the bundle is refused", src);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", src, strerror(-r));
        full = path_join_root(root, path);
        if (!full)
                return -ENOMEM;
        /* Something that is not a plain file (a symlink, a directory): not
         * ours to replace, and its previous state could not be restored. */
        if (lstat(full, &st) == 0 && !S_ISREG(st.st_mode))
                return fail(ret_error, -EEXIST, "%s: exists and is not a regular file; remove it first", full);
        r = file_matches(full, data, size, mode, geteuid(), getegid(), NULL);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", full, strerror(-r));
        if (r > 0)
                return 0;
        return plan_write(root, plan, path,
                          (InstallAction){.kind = INSTALL_WRITE, .mode = mode, .data = TAKE_PTR(data), .size = size,
                                          .replaces = lstat(full, &st) == 0},
                          ret_error);
}

/* Plans merging the bundle's policy rules: for its two names (pull, then
 * push), exactly those pki export writes (policy_for() in export.c), the
 * signers' key key_path of kind when the bundle writes it (NULL: it does
 * not), or reject; rebuilt by policy_merge_bundle(), none taken as is. */
static int plan_policy(const char *root, const char *bundle, InstallPlan *plan, const PolicyRequirement *key,
                       char **ret_error) {
        _cleanup_free_ char *src = NULL, *frag = NULL, *full = NULL, *cur = NULL, *json = NULL, *error = NULL;
        _cleanup_strv_free_ char **scopes = NULL, **replaced = NULL;
        const char *pull = plan->registries[0], *push = plan->registries[1];
        const PolicyScope names[] = {{pull, push}, {push, push}};
        const PolicyRequirement allowed[] = {{POLICY_REJECT, NULL}, key ? *key : (PolicyRequirement){POLICY_REJECT}};
        int r;

        r = read_bundle_file(bundle, BUNDLE_POLICY, POLICY_MAX, "", &src, &frag, ret_error);
        if (r < 0)
                return r;
        r = read_root_optional(root, CONTAINERS_POLICY_PATH, POLICY_MAX, &full, &cur, ret_error);
        if (r < 0)
                return r;
        r = policy_merge_bundle(cur, frag, names, ELEMENTSOF(names), allowed, ELEMENTSOF(allowed), &json, &scopes,
                                &replaced, &error);
        if (r == -EPERM)
                return fail(ret_error, r, "%s: %s; the bundle is refused", src, error);
        if (r < 0)
                return fail(ret_error, r, "%s or %s: %s", full, src, error ?: strerror(-r));
        if (r == 0)
                return 0;
        size_t size = strlen(json);
        return plan_write(root, plan, CONTAINERS_POLICY_PATH,
                          (InstallAction){.kind = INSTALL_POLICY, .mode = 0644, .size = size, .data = TAKE_PTR(json),
                                          .scopes = TAKE_PTR(scopes), .replaced = TAKE_PTR(replaced),
                                          .created = !cur},
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
        r = plan_file(root, -EBADF, src, plan, 0600, path, ret_error);
        if (r == -ENOENT) {
                if (ret_error)
                        free(TAKE_PTR(*ret_error));
                r = fail(ret_error, r, "%s: missing: the bundle has no key for %s; its key is made on this machine "
                                       "by 'regvisor client request %s'",
                         own, client, client);
        }
        return r;
}

/* The bundle's files/ directory, itself not a symlink. */
static int open_bundle_files(const char *bundle, char **ret_error) {
        _cleanup_free_ char *files = NULL;
        int fd;

        if (asprintf(&files, "%s/" BUNDLE_FILES, bundle) < 0)
                return -ENOMEM;
        fd = open(files, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return fail(ret_error, -errno, "%s: %s", files, strerror(errno));
        return fd;
}

/* A MANIFEST "registry NAME" line: NAME added to plan->registries. A
 * bundle has two, as export writes them: the pull name (HOST, or
 * HOST:PORT when it is not 443), then the push name HOST:PORT, the same
 * HOST; never a loopback name (bundle_host_usable()) nor a public
 * registry's. Any other port of HOST (another service, another registry)
 * is not the bundle's to take over. */
static int plan_registry(InstallPlan *plan, const char *name, const char *mpath, unsigned line, char **ret_error) {
        _cleanup_free_ char *h = NULL;
        size_t n = 0, host, first;
        char **l;

        if (bundle_authority_split(name, &host) < 0)
                return fail(ret_error, -EINVAL, "%s:%u: registry %s: expected HOST, HOST:PORT or [IPV6]:PORT", mpath,
                            line, name);
        for (; plan->registries && plan->registries[n]; n++)
                ;
        if (n >= 2)
                return fail(ret_error, -EINVAL,
                            "%s:%u: registry %s: a third name; a bundle names its registry twice, HOST (its pull "
                            "port) and HOST:PORT (its push port); the bundle is refused",
                            mpath, line, name);
        if (n == 1 && (bundle_authority_split(plan->registries[0], &first) < 0 || first != host ||
                       strncmp(plan->registries[0], name, host) != 0))
                return fail(ret_error, -EINVAL, "%s:%u: registry %s: another registry than %s; a bundle is for one",
                            mpath, line, name, plan->registries[0]);
        if (n == 1 && (name[host] != ':' || streq(plan->registries[0], name)))
                return fail(ret_error, -EINVAL,
                            "%s:%u: registry %s: the second name is the push name, %.*s:PORT, other than the "
                            "first (%s)",
                            mpath, line, name, (int) host, name, plan->registries[0]);
        h = strndup(name, host);
        if (!h)
                return -ENOMEM;
        if (!bundle_host_usable(h) || bundle_host_public(h, host))
                return fail(ret_error, -EINVAL, "%s:%u: registry %s: %s", mpath, line, name,
                            bundle_host_usable(h) ? "a public registry's name, never a regvisor registry's"
                                                  : "a loopback name (docker ignores certs.d for those)");
        l = realloc(plan->registries, (n + 2) * sizeof *l);
        if (!l)
                return -ENOMEM;
        plan->registries = l;
        l[n] = strdup(name);
        l[n + 1] = NULL;
        return l[n] ? 0 : -ENOMEM;
}

/* 1 with its kind in *ret when path is the signers' key file export
 * writes for the registry pull (bundle.h), else 0. */
static int key_kind(const char *pull, const char *path, PolicyKind *ret) {
        _cleanup_free_ char *gpg = NULL, *sigstore = NULL;

        if (asprintf(&gpg, CLIENT_SIGNERS_KEY_FMT, pull) < 0 || asprintf(&sigstore, CLIENT_SIGSTORE_KEY_FMT, pull) < 0)
                return -ENOMEM;
        if (!streq(path, gpg) && !streq(path, sigstore))
                return 0;
        *ret = streq(path, gpg) ? POLICY_GPG : POLICY_SIGSTORE;
        return 1;
}

/* A file line's path: below the allowed trees, and in the directory of
 * one of the bundle's registry names (refused: before any "registry"
 * line, a bundle of an older pki export). */
static int check_path(const InstallPlan *plan, const char *path, const char *mpath, unsigned line, char **ret_error) {
        if (!path_allowed(path))
                return fail(ret_error, -EINVAL,
                            "%s:%u: %s: only plain paths below " CLIENT_CERTS_D ", " CLIENT_CONTAINERD_CERTS_D
                            ", " CLIENT_DOCKER_CERTS_D " and " CLIENT_KEYS_DIR,
                            mpath, line, path);
        if (!plan->registries)
                return fail(ret_error, -EINVAL,
                            "%s:%u: no 'registry NAME' line before it: a bundle from an older 'regvisor pki "
                            "export'; export it again",
                            mpath, line);
        if (!path_in_registry(path, plan->registries))
                return fail(ret_error, -EINVAL,
                            "%s:%u: %s: not in a directory named for this bundle's registry (%s%s): a bundle "
                            "writes TREE/NAME/FILE for its own names only; the bundle is refused",
                            mpath, line, path, plan->registries[0], plan->registries[1] ? ", ..." : "");
        return 0;
}

int client_install_plan(const char *root, const char *bundle, InstallPlan *ret, char **ret_error) {
        _cleanup_(install_plan_done) InstallPlan plan = {};
        _cleanup_free_ char *mpath = NULL, *manifest = NULL, *client = NULL, *key_path = NULL;
        _cleanup_close_ int files_fd = -EBADF;
        PolicyKind key_kind_seen = POLICY_REJECT;
        char *save = NULL;
        unsigned line = 0;
        bool policy = false, body = false;
        int r;

        r = read_bundle_file(bundle, BUNDLE_MANIFEST, BUNDLE_FILE_MAX, " (not a bundle from 'regvisor pki export'?)",
                             &mpath, &manifest, ret_error);
        if (r < 0)
                return r;
        for (char *l = strtok_r(manifest, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                _cleanup_free_ char *src = NULL;
                char *path = strchr(l, ' ');
                line++;
                if (l[0] == '#')
                        continue;
                if (!path)
                        return fail(ret_error, -EINVAL, "%s:%u: expected 'MODE PATH' or 'policy FILE'", mpath, line);
                *path++ = '\0';
                if (streq(l, "registry")) {
                        if (body)
                                return fail(ret_error, -EINVAL, "%s:%u: registry %s: the registry lines come first",
                                            mpath, line, path);
                        r = plan_registry(&plan, path, mpath, line, ret_error);
                        if (r < 0)
                                return r;
                        continue;
                }
                body = true;
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
                        if (!client)
                                return fail(ret_error, -EINVAL, "%s:%u: client-key %s: no client line before it",
                                            mpath, line, path);
                        r = check_path(&plan, path, mpath, line, ret_error);
                        if (r >= 0)
                                r = plan_client_key(root, client, path, &plan, ret_error);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!streq(l, "0644") && !streq(l, "0600"))
                        return fail(ret_error, -EINVAL, "%s:%u: mode %s: only 0644 and 0600", mpath, line, l);
                r = check_path(&plan, path, mpath, line, ret_error);
                if (r < 0)
                        return r;
                /* The signers' key: the only one a policy rule may name. */
                r = key_kind(plan.registries[0], path, &key_kind_seen);
                if (r < 0)
                        return r;
                if (r > 0) {
                        free(key_path);
                        if (!(key_path = strdup(path)))
                                return -ENOMEM;
                }
                if (asprintf(&src, "%s/" BUNDLE_FILES "%s", bundle, path) < 0)
                        return -ENOMEM;
                if (files_fd < 0) {
                        files_fd = open_bundle_files(bundle, ret_error);
                        if (files_fd < 0)
                                return files_fd;
                }
                r = plan_file(root, files_fd, src, &plan, streq(l, "0600") ? 0600 : 0644, path, ret_error);
                if (r < 0)
                        return r;
        }
        if (!plan.registries)
                return fail(ret_error, -EINVAL,
                            "%s: no 'registry NAME' line: a bundle from an older 'regvisor pki export'; export it "
                            "again",
                            mpath);
        if (!plan.registries[1])
                return fail(ret_error, -EINVAL, "%s: registry %s: no second 'registry' line, its push name HOST:PORT",
                            mpath, plan.registries[0]);
        if (policy) {
                const PolicyRequirement key = {key_kind_seen, key_path};
                r = plan_policy(root, bundle, &plan, key_path ? &key : NULL, ret_error);
                if (r < 0)
                        return r;
        }
        *ret = plan;
        plan = (InstallPlan){};
        return 0;
}

bool install_plan_for(const InstallPlan *plan, const char *name) {
        return plan->registries && streq(plan->registries[0], name);
}

void install_plan_done(InstallPlan *plan) {
        for (size_t i = 0; i < plan->n; i++) {
                free(plan->actions[i].path);
                free(plan->actions[i].data);
                strv_free(plan->actions[i].scopes);
                strv_free(plan->actions[i].replaced);
        }
        free(plan->actions);
        strv_free(plan->registries);
        *plan = (InstallPlan){};
}

void install_plan_print(const InstallPlan *plan, FILE *f) {
        /* First, what the operator confirms: the registry it is for. */
        if (plan->registries) {
                fprintf(f, "bundle for the registry %s (", plan->registries[0]);
                for (char **n = plan->registries; *n; n++)
                        fprintf(f, "%s%s", n == plan->registries ? "" : ", ", *n);
                fprintf(f, ")\n");
        }
        for (size_t i = 0; i < plan->n; i++) {
                const InstallAction *a = &plan->actions[i];
                switch (a->kind) {
                case INSTALL_MKDIR:
                        fprintf(f, "create directory %s\n", a->path);
                        break;
                case INSTALL_WRITE:
                        fprintf(f, "%s %s (%04o)%s\n", a->replaces ? "replace" : "write", a->path, (unsigned) a->mode,
                                a->replaces ? ": uninstall puts its current content back" : "");
                        break;
                case INSTALL_POLICY:
                        fprintf(f, "%s %s: rules for", a->created ? "create" : "merge into", a->path);
                        for (char **s = a->scopes; s && *s; s++)
                                fprintf(f, " %s", *s);
                        fprintf(f, "\n");
                        for (char **s = a->replaced; s && *s; s++)
                                fprintf(f, "  replace the rule for %s: uninstall puts it back\n", *s);
                        break;
                }
        }
        if (plan->n == 0)
                fprintf(f, "nothing to do: the bundle is installed\n");
}

/* ---- the record ---------------------------------------------------------
 * CLIENT_RECORD_PATH (0600, root's): one line per thing install did:
 *   dir PATH                  a directory it created
 *   file PATH                 a file it created
 *   replaced MODE N PATH      a file it replaced; the previous content, with
 *                             MODE, kept in CLIENT_SAVED_DIR/N (0600)
 *   policy-file PATH          policy.json, which it created
 *   policy-scope SCOPE        a transports.docker entry it added or replaced;
 *                             the replaced ones' previous rules are kept in
 *                             CLIENT_SAVED_POLICY
 * Install only adds lines; a path or scope already recorded is install's
 * own, so its original state is what was saved the first time. */

#define CLIENT_SAVED_DIR CLIENT_RECORD_DIR "/saved"
#define CLIENT_SAVED_POLICY CLIENT_SAVED_DIR "/policy-fragment.json"

static int record_read(const char *root, char **ret) {
        _cleanup_free_ char *full = path_join_root(root, CLIENT_RECORD_PATH);

        if (!full)
                return -ENOMEM;
        return read_file(full, BUNDLE_FILE_MAX, ret, NULL);
}

/* The line of text that is exactly line (without its newline), or NULL. */
static const char *record_line(const char *text, const char *line) {
        size_t n = strlen(line);

        for (const char *p = text; p && (p = strstr(p, line)); p++)
                if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
                        return p;
        return NULL;
}

/* 1 when the record already names path as a file install wrote: "file
 * PATH" or "replaced MODE N PATH"; 0 when not; -ENOMEM. */
static int record_has_file(const char *text, const char *path) {
        _cleanup_free_ char *line = NULL;
        size_t n = strlen(path);

        if (asprintf(&line, "file %s", path) < 0)
                return -ENOMEM;
        if (record_line(text, line))
                return 1;
        for (const char *p = text; p && (p = strstr(p, "replaced ")); p++) {
                const char *eol = strchrnul(p, '\n');
                if ((p == text || p[-1] == '\n') && (size_t) (eol - p) > n && eol[-(ptrdiff_t) n - 1] == ' ' &&
                    strncmp(eol - n, path, n) == 0)
                        return 1;
        }
        return 0;
}

static unsigned record_count(const char *text, const char *kind) {
        unsigned n = 0;
        size_t k = strlen(kind);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                n += strncmp(p, kind, k) == 0;
        return n;
}

/* Appends "kind value\n" to *text unless that line is there already. A
 * value with a control character (a newline: a line of its own) is
 * refused, -EBADMSG: uninstall acts on these lines as root. */
static int record_add(char **text, const char *kind, const char *value) {
        _cleanup_free_ char *line = NULL;
        char *n;

        for (const char *c = value; *c; c++)
                if ((unsigned char) *c < ' ' || *c == 0x7f)
                        return -EBADMSG;

        if (asprintf(&line, "%s %s", kind, value) < 0)
                return -ENOMEM;
        if (*text && record_line(*text, line))
                return 0;
        if (asprintf(&n, "%s%s\n", *text ?: "", line) < 0)
                return -ENOMEM;
        free(*text);
        *text = n;
        return 0;
}

/* The directory for previous contents: root's, 0700 (a replaced
 * client.key is key material). */
static int saved_dir(const char *root) {
        _cleanup_free_ char *dir = path_join_root(root, CLIENT_SAVED_DIR);
        int r;

        if (!dir)
                return -ENOMEM;
        r = mkdir_parents(dir);
        return r < 0 ? r : ensure_directory(dir, 0700, geteuid(), getegid());
}

/* Before a write of a->path: records it as install's file, or, when a file
 * install did not write is there, keeps its content and mode first. */
static int record_file(const char *root, const InstallAction *a, const char *full, char **record) {
        _cleanup_free_ char *old = NULL, *saved = NULL, *value = NULL;
        struct stat st;
        size_t size;
        unsigned n;
        int r;

        r = *record ? record_has_file(*record, a->path) : 0;
        if (r != 0)
                return r < 0 ? r : 0;
        if (lstat(full, &st) < 0) {
                if (errno != ENOENT)
                        return -errno;
                return record_add(record, "file", a->path);
        }
        if (!S_ISREG(st.st_mode))
                return -EEXIST;
        r = read_file(full, BUNDLE_FILE_MAX, &old, &size);
        if (r < 0)
                return r;
        n = record_count(*record, "replaced ") + 1;
        if (asprintf(&saved, CLIENT_SAVED_DIR "/%u", n) < 0 ||
            asprintf(&value, "%04o %u %s", (unsigned) (st.st_mode & 07777), n, a->path) < 0)
                return -ENOMEM;
        r = saved_dir(root);
        if (r >= 0) {
                _cleanup_free_ char *sfull = path_join_root(root, saved);
                r = sfull ? write_file_atomic(sfull, old, size, 0600, geteuid(), getegid()) : -ENOMEM;
        }
        explicit_bzero(old, size); /* maybe a private key */
        return r < 0 ? r : record_add(record, "replaced", value);
}

/* Before policy.json gets a->data: keeps the rules of the scopes it
 * replaces that install did not write itself, then records the scopes. */
static int record_policy(const char *root, const InstallAction *a, const char *full, char **record) {
        _cleanup_free_ char *cur = NULL, *frag = NULL, *sfull = NULL, *saved = NULL, *merged = NULL;
        _cleanup_strv_free_ char **fresh = NULL, **ignored = NULL;
        size_t n = 0;
        int r;

        for (char **s = a->scopes; s && *s; s++)
                n++;
        fresh = calloc(n + 1, sizeof *fresh);
        if (!fresh)
                return -ENOMEM;
        n = 0;
        for (char **s = a->scopes; s && *s; s++) {
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "policy-scope %s", *s) < 0)
                        return -ENOMEM;
                if (!*record || !record_line(*record, line))
                        if (!(fresh[n++] = strdup(*s)))
                                return -ENOMEM;
        }
        r = read_file(full, POLICY_MAX, &cur, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        r = n > 0 && cur ? policy_scopes_fragment(cur, fresh, &frag, NULL) : 0;
        if (r < 0)
                return r;
        if (r > 0) {
                r = read_root_optional(root, CLIENT_SAVED_POLICY, POLICY_MAX, &sfull, &saved, NULL);
                if (r < 0)
                        return r;
                if (saved) {
                        r = policy_merge_fragment(saved, frag, &merged, &ignored, NULL);
                        if (r < 0)
                                return r;
                }
                const char *text = merged ?: saved ?: frag;
                r = saved_dir(root);
                if (r >= 0 && (merged || !saved))
                        r = write_file_atomic(sfull, text, strlen(text), 0600, geteuid(), getegid());
                if (r < 0)
                        return r;
        }
        if (a->created && (r = record_add(record, "policy-file", a->path)) < 0)
                return r;
        for (char **s = a->scopes; s && *s; s++)
                if ((r = record_add(record, "policy-scope", *s)) < 0)
                        return r;
        return 0;
}

static int record_write(const char *rfull, const char *record) {
        int r = mkdir_parents(rfull);

        return r < 0 ? r : write_file_atomic(rfull, record, strlen(record), 0600, geteuid(), getegid());
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
                /* What was there is kept and recorded before it is
                 * replaced: an interrupted install can still be undone. */
                if (a->kind == INSTALL_MKDIR)
                        r = record_add(&record, "dir", a->path);
                else if (a->kind == INSTALL_WRITE)
                        r = record_file(root, a, full, &record);
                else
                        r = record_policy(root, a, full, &record);
                if (r >= 0)
                        r = record_write(rfull, record);
                if (r < 0)
                        return fail(ret_error, r, "%s: keeping what install replaces: %s", full, strerror(-r));
                if (a->kind == INSTALL_MKDIR)
                        r = ensure_directory(full, 0755, geteuid(), getegid());
                else
                        r = write_file_atomic(full, a->data, a->size, a->mode, geteuid(), getegid());
                if (r < 0)
                        return fail(ret_error, r, "%s: %s", full, strerror(-r));
        }
        return 0;
}

/* ---- uninstall ---------------------------------------------------------- */

/* Removes the recorded scopes from policy.json and puts back the rules
 * install replaced (saved: a fragment, or NULL); the file itself when
 * install created it and nothing but the default it started with is left. */
static int uninstall_policy(const char *root, char **scopes, bool created, const char *saved, bool dry_run,
                            FILE *out, char **ret_error) {
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
        if (saved) {
                _cleanup_free_ char *restored = NULL;
                _cleanup_strv_free_ char **back = NULL;
                r = policy_merge_fragment(json, saved, &restored, &back, &error);
                if (r < 0)
                        return fail(ret_error, r, CLIENT_SAVED_POLICY ": %s", error ?: strerror(-r));
                if (r > 0) {
                        fprintf(out, "restore the previous rules in %s for", CONTAINERS_POLICY_PATH);
                        for (char **s = back; *s; s++)
                                fprintf(out, " %s", *s);
                        fprintf(out, "\n");
                        free(json);
                        json = TAKE_PTR(restored);
                }
        }
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

/* The PATH of a "replaced" line's value "MODE N PATH", with MODE and N;
 * NULL when it is not one, or PATH is not one install writes. */
static const char *replaced_parse(const char *value, unsigned *ret_mode, unsigned *ret_n) {
        int pos = 0;

        if (sscanf(value, "%o %u %n", ret_mode, ret_n, &pos) != 2 || pos == 0 || !path_allowed(value + pos) ||
            *ret_mode > 07777)
                return NULL;
        return value + pos;
}

/* Install's own record (root's, 0600), still checked line by line as a
 * MANIFEST is before uninstall acts on any: it unlinks and writes as root. */
static bool record_line_valid(const char *l) {
        unsigned mode, n;

        if (strncmp(l, "file ", 5) == 0)
                return path_allowed(l + 5);
        if (strncmp(l, "dir ", 4) == 0)
                return dir_allowed(l + 4);
        if (strncmp(l, "replaced ", 9) == 0)
                return replaced_parse(l + 9, &mode, &n);
        if (strncmp(l, "policy-scope ", 13) == 0)
                return policy_scope_valid(l + 13);
        if (strncmp(l, "policy-file ", 12) == 0)
                return streq(l + 12, CONTAINERS_POLICY_PATH);
        return false;
}

/* "MODE N PATH" of a "replaced" line: PATH gets the content saved in
 * CLIENT_SAVED_DIR/N back, with MODE. */
static int uninstall_restore(const char *root, const char *value, bool dry_run, FILE *out, char **ret_error) {
        _cleanup_free_ char *saved = NULL, *sfull = NULL, *full = NULL, *data = NULL;
        const char *path;
        unsigned mode, n;
        size_t size;
        int r;

        path = replaced_parse(value, &mode, &n);
        if (!path)
                return fail(ret_error, -EBADMSG, CLIENT_RECORD_PATH ": replaced %s: expected MODE N PATH", value);
        if (asprintf(&saved, CLIENT_SAVED_DIR "/%u", n) < 0 || !(sfull = path_join_root(root, saved)) ||
            !(full = path_join_root(root, path)))
                return -ENOMEM;
        fprintf(out, "restore %s (its content before install, %04o)\n", path, mode);
        if (dry_run)
                return 0;
        r = read_file(sfull, BUNDLE_FILE_MAX, &data, &size);
        /* Restored by an uninstall that was interrupted before its end. */
        if (r == -ENOENT) {
                fprintf(out, "  (already restored: %s is gone)\n", saved);
                return 0;
        }
        if (r >= 0)
                r = write_file_atomic(full, data, size, (mode_t) mode, geteuid(), getegid());
        if (data)
                explicit_bzero(data, size);
        if (r >= 0 && unlink(sfull) < 0)
                r = -errno;
        return r < 0 ? fail(ret_error, r, "%s from %s: %s", full, sfull, strerror(-r)) : 0;
}

/* The saved contents, once everything is back: the policy fragment and
 * the directory (each file was removed when it was restored). */
static int remove_saved(const char *root) {
        _cleanup_free_ char *frag = path_join_root(root, CLIENT_SAVED_POLICY),
                            *dir = path_join_root(root, CLIENT_SAVED_DIR);

        if (!frag || !dir)
                return -ENOMEM;
        if (unlink(frag) < 0 && errno != ENOENT)
                return -errno;
        /* Not empty: a file the record does not name; left for a look. */
        return rmdir(dir) < 0 && errno != ENOENT && errno != ENOTEMPTY ? -errno : 0;
}

int client_uninstall(const char *root, bool dry_run, FILE *out, char **ret_error) {
        _cleanup_free_ char *record = NULL, *rfull = NULL, *rdir = NULL, *sfull = NULL, *saved = NULL;
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
                if (!record_line_valid(l))
                        return fail(ret_error, -EBADMSG,
                                    CLIENT_RECORD_PATH ": line %zu: expected dir PATH, file PATH, replaced MODE N "
                                                       "PATH (below the certs.d and keys trees), policy-file %s "
                                                       "or policy-scope SCOPE; nothing removed",
                                    n + n_scopes + 1, CONTAINERS_POLICY_PATH);
                if (strncmp(l, "policy-scope ", 13) == 0) {
                        if (!(scopes[n_scopes++] = strdup(l + 13)))
                                return -ENOMEM;
                } else if (!(lines[n++] = strdup(l)))
                        return -ENOMEM;
                created = created || strncmp(l, "policy-file ", 12) == 0;
        }
        /* Files first, then the policy, then directories innermost first
         * (they were recorded outermost first). */
        for (size_t i = 0; i < n; i++) {
                if (strncmp(lines[i], "file ", 5) == 0) {
                        _cleanup_free_ char *full = path_join_root(root, lines[i] + 5);
                        if (!full)
                                return -ENOMEM;
                        fprintf(out, "remove %s\n", lines[i] + 5);
                        if (!dry_run && unlink(full) < 0 && errno != ENOENT)
                                return fail(ret_error, -errno, "%s: %s", full, strerror(errno));
                } else if (strncmp(lines[i], "replaced ", 9) == 0) {
                        r = uninstall_restore(root, lines[i] + 9, dry_run, out, ret_error);
                        if (r < 0)
                                return r;
                }
        }
        r = read_root_optional(root, CLIENT_SAVED_POLICY, POLICY_MAX, &sfull, &saved, ret_error);
        if (r < 0)
                return r;
        r = uninstall_policy(root, scopes, created, saved, dry_run, out, ret_error);
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
        r = remove_saved(root);
        if (r < 0)
                return fail(ret_error, r, CLIENT_SAVED_DIR ": %s", strerror(-r));
        if (unlink(rfull) < 0 && errno != ENOENT)
                return fail(ret_error, -errno, "%s: %s", rfull, strerror(errno));
        (void) rmdir(rdir);
        return 0;
}
