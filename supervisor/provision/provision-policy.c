/* SPDX-License-Identifier: MIT */
/*
 * The signing steps: the trusted signers' keys installed where policy.json
 * names them, and the containers-policy.json rules, merged, never
 * overwritten, so rules the operator has for other registries stay as they
 * are.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "detail.h"
#include "fileio.h"
#include "macro.h"
#include "paths.h"
#include "policy.h"
#include "provision.h"
#include "render.h"
#include "signkeys.h"

#define POLICY_MAX (4 * 1024 * 1024)

/* What policy.json requires for this registry, from [signing]. */
static PolicyKind policy_kind(const Config *c, const char **ret_key_path) {
        if (c->signing_mode == SIGNING_SIGSTORE) {
                *ret_key_path = c->sigstore_key;
                return POLICY_SIGSTORE;
        }
        /* No trusted signer yet: nothing of this registry can be verified,
         * so nothing of it is accepted (fail closed, not open). */
        *ret_key_path = c->signing_keys ? SIGNING_KEYS_PATH : NULL;
        return c->signing_keys ? POLICY_GPG : POLICY_REJECT;
}

/* This registry's scopes in policy.json and the current file (NULL when
 * there is none), shared by the step and its undo. */
typedef struct {
        char *full;
        char *cur;
        char **names;
        PolicyScope *scopes;
        size_t n;
} PolicyState;

static void policy_state_done(PolicyState *st) {
        free_many(st->full, st->cur, st->scopes);
        strv_free(st->names);
}

static int policy_state(Provision *p, PolicyState *st, char **ret_detail) {
        int r;

        st->full = provision_path(p, CONTAINERS_POLICY_PATH);
        if (!st->full)
                return -ENOMEM;
        r = read_file(st->full, POLICY_MAX, &st->cur, NULL);
        if (r < 0 && r != -ENOENT) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", st->full, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        r = render_registry_names(p->config, &st->names);
        if (r < 0)
                return r;
        while (st->names[st->n])
                st->n++;
        st->scopes = calloc(st->n ? st->n : 1, sizeof *st->scopes);
        if (!st->scopes)
                return -ENOMEM;
        /* names come in pairs, pull name then push name (render.h): a
         * signature is made when pushing, through NAME:4443, and must be
         * accepted for a pull through NAME. */
        assert(st->n % 2 == 0);
        for (size_t i = 0; i < st->n; i++)
                st->scopes[i] = (PolicyScope){.scope = st->names[i], .signed_prefix = st->names[i | 1]};
        return 0;
}

/* Computes the merged policy: 1 with *ret_json when it must change, 0 when
 * the file is already right (content, mode 0644 and owner root). */
static int policy_compute(Provision *p, char **ret_json, char **ret_detail) {
        _cleanup_(policy_state_done) PolicyState ps = {};
        _cleanup_free_ char *error = NULL;
        const char *key_path;
        PolicyKind kind = policy_kind(p->config, &key_path);
        const char *full;
        struct stat st;
        int r;

        r = policy_state(p, &ps, ret_detail);
        if (r < 0)
                return r;
        full = ps.full;
        r = policy_merge(ps.cur, kind, key_path, ps.scopes, ps.n, ret_json, &error);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", full, error ? error : strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (r == 0 && lstat(full, &st) == 0 && ((st.st_mode & 07777) != 0644 || st.st_uid != 0)) {
                /* Content right, mode or owner not: rewrite it as it is. */
                *ret_json = TAKE_PTR(ps.cur);
                r = 1;
        }
        return r;
}

/* What the rule asks for, for the step's report. */
static int policy_describe(const Config *c, char **ret) {
        const char *key_path;

        switch (policy_kind(c, &key_path)) {
        case POLICY_GPG:
                return asprintf(ret, "require GPG signatures by %s for this registry", key_path);
        case POLICY_SIGSTORE:
                return asprintf(ret, "require sigstore signatures by %s for this registry", key_path);
        case POLICY_REJECT:
                break;
        }
        return asprintf(ret, "refuse every image of this registry: no [signing] keys configured");
}

