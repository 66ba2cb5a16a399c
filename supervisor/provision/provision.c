/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "bus.h"
#include "detail.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "provision.h"
#include "render.h"

/* ---- shared helpers ---------------------------------------------------- */

char *provision_path(const Provision *p, const char *path) {
        return path_join_root(p->root, path);
}

void provision_kill_point(const char *point) {
        const char *e = getenv("REGVISOR_TEST_KILL_AT");

        if (e && streq(e, point)) {
                fflush(stdout);
                (void) raise(SIGKILL);
        }
}

/* A test hook like the one above: stop (SIGSTOP) before the check of the
 * row REGVISOR_TEST_STOP_AT names, so a test can change the host between
 * two rows, as a concurrent user could, and continue us with SIGCONT. */
static void provision_stop_point(const char *point) {
        const char *e = getenv("REGVISOR_TEST_STOP_AT");

        if (e && streq(e, point)) {
                fflush(stdout);
                (void) raise(SIGSTOP);
        }
}

int provision_lookup_users(Provision *p) {
        struct passwd *pw;
        struct group *gr;

        /* Looked up again after each changed row: deprovision removes them. */
        p->have_service_user = p->have_proxy_user = false;
        pw = getpwnam(p->config->service_user);
        if (pw) {
                p->have_service_user = true;
                p->service_uid = pw->pw_uid;
                p->service_gid = pw->pw_gid;
                free(p->service_home);
                p->service_home = strdup(pw->pw_dir);
                if (!p->service_home)
                        return -ENOMEM;
        }
        pw = getpwnam(p->config->proxy_user);
        if (pw) {
                p->have_proxy_user = true;
                p->proxy_uid = pw->pw_uid;
                /* The proxy's group is the user's own group of that name when
                 * there is one (useradd --user-group), else its primary group. */
                gr = getgrnam(p->config->proxy_user);
                p->proxy_gid = gr ? gr->gr_gid : pw->pw_gid;
        }
        return 0;
}

/* Owner of a managed path. -ESRCH when a user it needs does not exist yet;
 * under --root that is allowed: the staging tree is then owned by root. */
int provision_owner(const Provision *p, Owner owner, uid_t *ret_uid, gid_t *ret_gid) {
        bool need_service = owner == OWNER_ROOT_SERVICE || owner == OWNER_SERVICE || owner == OWNER_SERVICE_PROXY;
        bool need_proxy = owner == OWNER_ROOT_PROXY || owner == OWNER_SERVICE_PROXY;
        uid_t svc_uid = p->service_uid, uid = 0;
        gid_t svc_gid = p->service_gid, prx_gid = p->proxy_gid, gid = 0;

        if ((need_service && !p->have_service_user) || (need_proxy && !p->have_proxy_user)) {
                if (!p->root)
                        return -ESRCH;
                svc_uid = 0;
                svc_gid = 0;
                prx_gid = 0;
        }
        switch (owner) {
        case OWNER_ROOT:
                break;
        case OWNER_ROOT_PROXY:
                gid = prx_gid;
                break;
        case OWNER_ROOT_SERVICE:
                gid = svc_gid;
                break;
        case OWNER_SERVICE:
                uid = svc_uid;
                gid = svc_gid;
                break;
        case OWNER_SERVICE_PROXY:
                uid = svc_uid;
                gid = prx_gid;
                break;
        }
        *ret_uid = uid;
        *ret_gid = gid;
        return 0;
}

int provision_system_bus(Provision *p, sd_bus **ret_bus) {
        int r;

        if (!p->system_bus) {
                r = bus_open_system(&p->system_bus);
                if (r < 0)
                        return r;
        }
        *ret_bus = p->system_bus;
        return 0;
}

void provision_done(Provision *p) {
        if (p->system_bus)
                p->system_bus = sd_bus_flush_close_unref(p->system_bus);
        free(p->service_home);
        free(p->registry_secret);
        p->service_home = NULL;
        p->registry_secret = NULL;
}

/* ---- generic rows: managed directories and files ----------------------- */

/* Where a managed row's path lands (below --root) and whose it is. */
typedef struct {
        char *full;
        uid_t uid;
        gid_t gid;
} Target;

static void target_done(Target *t) {
        free(t->full);
}

/* path is what the row rendered: NULL when this configuration needs no such
 * file or directory (returns 0 with t->full NULL). */
static int target_of(Provision *p, const char *path, Owner owner, Target *t) {
        int r;

        if (!path)
                return 0;
        r = provision_owner(p, owner, &t->uid, &t->gid);
        if (r < 0)
                return r;
        t->full = provision_path(p, path);
        return t->full ? 0 : -ENOMEM;
}

/* A managed path's check from its *_matches() result r: 1 as it should
 * be; 0 with what differs in the detail ("PATH (WHAT)"); or the error, with
 * the detail saying it (the run goes on: apply then tells). */
