/* SPDX-License-Identifier: MIT */
/*
 * The containers-policy.json step: merged, never overwritten, so rules the
 * operator has for other registries stay as they are.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "paths.h"
#include "policy.h"
#include "provision.h"
#include "render.h"

#define POLICY_MAX (4 * 1024 * 1024)

/* Computes the merged policy: 1 with *ret_json when it must change, 0 when
 * the file is already right (content, mode 0644 and owner root). */
static int policy_compute(Provision *p, char **ret_json, char **ret_detail) {
        _cleanup_free_ char *full = NULL, *cur = NULL, *error = NULL;
        _cleanup_strv_free_ char **names = NULL;
        struct stat st;
        int r;

        full = provision_path(p, CONTAINERS_POLICY_PATH);
        if (!full)
                return -ENOMEM;
        r = read_file(full, POLICY_MAX, &cur, NULL);
        if (r < 0 && r != -ENOENT) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", full, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        r = render_registry_names(p->config, &names);
        if (r < 0)
                return r;
        r = policy_merge(cur, names, p->config->sigstore_key, ret_json, &error);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", full, error ? error : strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (r == 0 && lstat(full, &st) == 0 && ((st.st_mode & 07777) != 0644 || st.st_uid != 0)) {
                /* Content right, mode or owner not: rewrite it as it is. */
                *ret_json = TAKE_PTR(cur);
                r = 1;
        }
        return r;
}

int step_policy_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *json = NULL;
        int r = policy_compute(p, &json, ret_detail);

        if (r < 0)
                return r;
        if (r > 0 && ret_detail && asprintf(ret_detail, "require sigstore signatures by %s for this registry",
                                            p->config->sigstore_key) < 0)
                *ret_detail = NULL;
        return r == 0;
}

int step_policy_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *json = NULL, *full = NULL;
        struct stat st;
        int r;

        r = policy_compute(p, &json, ret_detail);
        if (r <= 0)
                return r;
        full = provision_path(p, CONTAINERS_POLICY_PATH);
        if (!full)
                return -ENOMEM;
        r = mkdir_parents(full);
        if (r >= 0)
                r = write_file_atomic(full, json, strlen(json), 0644, 0, 0);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", full, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (ret_detail) {
                _cleanup_free_ char *key = provision_path(p, p->config->sigstore_key);
                bool have_key = key && lstat(key, &st) == 0;
                if (asprintf(ret_detail, "%s merged%s%s%s", full, have_key ? "" : " (warning: ",
                             have_key ? "" : p->config->sigstore_key,
                             have_key ? "" : " does not exist yet: pulls from this registry fail until it does)") < 0)
                        *ret_detail = NULL;
        }
        return 0;
}