int step_policy_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *json = NULL;
        int r = policy_compute(p, &json, ret_detail);

        if (r < 0)
                return r;
        if (r > 0 && ret_detail && policy_describe(p->config, ret_detail) < 0)
                *ret_detail = NULL;
        return r == 0;
}

/* Writes data to path (below --root), 0644 root:root, its parents
 * created; *ret_full the path written (the caller frees), a failure said
 * in *ret_detail. */
static int write_host_file(Provision *p, const char *path, const void *data, size_t size, char **ret_full,
                           char **ret_detail) {
        _cleanup_free_ char *full = provision_path(p, path);
        int r;

        if (!full)
                return -ENOMEM;
        r = mkdir_parents(full);
        if (r >= 0)
                r = write_file_atomic(full, data, size, 0644, 0, 0);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", full, strerror(-r));
        *ret_full = TAKE_PTR(full);
        return 0;
}

int step_policy_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *json = NULL, *full = NULL;
        struct stat st;
        int r;

        r = policy_compute(p, &json, ret_detail);
        if (r <= 0)
                return r;
        r = write_host_file(p, CONTAINERS_POLICY_PATH, json, strlen(json), &full, ret_detail);
        if (r < 0)
                return r;
        if (ret_detail) {
                const char *key_path;
                PolicyKind kind = policy_kind(p->config, &key_path);
                _cleanup_free_ char *key = key_path ? provision_path(p, key_path) : NULL;
                bool have_key = key && lstat(key, &st) == 0;
                int k;

                if (kind == POLICY_REJECT)
                        k = asprintf(ret_detail, "%s merged (warning: no [signing] keys: every image of this "
                                                 "registry is refused until they are set)", full);
                else
                        k = asprintf(ret_detail, "%s merged%s%s%s", full, have_key ? "" : " (warning: ",
                                     have_key ? "" : key_path,
                                     have_key ? "" : " does not exist yet: pulls from this registry fail until it does)");
                if (k < 0)
                        *ret_detail = NULL;
        }
        return 0;
}

/* ---- signing-keys: [signing] keys installed as SIGNING_KEYS_PATH -------- */

/* The keys to install: 1 with *ret when [signing] names them (read and
 * checked with GPGME: the step fails, before anything else of the run
 * changed, when they are missing or bad), 0 when there are none to install. */
static int signing_keys(Provision *p, SignKeys *ret, char **ret_detail) {
        _cleanup_free_ char *error = NULL;
        int r;

        if (p->config->signing_mode != SIGNING_GPG || !p->config->signing_keys)
                return 0;
        r = signkeys_read(p->config->signing_keys, ret, &error);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "[signing] keys = %s", error ? error : strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        return 1;
}

/* "N keys: FPR, FPR" for the report. */
static int keys_describe(const SignKeys *k, const char *path, char **ret) {
        _cleanup_free_ char *list = NULL;
        size_t n = 0;

        for (char **f = k->fingerprints; f && *f; f++, n++) {
                char *more;
                if (asprintf(&more, "%s%s%s", list ? list : "", list ? ", " : "", *f) < 0)
                        return -ENOMEM;
                free(list);
                list = more;
        }
        return asprintf(ret, "%s: %zu signing key%s: %s", path, n, n == 1 ? "" : "s", list ? list : "") < 0
                       ? -ENOMEM
                       : 0;
}

int step_signing_keys_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *full = NULL;
        bool content_same;
        int r;

        r = signing_keys(p, &k, ret_detail);
        if (r <= 0) {
                if (r == 0 && ret_detail &&
                    asprintf(ret_detail, "(none: %s)",
                             p->config->signing_mode == SIGNING_GPG ? "[signing] keys is empty" : "mode = sigstore") < 0)
                        *ret_detail = NULL;
                return r < 0 ? r : 1;
        }
        full = provision_path(p, SIGNING_KEYS_PATH);
        if (!full)
                return -ENOMEM;
        r = file_matches(full, k.data, k.size, 0644, 0, 0, &content_same);
        if (r < 0) {
                if (ret_detail && asprintf(ret_detail, "%s: %s", full, strerror(-r)) < 0)
                        *ret_detail = NULL;
                return r;
        }
        if (ret_detail && keys_describe(&k, full, ret_detail) < 0)
                *ret_detail = NULL;
        return r;
}