static int check_verdict(int r, const char *full, const char *what, char **ret_detail) {
        if (r == 0)
                detail_set(ret_detail, 0, "%s (%s)", full, what);
        else if (r < 0)
                detail_set(ret_detail, 0, "%s: %s", full, strerror(-r));
        return r;
}

static int directory_target(Provision *p, const ProvisionStep *s, Target *t) {
        const ManagedDirectory *d = s->data;
        _cleanup_free_ char *path = NULL;
        int r;

        r = d->path(p, &path);
        return r < 0 ? r : target_of(p, path, d->owner, t);
}

static int directory_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const ManagedDirectory *d = s->data;
        _cleanup_(target_done) Target t = {};
        int r;

        r = directory_target(p, s, &t);
        if (r < 0 || !t.full) /* not needed with this configuration: fine */
                return r < 0 ? r : 1;
        char mode[16];
        (void) snprintf(mode, sizeof mode, "%04o", (unsigned) d->mode);
        return check_verdict(directory_matches(t.full, d->mode, t.uid, t.gid), t.full, mode, ret_detail);
}

static int directory_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const ManagedDirectory *d = s->data;
        _cleanup_(target_done) Target t = {};
        int r;

        r = directory_target(p, s, &t);
        if (r < 0 || !t.full)
                return r;
        r = ensure_directory(t.full, d->mode, t.uid, t.gid);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", t.full, strerror(-r));
        detail_set(ret_detail, 0, "%s (%04o)", t.full, (unsigned) d->mode);
        return 0;
}

/* The row's file: its target and the content it should have. */
static int file_target(Provision *p, const ProvisionStep *s, Target *t, char **ret_content) {
        const ManagedFile *f = s->data;
        _cleanup_free_ char *path = NULL;
        int r;

        r = f->render(p, &path, ret_content);
        return r < 0 ? r : target_of(p, path, f->owner, t);
}

static int file_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const ManagedFile *f = s->data;
        _cleanup_(target_done) Target t = {};
        _cleanup_free_ char *content = NULL;
        bool content_same;
        int r;

        r = file_target(p, s, &t, &content);
        if (r < 0 || !t.full)
                return r < 0 ? r : 1;
        r = file_matches(t.full, content, strlen(content), f->mode, t.uid, t.gid, &content_same);
        return check_verdict(r, t.full, content_same ? "mode or owner" : "content", ret_detail);
}

static int file_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const ManagedFile *f = s->data;
        _cleanup_(target_done) Target t = {};
        _cleanup_free_ char *content = NULL;
        int r;

        r = file_target(p, s, &t, &content);
        if (r < 0 || !t.full)
                return r;
        r = mkdir_parents(t.full);
        if (r >= 0)
                r = write_file_atomic(t.full, content, strlen(content), f->mode, t.uid, t.gid);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", t.full, strerror(-r));
        detail_set(ret_detail, 0, "%s", t.full);
        return 0;
}

/* ---- undoing the generic rows (deprovision) ---------------------------- */

int provision_file_undo_check(const char *full, const void *data, size_t size, char **ret_detail) {
        _cleanup_free_ char *cur = NULL;
        size_t cur_size;
        int r;

        r = read_file(full, size + 1, &cur, &cur_size);
        if (r == -ENOENT)
                return 1;
        if (r < 0 && r != -EFBIG)
                return detail_set(ret_detail, r, "%s: %s", full, strerror(-r));
        /* Ours is what provision writes from this configuration, byte for
         * byte. Anything else was changed by someone since (or the
         * configuration was): refuse rather than remove their work. */
        if (r == -EFBIG || cur_size != size || memcmp(cur, data, size) != 0)
                return detail_set(ret_detail, -EEXIST,
                                  "%s: not what regvisor writes from this configuration (changed since "
                                  "provision?): left as it is; remove it yourself, or restore it (provision) "
                                  "and run deprovision again",
                                  full);
        detail_set(ret_detail, 0, "remove %s", full);
        return 0;
}

int provision_file_undo(const char *full, char **ret_detail) {
        int r = remove_file(full);

        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", full, strerror(-r));
        detail_set(ret_detail, 0, "removed %s", full);
        return 0;
}

/* The file row's undo: its check (apply false) or its removal. */
static int file_undo_run(Provision *p, const ProvisionStep *s, bool apply, char **ret_detail) {
        _cleanup_(target_done) Target t = {};
        _cleanup_free_ char *content = NULL;
        int r;

        r = file_target(p, s, &t, &content);
        if (r < 0 || !t.full)
                return r < 0 ? r : !apply;
        return apply ? provision_file_undo(t.full, ret_detail)
                     : provision_file_undo_check(t.full, content, strlen(content), ret_detail);
}

static int file_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        return file_undo_run(p, s, false, ret_detail);
}

static int file_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        return file_undo_run(p, s, true, ret_detail);
}

/* Whole trees go for data under --purge and for /run directories (a socket
 * left behind); any other directory only when empty: what is in it then is
 * not ours (regvisor.conf in /etc/regvisor) and keeps it. */
