/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "macro.h"
#include "policy.h"

/* As provision builds them: pull name, then its push name (render.h). */
static const PolicyScope scopes[] = {
        {"registry.example.com", "registry.example.com:4443"},
        {"registry.example.com:4443", "registry.example.com:4443"},
};
#define N_SCOPES ELEMENTSOF(scopes)
#define KEY "/etc/containers/keys/registry-cosign.pub"
#define GPG_KEYS "/etc/containers/keys/regvisor-signers.gpg"

static json_object *get(json_object *o, const char *path) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof buf, "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(o, k, &o))
                        return NULL;
        return o;
}

/* The rule for scope in the policy text json (its only requirement). */
static json_object *rule_of(json_object *root, const char *scope) {
        json_object *list;

        if (!json_object_object_get_ex(get(root, "transports.docker"), scope, &list))
                return NULL;
        assert_int_equal(json_object_array_length(list), 1);
        return json_object_array_get_idx(list, 0);
}

static const char *str(json_object *o, const char *path) {
        return json_object_get_string(get(o, path));
}

/* A new policy.json (none before) of KIND for SCOPES, parsed. */
static json_object *new_policy(PolicyKind kind, const char *key_path, const PolicyScope *scopes_, size_t n) {
        _cleanup_free_ char *json = NULL, *err = NULL;
        json_object *root;

        assert_int_equal(policy_merge(NULL, kind, key_path, scopes_, n, &json, &err), 1);
        root = json_tokener_parse(json);
        assert_non_null(root);
        return root;
}

static void test_gpg_policy(void **state) {
        json_object *root = new_policy(POLICY_GPG, GPG_KEYS, scopes, N_SCOPES), *rule;

        assert_string_equal(str(json_object_array_get_idx(get(root, "default"), 0), "type"), "insecureAcceptAnything");

        /* Pulled through NAME, signed when pushed through NAME:4443. */
        rule = rule_of(root, "registry.example.com");
        assert_non_null(rule);
        assert_string_equal(str(rule, "type"), "signedBy");
        assert_string_equal(str(rule, "keyType"), "GPGKeys");
        assert_string_equal(str(rule, "keyPath"), GPG_KEYS);
        assert_string_equal(str(rule, "signedIdentity.type"), "remapIdentity");
        assert_string_equal(str(rule, "signedIdentity.prefix"), "registry.example.com");
        assert_string_equal(str(rule, "signedIdentity.signedPrefix"), "registry.example.com:4443");

        /* Pulled through NAME:4443: the signature names that very name. */
        rule = rule_of(root, "registry.example.com:4443");
        assert_non_null(rule);
        assert_string_equal(str(rule, "type"), "signedBy");
        assert_string_equal(str(rule, "keyPath"), GPG_KEYS);
        assert_string_equal(str(rule, "signedIdentity.type"), "matchRepoDigestOrExact");
        assert_null(get(rule, "signedIdentity.prefix"));
        json_object_put(root);
}

/* containers/image 5.23 refuses "[2001:db8::10]" as a remapIdentity
 * prefix, and with it the whole policy.json: IPv6 names keep the default
 * identity (measured with skopeo 1.9.3). */
static void test_gpg_policy_ipv6(void **state) {
        static const PolicyScope v6[] = {
                {"[2001:db8::10]", "[2001:db8::10]:4443"},
                {"[2001:db8::10]:4443", "[2001:db8::10]:4443"},
        };
        json_object *root = new_policy(POLICY_GPG, GPG_KEYS, v6, ELEMENTSOF(v6));

        for (size_t i = 0; i < ELEMENTSOF(v6); i++)
                assert_string_equal(str(rule_of(root, v6[i].scope), "signedIdentity.type"), "matchRepoDigestOrExact");
        assert_null(strstr(json_object_to_json_string(root), "remapIdentity"));
        json_object_put(root);
}

static void test_reject_policy(void **state) {
        json_object *root = new_policy(POLICY_REJECT, NULL, scopes, N_SCOPES), *rule;

        for (size_t i = 0; i < N_SCOPES; i++) {
                rule = rule_of(root, scopes[i].scope);
                assert_non_null(rule);
                assert_string_equal(str(rule, "type"), "reject");
                assert_null(get(rule, "signedIdentity"));
                assert_null(get(rule, "keyPath"));
        }
        json_object_put(root);
}

static void test_new_policy(void **state) {
        json_object *root = new_policy(POLICY_SIGSTORE, KEY, scopes, N_SCOPES), *rule;

        assert_string_equal(json_object_get_string(get(json_object_array_get_idx(get(root, "default"), 0), "type")),
                            "insecureAcceptAnything");
        json_object *docker = get(root, "transports.docker");
        assert_non_null(docker);
        assert_true(json_object_object_get_ex(docker, "registry.example.com:4443", &rule));
        rule = json_object_array_get_idx(rule, 0);
        assert_string_equal(json_object_get_string(get(rule, "type")), "sigstoreSigned");
        assert_string_equal(json_object_get_string(get(rule, "keyPath")), KEY);
        assert_string_equal(json_object_get_string(get(rule, "signedIdentity.type")), "matchRepository");
        json_object_put(root);
}

