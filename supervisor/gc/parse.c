/* SPDX-License-Identifier: MIT */
/* Pure: the registry's JSON and garbage-collect's summary (parse.h). */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "parse.h"
#include "sigcheck.h"

int gc_parse_summary(const char *out, GcSummary *ret) {
        /* The line is the last the tool prints; an earlier line holding the
         * same words is a repository or tag name, which cannot hold spaces. */
        for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                GcSummary s = {};
                int used = 0;

                if (sscanf(p, "%llu blobs marked, %llu blobs and %llu manifests eligible for deletion%n", &s.marked,
                           &s.blobs_eligible, &s.manifests_eligible, &used) == 3 &&
                    used > 0) {
                        *ret = s;
                        return 0;
                }
        }
        return -ENOMSG;
}

unsigned gc_delete_share(const GcSummary *s) {
        unsigned long long total = s->marked + s->blobs_eligible;

        if (total == 0 || s->blobs_eligible == 0)
                return 0;
        return (unsigned) ((s->blobs_eligible * 100 + total - 1) / total);
}

int gc_valid_repository(const char *s, size_t n) {
        return sigcheck_repository(s, n);
}

static bool isalnum_ascii(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_uuid(const char *s) {
        /* "%08x-%04x-%04x-%04x-%012x" */
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        }
        return s[36] == 0;
}

bool gc_upload_session_dir(const char *root, const char *dir) {
        size_t n = strlen(root);
        const char *repo, *u;

        if (!strneq(dir, root, n) || dir[n] != '/')
                return false;
        repo = dir + n + 1;
        /* A repository component never starts with '_', so the first
         * "/_uploads/" ends the repository. */
        u = strstr(repo, "/_uploads/");
        return u && gc_valid_repository(repo, (size_t) (u - repo)) && is_uuid(u + strlen("/_uploads/"));
}

int gc_valid_tag(const char *s, size_t n) {
        if (n == 0 || n > 128 || !(isalnum_ascii(s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!(isalnum_ascii(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return true;
}

static int valid_digest(const char *s, size_t n) {
        return sigcheck_digest(s, n);
}

static void json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}

static int parse_object(const char *json, size_t len, json_object **ret) {
        json_tokener *tok = json_tokener_new();
        json_object *o;

        if (!tok)
                return -ENOMEM;
        o = len <= INT32_MAX ? json_tokener_parse_ex(tok, json, (int) len) : NULL;
        if (o && json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        if (!o || !json_object_is_type(o, json_type_object)) {
                if (o)
                        json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

/* Appends the string of o (checked with valid) to the list *l of *n. */
static int push_string(json_object *o, int (*valid)(const char *s, size_t n), char ***l, size_t *n) {
        const char *s;
        size_t len;
        char **grown;

        if (!o || !json_object_is_type(o, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(o);
        len = (size_t) json_object_get_string_len(o);
        if (strlen(s) != len || !valid(s, len))
                return -EINVAL;
        grown = realloc(*l, (*n + 2) * sizeof(char *));
        if (!grown)
                return -ENOMEM;
        *l = grown;
        if (!((*l)[*n] = strdup(s)))
                return -ENOMEM;
        (*l)[++*n] = NULL;
        return 0;
}

static int empty_list(char ***ret) {
        if (!*ret && !(*ret = calloc(1, sizeof(char *))))
                return -ENOMEM;
        return 0;
}

int gc_parse_strings(const char *json, size_t len, const char *key, int (*valid)(const char *s, size_t n),
                     char ***ret) {
        _cleanup_(json_putp) json_object *o = NULL;
        _cleanup_strv_free_ char **l = NULL;
        json_object *a;
        size_t n = 0;
        int r;

        r = parse_object(json, len, &o);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(o, key, &a) && !json_object_is_type(a, json_type_null)) {
                if (!json_object_is_type(a, json_type_array))
                        return -EBADMSG;
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        r = push_string(json_object_array_get_idx(a, i), valid, &l, &n);
                        if (r < 0)
                                return r;
                }
        }
        r = empty_list(&l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return (int) n;
}

/* The "digest" of every object of array member key of o. */
static int push_digests(json_object *o, const char *key, char ***l, size_t *n) {
        json_object *a, *d;
        int r;

        if (!json_object_object_get_ex(o, key, &a))
                return 0;
        if (!json_object_is_type(a, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *e = json_object_array_get_idx(a, i);
                if (!e || !json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, "digest", &d))
                        return -EBADMSG;
                r = push_string(d, valid_digest, l, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gc_parse_manifest(const char *json, size_t len, char ***ret_blobs, char ***ret_manifests) {
        _cleanup_(json_putp) json_object *o = NULL;
        _cleanup_strv_free_ char **blobs = NULL, **children = NULL;
        size_t n_blobs = 0, n_children = 0;
        json_object *config, *d;
        bool known = false;
        int r;

        r = parse_object(json, len, &o);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(o, "config", &config)) {
                if (!json_object_is_type(config, json_type_object) ||
                    !json_object_object_get_ex(config, "digest", &d))
                        return -EBADMSG;
                r = push_string(d, valid_digest, &blobs, &n_blobs);
                if (r < 0)
                        return r;
                known = true;
        }
        if (json_object_object_get_ex(o, "layers", &d)) {
                r = push_digests(o, "layers", &blobs, &n_blobs);
                if (r < 0)
                        return r;
                known = true;
        }
        if (json_object_object_get_ex(o, "manifests", &d)) {
                r = push_digests(o, "manifests", &children, &n_children);
                if (r < 0)
                        return r;
                known = true;
        }
        if (!known)
                return -EBADMSG;
        r = empty_list(&blobs);
        if (r >= 0)
                r = empty_list(&children);
        if (r < 0)
                return r;
        *ret_blobs = TAKE_PTR(blobs);
        *ret_manifests = TAKE_PTR(children);
        return 0;
}