static bool directory_recursive(const Provision *p, const ProvisionStep *s) {
        return (s->flags & STEP_RUNTIME) || ((s->flags & STEP_DATA) && p->purge);
}

/* 1 when empty, 0 when not, negative errno. */
static int directory_is_empty(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        int r = 1;

        if (!d)
                return negative_errno();
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        r = 0;
                        break;
                }
        closedir(d);
        return r;
}

static int directory_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(target_done) Target t = {};
        struct stat st;
        int r;

        r = directory_target(p, s, &t);
        if (r < 0 || !t.full)
                return r < 0 ? r : 1;
        if (lstat(t.full, &st) < 0)
                return errno == ENOENT ? 1 : detail_set(ret_detail, negative_errno(), "%s: %s", t.full, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return detail_set(ret_detail, -ENOTDIR, "%s: not a directory: not regvisor's, left as it is",
                                  t.full);
        if (directory_recursive(p, s)) {
                /* A configured path that is "/" or a top-level directory
                 * (storage = /var) is refused rather than emptied. */
                const char *second = strchr(t.full + 1, '/');
                if (!second || !second[1])
                        return detail_set(ret_detail, -EPERM, "%s: refusing to remove a top-level directory",
                                          t.full);
                detail_set(ret_detail, 0, "remove %s and everything in it", t.full);
                return 0;
        }
        r = directory_is_empty(t.full);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", t.full, strerror(-r));
        detail_set(ret_detail, 0, r ? "remove %s (empty)" : "kept %s: holds files regvisor did not write",
                   t.full);
        return !r;
}

static int directory_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(target_done) Target t = {};
        int r;

        r = directory_target(p, s, &t);
        if (r < 0 || !t.full)
                return r;
        r = remove_directory(t.full, directory_recursive(p, s));
        if (r == -ENOTEMPTY) /* filled since the check: kept, as the check would */
                return detail_set(ret_detail, 0, "kept %s: holds files regvisor did not write", t.full);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", t.full, strerror(-r));
        detail_set(ret_detail, 0, "removed %s", t.full);
        return 0;
}

/* ---- what the rows render ---------------------------------------------- */

static int need_service_uid(const Provision *p) {
        return p->have_service_user ? 0 : -ESRCH;
}

static int dup_path(char **ret, const char *fmt, ...) _printf_(2, 3);
static int dup_path(char **ret, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(ret, fmt, ap);
        va_end(ap);
        return r < 0 ? -ENOMEM : 0;
}

#define PODMAN_DIR_FN(fn, suffix)                                                                 \
        static int fn(Provision *p, char **ret) {                                                  \
                int r = need_service_uid(p);                                                       \
                return r < 0 ? r : dup_path(ret, PODMAN_STATE_FMT suffix, (unsigned) p->service_uid); \
        }
PODMAN_DIR_FN(podman_dir, "")
PODMAN_DIR_FN(podman_root_dir, "/root")
PODMAN_DIR_FN(podman_tmp_dir, "/tmp")
PODMAN_DIR_FN(podman_data_dir, "/xdg-data")
PODMAN_DIR_FN(podman_config_dir, "/xdg-config")
PODMAN_DIR_FN(podman_containers_dir, "/xdg-config/containers")

#define TLS_DIR_FN(fn, suffix) \
        static int fn(Provision *p, char **ret) { \
                return dup_path(ret, "%s%s", p->config->tls_dir, suffix); \
        }
TLS_DIR_FN(tls_dir, "")
TLS_DIR_FN(tls_private_dir, "/private")
TLS_DIR_FN(tls_private_clients_dir, "/private/clients")
TLS_DIR_FN(tls_ca_dir, "/ca")
TLS_DIR_FN(tls_clients_dir, "/clients")
TLS_DIR_FN(tls_requests_dir, "/requests")

static int etc_dir(Provision *p, char **ret) {
        return dup_path(ret, "%s", REGVISOR_ETC_DIR);
}

/* None for a shared store: the registry keeps nothing on this host. */
static int storage_dir(Provision *p, char **ret) {
        if (!p->config->storage) {
                *ret = NULL;
                return 0;
        }
        return dup_path(ret, "%s", p->config->storage);
}

/* The signature store (regvisor run starts it): its socket's directory,
 * /var/lib/regvisor, and its own directory below that. */
static int sigstore_socket_dir(Provision *p, char **ret) {
        return dup_path(ret, "%s", SIGSTORE_SOCKET_DIR);
}

static int sigstore_state_dir(Provision *p, char **ret) {
        return dup_path(ret, "%s", SIGSTORE_STATE_DIR);
}

static int sigstore_dir(Provision *p, char **ret) {
        return dup_path(ret, "%s", SIGSTORE_DIR);
}

/* The registry's socket directory; none for a tcp listener. Also kept by
 * tmpfiles.d across reboots, since it lives in /run. */