static void test_merge_keeps_other_rules_and_is_idempotent(void **state) {
        const char *existing = "{\"default\": [{\"type\": \"reject\"}],"
                               " \"transports\": {\"docker\": {\"quay.io\": [{\"type\": \"insecureAcceptAnything\"}]},"
                               " \"atomic\": {}}}";
        _cleanup_free_ char *json = NULL, *again = NULL, *err = NULL;
        json_object *root;

        assert_int_equal(policy_merge(existing, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &json, &err), 1);
        root = json_tokener_parse(json);
        assert_string_equal(json_object_get_string(get(json_object_array_get_idx(get(root, "default"), 0), "type")),
                            "reject");
        assert_non_null(get(root, "transports.atomic"));
        json_object *docker = get(root, "transports.docker"), *q;
        assert_true(json_object_object_get_ex(docker, "quay.io", &q));
        assert_true(json_object_object_get_ex(docker, "registry.example.com", &q));
        json_object_put(root);

        /* A second merge over the result changes nothing. */
        assert_int_equal(policy_merge(json, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &again, &err), 0);
        assert_null(again);
}

static void test_changed_key_rewrites(void **state) {
        _cleanup_free_ char *json = NULL, *again = NULL, *err = NULL;

        assert_int_equal(policy_merge(NULL, POLICY_SIGSTORE, KEY, scopes, N_SCOPES, &json, &err), 1);
        assert_int_equal(policy_merge(json, POLICY_SIGSTORE, "/other.pub", scopes, N_SCOPES, &again, &err), 1);
        assert_non_null(strstr(again, "/other.pub"));
        assert_null(strstr(again, KEY));
}

/* mode = sigstore -> gpg on a provisioned host: the rules are replaced. */
static void test_changed_mode_rewrites(void **state) {
        _cleanup_free_ char *json = NULL, *again = NULL, *err = NULL;

        assert_int_equal(policy_merge(NULL, POLICY_SIGSTORE, KEY, scopes, N_SCOPES, &json, &err), 1);
        assert_int_equal(policy_merge(json, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &again, &err), 1);
        assert_null(strstr(again, "sigstoreSigned"));
        assert_non_null(strstr(again, "signedBy"));
}

static void test_bad_json(void **state) {
        _cleanup_free_ char *json = NULL, *err = NULL, *err2 = NULL, *err3 = NULL;

        assert_int_equal(policy_merge("{not json", POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &json, &err), -EBADMSG);
        assert_non_null(err);
        assert_int_equal(policy_merge("[1,2]", POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &json, &err2), -EBADMSG);
        assert_non_null(err2);
        assert_int_equal(policy_merge("{\"transports\": []}", POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &json, &err3), -EBADMSG);
        assert_non_null(err3);
        assert_null(json);
}

/* deprovision: only this registry's rules as provision writes them are
 * removed; an operator's rule elsewhere stays, one changed for our name
 * refuses. */
static void test_own_scopes_removed_others_kept(void **state) {
        const char *existing = "{\"default\": [{\"type\": \"reject\"}], \"transports\": {\"docker\": "
                               "{\"other.example\": [{\"type\": \"insecureAcceptAnything\"}]}}}";
        _cleanup_free_ char *json = NULL, *removed = NULL, *err = NULL, *err2 = NULL, *changed = NULL;
        _cleanup_strv_free_ char **own = NULL, **none = NULL, **never = NULL;
        json_object *root;

        assert_int_equal(policy_merge(existing, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &json, &err), 1);
        assert_int_equal(policy_own_scopes(json, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &own, &err), 0);
        assert_string_equal(own[0], "registry.example.com");
        assert_string_equal(own[1], "registry.example.com:4443");
        assert_null(own[2]);
        assert_int_equal(policy_remove_scopes(json, own, &removed, &err), 1);
        root = json_tokener_parse(removed);
        assert_non_null(rule_of(root, "other.example"));
        assert_null(rule_of(root, "registry.example.com"));
        assert_null(rule_of(root, "registry.example.com:4443"));
        assert_non_null(get(root, "default"));
        json_object_put(root);
        /* Again: nothing of ours is left. */
        assert_int_equal(policy_own_scopes(removed, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &none, &err), 0);
        assert_null(none[0]);
        /* Our name with another rule (another key): not ours to remove. */
        assert_int_equal(policy_merge(existing, POLICY_GPG, "/other.gpg", scopes, N_SCOPES, &changed, &err), 1);
        assert_int_equal(policy_own_scopes(changed, POLICY_GPG, GPG_KEYS, scopes, N_SCOPES, &never, &err2), -EEXIST);
        assert_non_null(strstr(err2, "registry.example.com"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_gpg_policy),
                cmocka_unit_test(test_gpg_policy_ipv6),
                cmocka_unit_test(test_reject_policy),
                cmocka_unit_test(test_new_policy),
                cmocka_unit_test(test_merge_keeps_other_rules_and_is_idempotent),
                cmocka_unit_test(test_changed_key_rewrites),
                cmocka_unit_test(test_changed_mode_rewrites),
                cmocka_unit_test(test_bad_json),
                cmocka_unit_test(test_own_scopes_removed_others_kept),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
