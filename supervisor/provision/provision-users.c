/* SPDX-License-Identifier: MIT */
/*
 * Provisioning steps for the two users: created with the distribution's own
 * tools (useradd, usermod), never by editing /etc/passwd.
 */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detail.h"
#include "fileio.h"
#include "macro.h"
#include "process.h"
#include "provision.h"

static int run_tool(char *const *argv, char **ret_detail) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = process_run(argv, NULL, NULL, &err);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", argv[0],
                                           r == -ENOENT ? "not installed" : strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (r != 0) {
                if (err)
                        err[strcspn(err, "\n")] = 0;
                if (ret_detail && asprintf(ret_detail, "%s exited with %d: %s", argv[0], r, err ? err : "") < 0)
                        *ret_detail = NULL;
                return -EIO;
        }
        return 0;
}

int step_user_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        WhichUser which = *(const WhichUser *) s->data;
        const char *name = which == USER_SERVICE ? p->config->service_user : p->config->proxy_user;

        if (getpwnam(name))
                return 1;
        if (ret_detail && asprintf(ret_detail, "create system user %s", name) < 0)
                *ret_detail = NULL;
        return 0;
}

int step_user_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        WhichUser which = *(const WhichUser *) s->data;
        int r;

        if (which == USER_SERVICE) {
                /* A home directory exists (some tools insist on one) but
                 * nothing of podman's goes there; no login shell either: the
                 * user manager does not need one. */
                _cleanup_free_ char *home = NULL;
                if (asprintf(&home, "/home/%s", p->config->service_user) < 0)
                        return -ENOMEM;
                char *argv[] = {"useradd", "--system", "--user-group", "--create-home", "--home-dir", home,
                                "--shell", "/usr/sbin/nologin", "--comment", "regvisor registry (rootless podman)",
                                p->config->service_user, NULL};
                r = run_tool(argv, ret_detail);
        } else {
                char *argv[] = {"useradd", "--system", "--user-group", "--no-create-home", "--home-dir",
                                "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment",
                                "regvisor TLS proxy", p->config->proxy_user, NULL};
                r = run_tool(argv, ret_detail);
        }
        if (r < 0)
                return r;
        if (ret_detail && asprintf(ret_detail, "created %s",
                                   which == USER_SERVICE ? p->config->service_user : p->config->proxy_user) < 0)
                *ret_detail = NULL;
        return 0;
}

/* 1 when `file` (/etc/subuid or /etc/subgid) gives user exactly the range
 * start/count, 0 when not, negative errno on error. */
static int subid_has_range(const char *file, const char *user, uint32_t start, uint32_t count) {
        _cleanup_free_ char *data = NULL;
        char *line, *save = NULL;
        int r;

        r = read_file(file, 16 * 1024 * 1024, &data, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char name[256];
                unsigned long s, c;
                if (sscanf(line, "%255[^:]:%lu:%lu", name, &s, &c) == 3 && streq(name, user) && s == start &&
                    c == count)
                        return 1;
        }
        return 0;
}

int step_subids_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        const Config *c = p->config;
        int a, b;

        a = subid_has_range("/etc/subuid", c->service_user, c->subid_start, c->subid_count);
        if (a < 0)
                return a;
        b = subid_has_range("/etc/subgid", c->service_user, c->subid_start, c->subid_count);
        if (b < 0)
                return b;
        if (a && b)
                return 1;
        if (ret_detail && asprintf(ret_detail, "add %u-%u to /etc/subuid and /etc/subgid", c->subid_start,
                                   c->subid_start + c->subid_count - 1) < 0)
                *ret_detail = NULL;
        return 0;
}

/* usermod adding (add) or removing the configured range of subordinate
 * uids and gids of the service user: one invocation for apply and undo. */
static int subids_usermod(const Config *c, bool add, char **ret_detail) {
        _cleanup_free_ char *range = NULL;
        int r;

        if (asprintf(&range, "%u-%u", c->subid_start, c->subid_start + c->subid_count - 1) < 0)
                return -ENOMEM;
        char *argv[] = {"usermod", add ? "--add-subuids" : "--del-subuids", range,
                        add ? "--add-subgids" : "--del-subgids", range, c->service_user, NULL};
        r = run_tool(argv, ret_detail);
        if (r < 0)
                return r;
        return detail_set(ret_detail, 0, "%s: subordinate ids %s%s", c->service_user, range, add ? "" : " removed");
}

int step_subids_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        return subids_usermod(p->config, true, ret_detail);
}

/* ---- deprovision (--remove-users) ------------------------------------------ */

int step_user_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        WhichUser which = *(const WhichUser *) s->data;
        const char *name = which == USER_SERVICE ? p->config->service_user : p->config->proxy_user;

        if (!getpwnam(name))
                return 1;
        return detail_set(ret_detail, 0, "remove user %s%s", name,
                          which == USER_SERVICE ? " and its home directory" : "");
}

int step_user_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        WhichUser which = *(const WhichUser *) s->data;
        const char *name = which == USER_SERVICE ? p->config->service_user : p->config->proxy_user;
        int r;

        /* The service user's home was made by provision (useradd
         * --create-home) and holds nothing of podman's: it goes with it.
         * The user's own group goes too (useradd --user-group made it). */
        if (which == USER_SERVICE) {
                char *argv[] = {"userdel", "--remove", (char *) name, NULL};
                r = run_tool(argv, ret_detail);
        } else {
                char *argv[] = {"userdel", (char *) name, NULL};
                r = run_tool(argv, ret_detail);
        }
        if (r < 0)
                return r;
        return detail_set(ret_detail, 0, "removed %s", name);
}

int step_subids_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        int r = step_subids_check(p, s, NULL);

        if (r <= 0) /* not (exactly) ours: left alone */
                return r < 0 ? r : 1;
        return detail_set(ret_detail, 0, "remove %u-%u of %s from /etc/subuid and /etc/subgid",
                          p->config->subid_start, p->config->subid_start + p->config->subid_count - 1,
                          p->config->service_user);
}

int step_subids_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        return subids_usermod(p->config, false, ret_detail);
}