static int socket_dir(Provision *p, char **ret) {
        _cleanup_free_ char *copy = NULL;

        if (p->config->listen.kind != LISTEN_UNIX) {
                *ret = NULL;
                return 0;
        }
        copy = strdup(p->config->listen.path);
        if (!copy)
                return -ENOMEM;
        return dup_path(ret, "%s", dirname(copy));
}

/* A file in the service user's podman state directory. */
static int render_with_uid(Provision *p, const char *suffix, int (*fn)(const Config *, uid_t, char **),
                           char **ret_path, char **ret_content) {
        _cleanup_free_ char *path = NULL;
        int r = need_service_uid(p);

        if (r < 0)
                return r;
        r = dup_path(&path, PODMAN_STATE_FMT "%s", (unsigned) p->service_uid, suffix);
        if (r < 0)
                return r;
        r = fn(p->config, p->service_uid, ret_content);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(path);
        return 0;
}

static int file_containers_conf(Provision *p, char **ret_path, char **ret_content) {
        return render_with_uid(p, "/xdg-config/containers/containers.conf", render_containers_conf,
                               ret_path, ret_content);
}

static int file_storage_conf(Provision *p, char **ret_path, char **ret_content) {
        return render_with_uid(p, "/xdg-config/containers/storage.conf", render_storage_conf,
                               ret_path, ret_content);
}

static int file_registry_unit(Provision *p, char **ret_path, char **ret_content) {
        int r = need_service_uid(p);
        if (r < 0)
                return r;
        r = render_registry_unit(p->config, p->service_uid, ret_content);
        if (r < 0)
                return r;
        return dup_path(ret_path, "%s", REGISTRY_UNIT_PATH);
}

static int file_proxy_socket_unit(Provision *p, char **ret_path, char **ret_content) {
        int r = render_proxy_socket_unit(p->config, ret_content);
        return r < 0 ? r : dup_path(ret_path, "%s", PROXY_SOCKET_UNIT_PATH);
}

static int file_tmpfiles(Provision *p, char **ret_path, char **ret_content) {
        int r = need_service_uid(p);
        if (r < 0)
                return r;
        r = render_tmpfiles(p->config, p->service_uid, p->config->service_user, p->config->proxy_user,
                            ret_content);
        if (r < 0)
                return r;
        return dup_path(ret_path, "%s", TMPFILES_PATH);
}

/* 32 random bytes as hex: the registry's http.secret. Read back from its own
 * file when that holds a valid one, so it is kept across runs. */
static int registry_secret(Provision *p, const char **ret) {
        static const char hex[] = "0123456789abcdef";
        _cleanup_free_ char *full = NULL, *cur = NULL;
        unsigned char raw[32];
        int r;

        if (p->registry_secret) {
                *ret = p->registry_secret;
                return 0;
        }
        if (p->config->http_secret_file) {
                /* Every host of a shared store the same (refused when anyone
                 * but root may read it). */
                _cleanup_free_ char *error = NULL;

                r = store_http_secret_load(p->config->http_secret_file, &p->registry_secret, &error);
                if (r < 0)
                        return log_error_errno(r, "%s", error ?: strerror(-r));
                *ret = p->registry_secret;
                return 0;
        }
        full = provision_path(p, REGISTRY_SECRET_PATH);
        if (!full)
                return -ENOMEM;
        r = read_file(full, 4096, &cur, NULL);
        if (r >= 0) {
                cur[strcspn(cur, "\n")] = 0;
                if (strlen(cur) == 64 && strspn(cur, hex) == 64) {
                        p->registry_secret = TAKE_PTR(cur);
                        *ret = p->registry_secret;
                        return 0;
                }
        } else if (r != -ENOENT)
                return r;

        if (getrandom(raw, sizeof raw, 0) != sizeof raw)
                return -EIO;
        p->registry_secret = malloc(65);
        if (!p->registry_secret)
                return -ENOMEM;
        for (size_t i = 0; i < sizeof raw; i++) {
                p->registry_secret[2 * i] = hex[raw[i] >> 4];
                p->registry_secret[2 * i + 1] = hex[raw[i] & 15];
        }
        p->registry_secret[64] = 0;
        *ret = p->registry_secret;
        return 0;
}

static int file_registry_secret(Provision *p, char **ret_path, char **ret_content) {
        const char *secret;
        int r;

        /* [registry] http_secret_file is the operator's (the same on every
         * host): no copy of ours, nothing for deprovision to remove. */
        if (p->config->http_secret_file)
                return *ret_path = NULL, *ret_content = NULL, 0;
        r = registry_secret(p, &secret);
        if (r < 0)
                return r;
        r = dup_path(ret_content, "%s\n", secret);
        if (r < 0)
                return r;
        return dup_path(ret_path, "%s", REGISTRY_SECRET_PATH);
}

