/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "policy.h"


/* {"type": T} plus, when key is given, key: value (strings). */
static json_object *object_new(const char *type, const char *key, const char *value) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "type", json_object_new_string(type));
        if (key)
                json_object_object_add(o, key, json_object_new_string(value));
        return o;
}

/* The identity a signature must claim for an image pulled through scope.
 * containers/image 5.23 (signature/policy_reference_match.go): remapIdentity
 * matches its prefix against the image name followed by '/', so "NAME"
 * never matches "NAME:4443/..."; the matched prefix is replaced by
 * signedPrefix, and the result is compared as matchRepoDigestOrExact (the
 * same tag, or for a pull by digest the same repository). */
static json_object *identity_new(const PolicyScope *s) {
        json_object *o;

        /* An IPv6 literal ("[2001:db8::10]") is a valid scope to 5.23, but
         * not a valid remapIdentity prefix: one such rule makes the whole
         * policy.json fail to load ("prefix ... is not valid"), refusing
         * every pull on the host. Those names keep the default identity. */
        if (!s->signed_prefix || streq(s->signed_prefix, s->scope) || s->scope[0] == '[')
                return object_new("matchRepoDigestOrExact", NULL, NULL);
        o = object_new("remapIdentity", "prefix", s->scope);
        if (o)
                json_object_object_add(o, "signedPrefix", json_object_new_string(s->signed_prefix));
        return o;
}

/* The requirement list of one scope, NULL on OOM. */
static json_object *requirement_new(PolicyKind kind, const char *key_path, const PolicyScope *s) {
        json_object *list = json_object_new_array(), *req = NULL, *identity = NULL;

        if (!list)
                return NULL;
        switch (kind) {
        case POLICY_SIGSTORE:
                req = object_new("sigstoreSigned", "keyPath", key_path);
                identity = object_new("matchRepository", NULL, NULL);
                break;
        case POLICY_GPG:
                req = object_new("signedBy", "keyType", "GPGKeys");
                if (req)
                        json_object_object_add(req, "keyPath", json_object_new_string(key_path));
                identity = identity_new(s);
                break;
        case POLICY_REJECT:
                req = object_new("reject", NULL, NULL);
                break;
        }
        if (!req || (kind != POLICY_REJECT && !identity)) {
                json_object_put(list);
                json_object_put(req);
                json_object_put(identity);
                return NULL;
        }
        if (identity)
                json_object_object_add(req, "signedIdentity", identity);
        json_object_array_add(list, req);
        return list;
}

/* The object at key, created as an empty object when missing. NULL if it
 * exists but is not an object. */
static json_object *object_child(json_object *parent, const char *key) {
        json_object *child;

        if (json_object_object_get_ex(parent, key, &child))
                return json_object_is_type(child, json_type_object) ? child : NULL;
        child = json_object_new_object();
        if (!child)
                return NULL;
        json_object_object_add(parent, key, child);
        return child;
}

/* Parses a policy text into *ret_root and finds its transports.docker
 * object (created when missing). existing NULL or empty: the distribution's
 * default, anything not named is accepted as before (*ret_created true). */
