/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "policy.h"

static void json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static json_object *requirement_new(const char *key_path) {
        json_object *list = json_object_new_array();
        json_object *req = json_object_new_object();
        json_object *identity = json_object_new_object();

        if (!list || !req || !identity) {
                json_object_put(list);
                json_object_put(req);
                json_object_put(identity);
                return NULL;
        }
        json_object_object_add(identity, "type", json_object_new_string("matchRepository"));
        json_object_object_add(req, "type", json_object_new_string("sigstoreSigned"));
        json_object_object_add(req, "keyPath", json_object_new_string(key_path));
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

int policy_merge(const char *existing, char *const *names, const char *key_path, char **ret_json, char **ret_error) {
        _cleanup_json_ json_object *root = NULL;
        json_object *transports, *docker;
        bool changed = false;

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
                /* The distribution's default: anything not named below is
                 * accepted as before; only this registry is tightened. */
                root = json_tokener_parse("{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}");
                if (!root)
                        return -ENOMEM;
                changed = true;
        }

        transports = object_child(root, "transports");
        docker = transports ? object_child(transports, "docker") : NULL;
        if (!docker) {
                if (ret_error && asprintf(ret_error, "\"transports\" or \"transports.docker\" is not an object") < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }

        for (char *const *n = names; *n; n++) {
                json_object *want = requirement_new(key_path), *have;
                if (!want)
                        return -ENOMEM;
                if (json_object_object_get_ex(docker, *n, &have) && json_object_equal(have, want)) {
                        json_object_put(want);
                        continue;
                }
                json_object_object_add(docker, *n, want);
                changed = true;
        }
        if (!changed)
                return 0;

        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || asprintf(ret_json, "%s\n", s) < 0)
                return -ENOMEM;
        return 1;
}