static int file_registry_config(Provision *p, char **ret_path, char **ret_content) {
        const char *secret;
        int r = registry_secret(p, &secret);
        if (r < 0)
                return r;
        if (config_storage_is_shared(p->config)) {
                _cleanup_(store_credentials_done) StoreCredentials cred = {};
                _cleanup_free_ char *error = NULL;

                r = store_credentials_load(p->config, &cred, &error);
                if (r < 0)
                        return log_error_errno(r, "%s", error ?: strerror(-r));
                r = render_registry_config(p->config, secret, &cred, ret_content);
        } else
                r = render_registry_config(p->config, secret, NULL, ret_content);
        if (r < 0)
                return r;
        return dup_path(ret_path, "%s", REGISTRY_CONFIG_PATH);
}

/* The egress rows: nothing for the filesystem store (NULL path). which:
 * 0 the rules, 1 the boot-time unit, 2 the user manager's drop-in. */
static int file_egress(Provision *p, int which, char **ret_path, char **ret_content) {
        int r;

        *ret_path = *ret_content = NULL;
        if (!config_storage_is_shared(p->config))
                return 0;
        r = need_service_uid(p);
        if (r < 0)
                return r;
        r = which == 0   ? render_registry_egress(p->config, p->service_uid, ret_content)
            : which == 1 ? render_egress_unit(p->service_uid, ret_content)
                         : render_egress_dropin(ret_content);
        if (r < 0)
                return r;
        return which == 0   ? dup_path(ret_path, "%s", EGRESS_RULES_PATH)
               : which == 1 ? dup_path(ret_path, "%s", EGRESS_UNIT_PATH)
                            : dup_path(ret_path, EGRESS_DROPIN_FMT, (unsigned) p->service_uid);
}

static int file_egress_rules(Provision *p, char **ret_path, char **ret_content) {
        return file_egress(p, 0, ret_path, ret_content);
}
static int file_egress_unit(Provision *p, char **ret_path, char **ret_content) {
        return file_egress(p, 1, ret_path, ret_content);
}
static int file_egress_dropin(Provision *p, char **ret_path, char **ret_content) {
        return file_egress(p, 2, ret_path, ret_content);
}

static int file_registries_d(Provision *p, char **ret_path, char **ret_content) {
        int r = render_registries_d(p->config, ret_content);
        return r < 0 ? r : dup_path(ret_path, "%s", REGISTRIES_D_PATH);
}

static int file_registries_conf(Provision *p, char **ret_path, char **ret_content) {
        int r = render_registries_conf(p->config, ret_content);
        return r < 0 ? r : dup_path(ret_path, "%s", REGISTRIES_CONF_D_PATH);
}

/* ---- the table ----------------------------------------------------------- */

#define DIRECTORY(fn, m, o) (&(const ManagedDirectory){.path = (fn), .mode = (m), .owner = (o)})
#define FILE_ROW(fn, m, o) (&(const ManagedFile){.render = (fn), .mode = (m), .owner = (o)})
/* flags: STEP_DATA, STEP_RUNTIME (how deprovision treats the directory). */
#define DIR_STEP_F(n, fl, fn, m, o) \
        {n, fl, directory_check, directory_apply, DIRECTORY(fn, m, o), directory_undo_check, directory_undo}
#define DIR_STEP(n, fn, m, o) DIR_STEP_F(n, 0, fn, m, o)
#define FILE_STEP(n, fn, m, o) {n, 0, file_check, file_apply, FILE_ROW(fn, m, o), file_undo_check, file_undo}