static int policy_open(const char *existing, json_object **ret_root, json_object **ret_docker, bool *ret_created,
                       char **ret_error) {
        _cleanup_json_ json_object *root = NULL;
        json_object *transports, *docker;

        if (existing && *existing) {
                enum json_tokener_error jerr;
                root = json_tokener_parse_verbose(existing, &jerr);
                if (!root || !json_object_is_type(root, json_type_object)) {
                        if (ret_error && asprintf(ret_error, "not a JSON object: %s",
                                                  root ? "top level is not an object" : json_tokener_error_desc(jerr)) < 0)
                                *ret_error = NULL;
                        return -EBADMSG;
                }
        } else {
                root = json_tokener_parse("{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}");
                if (!root)
                        return -ENOMEM;
        }
        transports = object_child(root, "transports");
        docker = transports ? object_child(transports, "docker") : NULL;
        if (!docker) {
                if (ret_error && asprintf(ret_error, "\"transports\" or \"transports.docker\" is not an object") < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        *ret_created = !(existing && *existing);
        *ret_docker = docker;
        *ret_root = TAKE_PTR(root);
        return 0;
}

/* The text policy.json is written as. */
static int policy_text(json_object *root, char **ret_json) {
        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        return !s || asprintf(ret_json, "%s\n", s) < 0 ? -ENOMEM : 0;
}

int policy_merge(const char *existing, PolicyKind kind, const char *key_path, const PolicyScope *scopes,
                 size_t n_scopes, char **ret_json, char **ret_error) {
        _cleanup_json_ json_object *root = NULL;
        json_object *docker;
        bool changed = false;
        int r;

        r = policy_open(existing, &root, &docker, &changed, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_scopes; i++) {
                json_object *want = requirement_new(kind, key_path, &scopes[i]), *have;
                if (!want)
                        return -ENOMEM;
                if (json_object_object_get_ex(docker, scopes[i].scope, &have) && json_object_equal(have, want)) {
                        json_object_put(want);
                        continue;
                }
                json_object_object_add(docker, scopes[i].scope, want);
                changed = true;
        }
        if (!changed)
                return 0;
        r = policy_text(root, ret_json);
        return r < 0 ? r : 1;
}

bool policy_scope_valid(const char *scope) {
        size_t n = strlen(scope);

        if (n == 0 || n > POLICY_SCOPE_MAX || scope[0] == '/')
                return false;
        for (const char *c = scope; *c; c++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:/@*[]", *c))
                        return false;
        return true;
}

/* A client bundle's fragment merged into existing: both parsed, and the
 * list of scopes a caller returns, one slot per fragment scope. */
typedef struct {
        json_object *root, *docker; /* existing, as policy_open() */
        bool created;
        json_object *frag, *want;   /* the fragment, its transports.docker */
        char **scopes;
} Fragment;

static void fragment_done(Fragment *f) {
        json_object_put(f->root);
        json_object_put(f->frag);
        strv_free(f->scopes);
}

/* Opens existing and fragment into f, whose transports.docker scopes must
 * all be names: it comes from another machine, and its scopes go into
 * install's record one per line. */
static int fragment_open(const char *existing, const char *fragment, Fragment *f, char **ret_error) {
        bool frag_created;
        int r;

        r = policy_open(fragment, &f->frag, &f->want, &frag_created, ret_error);
        if (r < 0)
                return r;
        r = policy_open(existing, &f->root, &f->docker, &f->created, ret_error);
        if (r < 0)
                return r;
        json_object_object_foreach(f->want, key, value) {
                (void) value;
                if (!policy_scope_valid(key)) {
                        if (ret_error && asprintf(ret_error,
                                                  "transports.docker: a scope that is not a registry or repository "
                                                  "name (%zu bytes: only letters, digits and .-_:/@*[])",
                                                  strlen(key)) < 0)
                                *ret_error = NULL;
                        return -EBADMSG;
                }
        }
        f->scopes = calloc(json_object_object_length(f->want) + 1, sizeof *f->scopes);
        return f->scopes ? 0 : -ENOMEM;
}

/* "TYPE+TYPE" of a rule's requirements, for the operator; "?" for what is
 * not a list of typed requirements, or a type that is not a plain name
 * (policy_scope_valid(): nothing that could forge a line of the plan). */
static int rule_types(json_object *rule, FILE *f) {
        size_t n = json_object_is_type(rule, json_type_array) ? json_object_array_length(rule) : 0;

        if (n == 0)
                return fputs("?", f);
        for (size_t i = 0; i < n; i++) {
                json_object *type;
                fprintf(f, "%s%s", i ? "+" : "",
                        json_object_object_get_ex(json_object_array_get_idx(rule, i), "type", &type) &&
                                        json_object_is_type(type, json_type_string) &&
                                        policy_scope_valid(json_object_get_string(type))
                                ? json_object_get_string(type)
                                : "?");
        }
        return 0;
}

/* "SCOPE (OLD -> NEW)" into *ret: a rule replaced, for the plan. */
static int replaced_text(const char *scope, json_object *have, json_object *rule, char **ret) {
        size_t size = 0;
        FILE *m = open_memstream(ret, &size);

        if (!m)
                return -ENOMEM;
        fprintf(m, "%s (", scope);
        rule_types(have, m);
        fputs(" -> ", m);
        rule_types(rule, m);
        fputs(")", m);
        return fclose(m) != 0 ? -ENOMEM : 0;
}

/* Merges the fragment's rules into existing; the replaced rules' text
 * into *ret_replaced when it is not NULL. */
static int fragment_merge(const char *existing, const char *fragment, char **ret_json, char ***ret_changed,
                          char ***ret_replaced, char **ret_error) {
        _cleanup_(fragment_done) Fragment f = {};
        _cleanup_strv_free_ char **replaced = NULL;
        size_t n = 0, k = 0;
        int r = fragment_open(existing, fragment, &f, ret_error);

        if (r < 0)
                return r;
        replaced = calloc(json_object_object_length(f.want) + 1, sizeof *replaced);
        if (!replaced)
                return -ENOMEM;
        json_object_object_foreach(f.want, scope, rule) {
                json_object *have;
                bool had = json_object_object_get_ex(f.docker, scope, &have);
                if (had && json_object_equal(have, rule))
                        continue;
                if (had && !f.created && (r = replaced_text(scope, have, rule, &replaced[k++])) < 0)
                        return r;
                f.scopes[n] = strdup(scope);
                if (!f.scopes[n++])
                        return -ENOMEM;
                json_object_object_add(f.docker, scope, json_object_get(rule));
        }
        if (n == 0 && !f.created)
                return 0;
        r = policy_text(f.root, ret_json);
        if (r < 0)
                return r;
        *ret_changed = TAKE_PTR(f.scopes);
        if (ret_replaced)
                *ret_replaced = TAKE_PTR(replaced);
        return 1;
}

static int bundle_refuse(char **ret_error, const char *scope, const char *why) {
        if (ret_error && asprintf(ret_error, "transports.docker \"%s\": %s", scope, why) < 0)
                *ret_error = NULL;
        return -EPERM;
}

/* In *ret, the index in allowed of the requirement that rule is exactly,
 * as requirement_new() builds it for s; -1 for none. */
static int rule_allowed(json_object *rule, const PolicyRequirement *allowed, size_t n_allowed, const PolicyScope *s,
                        int *ret) {
        *ret = -1;
        for (size_t k = 0; k < n_allowed; k++) {
                _cleanup_json_ json_object *want = requirement_new(allowed[k].kind, allowed[k].key_path, s);
                if (!want)
                        return -ENOMEM;
                if (json_object_equal(rule, want)) {
                        *ret = (int) k;
                        return 0;
                }
        }
        return 0;
}

/* The fragment's rules rebuilt here, {"transports": {"docker": {SCOPE:
 * requirement_new()}}}, once the fragment holds exactly those: a rule for
 * every scope, all of one requirement of allowed, and nothing else. No
 * part of a rule comes from the fragment: a malformed one (a signedBy
 * without a key, an unknown member) makes containers/image refuse the
 * whole policy.json, every pull of the machine. */
static int bundle_rebuild(const char *fragment, const PolicyScope *scopes, size_t n_scopes,
                          const PolicyRequirement *allowed, size_t n_allowed, char **ret_fragment, char **ret_error) {
        _cleanup_json_ json_object *frag = NULL, *out = NULL;
        json_object *want, *transports, *docker;
        bool created;
        int r, kind = -1;

        r = policy_open(fragment, &frag, &want, &created, ret_error);
        if (r < 0)
                return r;
        if (json_object_object_length(frag) != 1 || !json_object_object_get_ex(frag, "transports", &transports) ||
            json_object_object_length(transports) != 1)
                return bundle_refuse(ret_error, "transports", "a bundle's fragment holds transports.docker only");
        json_object_object_foreach(want, key, value) {
                bool ours = false;
                (void) value;
                for (size_t i = 0; i < n_scopes; i++)
                        ours = ours || streq(key, scopes[i].scope);
                if (!ours)
                        return bundle_refuse(ret_error, policy_scope_valid(key) ? key : "(not a name)",
                                             "not one of the bundle's registry names; its rules are for those alone");
        }
        out = json_tokener_parse("{\"transports\": {\"docker\": {}}}");
        if (!out || !json_object_object_get_ex(out, "transports", &transports) ||
            !json_object_object_get_ex(transports, "docker", &docker))
                return -ENOMEM;
        for (size_t i = 0; i < n_scopes; i++) {
                json_object *rule;
                int k;
                if (!json_object_object_get_ex(want, scopes[i].scope, &rule))
                        return bundle_refuse(ret_error, scopes[i].scope,
                                             "missing: a bundle has a rule for each of its registry names");
                r = rule_allowed(rule, allowed, n_allowed, &scopes[i], &k);
                if (r < 0)
                        return r;
                if (k < 0 || (kind >= 0 && k != kind))
                        return bundle_refuse(ret_error, scopes[i].scope,
                                             "not a rule pki export writes: signedBy GPGKeys or sigstoreSigned with "
                                             "the key file this bundle installs and export's signedIdentity, or "
                                             "reject, the same for each name, no other member (never "
                                             "insecureAcceptAnything)");
                kind = k;
                rule = requirement_new(allowed[k].kind, allowed[k].key_path, &scopes[i]);
                if (!rule)
                        return -ENOMEM;
                json_object_object_add(docker, scopes[i].scope, rule);
        }
        return policy_text(out, ret_fragment);
}

int policy_merge_bundle(const char *existing, const char *fragment, const PolicyScope *scopes, size_t n_scopes,
                        const PolicyRequirement *allowed, size_t n_allowed, char **ret_json, char ***ret_changed,
                        char ***ret_replaced, char **ret_error) {
        _cleanup_free_ char *rebuilt = NULL;
        int r = bundle_rebuild(fragment, scopes, n_scopes, allowed, n_allowed, &rebuilt, ret_error);

        return r < 0 ? r : fragment_merge(existing, rebuilt, ret_json, ret_changed, ret_replaced, ret_error);
}

int policy_merge_fragment(const char *existing, const char *fragment, char **ret_json, char ***ret_changed,
                          char **ret_error) {
        return fragment_merge(existing, fragment, ret_json, ret_changed, NULL, ret_error);
}

int policy_remove_scopes(const char *existing, char *const *scopes, char **ret_json, char **ret_error) {
        _cleanup_json_ json_object *root = NULL;
        json_object *docker;
        bool created, changed = false;
        int r;

        r = policy_open(existing, &root, &docker, &created, ret_error);
        if (r < 0)
                return r;
        for (; scopes && *scopes; scopes++)
                if (json_object_object_get_ex(docker, *scopes, NULL)) {
                        json_object_object_del(docker, *scopes);
                        changed = true;
                }
        if (!changed)
                return 0;
        r = policy_text(root, ret_json);
        return r < 0 ? r : 1;
}

int policy_scopes_fragment(const char *existing, char *const *scopes, char **ret_fragment, char **ret_error) {
        _cleanup_json_ json_object *root = NULL, *frag = NULL;
        json_object *docker, *out, *transports;
        bool created, any = false;
        int r;

        r = policy_open(existing, &root, &docker, &created, ret_error);
        if (r < 0)
                return r;
        frag = json_object_new_object();
        transports = json_object_new_object();
        out = json_object_new_object();
        if (!frag || !transports || !out) {
                json_object_put(transports);
                json_object_put(out);
                return -ENOMEM;
        }
        json_object_object_add(frag, "transports", transports);
        json_object_object_add(transports, "docker", out);
        for (; !created && scopes && *scopes; scopes++) {
                json_object *have;
                if (json_object_object_get_ex(docker, *scopes, &have)) {
                        json_object_object_add(out, *scopes, json_object_get(have));
                        any = true;
                }
        }
        if (!any)
                return 0;
        r = policy_text(frag, ret_fragment);
        return r < 0 ? r : 1;
}

int policy_own_scopes(const char *existing, PolicyKind kind, const char *key_path, const PolicyScope *scopes,
                      size_t n_scopes, char ***ret_scopes, char **ret_error) {
        _cleanup_json_ json_object *root = NULL;
        _cleanup_strv_free_ char **own = NULL;
        json_object *docker;
        bool created;
        size_t n = 0;
        int r;

        own = calloc(n_scopes + 1, sizeof *own);
        if (!own)
                return -ENOMEM;
        if (existing && *existing) {
                r = policy_open(existing, &root, &docker, &created, ret_error);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n_scopes; i++) {
                        _cleanup_json_ json_object *want = requirement_new(kind, key_path, &scopes[i]);
                        json_object *have;

                        if (!want)
                                return -ENOMEM;
                        if (!json_object_object_get_ex(docker, scopes[i].scope, &have))
                                continue;
                        if (!json_object_equal(have, want)) {
                                if (ret_error && asprintf(ret_error, "the rule for %s is not the one regvisor "
                                                                     "writes (changed since provision?)",
                                                          scopes[i].scope) < 0)
                                        *ret_error = NULL;
                                return -EEXIST;
                        }
                        own[n] = strdup(scopes[i].scope);
                        if (!own[n++])
                                return -ENOMEM;
                }
        }
        *ret_scopes = TAKE_PTR(own);
        return 0;
}

