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

static char *const names[] = {"registry.example.com", "registry.example.com:4443", NULL};
#define KEY "/etc/containers/keys/registry-cosign.pub"

static json_object *get(json_object *o, const char *path) {
        char buf[256], *save = NULL;
        snprintf(buf, sizeof buf, "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(o, k, &o))
                        return NULL;
        return o;
}

static void test_new_policy(void **state) {
        _cleanup_free_ char *json = NULL, *err = NULL;
        json_object *root, *rule;

        assert_int_equal(policy_merge(NULL, names, KEY, &json, &err), 1);
        root = json_tokener_parse(json);
        assert_non_null(root);
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

        assert_int_equal(policy_merge(existing, names, KEY, &json, &err), 1);
        root = json_tokener_parse(json);
        assert_string_equal(json_object_get_string(get(json_object_array_get_idx(get(root, "default"), 0), "type")),
                            "reject");
        assert_non_null(get(root, "transports.atomic"));
        json_object *docker = get(root, "transports.docker"), *q;
        assert_true(json_object_object_get_ex(docker, "quay.io", &q));
        assert_true(json_object_object_get_ex(docker, "registry.example.com", &q));
        json_object_put(root);

        /* A second merge over the result changes nothing. */
        assert_int_equal(policy_merge(json, names, KEY, &again, &err), 0);
        assert_null(again);
}

static void test_changed_key_rewrites(void **state) {
        _cleanup_free_ char *json = NULL, *again = NULL, *err = NULL;

        assert_int_equal(policy_merge(NULL, names, KEY, &json, &err), 1);
        assert_int_equal(policy_merge(json, names, "/other.pub", &again, &err), 1);
        assert_non_null(strstr(again, "/other.pub"));
        assert_null(strstr(again, KEY));
}

static void test_bad_json(void **state) {
        _cleanup_free_ char *json = NULL, *err = NULL, *err2 = NULL, *err3 = NULL;

        assert_int_equal(policy_merge("{not json", names, KEY, &json, &err), -EBADMSG);
        assert_non_null(err);
        assert_int_equal(policy_merge("[1,2]", names, KEY, &json, &err2), -EBADMSG);
        assert_non_null(err2);
        assert_int_equal(policy_merge("{\"transports\": []}", names, KEY, &json, &err3), -EBADMSG);
        assert_non_null(err3);
        assert_null(json);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_policy),
                cmocka_unit_test(test_merge_keeps_other_rules_and_is_idempotent),
                cmocka_unit_test(test_changed_key_rewrites),
                cmocka_unit_test(test_bad_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