const ProvisionStep provision_steps[] = {
        /* What can be checked before anything is created: an image archive
         * that does not hold the pinned image fails here, not at the end. */
        {"image-archive", 0, step_image_archive_check, NULL, NULL},

        /* A host set up by the install guide, before anything changes: with
         * --adopt its PKI and storage must be complete and consistent (they
         * are kept), without it provision refuses to run over it. */
        {"guide-layout", 0, step_guide_layout_check, NULL, NULL},

        /* The trusted signers' keys ([signing] keys) next: a missing or bad
         * key file stops the run before anything else has changed. */
        {"signing-keys", 0, step_signing_keys_check, step_signing_keys_apply, NULL, step_signing_keys_undo_check,
         step_signing_keys_undo},

        /* Identities next: every later owner is one of them. */
        {"service-user", STEP_HOST_ONLY | STEP_USERS, step_user_check, step_user_apply,
         &(const WhichUser){USER_SERVICE}, step_user_undo_check, step_user_undo},
        {"service-subids", STEP_HOST_ONLY | STEP_USERS, step_subids_check, step_subids_apply, NULL,
         step_subids_undo_check, step_subids_undo},
        {"proxy-user", STEP_HOST_ONLY | STEP_USERS, step_user_check, step_user_apply, &(const WhichUser){USER_PROXY},
         step_user_undo_check, step_user_undo},
        /* The user manager must run for the service user even when nobody
         * is logged in: linger, over logind's D-Bus API. */
        {"linger", STEP_HOST_ONLY, step_linger_check, step_linger_apply, NULL, step_linger_undo_check,
         step_linger_undo},

        /* Podman's state, all of it outside $HOME. */
        DIR_STEP_F("podman-state-dir", STEP_DATA, podman_dir, 0750, OWNER_SERVICE),
        DIR_STEP_F("podman-root-dir", STEP_DATA, podman_root_dir, 0700, OWNER_SERVICE),
        DIR_STEP("podman-tmp-dir", podman_tmp_dir, 0700, OWNER_SERVICE),
        DIR_STEP_F("podman-xdg-data-dir", STEP_DATA, podman_data_dir, 0700, OWNER_SERVICE),
        DIR_STEP("podman-xdg-config-dir", podman_config_dir, 0700, OWNER_SERVICE),
        DIR_STEP("podman-config-dir", podman_containers_dir, 0700, OWNER_SERVICE),
        FILE_STEP("podman-containers-conf", file_containers_conf, 0644, OWNER_SERVICE),
        FILE_STEP("podman-storage-conf", file_storage_conf, 0644, OWNER_SERVICE),
        FILE_STEP("tmpfiles", file_tmpfiles, 0644, OWNER_ROOT),

        /* The guide's certificate tree. private/ is readable by the proxy's
         * group only for the server key; CA keys stay 0600 root. */
        DIR_STEP_F("tls-dir", STEP_DATA, tls_dir, 0755, OWNER_ROOT),
        DIR_STEP_F("tls-private-dir", STEP_DATA, tls_private_dir, 0750, OWNER_ROOT_PROXY),
        DIR_STEP_F("tls-private-clients-dir", STEP_DATA, tls_private_clients_dir, 0700, OWNER_ROOT),
        DIR_STEP_F("tls-ca-dir", STEP_DATA, tls_ca_dir, 0755, OWNER_ROOT),
        DIR_STEP_F("tls-clients-dir", STEP_DATA, tls_clients_dir, 0755, OWNER_ROOT),
        DIR_STEP_F("tls-requests-dir", STEP_DATA, tls_requests_dir, 0755, OWNER_ROOT),
        /* The PKI rows' files go with the tree above under --purge. */
        {"pki-server-ca", STEP_DATA, step_pki_check, step_pki_apply, "server-ca"},
        /* Empty so far; the server certificate's CRL distribution point
         * leads to it (provision-pki.c). */
        {"pki-server-crl", STEP_DATA, step_pki_check, step_pki_apply, "server-crl"},
        {"pki-server-cert", STEP_DATA, step_pki_check, step_pki_apply, "server-cert"},
        {"pki-client-ca", STEP_DATA, step_pki_check, step_pki_apply, "client-ca"},
        /* The CRL before any client certificate: whether a name is revoked
         * is read from it. */
        {"pki-client-crl", STEP_DATA, step_pki_check, step_pki_apply, "crl"},
        {"pki-initial-client", STEP_DATA, step_pki_check, step_pki_apply, "client"},

        /* The registry: storage, socket directory, its own configuration. */
        DIR_STEP_F("registry-storage", STEP_DATA, storage_dir, 0750, OWNER_SERVICE),
        /* setgid: the socket the registry creates here (umask 0007, see
         * render_registry_unit) gets the proxy's group, which may connect. */
        DIR_STEP_F("registry-socket-dir", STEP_RUNTIME, socket_dir, 02750, OWNER_SERVICE_PROXY),
        /* The signature store: root binds its socket (no CAP_DAC_OVERRIDE
         * in regvisor.service, so root's own directory), setgid so that the
         * socket is the proxy group's, which alone may connect; the
         * signatures are the service user's, the store's user. */
        DIR_STEP_F("sigstore-socket-dir", STEP_RUNTIME, sigstore_socket_dir, 02750, OWNER_ROOT_PROXY),
        DIR_STEP_F("sigstore-state-dir", STEP_DATA, sigstore_state_dir, 0755, OWNER_ROOT),
        DIR_STEP_F("sigstore-dir", STEP_DATA, sigstore_dir, 0750, OWNER_SERVICE),
        DIR_STEP("etc-dir", etc_dir, 0755, OWNER_ROOT),
        FILE_STEP("registry-secret", file_registry_secret, 0600, OWNER_ROOT),
        FILE_STEP("registry-config", file_registry_config, 0640, OWNER_ROOT_SERVICE),
        FILE_STEP("registry-unit", file_registry_unit, 0644, OWNER_ROOT),

        /* Containers policy: signatures required for this registry. */
        {"containers-policy", 0, step_policy_check, step_policy_apply, NULL, step_policy_undo_check,
         step_policy_undo},
        FILE_STEP("registries-d", file_registries_d, 0644, OWNER_ROOT),
        FILE_STEP("registries-conf", file_registries_conf, 0644, OWNER_ROOT),

        /* --adopt: the guide's registry and proxy make way, only now that
         * everything of regvisor's is in place (a run that failed earlier
         * leaves them serving). Deprovision enables them again (not
         * started): the host is the guide's as it was. */
        {"guide-registry-unit", STEP_HOST_ONLY, step_guide_registry_unit_check, step_guide_registry_unit_apply,
         NULL, step_guide_registry_unit_undo_check, step_guide_registry_unit_undo},
        {"guide-proxy", STEP_HOST_ONLY, step_guide_proxy_check, step_guide_proxy_apply, NULL,
         step_guide_proxy_undo_check, step_guide_proxy_undo},
        /* --adopt: what the guide's registry wrote (umask 022), now that it
         * is stopped, made as closed to others as what regvisor's writes. */
        {"guide-storage-modes", STEP_HOST_ONLY | STEP_DATA, step_guide_storage_modes_check,
         step_guide_storage_modes_apply, NULL},

        /* The running system: units loaded, image present by digest. */
        /* Undone: the registry's unit stopped (its file goes later). */
        {"user-manager-reload", STEP_HOST_ONLY, step_user_manager_reload_check, step_user_manager_reload_apply,
         NULL, step_registry_unit_undo_check, step_registry_unit_undo},
        /* The image lives in podman's state: removed with it (--purge). */
        {"registry-image", STEP_HOST_ONLY | STEP_DATA, step_image_check, step_image_apply, NULL},
        {"podman-outside-home", STEP_HOST_ONLY, step_podman_info_check, NULL, NULL},
        /* A shared store: the registry reaches the store and the cache,
         * nothing else (provision-egress.c); nothing for a path. After the
         * image: the service user pulls it (the table stops that too), and
         * deprovision removes the table after regvisor.service (and with
         * it the registry) stopped. */
        FILE_STEP("registry-egress-rules", file_egress_rules, 0600, OWNER_ROOT),
        FILE_STEP("registry-egress-unit", file_egress_unit, 0644, OWNER_ROOT),
        FILE_STEP("registry-egress-dropin", file_egress_dropin, 0644, OWNER_ROOT),
        {"registry-egress", STEP_HOST_ONLY, step_egress_check, step_egress_apply, NULL, step_egress_undo_check,
         step_egress_undo},
        /* Socket activation of regvisor.service: systemd holds 443/4443,
         * so its restart refuses no connection. */
        FILE_STEP("proxy-socket-unit", file_proxy_socket_unit, 0644, OWNER_ROOT),
        {"proxy-socket", STEP_HOST_ONLY, step_proxy_socket_check, step_proxy_socket_apply, NULL,
         step_proxy_socket_undo_check, step_proxy_socket_undo},

        /* Provision installs no system unit (make install or the package
         * does, the operator enables it); deprovision walks this row first:
         * regvisor.service (and its socket and timers) stopped and
         * disabled before anything it uses goes. */
        {"system-units", STEP_HOST_ONLY | STEP_UNDO_ONLY, NULL, NULL, NULL, step_system_units_undo_check,
         step_system_units_undo},
};
const size_t provision_n_steps = ELEMENTSOF(provision_steps);