int step_signing_keys_apply(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *full = NULL;
        int r;

        /* Read and checked again: what is written is what was checked. */
        r = signing_keys(p, &k, ret_detail);
        if (r <= 0)
                return r;
        r = write_host_file(p, SIGNING_KEYS_PATH, k.data, k.size, &full, ret_detail);
        if (r < 0)
                return r;
        if (ret_detail && keys_describe(&k, full, ret_detail) < 0)
                *ret_detail = NULL;
        return 0;
}

/* ---- deprovision ---------------------------------------------------------- */

/* The scopes of this registry whose rules are still provision's: 0 with
 * *ret_own (may be empty), or -EEXIST when one was changed since. */
static int policy_own(Provision *p, PolicyState *ps, char ***ret_own, char **ret_detail) {
        _cleanup_free_ char *error = NULL;
        const char *key_path;
        PolicyKind kind = policy_kind(p->config, &key_path);
        int r;

        r = policy_state(p, ps, ret_detail);
        if (r < 0)
                return r;
        r = policy_own_scopes(ps->cur, kind, key_path, ps->scopes, ps->n, ret_own, &error);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s%s", ps->full, error ?: strerror(-r),
                                  r == -EEXIST ? ": left as it is; remove it yourself, or restore it "
                                                 "(provision) and run deprovision again" : "");
        return 0;
}

/* "a, b" */
static int scopes_join(char *const *scopes, char **ret) {
        _cleanup_free_ char *list = NULL;

        for (char *const *s = scopes; *s; s++) {
                char *more;
                if (asprintf(&more, "%s%s%s", list ?: "", list ? ", " : "", *s) < 0)
                        return -ENOMEM;
                free(list);
                list = more;
        }
        *ret = TAKE_PTR(list);
        return 0;
}

int step_policy_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(policy_state_done) PolicyState ps = {};
        _cleanup_strv_free_ char **own = NULL;
        _cleanup_free_ char *list = NULL;
        int r;

        r = policy_own(p, &ps, &own, ret_detail);
        if (r < 0)
                return r;
        if (!own[0])
                return 1;
        r = scopes_join(own, &list);
        if (r < 0)
                return r;
        return detail_set(ret_detail, 0, "remove the rules for %s from %s (the others stay)", list, ps.full);
}

int step_policy_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(policy_state_done) PolicyState ps = {};
        _cleanup_strv_free_ char **own = NULL;
        _cleanup_free_ char *json = NULL, *error = NULL, *list = NULL;
        int r;

        r = policy_own(p, &ps, &own, ret_detail);
        if (r < 0)
                return r;
        r = policy_remove_scopes(ps.cur, own, &json, &error);
        if (r <= 0)
                return r < 0 ? detail_set(ret_detail, r, "%s: %s", ps.full, error ?: strerror(-r)) : 0;
        r = write_file_atomic(ps.full, json, strlen(json), 0644, 0, 0);
        if (r < 0)
                return detail_set(ret_detail, r, "%s: %s", ps.full, strerror(-r));
        r = scopes_join(own, &list);
        if (r < 0)
                return r;
        return detail_set(ret_detail, 0, "%s: rules for %s removed", ps.full, list);
}

int step_signing_keys_undo_check(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_(signkeys_done) SignKeys k = {};
        _cleanup_free_ char *full = provision_path(p, SIGNING_KEYS_PATH);
        int r = full ? signing_keys(p, &k, ret_detail) : -ENOMEM;

        /* Ours is what [signing] keys would install now; with no keys
         * configured provision installs none, so none is ours. */
        if (r <= 0)
                return r < 0 ? r : 1;
        return provision_file_undo_check(full, k.data, k.size, ret_detail);
}

int step_signing_keys_undo(Provision *p, const ProvisionStep *s, char **ret_detail) {
        _cleanup_free_ char *full = provision_path(p, SIGNING_KEYS_PATH);

        if (!full)
                return -ENOMEM;
        return provision_file_undo(full, ret_detail);
}