/* ---- the runner ---------------------------------------------------------- */

const char *step_result_to_string(StepResult r) {
        static const char *const names[] = {
                [STEP_RESULT_OK] = "ok",           [STEP_RESULT_CHANGED] = "changed",
                [STEP_RESULT_WOULD] = "would",     [STEP_RESULT_SKIPPED] = "skipped",
                [STEP_RESULT_FAILED] = "failed",   [STEP_RESULT_NOT_RUN] = "not-run",
        };
        return (size_t) r < ELEMENTSOF(names) ? names[r] : "?";
}

void provision_report_done(ProvisionReport *r) {
        for (size_t i = 0; i < r->n_results; i++)
                free(r->results[i].detail);
        free(r->results);
        *r = (ProvisionReport){};
}

/* A skip's detail: the users a row may need that do not exist (yet, or
 * undoing: any more). */
static char *missing_users(const Provision *p, bool undoing) {
        const char *when = p->root ? "on this machine" : undoing ? "any more" : "yet";
        char *s;
        int r;

        if (!p->have_service_user && !p->have_proxy_user)
                r = asprintf(&s, "(needs users %s and %s, which do not exist %s)", p->config->service_user,
                             p->config->proxy_user, when);
        else
                r = asprintf(&s, "(needs user %s, which does not exist %s)",
                             p->have_service_user ? p->config->proxy_user : p->config->service_user, when);
        return r < 0 ? NULL : s;
}

typedef int (*StepFn)(Provision *p, const ProvisionStep *s, char **ret_detail);

/* Walks one row with check and apply (the row's own, or its undo pair when
 * undoing); fills *res. Returns 0, or the negative errno that stops the
 * run. */
static int run_step(Provision *p, const ProvisionStep *s, StepFn check, StepFn apply, bool undoing,
                    ProvisionResult *res) {
        _cleanup_free_ char *detail = NULL, *apply_detail = NULL;
        int r;

        if (p->root && (s->flags & STEP_HOST_ONLY)) {
                res->result = STEP_RESULT_SKIPPED;
                res->skip = SKIP_HOST_ONLY;
                return 0;
        }
        provision_stop_point(s->name);
        r = check(p, s, &detail);
        if (r == -ESRCH && (p->dry_run || p->root || undoing)) {
                /* A user that an earlier step would create (or, undoing,
                 * that is gone already, and with it what needs its id). */
                res->result = p->dry_run && !p->root && !undoing ? STEP_RESULT_WOULD : STEP_RESULT_SKIPPED;
                res->skip = SKIP_NEEDS_USER;
                res->detail = missing_users(p, undoing);
                return 0;
        }
        if (r < 0) {
                res->result = STEP_RESULT_FAILED;
                res->error = r;
                res->detail = detail ? TAKE_PTR(detail) : strdup(strerror(-r));
                return r;
        }
        if (r > 0 || p->dry_run) {
                /* A check may remark on a right state ("none asked for"). */
                res->result = r > 0 ? STEP_RESULT_OK : STEP_RESULT_WOULD;
                res->detail = TAKE_PTR(detail);
                return 0;
        }
        if (!apply) {
                res->result = STEP_RESULT_FAILED;
                res->error = -EINVAL;
                res->detail = TAKE_PTR(detail);
                return -EINVAL;
        }
        r = apply(p, s, &apply_detail);
        if (r < 0) {
                res->result = STEP_RESULT_FAILED;
                res->error = r;
                res->detail = apply_detail ? TAKE_PTR(apply_detail) : strdup(strerror(-r));
                return r;
        }
        res->result = STEP_RESULT_CHANGED;
        res->detail = apply_detail ? TAKE_PTR(apply_detail) : TAKE_PTR(detail);
        return 0;
}

/* Why deprovision leaves a row alone, before looking at the host. */
static ProvisionSkip undo_skip(const Provision *p, const ProvisionStep *s) {
        if ((s->flags & STEP_USERS) && !p->remove_users)
                return SKIP_KEPT_USERS;
        if ((s->flags & STEP_DATA) && !p->purge)
                return SKIP_KEPT_DATA;
        return s->undo_check ? SKIP_NONE : SKIP_NO_UNDO;
}

/* One row undone, or skipped with the reason in its detail. */
static int undo_step(Provision *p, const ProvisionStep *s, ProvisionResult *res) {
        ProvisionSkip skip = undo_skip(p, s);
        const char *why;

        if (skip == SKIP_NONE)
                return run_step(p, s, s->undo_check, s->undo, true, res);
        switch (skip) {
        case SKIP_KEPT_USERS:
                why = "(kept: --remove-users removes it)";
                break;
        case SKIP_KEPT_DATA:
                why = "(kept: data or PKI; --purge removes it)";
                break;
        default:
                why = s->flags & STEP_DATA ? "(removed with its directory)" : "(nothing of its own to undo)";
        }
        res->result = STEP_RESULT_SKIPPED;
        res->skip = skip;
        res->detail = strdup(why);
        return 0;
}

/* Walks the table forwards (provision) or backwards (deprovision). */
static int walk(Provision *p, bool undoing, ProvisionProgress progress, void *userdata,
                ProvisionReport *ret_report) {
        ProvisionReport rep = {};
        int first_error = 0, r;

        rep.results = calloc(provision_n_steps, sizeof *rep.results);
        if (!rep.results) {
                *ret_report = rep;
                return -ENOMEM;
        }
        r = provision_lookup_users(p);
        for (size_t i = 0; i < provision_n_steps && r >= 0; i++) {
                const ProvisionStep *s = &provision_steps[undoing ? provision_n_steps - 1 - i : i];
                ProvisionResult *res;

                if (!undoing && (s->flags & STEP_UNDO_ONLY))
                        continue;
                res = &rep.results[rep.n_results++];
                res->name = s->name;
                if (first_error)
                        res->result = STEP_RESULT_NOT_RUN;
                else if (undoing)
                        first_error = undo_step(p, s, res);
                else
                        first_error = run_step(p, s, s->check, s->apply, false, res);
                switch (res->result) {
                case STEP_RESULT_OK:
                        rep.counts.ok++;
                        break;
                case STEP_RESULT_CHANGED:
                case STEP_RESULT_WOULD:
                        rep.counts.changed++;
                        break;
                case STEP_RESULT_SKIPPED:
                        rep.counts.skipped++;
                        break;
                case STEP_RESULT_FAILED:
                        rep.counts.failed++;
                        break;
                case STEP_RESULT_NOT_RUN:
                        break;
                }
                if (progress)
                        progress(res, userdata);
                if (res->result == STEP_RESULT_CHANGED) {
                        provision_kill_point(s->name);
                        /* Users may have just been created: later rows need them. */
                        r = provision_lookup_users(p);
                }
        }
        *ret_report = rep;
        return r < 0 ? r : first_error;
}

int provision_run(Provision *p, ProvisionProgress progress, void *userdata, ProvisionReport *ret_report) {
        return walk(p, false, progress, userdata, ret_report);
}

int deprovision_run(Provision *p, ProvisionProgress progress, void *userdata, ProvisionReport *ret_report) {
        assert(!p->root);
        return walk(p, true, progress, userdata, ret_report);
}
